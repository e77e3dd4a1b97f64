//! GICv3 as a guest sees it: the distributor (vCPU 0 sets it up), this
//! vCPU's redistributor, the system-register CPU interface, and the IRQ
//! dispatcher that counts what arrives.

use crate::{mmio, timer, vcpu, MAX_VCPUS};
use core::sync::atomic::{AtomicU32, Ordering};

const GICD: usize = 0x0800_0000;
const GICR: usize = 0x080A_0000;
const GICR_STRIDE: usize = 0x2_0000;
const SGI_BASE: usize = 0x1_0000;

const GICD_CTLR: usize = 0x0000;
const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ICENABLER: usize = 0x0180;
const GICD_ICPENDR: usize = 0x0280;
const GICD_IPRIORITYR: usize = 0x0400;
const GICD_ICFGR: usize = 0x0c00;
const GICD_IROUTER: usize = 0x6000;
const CTLR_RWP: u32 = 1 << 31;
const CTLR_ARE_NS: u32 = 1 << 4;
const CTLR_ENABLE_G1: u32 = 1 << 1;

const GICR_WAKER: usize = 0x0014;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const GICR_IGROUPR0: usize = SGI_BASE + 0x0080;
const GICR_ISENABLER0: usize = SGI_BASE + 0x0100;
const GICR_IPRIORITYR: usize = SGI_BASE + 0x0400;

/// Every interrupt we use gets this priority (the PMR lets all through).
const PRIORITY: u32 = 0xa0;
/// The SGI the `sgi` check exchanges.
pub const SGI_TEST: u32 = 1;
pub const VTIMER_INTID: u32 = 27;
const SPIN_LIMIT: u32 = 1_000_000;

/// SGIs received, per vCPU.
pub static SGIS: [AtomicU32; MAX_VCPUS] = [const { AtomicU32::new(0) }; MAX_VCPUS];
/// Doorbell interrupts received (vCPU 0 takes them).
pub static DOORBELLS: AtomicU32 = AtomicU32::new(0);
/// The doorbell's INTID (0: none).
pub static DOORBELL_INTID: AtomicU32 = AtomicU32::new(0);
/// Interrupts nobody asked for, and the last one's INTID.
pub static STRAY: AtomicU32 = AtomicU32::new(0);
pub static LAST_STRAY: AtomicU32 = AtomicU32::new(0);

fn read(addr: usize) -> u32 {
    // SAFETY: GIC registers at the ABI's fixed addresses, 32-bit accesses.
    unsafe { mmio::read32(addr) }
}

fn write(addr: usize, v: u32) {
    // SAFETY: as in `read`.
    unsafe { mmio::write32(addr, v) }
}

fn spin_until(what: &'static str, mut done: impl FnMut() -> bool) -> Result<(), &'static str> {
    for _ in 0..SPIN_LIMIT {
        if done() {
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err(what)
}

/// Affinity routing and group 1 on; SPIs are enabled one by one later.
pub fn init_distributor() -> Result<(), &'static str> {
    write(GICD + GICD_CTLR, 0);
    spin_until("GICD_CTLR.RWP stuck (disable)", || {
        read(GICD + GICD_CTLR) & CTLR_RWP == 0
    })?;
    write(GICD + GICD_CTLR, CTLR_ARE_NS | CTLR_ENABLE_G1);
    spin_until("GICD_CTLR.RWP stuck (enable)", || {
        read(GICD + GICD_CTLR) & CTLR_RWP == 0
    })
}

/// Wakes this vCPU's redistributor, makes SGIs/PPIs group 1, enables the
/// test SGI and the virtual timer, and turns the CPU interface on.
pub fn init_this_vcpu() -> Result<(), &'static str> {
    let rd = GICR + vcpu() * GICR_STRIDE;
    write(
        rd + GICR_WAKER,
        read(rd + GICR_WAKER) & !WAKER_PROCESSOR_SLEEP,
    );
    spin_until("GICR_WAKER.ChildrenAsleep stuck", || {
        read(rd + GICR_WAKER) & WAKER_CHILDREN_ASLEEP == 0
    })?;
    write(rd + GICR_IGROUPR0, u32::MAX);
    for i in 0..8 {
        write(rd + GICR_IPRIORITYR + 4 * i, PRIORITY * 0x0101_0101);
    }
    write(rd + GICR_ISENABLER0, (1 << SGI_TEST) | (1 << VTIMER_INTID));
    // SAFETY: GIC system registers, in the architecture's order (SRE, ISB,
    // then the rest).
    unsafe {
        core::arch::asm!(
            "mrs {t}, icc_sre_el1",
            "orr {t}, {t}, #1",
            "msr icc_sre_el1, {t}",
            "isb",
            "msr icc_pmr_el1, {pmr}",
            "msr icc_bpr1_el1, xzr",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            t = out(reg) _,
            pmr = in(reg) 0xffu64,
            one = in(reg) 1u64,
        );
    }
    Ok(())
}

/// An SPI, edge-triggered, group 1, routed to vCPU `target`, enabled.
pub fn enable_spi(intid: u32, target: usize) {
    let (word, bit) = ((intid / 32) as usize * 4, intid % 32);
    write(GICD + GICD_ICPENDR + word, 1 << bit);
    write(
        GICD + GICD_IGROUPR + word,
        read(GICD + GICD_IGROUPR + word) | 1 << bit,
    );
    let prio = GICD + GICD_IPRIORITYR + (intid as usize & !3);
    let shift = (intid % 4) * 8;
    write(prio, (read(prio) & !(0xff << shift)) | PRIORITY << shift);
    let cfg = GICD + GICD_ICFGR + (intid / 16) as usize * 4;
    write(cfg, read(cfg) | 2 << ((intid % 16) * 2));
    let router = GICD + GICD_IROUTER + intid as usize * 8;
    write(router, target as u32);
    write(router + 4, 0);
    write(GICD + GICD_ISENABLER + word, 1 << bit);
}

/// SGIs the list-register overflow check raises at once, more than a GIC
/// has list registers (QEMU: 4).
pub const SGI_BURST: core::ops::Range<u32> = 2..10;

/// Enables the SGIs of [`SGI_BURST`] on this vCPU.
pub fn enable_burst_sgis() {
    let mask = SGI_BURST.fold(0u32, |m, i| m | 1 << i);
    write(GICR + vcpu() * GICR_STRIDE + GICR_ISENABLER0, mask);
}

/// Whether the distributor says SPI `intid` is enabled.
pub fn spi_enabled(intid: u32) -> bool {
    read(GICD + GICD_ISENABLER + (intid / 32) as usize * 4) & 1 << (intid % 32) != 0
}

pub fn disable_spi(intid: u32) {
    write(
        GICD + GICD_ICENABLER + (intid / 32) as usize * 4,
        1 << (intid % 32),
    );
}

/// Sends SGI `intid` to vCPU `target` of this VM (Aff0 = vCPU index).
pub fn send_sgi(intid: u32, target: usize) {
    let v = (intid as u64) << 24 | 1u64 << target;
    // SAFETY: writing ICC_SGI1R_EL1 only raises an SGI.
    unsafe { core::arch::asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) v) };
}

/// Called from the IRQ vector: acknowledges, counts, ends every pending one.
#[unsafe(no_mangle)]
extern "C" fn handle_irqs() {
    loop {
        let iar: u64;
        // SAFETY: acknowledging an interrupt; EOI follows below.
        unsafe { core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) iar) };
        let intid = (iar & 0xff_ffff) as u32;
        if intid >= 1020 {
            break;
        }
        match intid {
            VTIMER_INTID => {
                crate::lifecycle::in_timer_irq();
                timer::on_interrupt()
            }
            0..16 => {
                SGIS[vcpu() % MAX_VCPUS].fetch_add(1, Ordering::AcqRel);
            }
            _ if intid == DOORBELL_INTID.load(Ordering::Relaxed) => {
                crate::doorbell::on_doorbell();
                DOORBELLS.fetch_add(1, Ordering::AcqRel);
            }
            _ if crate::hardening::on_irq(intid) => {}
            _ => {
                STRAY.fetch_add(1, Ordering::Relaxed);
                LAST_STRAY.store(intid, Ordering::Relaxed);
            }
        }
        // SAFETY: ends the interrupt acknowledged above.
        unsafe { core::arch::asm!("msr icc_eoir1_el1, {}", "isb", in(reg) iar) };
    }
}
