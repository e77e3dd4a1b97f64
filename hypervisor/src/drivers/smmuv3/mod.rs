//! Arm SMMUv3 at EL2: the one thing that keeps a device's DMA inside its
//! owner's memory. Global bypass is off with abort; each stream a VM owns
//! gets a stream table entry that translates with that VM's own stage-2
//! tables and VMID; every other stream has an invalid entry, so its
//! transactions are aborted and reported. Faults arrive as event records
//! (the `vm` layer names the VM and PCI function and rate-limits the log).
//!
//! The in-memory formats are in [`format`] (portable, host-tested); this
//! file moves them between memory and registers.

#[cfg(target_os = "none")]
mod driver;
pub mod format;
#[cfg(target_os = "none")]
pub use driver::Smmu;
