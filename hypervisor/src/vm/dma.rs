//! Device DMA, confined by the SMMUv3: which streams each VM owns (the PCI
//! functions its board-file entry lists, through the host bridge's
//! `iommu-map`), their entries translating with the VM's own stage 2, and
//! the log line for each fault. Every other stream, and every stream of a
//! VM that is stopping or restarting, reaches nothing.

use super::VmState;
use crate::arch::{cpu, timer};
use crate::drivers::gicv3;
use crate::drivers::ratelimit::RateLimit;
use crate::drivers::smmuv3::format::{self, Event, SmmuError};
use crate::drivers::smmuv3::Smmu;
use crate::fdt::firmware::{Pcie, Platform};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use spin::{Mutex, Once};
use tessera_boards::{PciFunction, Vm};

static SMMU: Once<Mutex<Smmu>> = Once::new();
/// Why the SMMU cannot guard DMA, if it cannot: the VMs that own a PCIe
/// host are then not started.
static BROKEN: Once<SmmuError> = Once::new();
static PCIE: Once<Option<Pcie>> = Once::new();
/// The SMMU's event-queue and global-error INTIDs (0: none).
static EVENTQ_INTID: AtomicU32 = AtomicU32::new(0);
static GERROR_INTID: AtomicU32 = AtomicU32::new(0);
/// Streams given to VMs: (stream ID, function, VM name).
static STREAMS: Mutex<Vec<(u32, PciFunction, &'static str)>> = Mutex::new(Vec::new());
/// A device can fault on every transaction; the log gets a burst, then one
/// line per 100 ms, with a count of what was held back.
static LOG_LIMIT: Mutex<RateLimit> = Mutex::new(RateLimit::new(16, 0));
/// The same for the SMMU's global errors (a full event queue, mostly).
static ERROR_LIMIT: Mutex<RateLimit> = Mutex::new(RateLimit::new(4, 0));

/// VMs (by plan index) whose device faulted under `dma_fault = "fault"`:
/// one of their vCPUs applies the fault policy when kicked.
static CONTAIN: [AtomicBool; MAX_VMS] = [const { AtomicBool::new(false) }; MAX_VMS];
const MAX_VMS: usize = 16;

/// PCI command register: bus master enable.
const PCI_COMMAND: u64 = 0x04;
const PCI_COMMAND_MASTER: u16 = 1 << 2;

/// At boot, before any VM exists: global bypass off with abort, so that
/// no device reaches memory until a VM's streams get their entries.
/// Returns the SMMU's output-address size, which bounds the VMs'
/// guest-physical space (their stage 2 is shared with it). Without an SMMU
/// in the DTB nothing guards DMA: the board checker refuses to pass a bus
/// master through on such a board, and `attach` refuses at run time.
pub fn probe(platform: &Platform) -> Option<u8> {
    PCIE.call_once(|| platform.pcie.clone());
    let range = platform.smmu?;
    // SAFETY: the SMMUv3 the DTB names, mapped as Device memory by the EL2
    // MMU (boot.md); this is the only `Smmu`.
    match unsafe { Smmu::abort_all(range.base) } {
        Ok(s) => {
            let idr = s.id_registers();
            log::info!(
                "SMMUv3 IDR0-5: {:#010x} {:#010x} {:#010x} {:#010x} {:#010x} {:#010x}",
                idr[0],
                idr[1],
                idr[2],
                idr[3],
                idr[4],
                idr[5]
            );
            log::info!("{}", s.features);
            let oas = s.features.oas_bits;
            SMMU.call_once(|| Mutex::new(s));
            Some(oas)
        }
        Err(e) => {
            log::error!("SMMUv3: {e}; VMs with DMA-capable devices will not start");
            BROKEN.call_once(|| e);
            None
        }
    }
}

/// The SMMU on with an empty stream table (every stream aborts and is
/// reported), and its interrupts routed to this core.
pub fn enable(platform: &Platform, ipa_bits: u8, gicd: &gicv3::Distributor) {
    *LOG_LIMIT.lock() = RateLimit::new(16, timer::frequency() / 10);
    *ERROR_LIMIT.lock() = RateLimit::new(4, timer::frequency());
    let Some(smmu) = SMMU.get() else {
        return;
    };
    let max_sid = super::plan()
        .vms
        .iter()
        .flat_map(|vm| vm.pci.iter())
        .filter_map(|f| stream_id(*f))
        .max()
        .unwrap_or(0);
    if let Err(e) = smmu.lock().enable(ipa_bits, max_sid) {
        log::error!("SMMUv3: {e}; VMs with DMA-capable devices will not start");
        BROKEN.call_once(|| e);
        return;
    }
    log::info!("SMMUv3 on: global bypass aborts; a stream reaches memory only once a VM owns it");
    for (spi, slot) in [
        (platform.smmu_irqs.eventq, &EVENTQ_INTID),
        (platform.smmu_irqs.gerror, &GERROR_INTID),
    ] {
        if let Some(spi) = spi {
            let intid = spi + 32;
            // The SMMU pulses its wired interrupts.
            gicd.set_edge(intid);
            gicd.route_spi(intid, cpu::mpidr());
            gicd.enable_spi(intid);
            slot.store(intid, Ordering::Relaxed);
        }
    }
    if platform.smmu_irqs.eventq.is_none() {
        log::warn!("SMMUv3: the DTB names no event-queue interrupt: DMA faults are not logged");
    }
}

fn stream_id(f: PciFunction) -> Option<u32> {
    PCIE.get()?.as_ref()?.stream_id(f.0)
}

/// Gives the VM's PCI functions their stream entries (its stage 2, its
/// VMID). `Err` says why its devices' DMA cannot be confined; the VM must
/// then not run.
pub fn attach(vm: &VmState) -> Result<(), &'static str> {
    let cfg = vm.cfg;
    if !cfg.devices.iter().any(|d| d.pci_host) {
        return Ok(());
    }
    if BROKEN.get().is_some() {
        return Err("the SMMU cannot confine its devices' DMA (see the SMMUv3 line above)");
    }
    let smmu = SMMU
        .get()
        .ok_or("it owns a PCIe host but the DTB names no SMMUv3")?;
    let mut smmu = smmu.lock();
    let ste = format::ste_stage2(
        cfg.vmid,
        vm.vttbr,
        super::vcpu::guest_vtcr(super::ipa_bits()),
        smmu.features.oas,
    );
    let mut streams = STREAMS.lock();
    for &f in cfg.pci {
        let sid = stream_id(f).ok_or("a PCI function of its plan has no SMMU stream (no iommu-map entry): its DMA would bypass the SMMU")?;
        smmu.set_ste(sid, &ste).map_err(|e| {
            log::error!("VM {}: SMMU stream {sid:#x} ({f}): {e}", cfg.name);
            "its SMMU stream entries could not be written"
        })?;
        if !streams.iter().any(|s| s.0 == sid) {
            streams.push((sid, f, cfg.name));
        }
    }
    if !cfg.pci.is_empty() {
        log::info!(
            "VM {}: DMA of PCI {} through the SMMU with its stage 2 (VMID {})",
            cfg.name,
            Functions(cfg.pci),
            cfg.vmid
        );
    }
    Ok(())
}

struct Functions(&'static [PciFunction]);
impl core::fmt::Display for Functions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, func) in self.0.iter().enumerate() {
            write!(f, "{}{func}", if i > 0 { ", " } else { "" })?;
        }
        Ok(())
    }
}

/// While a VM stops or restarts: its functions stop mastering the bus
/// (command register), their streams abort, and the SMMU forgets its
/// translations; DMA still in flight lands nowhere. `attach` undoes the
/// stream part for the next boot; the new guest enables bus mastering again
/// when it wants DMA.
pub fn quiesce(vm: &VmState) {
    let cfg = vm.cfg;
    let Some(smmu) = SMMU.get() else {
        return;
    };
    if cfg.pci.is_empty() {
        return;
    }
    for &f in cfg.pci {
        disable_bus_master(f);
    }
    let mut smmu = smmu.lock();
    for &f in cfg.pci {
        if let Some(sid) = stream_id(f) {
            if let Err(e) = smmu.set_ste(sid, &format::ste_abort()) {
                log::error!("VM {}: SMMU stream {sid:#x} ({f}): {e}", cfg.name);
            }
        }
    }
    if let Err(e) = smmu.invalidate_vmid(cfg.vmid) {
        log::error!("VM {}: SMMU TLB invalidation: {e}", cfg.name);
    }
}

/// Clears the function's bus-master enable through ECAM (a 16-bit write:
/// the status register beside it has write-1-to-clear bits).
fn disable_bus_master(f: PciFunction) {
    let Some(Some(pcie)) = PCIE.get() else {
        return;
    };
    let offset = (f.0 as u64) << 12 | PCI_COMMAND;
    if offset >= pcie.ecam.size {
        return;
    }
    let reg = (pcie.ecam.base + offset) as *mut u16;
    // SAFETY: a config-space register inside the ECAM window the DTB names,
    // mapped as Device memory at EL2; the owning VM's vCPUs are stopped.
    unsafe {
        let cmd = reg.read_volatile();
        if cmd != u16::MAX && cmd & PCI_COMMAND_MASTER != 0 {
            reg.write_volatile(cmd & !PCI_COMMAND_MASTER);
        }
    }
}

/// What a VM that owns the PCIe host sees of it in its DTB.
pub struct PciNode {
    pub ecam: (u64, u64),
    pub bus_range: (u32, u32),
    pub ranges: Vec<([u32; 3], u64, u64)>,
    pub intx_mask: [u32; 4],
    /// Only the INTx lines whose SPI the VM owns.
    pub intx: Vec<[u32; 4]>,
}

/// The host bridge's node for `vm`'s DTB, if it owns the bridge the
/// firmware DTB describes (same ECAM).
pub fn guest_pci(vm: &Vm) -> Option<PciNode> {
    let host = PCIE.get()?.as_ref()?;
    vm.devices
        .iter()
        .find(|d| d.pci_host && d.mmio.first().is_some_and(|m| m.base == host.ecam.base))?;
    Some(PciNode {
        ecam: (host.ecam.base, host.ecam.size),
        bus_range: host.bus_range,
        ranges: host
            .ranges
            .iter()
            .map(|(s, r)| (*s, r.base, r.size))
            .collect(),
        intx_mask: host.intx_mask,
        intx: host
            .intx
            .iter()
            .filter(|e| vm.owns_spi(tessera_boards::Spi(e[2])))
            .copied()
            .collect(),
    })
}

/// Whether `intid` is one of the SMMU's (its event queue or global errors).
#[inline]
pub fn is_smmu_interrupt(intid: u32) -> bool {
    intid == EVENTQ_INTID.load(Ordering::Relaxed) || intid == GERROR_INTID.load(Ordering::Relaxed)
}

/// The SMMU's interrupt: one log line per kind of fault (stream, fault
/// type, direction) in each batch, naming the VM, the PCI function, the
/// first address and how many more were like it; rate-limited. (A device
/// faults on every beat of a transfer: thousands of events per DMA.)
pub fn on_interrupt() {
    let Some(smmu) = SMMU.get() else {
        return;
    };
    let mut smmu = smmu.lock();
    let errors = smmu.take_global_errors();
    if errors != 0 && ERROR_LIMIT.lock().check(timer::now()).is_some() {
        log::warn!("SMMUv3: {}", format::GlobalErrors(errors));
    }
    // (first event, how many like it); the rest of a batch is counted.
    let mut kinds: heapless::Vec<(Event, u64), 8> = heapless::Vec::new();
    let mut others = 0u64;
    let overflowed = smmu.drain_events(|record| {
        let e = Event::decode(record);
        match kinds
            .iter_mut()
            .find(|(k, _)| (k.sid, k.kind, k.read) == (e.sid, e.kind, e.read))
        {
            Some((_, n)) => *n += 1,
            None => {
                if kinds.push((e, 0)).is_err() {
                    others += 1;
                }
            }
        }
    });
    drop(smmu);
    let streams = STREAMS.lock();
    for (event, _) in &kinds {
        if let Some(owner) = streams.iter().find(|s| s.0 == event.sid) {
            contain(owner.2);
        }
    }
    for (event, more) in &kinds {
        let Some(held) = LOG_LIMIT.lock().check(timer::now()) else {
            continue;
        };
        let owner = streams.iter().find(|s| s.0 == event.sid);
        let function = PCIE
            .get()
            .and_then(|p| p.as_ref())
            .and_then(|p| p.requester_id(event.sid))
            .map(PciFunction);
        let who = Who {
            vm: owner.map(|s| s.2),
            function,
            sid: event.sid,
        };
        let tail = Tail { more: *more, held };
        match (event.addr, event.read) {
            (Some(addr), Some(read)) => log::warn!(
                "SMMU: {who}: DMA {} at {addr:#x} blocked: {}{tail}",
                if read { "read" } else { "write" },
                event.name(),
            ),
            _ => log::warn!("SMMU: {who}: DMA blocked: {}{tail}", event.name()),
        }
    }
    if (others > 0 || overflowed) && ERROR_LIMIT.lock().check(timer::now()).is_some() {
        log::warn!(
            "SMMU: {others} more DMA fault(s) of other kinds{}",
            if overflowed {
                "; the event queue overflowed, some were not recorded"
            } else {
                ""
            }
        );
    }
}

struct Who {
    vm: Option<&'static str>,
    function: Option<PciFunction>,
    sid: u32,
}
impl core::fmt::Display for Who {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.vm {
            Some(vm) => write!(f, "VM {vm}, ")?,
            None => write!(f, "no VM owns ")?,
        }
        match self.function {
            Some(func) => write!(f, "PCI {func} (stream {:#x})", self.sid),
            None => write!(f, "stream {:#x}", self.sid),
        }
    }
}

/// A device of `vm` faulted: under `dma_fault = "fault"`, one of its vCPUs
/// is kicked to apply the VM's fault policy (`take_contain`).
fn contain(vm: &str) {
    let Some(index) = super::plan().vm_index(vm) else {
        return;
    };
    let Some(state) = super::vms().get(index) else {
        return;
    };
    if !state.cfg.dma_fault_is_fault || index >= MAX_VMS || state.stopping.load(Ordering::Acquire) {
        return;
    }
    if CONTAIN[index].swap(true, Ordering::AcqRel) {
        return;
    }
    match state.vcpus.iter().find(|v| v.power() == super::Power::On) {
        Some(v) => gicv3::send_sgi(super::vcpu::SGI_KICK, v.mpidr),
        None => CONTAIN[index].store(false, Ordering::Release),
    }
}

/// Whether `vm`'s device faulted under `dma_fault = "fault"` since the last
/// call: the kicked vCPU then applies the fault policy.
#[inline]
pub fn take_contain(vm: &VmState) -> bool {
    // `cfg` points into the plan's VM table: its index without a search.
    let base = super::plan().vms.as_ptr() as usize;
    let index = (vm.cfg as *const Vm as usize).wrapping_sub(base) / core::mem::size_of::<Vm>();
    index < MAX_VMS
        && CONTAIN[index].load(Ordering::Relaxed)
        && CONTAIN[index].swap(false, Ordering::AcqRel)
}

/// "(N more like it)" in this batch, "[M lines held back]" by the limit.
struct Tail {
    more: u64,
    held: u64,
}
impl core::fmt::Display for Tail {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.more > 0 {
            write!(f, " ({} more like it)", self.more)?;
        }
        if self.held > 0 {
            write!(f, " [{} earlier line(s) held back]", self.held)?;
        }
        Ok(())
    }
}
