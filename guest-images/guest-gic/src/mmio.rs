//! 32-bit device-register accesses as single `ldr`/`str` with a plain base
//! register: the emulated devices (GIC, PL011, control page) trap to the
//! hypervisor, which can only decode an access from the syndrome (ESR ISV)
//! if it has no writeback and is not a pair; volatile pointers leave the
//! instruction choice to the compiler.

/// # Safety
/// `addr` must be a 32-bit device register this guest may read.
pub unsafe fn read32(addr: usize) -> u32 {
    let v: u32;
    // SAFETY: per the contract above.
    unsafe {
        core::arch::asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack))
    };
    v
}

/// # Safety
/// `addr` must be a 32-bit device register this guest may write.
pub unsafe fn write32(addr: usize, v: u32) {
    // SAFETY: per the contract above.
    unsafe {
        core::arch::asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack))
    };
}
