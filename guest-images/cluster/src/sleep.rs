//! Sleeping in WFI until the virtual timer or the region's doorbell fires,
//! so that a waiting cluster gives its core back (under QEMU TCG a
//! spinning vCPU takes a host core from the other VMs) and wakes the
//! moment the server answers; [`Sleepy`], a port whose waits sleep so.
//!
//! PSTATE.I stays masked: a pending interrupt ends WFI all the same, so no
//! vector table is needed; what woke us is acknowledged by hand
//! ([`take_pending`]), the one place that reads the interrupt controller.
//! Tessera forwards the timer as a hardware-linked virtual interrupt,
//! whose end here also ends the physical one, so the timer is turned off
//! before its interrupt is ended (else it would fire again at once).

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;
use core::sync::atomic::{AtomicU32, Ordering};
use gpu_xvm::baremetal::GuestPort;
use gpu_xvm::{Port, ShmHeader, XvmError};
use guest_gic::{GICR, SGI_BASE, SPECIAL};

/// The virtual timer's PPI (docs/guest-abi.md).
const VTIMER_INTID: u32 = 27;
/// vCPU 0's redistributor (the cluster VM has one vCPU).
const GICR_WAKER: usize = GICR + 0x14;
const GICR_IGROUPR0: usize = GICR + SGI_BASE + 0x80;
const GICR_ISENABLER0: usize = GICR + SGI_BASE + 0x100;
/// The doorbell's priority (any the PMR lets through ends WFI).
const PRIORITY: u32 = 0xa0;

/// The doorbell's INTID, 0 until [`enable_doorbell`].
static DOORBELL_INTID: AtomicU32 = AtomicU32::new(0);
/// Doorbell interrupts taken.
static DOORBELLS: AtomicU32 = AtomicU32::new(0);
/// Waits for a doorbell that one ended, and that their timeout ended.
pub static WAKES_BY_DOORBELL: AtomicU32 = AtomicU32::new(0);
pub static WAKES_BY_TIMEOUT: AtomicU32 = AtomicU32::new(0);

/// Lets the virtual timer end WFI: the redistributor awake, the PPI in
/// group 1 and enabled, the CPU interface on with every priority let
/// through.
pub fn init() {
    // SAFETY: this vCPU's redistributor at the ABI's address (Device
    // memory in the identity map), single 32-bit accesses.
    unsafe {
        use guest_gic::mmio::{read32, write32};
        write32(GICR_WAKER, read32(GICR_WAKER) & !(1 << 1));
        write32(GICR_IGROUPR0, 1 << VTIMER_INTID);
        write32(GICR_ISENABLER0, 1 << VTIMER_INTID);
    }
    guest_gic::cpu_interface_on();
}

/// Lets the region's doorbell (SPI `intid`) end WFI too.
pub fn enable_doorbell(intid: u32) -> Result<(), &'static str> {
    guest_gic::init_distributor()?;
    DOORBELL_INTID.store(intid, Ordering::Relaxed);
    guest_gic::enable_spi(intid, 0, PRIORITY);
    Ok(())
}

fn ticks_per_ms() -> u64 {
    (CNTFRQ_EL0.get() / 1000).max(1)
}

pub fn now_ms() -> u64 {
    CNTVCT_EL0.get() / ticks_per_ms()
}

/// The virtual counter in microseconds (the frame statistics' clock).
pub fn now_us() -> u64 {
    (CNTVCT_EL0.get() as u128 * 1_000_000 / CNTFRQ_EL0.get().max(1) as u128) as u64
}

/// Acknowledges and ends everything pending: a doorbell is counted, the
/// timer turned off.
fn take_pending() {
    loop {
        let intid = guest_gic::ack();
        if intid >= SPECIAL {
            return;
        }
        if intid == VTIMER_INTID {
            CNTV_CTL_EL0.set(0);
            barrier::isb(barrier::SY);
        } else if intid == DOORBELL_INTID.load(Ordering::Relaxed) {
            DOORBELLS.fetch_add(1, Ordering::Relaxed);
        }
        guest_gic::end(intid);
    }
}

/// Sleeps until the counter reaches `deadline` (ticks) or `done()` holds.
/// `done` is looked at before each WFI: an interrupt that comes after the
/// look stays pending and ends that WFI at once, so none is slept through.
fn sleep_until(deadline: u64, done: impl Fn() -> bool) {
    if CNTVCT_EL0.get() >= deadline {
        return;
    }
    CNTV_CVAL_EL0.set(deadline);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    barrier::isb(barrier::SY);
    while !done() && CNTVCT_EL0.get() < deadline {
        aarch64_cpu::asm::wfi();
        take_pending();
    }
    CNTV_CTL_EL0.set(0);
    barrier::isb(barrier::SY);
    take_pending();
}

/// Sleeps until [`now_ms`] reaches `ms`.
pub fn until_ms(ms: u64) {
    sleep_until(ms * ticks_per_ms(), || false);
}

/// Doorbells taken so far.
pub fn doorbells() -> u32 {
    DOORBELLS.load(Ordering::Relaxed)
}

/// Sleeps until a doorbell comes after the `seen`th, at most `timeout_ms`;
/// whether one came.
pub fn wait_doorbell(seen: u32, timeout_ms: u64) -> bool {
    let deadline = CNTVCT_EL0.get() + timeout_ms * ticks_per_ms();
    sleep_until(deadline, || doorbells() != seen);
    let rung = doorbells() != seen;
    let count = if rung {
        &WAKES_BY_DOORBELL
    } else {
        &WAKES_BY_TIMEOUT
    };
    count.fetch_add(1, Ordering::Relaxed);
    rung
}

/// The bare-metal port with waits that sleep until the doorbell
/// ([`enable_doorbell`]) or the wait's timeout, whichever comes first.
pub struct Sleepy(pub GuestPort);

// SAFETY: the data, length and mapping are the wrapped port's.
unsafe impl Port for Sleepy {
    fn header(&self) -> Result<ShmHeader, XvmError> {
        self.0.header()
    }
    fn data(&self) -> *mut u8 {
        self.0.data()
    }
    fn data_len(&self) -> usize {
        self.0.data_len()
    }
    fn peer_index(&self) -> u32 {
        self.0.peer_index()
    }
    fn ring(&self) {
        self.0.ring()
    }
    fn irq_count(&self) -> u32 {
        doorbells()
    }
    fn wait_irq(&self, seen: u32, timeout_ms: u32) {
        wait_doorbell(seen, timeout_ms as u64);
    }
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
}
