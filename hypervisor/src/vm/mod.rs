//! VM logic: each VM and its vCPUs (one per physical core, for life), the
//! dispatch of every trap from a guest, the PSCI server, hypercalls, the
//! fault policy, and console input routing. Emulated devices are reached
//! through the VM's `vdev::Registry`, never named here.

// Portable: the plan's mappings and checks, the console-input state
// machine and the feature-ID policy, tested on the host.
pub mod console_input;
pub mod features;
pub mod linux;
pub mod partition;

#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod dma;
#[cfg(target_os = "none")]
pub(crate) mod fault;
#[cfg(target_os = "none")]
pub mod hypercall;
#[cfg(target_os = "none")]
pub mod irq;
#[cfg(target_os = "none")]
mod psci;
#[cfg(target_os = "none")]
mod shm;
#[cfg(target_os = "none")]
mod state;
#[cfg(target_os = "none")]
mod sysreg;
#[cfg(target_os = "none")]
pub mod trap;
#[cfg(target_os = "none")]
pub mod vcpu;

#[cfg(target_os = "none")]
pub use hypercall::probe_firmware;
#[cfg(target_os = "none")]
pub use state::*;
