//! VMs as the board's plan describes them: built at boot (stage 2, images,
//! guest DTB), stopped or restarted as a whole. Each vCPU lives on one
//! physical core for good (static partitioning), so "running a vCPU" is
//! entering EL1 on that core; there is nothing to schedule.

use super::linux::{self, Layout};
use super::partition;
use crate::arch::pagetable::{MapError, PageTable, Stage, TableMemory};
use crate::arch::{cpu, mmu};
use crate::drivers::gicv3;
use crate::drivers::ratelimit::{RateLimit, Suppressed};
use crate::fdt::firmware::Range;
use crate::fdt::guest::{self as guest_dtb, GuestDevice, GuestDtb, GuestPci, GuestShm};
use crate::vdev::vgic::{Vgic, VmGicConfig};
use crate::vdev::vuart::VUart;
use crate::vdev::{control, gic, vuart, Registry};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use spin::{Mutex, Once};
use tessera_boards::{Access, Plan, Vm};

include!(concat!(env!("OUT_DIR"), "/plan.rs"));
include!(concat!(env!("OUT_DIR"), "/images.rs"));

// The vGIC model is sized for as many vCPUs as the board checker allows.
const _: () = assert!(crate::vdev::vgic::MAX_VCPUS == tessera_boards::guest::MAX_VCPUS);

pub fn plan() -> &'static Plan {
    &PLAN
}

/// Where the guest DTB goes: 2 MiB below the end of the first RAM region.
const DTB_BELOW_END: u64 = 2 << 20;
const DTB_MAX: usize = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Power {
    Off = 0,
    OnPending = 1,
    On = 2,
}

/// A `CPU_ON` won the power state and is storing the entry point: seen as
/// off by the core (it does not start yet), as pending by `CPU_ON` callers.
const CLAIMED: u8 = 3;

pub struct Vcpu {
    /// Logical index of the physical core that runs this vCPU.
    pub core: usize,
    pub mpidr: u64,
    power: AtomicU8,
    pub entry: AtomicU64,
    pub context: AtomicU64,
    /// Exits to EL2 (traps and interrupts taken from the guest) since boot;
    /// guests read their own with `TESSERA_EXITS`.
    exits: AtomicU64,
}

impl Vcpu {
    pub fn power(&self) -> Power {
        match self.power.load(Ordering::Acquire) {
            1 => Power::OnPending,
            2 => Power::On,
            _ => Power::Off,
        }
    }
    pub fn set_power(&self, p: Power) {
        self.power.store(p as u8, Ordering::Release);
    }
    /// Counts one exit to EL2. Only this vCPU's own core writes it.
    pub fn count_exit(&self) {
        self.exits
            .store(self.exits.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    pub fn exits(&self) -> u64 {
        self.exits.load(Ordering::Relaxed)
    }

    /// Off -> OnPending with an entry point; the state it was in if not off.
    /// The compare-and-swap comes first (to a CLAIMED state the core does
    /// not start from), so only its winner stores the entry and context; a
    /// losing `CPU_ON` changes nothing.
    pub fn request_on(&self, entry: u64, context: u64) -> Result<(), Power> {
        self.power
            .compare_exchange(
                Power::Off as u8,
                CLAIMED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map_err(|p| {
                if p == Power::On as u8 {
                    Power::On
                } else {
                    Power::OnPending
                }
            })?;
        self.entry.store(entry, Ordering::Relaxed);
        self.context.store(context, Ordering::Relaxed);
        // Publishes entry and context; a stop that switched it off meanwhile
        // wins (the vCPU then stays off).
        let _ = self.power.compare_exchange(
            CLAIMED,
            Power::OnPending as u8,
            Ordering::Release,
            Ordering::Relaxed,
        );
        Ok(())
    }
}

/// Guest-caused log lines a VM may have printed back to back...
pub const LOG_BURST: u32 = 10;
/// ...and then one per this many milliseconds.
pub const LOG_PERIOD_MS: u64 = 100;

pub struct VmState {
    pub cfg: &'static Vm,
    pub vttbr: u64,
    pub vcpus: Vec<Vcpu>,
    pub boot_count: AtomicU32,
    /// Set while the VM is being stopped or restarted: its vCPUs leave.
    pub stopping: AtomicBool,
    /// Device state lives as long as the VM (for good), shared between the
    /// emulated devices in `mmio` and the interrupt paths.
    pub uart: &'static Mutex<VUart>,
    pub vgic: &'static Mutex<Vgic>,
    /// The emulated devices by guest address range.
    pub mmio: Registry,
    /// For each of its shared regions (by index): the other peers' VM
    /// indices and doorbell INTIDs, so a ring looks nothing up.
    pub doorbells: Vec<Vec<(usize, u32)>>,
    gic_config: (Vec<u32>, Vec<u32>),
    pub dtb_ipa: u64,
    /// Where vCPU 0 starts (for Linux: RAM base + the Image's text_offset).
    pub entry: u64,
    /// A Linux VM's files, checked once at boot: the staging area they are
    /// copied from at every start does not change.
    linux: Option<LinuxBoot>,
    /// Why the VM cannot run (an image missing from this build, a bad Linux
    /// image), if so.
    pub unrunnable: Option<&'static str>,
    /// Counter value when vCPU 0 last started, and faults in a row that came
    /// soon after a start.
    started_at: AtomicU64,
    quick_faults: AtomicU32,
    /// Log lines this VM's guest can cause (bad doorbells, full input,
    /// faults, resets) share one budget: see [`VmState::may_log`].
    log_limit: Mutex<RateLimit>,
}

impl VmState {
    pub fn name(&self) -> &'static str {
        self.cfg.name
    }

    /// Whether a log line this VM's guest caused may be printed now: a
    /// burst of [`LOG_BURST`], then one per [`LOG_PERIOD_MS`]. `Some` carries
    /// the count of lines held back since the last one, for its end.
    pub fn may_log(&self) -> Option<Suppressed> {
        self.log_limit
            .lock()
            .check(crate::arch::timer::now())
            .map(Suppressed)
    }

    pub fn note_started(&self) {
        self.started_at
            .store(crate::arch::timer::now(), Ordering::Relaxed);
    }

    /// Counts a fault; returns how many came in a row within 100 ms of a start.
    pub fn note_quick_fault(&self) -> u32 {
        let since = crate::arch::timer::now().wrapping_sub(self.started_at.load(Ordering::Relaxed));
        if since < crate::arch::timer::frequency() / 10 {
            self.quick_faults.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.quick_faults.store(1, Ordering::Relaxed);
            1
        }
    }

    pub fn new_vgic(&self) -> Vgic {
        Vgic::new(&VmGicConfig {
            vcpus: self.vcpus.len(),
            hw_spis: &self.gic_config.0,
            virtual_spis: &self.gic_config.1,
        })
    }

    /// After a restart reloaded the images and DTB, before vCPU 0 starts
    /// again: all of the VM's RAM is cleaned and invalidated to PoC (the old
    /// run's dirty lines must not land later on what the new one, caches
    /// off, writes), and the peers of its shared regions are told (header
    /// generation and doorbell, `docs/guest-abi.md`).
    pub fn reloaded(&self) {
        for m in self.cfg.memory {
            mmu::clean_invalidate_dcache(Range {
                base: m.pa,
                size: m.size,
            });
        }
        super::shm::note_restart(self);
    }

    /// Copies the images into the VM's RAM (a Linux VM's from the staging
    /// area) and writes its DTB.
    pub fn load(&self) -> Result<(), &'static str> {
        if let Some(l) = &self.linux {
            let (kernel, initrd) = l.staged();
            self.write_guest(l.layout.kernel_ipa, kernel)?;
            if let (Some((ipa, _)), Some(bytes)) = (l.layout.initrd, initrd) {
                self.write_guest(ipa, bytes)?;
            }
        }
        for image in self.cfg.images {
            let bytes = GUEST_IMAGES
                .iter()
                .find(|(n, _)| *n == image.name)
                .map(|(_, b)| *b)
                .ok_or("image not in this build")?;
            self.write_guest(image.ipa, bytes)?;
        }
        let memory: Vec<(u64, u64)> = self.cfg.memory.iter().map(|m| (m.ipa, m.size)).collect();
        let shared: Vec<GuestShm> = partition::shared_index(&PLAN, self.cfg.name)
            .map(|(i, s)| {
                let peer = s.peer(self.cfg.name).expect("a peer of its own region");
                GuestShm {
                    index: i as u32,
                    name: s.name,
                    ipa: peer.ipa,
                    size: s.size,
                    writable: peer.access == Access::ReadWrite,
                    doorbell_spi: peer.doorbell.map(|d| d.0),
                    data_offset: tessera_boards::guest::SHM_HEADER_SIZE,
                    peer_index: s
                        .peers
                        .iter()
                        .position(|p| p.vm == self.cfg.name)
                        .unwrap_or(0) as u32,
                }
            })
            .collect();
        let mmio: Vec<Vec<(u64, u64)>> = self
            .cfg
            .devices
            .iter()
            .map(|d| d.mmio.iter().map(|r| (r.base, r.size)).collect())
            .collect();
        let spis: Vec<Vec<u32>> = self
            .cfg
            .devices
            .iter()
            .map(|d| d.spis.iter().map(|s| s.0).collect())
            .collect();
        let devices: Vec<GuestDevice> = self
            .cfg
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| GuestDevice {
                compatible: d.compatible,
                mmio: &mmio[i],
                spis: &spis[i],
            })
            .collect();
        let pci = super::dma::guest_pci(self.cfg);
        let spec = GuestDtb {
            vm_name: self.cfg.name,
            vcpus: self.vcpus.len() as u32,
            memory: &memory,
            shared: &shared,
            devices: &devices,
            pci: pci.as_ref().map(|p| GuestPci {
                ecam: p.ecam,
                bus_range: p.bus_range,
                ranges: &p.ranges,
                intx_mask: p.intx_mask,
                intx: &p.intx,
            }),
            bootargs: self.cfg.linux.map_or("", |l| l.bootargs),
            boot_count: self.boot_count.load(Ordering::Relaxed),
            initrd: self.linux.as_ref().and_then(|l| l.layout.initrd),
        };
        let mut buf = alloc::vec![0u8; DTB_MAX];
        let n = guest_dtb::build(&spec, &mut buf).map_err(|_| "guest DTB does not fit")?;
        self.write_guest(self.dtb_ipa, &buf[..n])
    }

    /// Writes into guest RAM by IPA, then cleans it to memory: the guest
    /// starts with its MMU (so its caches) off.
    fn write_guest(&self, ipa: u64, bytes: &[u8]) -> Result<(), &'static str> {
        let region = self
            .cfg
            .memory
            .iter()
            .find(|m| m.ipa <= ipa && ipa + bytes.len() as u64 <= m.ipa + m.size)
            .ok_or("image does not fit in the VM's RAM")?;
        let pa = region.pa + (ipa - region.ipa);
        // SAFETY: the range lies inside this VM's RAM (checked above), which
        // the EL2 map covers and no one else owns; its vCPUs are stopped.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), pa as *mut u8, bytes.len()) };
        mmu::clean_dcache(Range {
            base: pa,
            size: bytes.len() as u64,
        });
        Ok(())
    }
}

/// A Linux VM's kernel and initramfs in the staging area, and where they go.
struct LinuxBoot {
    kernel_pa: u64,
    initrd_pa: u64,
    layout: Layout,
}

impl LinuxBoot {
    /// The staged kernel and initramfs bytes.
    fn staged(&self) -> (&'static [u8], Option<&'static [u8]>) {
        // SAFETY: both lie in their slots of the staging area (their sizes
        // were checked against the slots), which the board checker keeps in
        // RAM (mapped at EL2, checked against the DTB at boot) and outside
        // every VM and the hypervisor: only the loader wrote it, nothing
        // writes it after.
        unsafe {
            (
                core::slice::from_raw_parts(
                    self.kernel_pa as *const u8,
                    self.layout.kernel_len as usize,
                ),
                self.layout.initrd.map(|(_, len)| {
                    core::slice::from_raw_parts(self.initrd_pa as *const u8, len as usize)
                }),
            )
        }
    }
}

/// Checks a Linux VM's staged files (`loaded` gives the sizes the loader
/// reported) and lays them out; the reason as one line if refused.
fn check_linux(
    vm: &Vm,
    dtb_ipa: u64,
    loaded: &dyn Fn(&str) -> Option<u64>,
) -> Result<Option<LinuxBoot>, &'static str> {
    let Some(cfg) = vm.linux else { return Ok(None) };
    let refuse =
        |r: linux::Refusal| -> &'static str { alloc::string::ToString::to_string(&r).leak() };
    let k = cfg.kernel;
    let kernel_len = linux::loaded_size(k.file, loaded(k.file), k.max).map_err(refuse)?;
    let initrd = match cfg.initrd {
        None => None,
        Some(i) => Some((
            i,
            linux::loaded_size(i.file, loaded(i.file), i.max).map_err(refuse)?,
        )),
    };
    // SAFETY: as in `LinuxBoot::staged`: inside the kernel's slot.
    let kernel = unsafe { core::slice::from_raw_parts(k.pa as *const u8, kernel_len as usize) };
    let ram = linux::Ram {
        base: vm.memory[0].ipa,
        dtb_ipa,
    };
    let layout =
        linux::layout(k.file, kernel, initrd.map(|(i, n)| (i.file, n)), ram).map_err(refuse)?;
    Ok(Some(LinuxBoot {
        kernel_pa: k.pa,
        initrd_pa: initrd.map_or(0, |(i, _)| i.pa),
        layout,
    }))
}

static VMS: Once<Vec<VmState>> = Once::new();
/// For each logical core, for the trap path: the VM it runs (null if none)
/// and the vCPU index, read without a lock or a search.
static CORE_VM: [AtomicPtr<VmState>; cpu::MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; cpu::MAX_CPUS];
static CORE_VI: [AtomicUsize; cpu::MAX_CPUS] = [const { AtomicUsize::new(0) }; cpu::MAX_CPUS];
static IPA_BITS: AtomicU32 = AtomicU32::new(0);

pub fn vms() -> &'static [VmState] {
    VMS.get().map_or(&[], |v| v.as_slice())
}

pub fn vm_by_name(name: &str) -> Option<&'static VmState> {
    vms().iter().find(|v| v.cfg.name == name)
}

/// The VM and vCPU this core runs, if any.
#[inline]
pub fn this_vcpu() -> Option<(&'static VmState, usize)> {
    let core = cpu::core_index();
    let vm = CORE_VM.get(core)?.load(Ordering::Acquire);
    // SAFETY: a non-null pointer is into `VMS`, set once and never changed,
    // so the VmState lives (and stays put) for good.
    let vm = unsafe { vm.as_ref() }?;
    Some((vm, CORE_VI[core].load(Ordering::Relaxed)))
}

pub fn ipa_bits() -> u32 {
    IPA_BITS.load(Ordering::Relaxed)
}

/// Stage-2 tables come from the heap, 4 KiB-aligned and zeroed.
struct HeapTables;

impl TableMemory for HeapTables {
    fn alloc(&mut self) -> Option<u64> {
        let layout = core::alloc::Layout::from_size_align(4096, 4096).ok()?;
        // SAFETY: non-zero size; the page is never freed (tables live forever).
        let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
        (!p.is_null()).then_some(p as u64)
    }
    fn entries(&mut self, pa: u64) -> &mut [u64; 512] {
        // SAFETY: a page `alloc` returned; identity-mapped at EL2.
        unsafe { &mut *(pa as *mut [u64; 512]) }
    }
}

fn build_stage2(vm: &Vm, ipa_bits: u8) -> Result<u64, MapError> {
    let mut t = PageTable::new(HeapTables, Stage::Stage2, ipa_bits)?;
    for m in partition::stage2_mappings(&PLAN, vm) {
        t.map(m.ipa, m.pa, m.size, m.attrs)?;
    }
    Ok(t.root())
}

/// Builds every VM of the plan; `mpidrs[logical core]` says which physical
/// core each logical index is; `loaded(file)`, how many bytes of a staged
/// file the loader placed.
/// Board devices the firmware DTB does not have (`partition::absent_devices`).
static ABSENT_DEVICES: Once<Vec<&'static str>> = Once::new();

pub fn set_absent_devices(names: Vec<&'static str>) {
    ABSENT_DEVICES.call_once(|| names);
}

pub fn build_all(
    mpidrs: &[u64],
    ipa_bits: u8,
    gicd: &gicv3::Distributor,
    loaded: &dyn Fn(&str) -> Option<u64>,
) {
    IPA_BITS.store(ipa_bits as u32, Ordering::Relaxed);
    let mut core_vcpu = alloc::vec![None; mpidrs.len()];
    let mut vms = Vec::new();
    for (index, vm) in PLAN.vms.iter().enumerate() {
        let vcpus: Vec<Vcpu> = vm
            .cores
            .iter()
            .enumerate()
            .filter_map(|(vi, &core)| {
                let mpidr = PLAN.platform.cpu(core)?.mpidr;
                let logical = mpidrs.iter().position(|&m| m == mpidr)?;
                core_vcpu[logical] = Some((index, vi));
                Some(Vcpu {
                    core: logical,
                    mpidr,
                    power: AtomicU8::new(0),
                    entry: AtomicU64::new(0),
                    context: AtomicU64::new(0),
                    exits: AtomicU64::new(0),
                })
            })
            .collect();
        let vttbr = match build_stage2(vm, ipa_bits) {
            Ok(root) => root | (vm.vmid as u64) << 48,
            Err(e) => {
                log::error!("VM {}: stage-2 map: {e:?}; not started", vm.name);
                0
            }
        };
        let hw_spis: Vec<u32> = vm.spis.iter().map(|s| s.intid()).collect();
        let mut virtual_spis = alloc::vec![PLAN.platform.uart.spi.intid()];
        virtual_spis.extend(
            PLAN.shared_of(vm.name)
                .filter_map(|(_, p)| p.doorbell.map(|d| d.intid())),
        );
        let first = vm.memory[0];
        let vgic: &'static Mutex<Vgic> = Box::leak(Box::new(Mutex::new(Vgic::new(&VmGicConfig {
            vcpus: vcpus.len(),
            hw_spis: &hw_spis,
            virtual_spis: &virtual_spis,
        }))));
        let uart: &'static Mutex<VUart> = Box::leak(Box::new(Mutex::new(VUart::new(
            vm.name,
            super::console::vm_line,
        ))));
        let mmio = emulated_devices(vgic, uart, vcpus.len());
        let dtb_ipa = first.ipa + first.size - DTB_BELOW_END;
        let linux = check_linux(vm, dtb_ipa, loaded);
        let mut state = VmState {
            cfg: vm,
            vttbr,
            boot_count: AtomicU32::new(0),
            stopping: AtomicBool::new(false),
            uart,
            vgic,
            mmio,
            doorbells: doorbell_targets(vm),
            gic_config: (hw_spis, virtual_spis),
            dtb_ipa,
            entry: match &linux {
                Ok(Some(l)) => l.layout.kernel_ipa,
                _ => vm.entry,
            },
            unrunnable: linux.as_ref().err().copied(),
            linux: linux.ok().flatten(),
            started_at: AtomicU64::new(0),
            quick_faults: AtomicU32::new(0),
            log_limit: Mutex::new(RateLimit::new(
                LOG_BURST,
                crate::arch::timer::frequency() * LOG_PERIOD_MS / 1000,
            )),
            vcpus,
        };
        if state.unrunnable.is_some() {
            // A refused Linux image: said below, with the VM's name.
        } else if vm
            .devices
            .iter()
            .any(|d| ABSENT_DEVICES.get().is_some_and(|a| a.contains(&d.name)))
        {
            state.unrunnable = Some("a device passed through to it is not on this machine");
        } else if vttbr == 0 {
            state.unrunnable = Some("no stage-2 map");
        } else if state.vcpus.len() != vm.cores.len() {
            state.unrunnable = Some("a core of its plan is not online");
        } else if let Err(e) = state.load() {
            state.unrunnable = Some(e);
        } else if let Err(e) = super::dma::attach(&state) {
            state.unrunnable = Some(e);
        }
        // Passed-through SPIs go to the VM's first core, disabled until the
        // guest enables them.
        for &spi in &state.gic_config.0 {
            gicd.disable_spi(spi);
            if let Some(v) = state.vcpus.first() {
                gicd.route_spi(spi, v.mpidr);
            }
        }
        match state.unrunnable {
            None => log::info!(
                "VM {} (VMID {}): {} vCPU(s) on core(s) {:?}, {} MiB RAM at PA {:#x}, entry {:#x}, DTB at {:#x}",
                vm.name,
                vm.vmid,
                state.vcpus.len(),
                vm.cores,
                vm.ram_size() >> 20,
                first.pa,
                state.entry,
                state.dtb_ipa
            ),
            Some(why) => log::warn!("VM {}: not started: {why}", vm.name),
        }
        vms.push(state);
    }
    VMS.call_once(|| vms);
    let vms = VMS.get().expect("just set");
    for (core, slot) in core_vcpu.iter().enumerate().take(cpu::MAX_CPUS) {
        if let Some((vm, vi)) = *slot {
            CORE_VI[core].store(vi, Ordering::Relaxed);
            CORE_VM[core].store(
                &vms[vm] as *const VmState as *mut VmState,
                Ordering::Release,
            );
        }
    }
    super::shm::init_headers(&PLAN);
}

fn doorbell_targets(vm: &Vm) -> Vec<Vec<(usize, u32)>> {
    partition::shared_index(&PLAN, vm.name)
        .map(|(_, region)| {
            region
                .peers
                .iter()
                .filter(|p| p.vm != vm.name)
                .filter_map(|p| {
                    let index = PLAN.vms.iter().position(|v| v.name == p.vm)?;
                    Some((index, p.doorbell?.intid()))
                })
                .collect()
        })
        .collect()
}

/// Every VM's emulated devices, at the guest addresses its DTB gives them.
fn emulated_devices(
    vgic: &'static Mutex<Vgic>,
    uart: &'static Mutex<VUart>,
    vcpus: usize,
) -> Registry {
    let mut r = Registry::new();
    let devices: [(u64, u64, Box<dyn crate::vdev::MmioDevice>); 4] = [
        (
            guest_dtb::GICD_IPA,
            guest_dtb::GICD_SIZE,
            Box::new(gic::Distributor(vgic)),
        ),
        (
            guest_dtb::GICR_IPA,
            guest_dtb::GICR_STRIDE * vcpus as u64,
            Box::new(gic::Redistributors {
                vgic,
                stride: guest_dtb::GICR_STRIDE,
            }),
        ),
        (
            guest_dtb::UART_IPA,
            guest_dtb::UART_SIZE,
            Box::new(vuart::Device {
                uart,
                vgic,
                intid: PLAN.platform.uart.spi.intid(),
            }),
        ),
        (
            guest_dtb::CONTROL_IPA,
            guest_dtb::CONTROL_SIZE,
            Box::new(control::ControlPage),
        ),
    ];
    for (base, size, device) in devices {
        // Fixed, disjoint guest addresses (fdt::guest): cannot fail.
        if let Err(e) = r.add(base, size, device) {
            log::error!("emulated device at {base:#x}: {e:?}");
        }
    }
    r
}

/// Starts vCPU 0 of every runnable VM.
pub fn start_all() {
    for vm in vms() {
        if vm.unrunnable.is_none() {
            let _ = vm.vcpus[0].request_on(vm.entry, vm.dtb_ipa);
        }
    }
}
