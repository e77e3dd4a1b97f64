//! Sleeping in WFI until the virtual timer fires, so that a waiting cluster
//! gives its core back (under QEMU TCG a spinning vCPU takes a host core
//! from the other VMs), and [`Sleepy`], a port whose waits sleep so.
//!
//! PSTATE.I stays masked: a pending interrupt ends WFI all the same, so no
//! vector table is needed; the wake-up is acknowledged by hand. Tessera
//! forwards the timer as a hardware-linked virtual interrupt, whose EOI here
//! also ends the physical one (docs/guest-abi.md).

use aarch64_cpu::registers::*;
use gpu_xvm::baremetal::GuestPort;
use gpu_xvm::{Port, ShmHeader, XvmError};

/// The virtual timer's PPI (docs/guest-abi.md).
const VTIMER_INTID: u32 = 27;
/// vCPU 0's redistributor, its SGI/PPI frame (the cluster VM has one vCPU).
const GICR_SGI: usize = 0x080A_0000 + 0x1_0000;
const GICR_WAKER: usize = 0x080A_0000 + 0x14;
const GICR_IGROUPR0: usize = GICR_SGI + 0x80;
const GICR_ISENABLER0: usize = GICR_SGI + 0x100;

/// Lets the virtual timer end WFI: the redistributor awake, the PPI in
/// group 1 and enabled, the CPU interface on with every priority let
/// through.
pub fn init() {
    // SAFETY: this vCPU's redistributor (Device memory in the identity
    // map), single 32-bit accesses; then the GIC system registers in the
    // architecture's order (SRE, ISB, the rest).
    unsafe {
        let waker = GICR_WAKER as *mut u32;
        waker.write_volatile(waker.read_volatile() & !(1 << 1));
        (GICR_IGROUPR0 as *mut u32).write_volatile(1 << VTIMER_INTID);
        (GICR_ISENABLER0 as *mut u32).write_volatile(1 << VTIMER_INTID);
        core::arch::asm!(
            "mrs {t}, icc_sre_el1",
            "orr {t}, {t}, #1",
            "msr icc_sre_el1, {t}",
            "isb",
            "msr icc_pmr_el1, {pmr}",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            t = out(reg) _,
            pmr = in(reg) 0xffu64,
            one = in(reg) 1u64,
        );
    }
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

/// Sleeps until [`now_ms`] reaches `ms`.
pub fn until_ms(ms: u64) {
    let deadline = ms * ticks_per_ms();
    if CNTVCT_EL0.get() >= deadline {
        return;
    }
    CNTV_CVAL_EL0.set(deadline);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    while CNTVCT_EL0.get() < deadline {
        aarch64_cpu::asm::wfi();
    }
    // The timer off (its line drops), then what it signalled acknowledged
    // so that the next sleep's interrupt can be taken.
    CNTV_CTL_EL0.set(0);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    let intid: u64;
    // SAFETY: acknowledging and ending one interrupt with IRQs masked.
    unsafe { core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) intid) };
    if intid < 1020 {
        // SAFETY: the interrupt just acknowledged.
        unsafe { core::arch::asm!("msr icc_eoir1_el1, {}", "isb", in(reg) intid) };
    }
}

/// The bare-metal port with waits that sleep on the timer instead of
/// spinning: its doorbell raises no interrupt here, so a wait looks again
/// every millisecond.
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
        self.0.irq_count()
    }
    fn wait_irq(&self, _seen: u32, timeout_ms: u32) {
        if timeout_ms > 0 {
            until_ms(now_ms() + 1);
        }
    }
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
}
