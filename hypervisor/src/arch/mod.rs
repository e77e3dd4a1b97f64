//! AArch64 at EL2: the bottom of the tree. It calls nothing above it: the
//! vectors hand each trap to the handlers that `boot` installs.
//! Everything that touches a system register or runs before Rust can is here,
//! each `unsafe` block saying why it is sound.

// Portable: pure decoding and table building, tested on the host.
pub mod abort;
pub mod esr;
pub mod pagetable;

#[cfg(target_os = "none")]
pub mod cpu;
#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
pub mod mmu;
#[cfg(target_os = "none")]
pub mod psci;
#[cfg(target_os = "none")]
pub mod sysreg;
#[cfg(target_os = "none")]
pub mod timer;
#[cfg(target_os = "none")]
pub mod vectors;
