//! The generic timer: the counter every core shares, and the EL2 physical
//! timer (CNTHP) used by the hypervisor itself.

use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTPCT_EL0};

/// PPI of the EL2 physical timer (INTID 26 on every GICv3 system).
pub const CNTHP_INTID: u32 = 26;

pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

pub fn now() -> u64 {
    // SAFETY: ISB so the read is not hoisted above earlier instructions.
    unsafe { core::arch::asm!("isb") };
    CNTPCT_EL0.get()
}

/// Per-core set-up: EL1 may read the physical counter and timer (guests
/// expect that), no virtual offset, the EL2 timer off, an event stream on.
pub fn init() {
    // SAFETY: EL2 timer control registers, owned by the hypervisor.
    unsafe {
        core::arch::asm!(
            "msr cnthctl_el2, {ctl}",
            "msr cntvoff_el2, xzr",
            "msr cnthp_ctl_el2, xzr",
            "isb",
            // EL1PCTEN, EL1PCEN; and an event stream (EVNTEN, every 2^16
            // ticks) so that `wait_until` can sleep in WFE yet still time out.
            ctl = in(reg) 0b11u64 | (1 << 2) | (15 << 4),
        );
    }
}

/// Fires CNTHP at `deadline` (counter ticks).
pub fn arm_el2(deadline: u64) {
    // SAFETY: as above.
    unsafe {
        core::arch::asm!(
            "msr cnthp_cval_el2, {d}",
            "msr cnthp_ctl_el2, {on}",
            "isb",
            d = in(reg) deadline,
            on = in(reg) 1u64,
        );
    }
}

pub fn disarm_el2() {
    // SAFETY: as above.
    unsafe { core::arch::asm!("msr cnthp_ctl_el2, xzr", "isb") };
}

/// Waits in low power (WFE) until `done` or the counter reaches `give_up`;
/// returns whether `done` became true. Events come from SEV, interrupts and
/// the event stream, so no wake-up can be missed for longer than 2^16 ticks.
pub fn wait_until(give_up: u64, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if now() >= give_up {
            return done();
        }
        // SAFETY: WFE only waits for an event.
        unsafe { core::arch::asm!("wfe") };
    }
}
