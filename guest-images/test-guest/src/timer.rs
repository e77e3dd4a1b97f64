//! The virtual timer (CNTV, INTID 27) as a periodic tick with lateness
//! statistics, and counter-based waiting.

use crate::exceptions;
use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTVCT_EL0};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

pub fn now() -> u64 {
    // SAFETY: ISB so that the read is not hoisted.
    unsafe { core::arch::asm!("isb") };
    CNTVCT_EL0.get()
}

/// Counter ticks in `ms` milliseconds.
pub fn ms(ms: u64) -> u64 {
    frequency() * ms / 1000
}

/// An event stream of about 15 kHz so that [`wait_until`] can sleep in WFE
/// yet notice its time-out.
pub fn init_event_stream() {
    let per = (frequency() / 15_000).max(2);
    let bit = (63 - per.leading_zeros() as u64).saturating_sub(1).min(15);
    // SAFETY: CNTKCTL_EL1: EVNTEN and EVNTI only; EL0 has no access.
    unsafe { core::arch::asm!("msr cntkctl_el1, {}", "isb", in(reg) (1u64 << 2) | bit << 4) };
}

/// Sleeps (WFE) until `done` or the counter passes `give_up`; returns `done`.
pub fn wait_until(give_up: u64, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if now() >= give_up {
            return done();
        }
        aarch64_cpu::asm::wfe();
    }
}

// The tick's state; vCPU 0 alone uses the tick.
static PERIOD: AtomicU64 = AtomicU64::new(0);
static NEXT: AtomicU64 = AtomicU64::new(0);
static TARGET: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);
static SUM_LATE: AtomicU64 = AtomicU64::new(0);
static MAX_LATE: AtomicU64 = AtomicU64::new(0);
static EARLY: AtomicU64 = AtomicU64::new(0);
static FIRST: AtomicU64 = AtomicU64::new(0);
static LAST: AtomicU64 = AtomicU64::new(0);

fn set_timer(cval: u64, ctl: u64) {
    // SAFETY: this vCPU's virtual timer.
    unsafe {
        core::arch::asm!(
            "msr cntv_cval_el0, {c}",
            "msr cntv_ctl_el0, {t}",
            "isb",
            c = in(reg) cval,
            t = in(reg) ctl,
        )
    };
}

/// Starts `count` ticks of `period` counter ticks, due at start + k * period.
pub fn start_ticks(period: u64, count: u64) {
    exceptions::mask_irqs();
    for a in [&COUNT, &SUM_LATE, &MAX_LATE, &EARLY, &FIRST, &LAST] {
        a.store(0, Relaxed);
    }
    PERIOD.store(period, Relaxed);
    TARGET.store(count, Relaxed);
    let first = now() + period;
    NEXT.store(first, Relaxed);
    set_timer(first, 1);
    exceptions::unmask_irqs();
}

pub fn stop_ticks() {
    set_timer(0, 0);
    TARGET.store(0, Relaxed);
}

/// Ticks so far.
pub fn ticks() -> u64 {
    COUNT.load(Relaxed)
}

/// From the IRQ handler: record the lateness, program the next deadline.
pub fn on_interrupt() {
    let t = now();
    let due = NEXT.load(Relaxed);
    if t < due {
        EARLY.fetch_add(1, Relaxed);
    }
    let late = t.saturating_sub(due);
    SUM_LATE.fetch_add(late, Relaxed);
    MAX_LATE.fetch_max(late, Relaxed);
    let n = COUNT.fetch_add(1, Relaxed) + 1;
    if n == 1 {
        FIRST.store(t, Relaxed);
    }
    LAST.store(t, Relaxed);
    if n < TARGET.load(Relaxed) {
        let next = due + PERIOD.load(Relaxed);
        NEXT.store(next, Relaxed);
        set_timer(next, 1);
    } else {
        set_timer(0, 0);
    }
}

pub struct TickStats {
    pub count: u64,
    pub mean_late: u64,
    pub max_late: u64,
    pub early: u64,
    /// Mean time between handler entries.
    pub mean_period: u64,
}

pub fn stats() -> TickStats {
    let count = COUNT.load(Relaxed);
    TickStats {
        count,
        mean_late: SUM_LATE.load(Relaxed) / count.max(1),
        max_late: MAX_LATE.load(Relaxed),
        early: EARLY.load(Relaxed),
        mean_period: (LAST.load(Relaxed) - FIRST.load(Relaxed)) / (count.max(2) - 1),
    }
}
