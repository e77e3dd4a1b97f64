//! The fixed part of every VM's guest-physical map (`docs/guest-abi.md`):
//! the emulated devices sit at these addresses on every board, whatever the
//! physical GIC and UART addresses are. The checker keeps RAM, devices and
//! shared windows off them; the hypervisor registers its emulated devices
//! and writes the guest DTB from them.

use crate::model::Range;

/// vCPUs per VM at most: the vGIC model's limit, and what the
/// redistributor frames below are laid out for.
pub const MAX_VCPUS: usize = 4;
/// GICv3 distributor (emulated).
pub const GICD_IPA: u64 = 0x0800_0000;
pub const GICD_SIZE: u64 = 0x1_0000;
/// GICv3 redistributors: vCPU *i* at `GICR_IPA + i * GICR_STRIDE`.
pub const GICR_IPA: u64 = 0x080A_0000;
pub const GICR_STRIDE: u64 = 0x2_0000;
/// PL011 console (emulated).
pub const UART_IPA: u64 = 0x0900_0000;
pub const UART_SIZE: u64 = 0x1000;
/// Tessera control page (emulated).
pub const CONTROL_IPA: u64 = 0x0B00_0000;
pub const CONTROL_SIZE: u64 = 0x1000;

/// The page at the start of each shared region that the hypervisor writes
/// and every peer maps read-only (`docs/guest-abi.md`, "Shared regions");
/// the data the peers exchange starts after it.
pub const SHM_HEADER_SIZE: u64 = 0x1000;

/// The emulated devices of a VM with `vcpus` vCPUs, named as the checker
/// reports them.
pub fn emulated(vcpus: usize) -> [(&'static str, Range); 4] {
    [
        ("emulated GIC distributor", Range::new(GICD_IPA, GICD_SIZE)),
        (
            "emulated GIC redistributors",
            Range::new(GICR_IPA, GICR_STRIDE * vcpus.clamp(1, MAX_VCPUS) as u64),
        ),
        ("emulated UART", Range::new(UART_IPA, UART_SIZE)),
        ("control page", Range::new(CONTROL_IPA, CONTROL_SIZE)),
    ]
}
