//! AArch64 at EL2: everything that touches system registers, MMIO or runs
//! before Rust can. Each `unsafe` block here says why it is sound.

pub mod cpu;
pub mod entry;
pub mod gicv3;
pub mod mmu;
pub mod psci;
pub mod timer;
pub mod vectors;
