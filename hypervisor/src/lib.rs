//! Tessera's portable logic: everything here builds for the host as well as
//! for `aarch64-unknown-none`, and is unit-tested on the host. Code that
//! touches registers or MMIO lives in the binary's `arch` modules.
#![cfg_attr(not(test), no_std)]

pub mod bootargs;
pub mod console_input;
pub mod dtb;
pub mod esr;
pub mod fdt_writer;
pub mod guest_dtb;
pub mod mmio;
pub mod pagetable;
pub mod partition;
pub mod vgic;
