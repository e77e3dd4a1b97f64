//! GICv3 as a guest sees it: the distributor (vCPU 0 sets it up), this
//! vCPU's redistributor, the system-register CPU interface, and the IRQ
//! dispatcher that counts what arrives.

use crate::{mmio, timer, vcpu, MAX_VCPUS};
use core::sync::atomic::{AtomicU32, Ordering};
pub use guest_gic::{init_distributor, spi_enabled};
use guest_gic::{spin_until, GICD, GICR, GICR_STRIDE, SGI_BASE};

const GICD_ICENABLER: usize = 0x0180;

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
    guest_gic::cpu_interface_on();
    Ok(())
}

/// An SPI, edge-triggered, group 1, routed to vCPU `target`, enabled.
pub fn enable_spi(intid: u32, target: usize) {
    guest_gic::enable_spi(intid, target, PRIORITY)
}

/// SGIs the list-register overflow check raises at once, more than a GIC
/// has list registers (QEMU: 4).
pub const SGI_BURST: core::ops::Range<u32> = 2..10;

/// Enables the SGIs of [`SGI_BURST`] on this vCPU.
pub fn enable_burst_sgis() {
    let mask = SGI_BURST.fold(0u32, |m, i| m | 1 << i);
    write(GICR + vcpu() * GICR_STRIDE + GICR_ISENABLER0, mask);
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
