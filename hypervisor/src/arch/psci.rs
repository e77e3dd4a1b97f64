//! Calls into PSCI firmware (QEMU's built-in PSCI, or TF-A on a board)
//! through the conduit the DTB names.

use crate::fdt::firmware::Conduit;

pub const PSCI_VERSION: u32 = 0x8400_0000;
pub const CPU_ON_64: u32 = 0xc400_0003;
pub const SYSTEM_OFF: u32 = 0x8400_0008;

pub fn call(conduit: Conduit, fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let mut x0 = fid as u64;
    // SAFETY: an SMC/HVC to firmware under the SMC Calling Convention; the
    // firmware preserves x4-x17 and our memory (SMCCC v1.1+ also x4-x17 for
    // SMC64; we mark x1-x17 clobbered to be safe on older firmware).
    unsafe {
        match conduit {
            Conduit::Smc => core::arch::asm!("smc #0",
                inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _, options(nostack)),
            Conduit::Hvc => core::arch::asm!("hvc #0",
                inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _, options(nostack)),
        }
    }
    x0 as i64
}

/// PSCI return codes in words.
pub fn error_name(code: i64) -> &'static str {
    match code {
        0 => "SUCCESS",
        -1 => "NOT_SUPPORTED",
        -2 => "INVALID_PARAMETERS",
        -3 => "DENIED",
        -4 => "ALREADY_ON",
        -5 => "ON_PENDING",
        -6 => "INTERNAL_FAILURE",
        -7 => "NOT_PRESENT",
        -8 => "DISABLED",
        -9 => "INVALID_ADDRESS",
        _ => "unknown PSCI error",
    }
}
