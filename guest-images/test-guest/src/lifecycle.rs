//! Interrupts across the life changes of a vCPU or a VM: a fault or a
//! `SYSTEM_RESET` from inside an interrupt handler (the restarted VM must
//! not inherit an active priority or an Active timer), `CPU_OFF` and
//! `CPU_ON` (the timer and a pending SGI survive), and two vCPUs faulting
//! at the same moment (the VM restarts exactly once).

use crate::checks::{start_secondary, Secondary};
use crate::console::{fail, info, report, CheckResult};
use crate::timer::{self, ms, now, wait_until};
use crate::{exceptions, gic, msg, psci, vcpu};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

/// What the next virtual timer interrupt does before anything else.
static ACTION: AtomicU32 = AtomicU32::new(0);
const READ_OUTSIDE: u32 = 1;
const SYSTEM_RESET: u32 = 2;
static ADDRESS: AtomicU64 = AtomicU64::new(0);

/// From the IRQ handler, for the virtual timer, before it is ended.
pub fn in_timer_irq() {
    match ACTION.swap(0, SeqCst) {
        READ_OUTSIDE => {
            let addr = ADDRESS.load(SeqCst) as usize;
            // SAFETY: deliberately not safe: an address this VM does not own.
            let v = unsafe { crate::mmio::read32(addr) };
            fail(
                "isolation",
                msg!("read outside my memory succeeded ({addr:#x} = {v:#x})"),
            );
        }
        SYSTEM_RESET => {
            let r = psci::system_reset();
            fail("reset", msg!("SYSTEM_RESET returned {r}"));
        }
        _ => {}
    }
}

fn from_timer_irq(action: u32, what: &str) {
    info(format_args!(
        "{what}, from inside a timer interrupt handler"
    ));
    ACTION.store(action, SeqCst);
    timer::start_ticks(ms(1), 1);
    wait_until(now() + ms(1_000), || ACTION.load(SeqCst) == 0);
    wait_until(now() + ms(100), || false);
}

/// t1: a read outside its RAM from inside an interrupt handler.
pub fn fault_in_irq(addr: u64) {
    ADDRESS.store(addr, SeqCst);
    info(format_args!(
        "isolation: reading {addr:#x}, outside my memory"
    ));
    from_timer_irq(READ_OUTSIDE, "the read comes");
}

/// t1: `SYSTEM_RESET` from inside an interrupt handler.
pub fn reset_in_irq() {
    from_timer_irq(SYSTEM_RESET, "calling PSCI SYSTEM_RESET");
}

/// After a restart: 10 timer ticks and a self-SGI still arrive.
pub fn irq_still_works(name: &str) {
    report(name, irq_result());
}

fn irq_result() -> CheckResult {
    const TICKS: u64 = 10;
    timer::start_ticks(ms(1), TICKS);
    if !wait_until(now() + ms(1_000), || timer::ticks() >= TICKS) {
        let got = timer::ticks();
        timer::stop_ticks();
        return Err(msg!("{got} of {TICKS} timer ticks arrived"));
    }
    let me = vcpu();
    let before = gic::SGIS[me].load(SeqCst);
    gic::send_sgi(gic::SGI_TEST, me);
    if !wait_until(now() + ms(1_000), || gic::SGIS[me].load(SeqCst) > before) {
        return Err(msg!("{TICKS} timer ticks, but a self-SGI did not arrive"));
    }
    Ok(msg!("{TICKS} timer ticks and a self-SGI arrived"))
}

/// vCPU 1's progress in the CPU_OFF/CPU_ON check.
static PHASE: AtomicU32 = AtomicU32::new(0);
static TICKS_BEFORE: AtomicU64 = AtomicU64::new(0);
static TICKS_AFTER: AtomicU64 = AtomicU64::new(0);
static SGI_AFTER: AtomicU32 = AtomicU32::new(0);
const OFF_ON_TICKS: u64 = 5;

/// vCPU 1, first start: timer ticks, then an SGI arrives while its
/// interrupts are masked, and it goes off with the SGI still pending.
pub fn before_off() {
    timer::start_ticks(ms(1), OFF_ON_TICKS);
    wait_until(now() + ms(1_000), || timer::ticks() >= OFF_ON_TICKS);
    TICKS_BEFORE.store(timer::ticks(), SeqCst);
    exceptions::mask_irqs();
    PHASE.store(1, SeqCst);
    // Wait until the SGI is pending for us (the highest pending interrupt).
    wait_until(now() + ms(1_000), || {
        let hppir: u64;
        // SAFETY: reading the highest pending interrupt has no side effects.
        unsafe { core::arch::asm!("mrs {}, icc_hppir1_el1", out(reg) hppir) };
        hppir as u32 & 0xff_ffff == gic::SGI_TEST
    });
    PHASE.store(2, SeqCst);
}

/// vCPU 1, after `CPU_ON` again: the SGI from before, then timer ticks.
pub fn after_on() {
    wait_until(now() + ms(200), || gic::SGIS[1].load(SeqCst) != 0);
    SGI_AFTER.store(gic::SGIS[1].load(SeqCst), SeqCst);
    timer::start_ticks(ms(1), OFF_ON_TICKS);
    wait_until(now() + ms(1_000), || timer::ticks() >= OFF_ON_TICKS);
    TICKS_AFTER.store(timer::ticks(), SeqCst);
    timer::stop_ticks();
    PHASE.store(3, SeqCst);
}

/// vCPU 0 of a 2-vCPU VM: `CPU_OFF` and `CPU_ON` of vCPU 1 keep its timer
/// and an SGI sent just before its `CPU_OFF`.
pub fn cpu_off_on() {
    report("cpu-off-on", off_on_result());
}

fn off_on_result() -> CheckResult {
    PHASE.store(0, SeqCst);
    gic::SGIS[1].store(0, SeqCst);
    let r = start_secondary(1, Secondary::BeforeOff);
    if r != 0 {
        return Err(msg!("CPU_ON(vCPU 1) = {r}"));
    }
    if !wait_until(now() + ms(2_000), || PHASE.load(SeqCst) == 1) {
        return Err(msg!(
            "vCPU 1: {} of {OFF_ON_TICKS} timer ticks before CPU_OFF",
            timer::ticks()
        ));
    }
    gic::send_sgi(gic::SGI_TEST, 1);
    if !wait_until(now() + ms(2_000), || PHASE.load(SeqCst) == 2) {
        return Err(msg!("vCPU 1 never saw the SGI pending"));
    }
    let r = start_secondary(1, Secondary::AfterOn);
    if r != 0 {
        return Err(msg!("CPU_ON(vCPU 1) again = {r}"));
    }
    if !wait_until(now() + ms(3_000), || PHASE.load(SeqCst) == 3) {
        return Err(msg!("vCPU 1 did not finish after CPU_ON"));
    }
    let (sgi, ticks) = (SGI_AFTER.load(SeqCst), TICKS_AFTER.load(SeqCst));
    match (sgi, ticks) {
        (1, OFF_ON_TICKS) => Ok(msg!(
            "vCPU 1: {OFF_ON_TICKS} ticks, CPU_OFF with an SGI pending, CPU_ON: the SGI, then {OFF_ON_TICKS} ticks"
        )),
        (s, t) => Err(msg!(
            "after CPU_OFF/CPU_ON vCPU 1 got {s} SGI(s) (want 1) and {t} of {OFF_ON_TICKS} ticks"
        )),
    }
}

/// Both vCPUs of the VM read outside its memory at once.
static GO: AtomicU32 = AtomicU32::new(0);

/// vCPU 1's half of the simultaneous fault.
pub fn fault_together(addr: u64) {
    GO.fetch_add(1, SeqCst);
    wait_until(now() + ms(1_000), || GO.load(SeqCst) >= 2);
    // SAFETY: deliberately not safe (see `fault_in_irq`).
    unsafe { crate::mmio::read32(addr as usize) };
}

/// vCPU 0: start vCPU 1 and fault with it; the VM must come back once.
pub fn both_vcpus_fault(addr: u64) {
    ADDRESS.store(addr, SeqCst);
    GO.store(0, SeqCst);
    info(format_args!(
        "both vCPUs read {addr:#x} at once: the VM must restart exactly once"
    ));
    let r = start_secondary(1, Secondary::FaultTogether);
    if r != 0 {
        fail("restart-once", msg!("CPU_ON(vCPU 1) = {r}"));
        return;
    }
    fault_together(addr);
    fail("restart-once", msg!("the read outside my memory returned"));
}

/// The address vCPU 1 reads in [`fault_together`].
pub fn fault_address() -> u64 {
    ADDRESS.load(SeqCst)
}
