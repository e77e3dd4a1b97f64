//! GICv3 as a bare-metal guest of Tessera sees it (docs/guest-abi.md,
//! "Interrupts"), the parts both bare-metal images need: the test guest,
//! which takes interrupts through its vector table, and the cluster VM,
//! which sleeps in WFI with interrupts masked and acknowledges by hand.
//! Everything here is at the ABI's fixed addresses, which are Device
//! memory in both images' identity maps.
#![no_std]
// Device registers and GIC system registers: aarch64 bare metal only.
#![cfg(target_arch = "aarch64")]

pub const GICD: usize = 0x0800_0000;
pub const GICR: usize = 0x080A_0000;
pub const GICR_STRIDE: usize = 0x2_0000;
/// The SGI/PPI frame of a redistributor.
pub const SGI_BASE: usize = 0x1_0000;
/// INTIDs from here on are special: an acknowledge that returns one took
/// nothing (1023: nothing pending).
pub const SPECIAL: u32 = 1020;

const GICD_CTLR: usize = 0x0000;
const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ICPENDR: usize = 0x0280;
const GICD_IPRIORITYR: usize = 0x0400;
const GICD_ICFGR: usize = 0x0c00;
const GICD_IROUTER: usize = 0x6000;
const CTLR_RWP: u32 = 1 << 31;
const CTLR_ARE_NS: u32 = 1 << 4;
const CTLR_ENABLE_G1: u32 = 1 << 1;
/// Polls of a register that the architecture lets lag (RWP) before giving up.
const SPIN_LIMIT: u32 = 1_000_000;

pub mod mmio;

fn read(addr: usize) -> u32 {
    // SAFETY: GIC registers at the ABI's fixed addresses, 32-bit accesses.
    unsafe { mmio::read32(addr) }
}

fn write(addr: usize, v: u32) {
    // SAFETY: as in `read`.
    unsafe { mmio::write32(addr, v) }
}

/// Polls `done` a bounded number of times; `Err(what)` if it never held.
pub fn spin_until(what: &'static str, mut done: impl FnMut() -> bool) -> Result<(), &'static str> {
    for _ in 0..SPIN_LIMIT {
        if done() {
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err(what)
}

/// Affinity routing and group 1 on; SPIs are enabled one by one.
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

/// An SPI, edge-triggered (as doorbells are), group 1, at `priority`,
/// routed to vCPU `target`, its stale pending state cleared, enabled.
pub fn enable_spi(intid: u32, target: usize, priority: u32) {
    let (word, bit) = ((intid / 32) as usize * 4, intid % 32);
    write(GICD + GICD_ICPENDR + word, 1 << bit);
    write(
        GICD + GICD_IGROUPR + word,
        read(GICD + GICD_IGROUPR + word) | 1 << bit,
    );
    let prio = GICD + GICD_IPRIORITYR + (intid as usize & !3);
    let shift = (intid % 4) * 8;
    write(prio, (read(prio) & !(0xff << shift)) | priority << shift);
    let cfg = GICD + GICD_ICFGR + (intid / 16) as usize * 4;
    write(cfg, read(cfg) | 2 << ((intid % 16) * 2));
    let router = GICD + GICD_IROUTER + intid as usize * 8;
    write(router, target as u32);
    write(router + 4, 0);
    write(GICD + GICD_ISENABLER + word, 1 << bit);
}

/// Whether the distributor says SPI `intid` is enabled.
pub fn spi_enabled(intid: u32) -> bool {
    read(GICD + GICD_ISENABLER + (intid / 32) as usize * 4) & 1 << (intid % 32) != 0
}

/// The system-register CPU interface on (SRE, then every priority let
/// through, binary point 0, group 1 enabled), in the architecture's order.
pub fn cpu_interface_on() {
    // SAFETY: GIC system registers only; SRE first and synchronised.
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
}

/// Lets no interrupt through to this vCPU any more (priority mask 0), so
/// that a WFI loop really sleeps whatever stays pending.
pub fn mask_all() {
    // SAFETY: writing the priority mask only.
    unsafe { core::arch::asm!("msr icc_pmr_el1, xzr", "isb") };
}

/// Acknowledges the highest-priority pending group-1 interrupt: its
/// INTID, or one from [`SPECIAL`] on when none is pending.
pub fn ack() -> u32 {
    let iar: u64;
    // SAFETY: reading ICC_IAR1_EL1 only activates the interrupt it returns.
    unsafe { core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) iar) };
    (iar & 0xff_ffff) as u32
}

/// Ends an interrupt [`ack`] returned (priority drop and deactivation).
pub fn end(intid: u32) {
    // SAFETY: ends the interrupt acknowledged before.
    unsafe { core::arch::asm!("msr icc_eoir1_el1, {}", "isb", in(reg) intid as u64) };
}
