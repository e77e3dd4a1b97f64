//! PSCI (through the DTB's conduit), Tessera's hypercalls and its control
//! page.

use core::sync::atomic::{AtomicBool, Ordering};

pub const PSCI_VERSION: u32 = 0x8400_0000;
pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON_64: u32 = 0xc400_0003;
pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
pub const SYSTEM_RESET: u32 = 0x8400_0009;
pub const PSCI_FEATURES: u32 = 0x8400_000a;
/// A PSCI function number nobody assigned (for PSCI_FEATURES).
pub const UNKNOWN_FUNCTION: u32 = 0x8400_001f;

pub const NOT_SUPPORTED: i64 = -1;
pub const AFFINITY_ON: i64 = 0;
pub const AFFINITY_OFF: i64 = 1;

pub const TESSERA_PING: u32 = 0xc600_0000;
pub const TESSERA_DOORBELL: u32 = 0xc600_0001;
pub const TESSERA_EXITS: u32 = 0xc600_0002;
pub const TESSERA_UART_TOUCHES: u32 = 0xc600_0003;
pub const CONTROL_PAGE: usize = 0x0b00_0000;
const CONTROL_DOORBELL: usize = 0x000;

/// PSCI through SMC instead of HVC (the DTB's `/psci/method`).
pub static USE_SMC: AtomicBool = AtomicBool::new(false);

/// An SMCCC call by `hvc #0` or `smc #0`: x0-x17 may change, memory not.
macro_rules! smccc {
    ($insn:literal, $fid:expr, $a1:expr, $a2:expr, $a3:expr) => {{
        let mut x0 = $fid as u64;
        // SAFETY: an SMCCC call to the hypervisor (or firmware); it changes
        // only the registers listed, never our memory.
        unsafe {
            core::arch::asm!($insn,
                inout("x0") x0, inout("x1") $a1 => _, inout("x2") $a2 => _,
                inout("x3") $a3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack));
        }
        x0 as i64
    }};
}

fn hvc(fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    smccc!("hvc #0", fid, a1, a2, a3)
}

fn smc(fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    smccc!("smc #0", fid, a1, a2, a3)
}

/// Through the other conduit than the DTB names: a hypervisor answers PSCI on
/// both (natively, QEMU's firmware answers only one).
pub fn call_other_conduit(fid: u32) -> i64 {
    if USE_SMC.load(Ordering::Relaxed) {
        hvc(fid, 0, 0, 0)
    } else {
        smc(fid, 0, 0, 0)
    }
}

pub fn call(fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    if USE_SMC.load(Ordering::Relaxed) {
        smc(fid, a1, a2, a3)
    } else {
        hvc(fid, a1, a2, a3)
    }
}

pub fn cpu_on(vcpu: usize, context: u64) -> i64 {
    let entry = crate::entry::secondary_entry as *const () as u64;
    call(CPU_ON_64, vcpu as u64, entry, context)
}

pub fn affinity_info(vcpu: usize) -> i64 {
    call(AFFINITY_INFO_64, vcpu as u64, 0, 0)
}

pub fn cpu_off() -> ! {
    let r = call(CPU_OFF, 0, 0, 0);
    crate::console::fail(
        "psci",
        format_args!("CPU_OFF returned {r} on vCPU {}", crate::vcpu()),
    );
    crate::idle()
}

pub fn system_reset() -> i64 {
    call(SYSTEM_RESET, 0, 0, 0)
}

/// PSCI SYSTEM_OFF: under Tessera it stops this VM only; returns only on failure.
pub fn system_off() -> i64 {
    call(0x8400_0008, 0, 0, 0)
}

/// `TESSERA_PING`: always HVC (a hypercall, not PSCI).
pub fn ping() -> i64 {
    hvc(TESSERA_PING, 0, 0, 0)
}

/// `TESSERA_UART_TOUCHES`: how often EL2 has written to (or waited for) the
/// physical UART on this VM's cores.
pub fn uart_touches() -> i64 {
    hvc(TESSERA_UART_TOUCHES, 0, 0, 0)
}

/// Rings shared region `index` by hypercall.
pub fn doorbell_hvc(index: u32) -> i64 {
    // SAFETY: a barrier only: our shared-memory writes first.
    unsafe { core::arch::asm!("dsb sy") };
    hvc(TESSERA_DOORBELL, index as u64, 0, 0)
}

/// Rings shared region `index` through the control page.
pub fn doorbell_mmio(index: u32) {
    // SAFETY: the control page's DOORBELL register (32-bit write); the
    // barrier makes our shared-memory writes visible first.
    unsafe {
        core::arch::asm!("dsb sy");
        crate::mmio::write32(CONTROL_PAGE + CONTROL_DOORBELL, index);
    }
}
