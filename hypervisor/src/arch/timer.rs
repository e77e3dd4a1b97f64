//! The generic timer: the counter every core shares, and the EL2 physical
//! timer (CNTHP) used by the hypervisor itself.

use aarch64_cpu::registers::{
    Readable, Writeable, CNTFRQ_EL0, CNTHCTL_EL2, CNTHP_CTL_EL2, CNTPCT_EL0, CNTVOFF_EL2,
};
use tock_registers::register_bitfields;

register_bitfields! {u64,
    /// CNTHCTL_EL2 without VHE; `aarch64-cpu` names only bits 1:0.
    CNTHCTL [
        /// The event stream's bit of the counter (it fires on its 0-to-1 change).
        EVNTI OFFSET(4) NUMBITS(4) [],
        EVNTEN OFFSET(2) NUMBITS(1) [],
        EL1PCEN OFFSET(1) NUMBITS(1) [],
        EL1PCTEN OFFSET(0) NUMBITS(1) []
    ]
}

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
    // EL1 may use the physical counter and timer; an event stream every 2^16
    // ticks lets `wait_until` sleep in WFE yet still time out.
    let ctl = CNTHCTL::EL1PCTEN::SET
        + CNTHCTL::EL1PCEN::SET
        + CNTHCTL::EVNTEN::SET
        + CNTHCTL::EVNTI.val(15);
    CNTHCTL_EL2.set(ctl.value);
    CNTVOFF_EL2.set(0);
    CNTHP_CTL_EL2.set(0);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Fires CNTHP at `deadline` (counter ticks).
pub fn arm_el2(deadline: u64) {
    // SAFETY: the EL2 timer's compare value (no typed accessor exists); the
    // timer is the hypervisor's own.
    unsafe { core::arch::asm!("msr cnthp_cval_el2, {}", in(reg) deadline) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

pub fn disarm_el2() {
    CNTHP_CTL_EL2.set(0);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
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
