//! Tessera, the EL2 hypervisor, as one tree grouped by role. Arrows point one
//! way, from the top down (docs/hypervisor-tree.md is the map):
//!
//! ```text
//! boot      the boot core's sequence, the other cores' start, crash reports
//! vm        VMs and vCPUs, trap dispatch, PSCI server, hypercalls, faults
//! vdev      emulated devices behind one trait, found by guest address range
//! drivers   the physical devices: GICv3, PL011 and the console on it
//! fdt       reading the firmware DTB, writing guest DTBs
//! arch      entry, vectors, EL2 MMU, page tables, system registers, syndromes
//! ```
//!
//! Modules marked "portable" build for the host too and are unit-tested
//! there; the rest touch registers or MMIO and exist only in the EL2 image
//! (`target_os = "none"`), whose binary (`main.rs`) is just this library.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod arch;
pub mod boot;
pub mod drivers;
pub mod fdt;
pub mod vdev;
pub mod vm;
