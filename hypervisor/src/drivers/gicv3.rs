//! GICv3: the distributor (shared), each core's redistributor and its
//! system-register CPU interface. The hypervisor owns the physical GIC.

use crate::arch::cpu::{core_index, MAX_CPUS};
use crate::fdt::firmware::Gic;
use aarch64_cpu::registers::ICC_SRE_EL2;
use spin::Once;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_structs! {
    GicdRegs {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => typer: ReadOnly<u32>),
        (0x0008 => _r0),
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => _r1),
        (0x0280 => icpendr: [ReadWrite<u32>; 32]),
        (0x0300 => _r2),
        (0x0380 => icactiver: [ReadWrite<u32>; 32]),
        (0x0400 => ipriorityr: [ReadWrite<u8>; 1024]),
        (0x0800 => _r3),
        (0x0c00 => icfgr: [ReadWrite<u32>; 64]),
        (0x0d00 => igrpmodr: [ReadWrite<u32>; 32]),
        (0x0d80 => _r4),
        (0x6100 => irouter: [ReadWrite<u64>; 988]),
        (0x7fe0 => @END),
    }
}

register_structs! {
    GicrRegs {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => iidr: ReadOnly<u32>),
        (0x0008 => typer: ReadOnly<u64>),
        (0x0010 => _r0),
        (0x0014 => waker: ReadWrite<u32>),
        (0x0018 => @END),
    }
}

register_structs! {
    GicrSgiRegs {
        (0x0000 => _r0),
        (0x0080 => igroupr0: ReadWrite<u32>),
        (0x0084 => _r1),
        (0x0100 => isenabler0: ReadWrite<u32>),
        (0x0104 => _r2),
        (0x0180 => icenabler0: ReadWrite<u32>),
        (0x0184 => _r3),
        (0x0280 => icpendr0: ReadWrite<u32>),
        (0x0284 => _r4),
        (0x0380 => icactiver0: ReadWrite<u32>),
        (0x0384 => _r6),
        (0x0400 => ipriorityr: [ReadWrite<u8>; 32]),
        (0x0420 => _r5),
        (0x0d00 => igrpmodr0: ReadWrite<u32>),
        (0x0d04 => @END),
    }
}

const CTLR_RWP: u32 = 1 << 31;
const CTLR_ARE_NS: u32 = 1 << 4;
const CTLR_ENABLE_G1NS: u32 = 1 << 1;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const TYPER_LAST: u64 = 1 << 4;
const TYPER_VLPIS: u64 = 1 << 1;
/// Default priority: mid-range, so later policy can go above or below.
const PRIORITY: u8 = 0xa0;
const SPIN_LIMIT: u32 = 10_000_000;

static DISTRIBUTOR: Once<Distributor> = Once::new();
static REDISTRIBUTORS: [Once<Redistributor>; MAX_CPUS] = [const { Once::new() }; MAX_CPUS];

/// Keeps the distributor the boot core set up, for every core to use.
pub fn set_distributor(d: Distributor) -> &'static Distributor {
    DISTRIBUTOR.call_once(|| d)
}

/// The physical GIC distributor (set up by the boot core).
pub fn distributor() -> &'static Distributor {
    DISTRIBUTOR
        .get()
        .expect("GIC distributor initialised at boot")
}

/// Keeps this core's redistributor (each core sets its own).
pub fn set_this_redistributor(r: Redistributor) -> &'static Redistributor {
    REDISTRIBUTORS[core_index()].call_once(|| r)
}

/// The redistributor of logical core `core`, once that core set it up. Its
/// enables may be written from any core (MMIO).
pub fn redistributor(core: usize) -> Option<&'static Redistributor> {
    REDISTRIBUTORS.get(core)?.get()
}

/// This core's physical redistributor.
pub fn this_redistributor() -> &'static Redistributor {
    REDISTRIBUTORS[core_index()]
        .get()
        .expect("redistributor initialised at boot")
}

pub struct Distributor {
    regs: &'static GicdRegs,
}

#[derive(Debug)]
pub enum GicError {
    /// A register write did not complete (RWP stayed set).
    Timeout(&'static str),
    /// No redistributor frame carries this core's affinity.
    NoRedistributor(u64),
}

impl core::fmt::Display for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GicError::Timeout(what) => write!(f, "{what}: the write did not complete"),
            GicError::NoRedistributor(mpidr) => {
                write!(f, "no GICv3 redistributor has affinity {mpidr:#x}")
            }
        }
    }
}

fn spin_until(mut done: impl FnMut() -> bool, what: &'static str) -> Result<(), GicError> {
    for _ in 0..SPIN_LIMIT {
        if done() {
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err(GicError::Timeout(what))
}

impl Distributor {
    /// # Safety
    /// `gic.dist` must be the GICv3 distributor, mapped as device memory, and
    /// this must be the only `Distributor`.
    pub unsafe fn new(gic: &Gic) -> Distributor {
        // SAFETY: per the contract above.
        Distributor {
            regs: unsafe { &*(gic.dist.base as *const GicdRegs) },
        }
    }

    /// Number of interrupt IDs the distributor implements (SGIs/PPIs included).
    pub fn lines(&self) -> usize {
        (((self.regs.typer.get() & 0x1f) as usize + 1) * 32).min(1020)
    }

    /// Every SPI disabled, non-secure group 1, default priority, routed to the
    /// boot core; then affinity routing and group 1 on.
    pub fn init(&self, boot_mpidr: u64) -> Result<(), GicError> {
        let r = self.regs;
        r.ctlr.set(0);
        spin_until(|| r.ctlr.get() & CTLR_RWP == 0, "GICD_CTLR disable")?;
        let lines = self.lines();
        for i in 1..lines / 32 {
            r.icenabler[i].set(u32::MAX);
            r.icpendr[i].set(u32::MAX);
            r.igroupr[i].set(u32::MAX);
            r.igrpmodr[i].set(0);
        }
        for id in 32..lines {
            r.ipriorityr[id].set(PRIORITY);
            r.irouter[id - 32].set(boot_mpidr);
        }
        r.ctlr.set(CTLR_ARE_NS | CTLR_ENABLE_G1NS);
        spin_until(|| r.ctlr.get() & CTLR_RWP == 0, "GICD_CTLR enable")
    }
}

impl Distributor {
    pub fn enable_spi(&self, intid: u32) {
        self.regs.isenabler[intid as usize / 32].set(1 << (intid % 32));
    }
    pub fn disable_spi(&self, intid: u32) {
        self.regs.icenabler[intid as usize / 32].set(1 << (intid % 32));
    }
    /// Clears an SPI's active state (a guest that stopped will never EOI it).
    pub fn deactivate_spi(&self, intid: u32) {
        self.regs.icactiver[intid as usize / 32].set(1 << (intid % 32));
    }
    /// Makes an SPI edge-triggered (devices that pulse their line). Boot
    /// core only, before the SPI is enabled: a read-modify-write.
    pub fn set_edge(&self, intid: u32) {
        if (32..1020).contains(&intid) {
            let reg = &self.regs.icfgr[intid as usize / 16];
            reg.set(reg.get() | 2 << (intid % 16 * 2));
        }
    }
    pub fn route_spi(&self, intid: u32, mpidr: u64) {
        if (32..1020).contains(&intid) {
            self.regs.irouter[intid as usize - 32].set(mpidr & 0xff_00ff_ffff);
        }
    }
}

// SAFETY: MMIO through shared references; callers serialise with a lock.
unsafe impl Send for Distributor {}
unsafe impl Sync for Distributor {}
// SAFETY: MMIO set/clear registers (enable, active) are single writes with
// no read-modify-write, so any core may use them; set-up is by the owner.
unsafe impl Send for Redistributor {}
unsafe impl Sync for Redistributor {}

/// This core's redistributor (RD_base frame and SGI_base frame).
pub struct Redistributor {
    rd: &'static GicrRegs,
    sgi: &'static GicrSgiRegs,
}

/// GICR_TYPER's affinity layout (Aff3.Aff2.Aff1.Aff0) from an MPIDR value.
fn typer_affinity(mpidr: u64) -> u64 {
    (mpidr & 0xff_ffff) | ((mpidr >> 32) & 0xff) << 24
}

impl Redistributor {
    /// Finds the frame whose GICR_TYPER matches `mpidr` in the DTB's regions.
    ///
    /// # Safety
    /// The regions must be the GICv3 redistributors, mapped as device memory;
    /// one `Redistributor` per core.
    pub unsafe fn for_core(gic: &Gic, mpidr: u64) -> Result<Redistributor, GicError> {
        for region in &gic.redists {
            let mut frame = region.base;
            while frame < region.end() {
                // SAFETY: inside a mapped redistributor region (contract).
                let rd = unsafe { &*(frame as *const GicrRegs) };
                let typer = rd.typer.get();
                if typer >> 32 == typer_affinity(mpidr) {
                    // SAFETY: SGI_base is the second 64 KiB page of the frame.
                    let sgi = unsafe { &*((frame + 0x1_0000) as *const GicrSgiRegs) };
                    return Ok(Redistributor { rd, sgi });
                }
                if typer & TYPER_LAST != 0 {
                    break;
                }
                // GICv4 frames add two pages for vLPIs.
                frame += if typer & TYPER_VLPIS != 0 {
                    0x4_0000
                } else {
                    0x2_0000
                };
            }
        }
        Err(GicError::NoRedistributor(mpidr))
    }

    /// Wakes the redistributor; SGIs and PPIs disabled, group 1, default priority.
    pub fn init(&self) -> Result<(), GicError> {
        let waker = self.rd.waker.get();
        self.rd.waker.set(waker & !WAKER_PROCESSOR_SLEEP);
        spin_until(
            || self.rd.waker.get() & WAKER_CHILDREN_ASLEEP == 0,
            "GICR_WAKER",
        )?;
        self.sgi.icenabler0.set(u32::MAX);
        self.sgi.icpendr0.set(u32::MAX);
        self.sgi.igroupr0.set(u32::MAX);
        self.sgi.igrpmodr0.set(0);
        for p in self.sgi.ipriorityr.iter() {
            p.set(PRIORITY);
        }
        spin_until(|| self.rd.ctlr.get() & CTLR_RWP == 0, "GICR_CTLR")
    }

    pub fn enable_ppi(&self, intid: u32) {
        self.sgi.isenabler0.set(1 << intid);
    }

    pub fn disable_ppi(&self, intid: u32) {
        self.sgi.icenabler0.set(1 << intid);
    }
    /// Clears a private interrupt's active state on this redistributor's core.
    pub fn deactivate_ppi(&self, intid: u32) {
        self.sgi.icactiver0.set(1 << intid);
    }
}

/// The system-register CPU interface for this core: enabled at EL2 with
/// EL1 access allowed, all priorities unmasked, group 1 on.
pub fn init_cpu_interface() {
    // SRE first, then an ISB before the other GIC system registers.
    ICC_SRE_EL2.write(
        ICC_SRE_EL2::SRE::SET
            + ICC_SRE_EL2::DFB::SET
            + ICC_SRE_EL2::DIB::SET
            + ICC_SRE_EL2::ENABLE::SET, // EL1 may use the system registers
    );
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    // EOImode 1: EOIR only drops priority, DIR deactivates; so an interrupt
    // forwarded to a guest stays active until it EOIs. (`aarch64-cpu` does
    // not name this field of ICC_CTLR_EL1.)
    const CTLR_EOIMODE: u64 = 1 << 1;
    // SAFETY: the CPU interface's priority mask, binary point, control and
    // group enable, owned by EL2 on this core.
    unsafe {
        core::arch::asm!(
            "msr icc_pmr_el1, {pmr}",
            "msr icc_bpr1_el1, xzr",
            "msr icc_ctlr_el1, {ctlr}",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            pmr = in(reg) 0xffu64,
            one = in(reg) 1u64,
            ctlr = in(reg) CTLR_EOIMODE,
        );
    }
}

/// Acknowledges the highest-priority pending group-1 interrupt.
pub fn ack() -> u32 {
    let v: u64;
    // SAFETY: reading IAR acknowledges the interrupt; the caller EOIs it.
    unsafe { core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) v) };
    v as u32
}

/// Priority drop only (EOImode 1).
pub fn eoi(intid: u32) {
    // SAFETY: ends an interrupt this core acknowledged.
    unsafe { core::arch::asm!("msr icc_eoir1_el1, {}", "isb", in(reg) intid as u64) };
}

/// Deactivation, for interrupts the hypervisor handles itself.
pub fn deactivate(intid: u32) {
    // SAFETY: deactivates an interrupt this core acknowledged.
    unsafe { core::arch::asm!("msr icc_dir_el1, {}", "isb", in(reg) intid as u64) };
}

/// Sends physical SGI `sgi` to the core with affinity `mpidr` (EL2's own use).
pub fn send_sgi(sgi: u32, mpidr: u64) {
    let aff0 = mpidr & 0xff;
    let v = (1u64 << (aff0 & 0xf))      // TargetList
        | ((mpidr >> 8) & 0xff) << 16   // Aff1
        | (sgi as u64 & 0xf) << 24      // INTID
        | ((mpidr >> 16) & 0xff) << 32  // Aff2
        | ((aff0 >> 4) & 0xf) << 44     // RS: range of 16 Aff0 values
        | ((mpidr >> 32) & 0xff) << 48; // Aff3
                                        // SAFETY: generates an SGI; no memory effects.
    unsafe { core::arch::asm!("dsb ishst", "msr icc_sgi1r_el1, {}", "isb", in(reg) v) };
}

pub const SPURIOUS_FIRST: u32 = 1020;
