//! Physical interrupts taken at EL2.

use crate::arch::{gicv3, timer};
use core::sync::atomic::{AtomicU64, Ordering};

/// Counter value at which each core last took its EL2 timer interrupt.
pub static TIMER_FIRED_AT: [AtomicU64; crate::arch::cpu::MAX_CPUS] =
    [const { AtomicU64::new(0) }; crate::arch::cpu::MAX_CPUS];

/// Takes one pending interrupt; false if there was none.
pub fn handle() -> bool {
    let intid = gicv3::ack();
    if intid >= gicv3::SPURIOUS_FIRST {
        return false;
    }
    gicv3::eoi(intid);
    match intid {
        timer::CNTHP_INTID => {
            let now = timer::now();
            timer::disarm_el2();
            TIMER_FIRED_AT[crate::arch::cpu::core_index()].store(now, Ordering::Release);
        }
        _ if Some(intid) == crate::vcpu::console_intid() => crate::vcpu::console_input(),
        // Forwarded to this core's guest, which deactivates it when done.
        _ => match crate::vcpu::on_irq(intid) {
            crate::vcpu::Irq::Forwarded => return true,
            crate::vcpu::Irq::Handled => {}
            crate::vcpu::Irq::Unknown => log::warn!("unexpected interrupt {intid}"),
        },
    }
    gicv3::deactivate(intid);
    true
}
