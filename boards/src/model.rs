//! The static tables the hypervisor uses at EL2: plain `Copy` data behind
//! `&'static` references, no allocation, generated from a checked board file.

/// A physical or guest-physical address range `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub base: u64,
    pub size: u64,
}

impl Range {
    pub const fn new(base: u64, size: u64) -> Self {
        Range { base, size }
    }

    /// One past the last byte (saturating, so a range ending at 2^64 is safe).
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.end()
    }

    pub const fn contains_range(&self, other: &Range) -> bool {
        other.base >= self.base && other.end() <= self.end()
    }

    pub const fn overlaps(&self, other: &Range) -> bool {
        self.size != 0 && other.size != 0 && self.base < other.end() && other.base < self.end()
    }
}

/// A shared peripheral interrupt by its SPI number (as in a device tree), so
/// that INTID = 32 + SPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Spi(pub u32);

impl Spi {
    /// Largest SPI number GICv3 can express (INTID 1019).
    pub const MAX: u32 = 1019 - 32;

    pub const fn intid(self) -> u32 {
        self.0 + 32
    }
}

/// A physical core: its index in the plan (0..n, the order the hypervisor
/// numbers cores) and its MPIDR_EL1 affinity value (Aff3 in bits 39:32,
/// Aff2..Aff0 in bits 23:0), which PSCI `CPU_ON` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    pub core: u32,
    pub mpidr: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uart {
    pub mmio: Range,
    pub spi: Spi,
}

/// GICv3: one distributor frame and one redistributor (RD + SGI frames) per
/// core at `redistributor_base + core * redistributor_stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gic {
    pub distributor: Range,
    pub redistributor_base: u64,
    pub redistributor_stride: u64,
}

impl Gic {
    /// The redistributor frames of physical core `core`.
    pub const fn redistributor(&self, core: u32) -> Range {
        Range::new(
            self.redistributor_base + core as u64 * self.redistributor_stride,
            self.redistributor_stride,
        )
    }
}

/// A device that can be passed through to a VM: its MMIO is mapped at the
/// same guest-physical address, its SPIs are injected to that VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    pub name: &'static str,
    /// `compatible` of the device's node in a guest DTB, most specific
    /// first; empty means the guest gets no node (it must know the device).
    pub compatible: &'static [&'static str],
    pub mmio: &'static [Range],
    pub spis: &'static [Spi],
    /// A PCIe host bridge: `mmio[0]` is the ECAM, the rest its windows.
    pub pci_host: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform {
    pub name: &'static str,
    pub ram: &'static [Range],
    pub cpus: &'static [Cpu],
    /// The console; the hypervisor owns it and gives each VM a virtual PL011
    /// at the same address and SPI.
    pub uart: Uart,
    pub gic: Gic,
    pub smmu: Option<Range>,
    /// Where the boot loader places the guest images that are not embedded
    /// (Linux kernels, initramfs). Tessera only reads it, no VM maps it: it
    /// is the clean copy every VM start copies from.
    pub staging: Option<Range>,
    /// Physical range the hypervisor keeps for itself (firmware DTB, image,
    /// heap); no VM or shared region is ever placed there.
    pub hypervisor: Range,
    pub devices: &'static [Device],
    /// The device that is the GPU, and the one that drives the display
    /// (on QEMU virt both are the PCIe host with virtio-gpu behind it).
    pub gpu_device: Option<&'static str>,
    pub display_device: Option<&'static str>,
}

impl Platform {
    pub fn cpu(&self, core: u32) -> Option<&Cpu> {
        self.cpus.iter().find(|c| c.core == core)
    }

    /// The core index of the CPU with this affinity (MPIDR_EL1 with the
    /// non-affinity bits ignored).
    pub fn core_of_mpidr(&self, mpidr: u64) -> Option<u32> {
        const AFF_MASK: u64 = 0xff_00ff_ffff;
        self.cpus
            .iter()
            .find(|c| c.mpidr & AFF_MASK == mpidr & AFF_MASK)
            .map(|c| c.core)
    }

    pub fn device(&self, name: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.name == name)
    }

    pub fn in_ram(&self, range: &Range) -> bool {
        self.ram.iter().any(|r| r.contains_range(range))
    }
}

/// A piece of a VM's RAM: seen by the guest at `ipa`, backed by `pa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRegion {
    pub ipa: u64,
    pub pa: u64,
    pub size: u64,
}

impl MemRegion {
    pub const fn ipa_range(&self) -> Range {
        Range::new(self.ipa, self.size)
    }

    pub const fn pa_range(&self) -> Range {
        Range::new(self.pa, self.size)
    }

    pub const fn ipa_to_pa(&self, ipa: u64) -> Option<u64> {
        if self.ipa_range().contains(ipa) {
            Some(self.pa + (ipa - self.ipa))
        } else {
            None
        }
    }
}

/// An image the hypervisor loads into a VM before starting it; `name` is the
/// file name the build resolves (kernel, initrd, bare-metal binary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image {
    pub name: &'static str,
    pub ipa: u64,
}

/// A PCI function by its requester ID (bus << 8 | device << 3 | function),
/// which the host bridge's `iommu-map` turns into an SMMU stream ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PciFunction(pub u16);

impl PciFunction {
    pub const fn new(bus: u8, device: u8, function: u8) -> Self {
        PciFunction((bus as u16) << 8 | ((device as u16) & 0x1f) << 3 | (function as u16) & 7)
    }
    pub const fn bus(self) -> u8 {
        (self.0 >> 8) as u8
    }
    pub const fn device(self) -> u8 {
        (self.0 >> 3) as u8 & 0x1f
    }
    pub const fn function(self) -> u8 {
        self.0 as u8 & 7
    }

    /// Parses "bus:device.function" in hex, as `lspci` prints it ("00:02.0").
    pub fn parse(s: &str) -> Option<Self> {
        let (bus, rest) = s.split_once(':')?;
        let (dev, func) = rest.split_once('.')?;
        let hex = |t: &str| {
            (!t.is_empty() && t.len() <= 2)
                .then(|| u8::from_str_radix(t, 16).ok())
                .flatten()
        };
        let (bus, dev, func) = (hex(bus)?, hex(dev)?, hex(func)?);
        (dev < 32 && func < 8).then(|| PciFunction::new(bus, dev, func))
    }
}

impl core::fmt::Display for PciFunction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{}",
            self.bus(),
            self.device(),
            self.function()
        )
    }
}

/// A file the boot loader places in the staging area: at physical `pa`, at
/// most `max` bytes. The loader says how many it loaded (`docs/boot.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Staged {
    pub file: &'static str,
    pub pa: u64,
    pub max: u64,
}

impl Staged {
    pub const fn slot(&self) -> Range {
        Range::new(self.pa, self.max)
    }
}

/// A VM that boots Linux: the kernel `Image` goes to the start of its first
/// RAM region plus the header's `text_offset`, the initramfs near the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linux {
    pub kernel: Staged,
    pub initrd: Option<Staged>,
    pub bootargs: &'static str,
}

/// What the hypervisor does with a VM that faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPolicy {
    Stop,
    Restart,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vm {
    pub name: &'static str,
    /// Stage-2 VMID (8 bits, 1..=255; 0 is never given to a VM).
    pub vmid: u16,
    /// Physical cores, one vCPU each: vCPU `i` runs on `cores[i]`.
    pub cores: &'static [u32],
    pub memory: &'static [MemRegion],
    pub images: &'static [Image],
    /// Guest-physical address the boot vCPU starts at.
    pub entry: u64,
    pub devices: &'static [Device],
    /// Every SPI passed through: those of its devices and any extra ones,
    /// sorted.
    pub spis: &'static [Spi],
    /// PCI functions behind its PCIe host that may do DMA (translated by the
    /// SMMU with this VM's stage 2); every other function reaches nothing.
    pub pci: &'static [PciFunction],
    pub fault: FaultPolicy,
    /// Whether a blocked DMA of its functions counts as a fault of the VM
    /// (`fault` then applies) or is only logged.
    pub dma_fault_is_fault: bool,
    /// Boots Linux from the staging area (else the embedded `images`).
    pub linux: Option<Linux>,
}

impl Vm {
    pub fn has_core(&self, core: u32) -> bool {
        self.cores.contains(&core)
    }

    /// The vCPU index that runs on physical `core`.
    pub fn vcpu_of_core(&self, core: u32) -> Option<usize> {
        self.cores.iter().position(|&c| c == core)
    }

    /// Translates a guest-physical address inside the VM's RAM.
    pub fn ipa_to_pa(&self, ipa: u64) -> Option<u64> {
        self.memory.iter().find_map(|m| m.ipa_to_pa(ipa))
    }

    pub fn owns_spi(&self, spi: Spi) -> bool {
        self.spis.contains(&spi)
    }

    pub fn ram_size(&self) -> u64 {
        self.memory.iter().map(|m| m.size).sum()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// One VM's view of a shared region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub vm: &'static str,
    pub ipa: u64,
    pub access: Access,
    /// Virtual SPI this peer receives when another peer rings the region's
    /// doorbell.
    pub doorbell: Option<Spi>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedRegion {
    pub name: &'static str,
    pub size: u64,
    pub pa: u64,
    pub peers: &'static [Peer],
}

impl SharedRegion {
    pub fn peer(&self, vm: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.vm == vm)
    }

    pub const fn pa_range(&self) -> Range {
        Range::new(self.pa, self.size)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Console {
    /// The VM that gets console input first (the console cycles from there).
    pub input_first: &'static str,
}

/// The whole checked plan; the generated file defines `PLAN: Plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub platform: Platform,
    pub vms: &'static [Vm],
    pub shared: &'static [SharedRegion],
    pub console: Console,
    pub gpu_owner: Option<&'static str>,
    pub display_owner: Option<&'static str>,
}

impl Plan {
    pub fn vm(&self, name: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.name == name)
    }

    pub fn vm_index(&self, name: &str) -> Option<usize> {
        self.vms.iter().position(|v| v.name == name)
    }

    /// The VM that physical `core` runs (None: the core stays parked).
    pub fn vm_for_core(&self, core: u32) -> Option<&Vm> {
        self.vms.iter().find(|v| v.has_core(core))
    }

    pub fn vm_by_vmid(&self, vmid: u16) -> Option<&Vm> {
        self.vms.iter().find(|v| v.vmid == vmid)
    }

    pub fn shared(&self, name: &str) -> Option<&SharedRegion> {
        self.shared.iter().find(|s| s.name == name)
    }

    /// The shared regions `vm` sees, with its view of each.
    pub fn shared_of<'a>(
        &'a self,
        vm: &'a str,
    ) -> impl Iterator<Item = (&'a SharedRegion, &'a Peer)> + 'a {
        self.shared
            .iter()
            .filter_map(move |s| s.peer(vm).map(|p| (s, p)))
    }

    /// One past the highest guest-physical address `vm` uses (RAM, devices,
    /// shared windows): the stage-2 input size must cover it.
    pub fn ipa_end(&self, vm: &Vm) -> u64 {
        let ram = vm.memory.iter().map(|m| m.ipa_range().end());
        let mmio = vm
            .devices
            .iter()
            .flat_map(|d| d.mmio.iter().map(Range::end));
        let shared = self
            .shared_of(vm.name)
            .map(|(s, p)| Range::new(p.ipa, s.size).end());
        ram.chain(mmio).chain(shared).max().unwrap_or(0)
    }

    pub fn gpu_vm(&self) -> Option<&Vm> {
        self.gpu_owner.and_then(|n| self.vm(n))
    }

    pub fn display_vm(&self) -> Option<&Vm> {
        self.display_owner.and_then(|n| self.vm(n))
    }

    pub fn console_vm(&self) -> Option<&Vm> {
        self.vm(self.console.input_first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: Device = Device {
        name: "rtc",
        compatible: &["arm,pl031", "arm,primecell"],
        mmio: &[Range::new(0x0901_0000, 0x1000)],
        spis: &[Spi(2)],
        pci_host: false,
    };

    static PLAN: Plan = Plan {
        platform: Platform {
            name: "t",
            ram: &[Range::new(0x4000_0000, 0x4000_0000)],
            cpus: &[
                Cpu { core: 0, mpidr: 0 },
                Cpu { core: 1, mpidr: 1 },
                Cpu {
                    core: 2,
                    mpidr: 0x1_0000_0100,
                },
            ],
            uart: Uart {
                mmio: Range::new(0x0900_0000, 0x1000),
                spi: Spi(1),
            },
            gic: Gic {
                distributor: Range::new(0x0800_0000, 0x1_0000),
                redistributor_base: 0x080a_0000,
                redistributor_stride: 0x2_0000,
            },
            smmu: None,
            staging: None,
            hypervisor: Range::new(0x4000_0000, 0x400_0000),
            devices: &[DEV],
            gpu_device: None,
            display_device: None,
        },
        vms: &[
            Vm {
                name: "a",
                vmid: 1,
                cores: &[0],
                memory: &[MemRegion {
                    ipa: 0x4000_0000,
                    pa: 0x4400_0000,
                    size: 0x20_0000,
                }],
                images: &[],
                entry: 0x4000_0000,
                devices: &[],
                spis: &[],
                pci: &[],
                fault: FaultPolicy::Stop,
                dma_fault_is_fault: false,
                linux: None,
            },
            Vm {
                name: "b",
                vmid: 2,
                cores: &[2, 1],
                memory: &[
                    MemRegion {
                        ipa: 0x4000_0000,
                        pa: 0x4600_0000,
                        size: 0x20_0000,
                    },
                    MemRegion {
                        ipa: 0x8000_0000,
                        pa: 0x4800_0000,
                        size: 0x20_0000,
                    },
                ],
                images: &[],
                entry: 0x4000_0000,
                devices: &[DEV],
                spis: &[Spi(2)],
                pci: &[],
                fault: FaultPolicy::Restart,
                dma_fault_is_fault: false,
                linux: None,
            },
        ],
        shared: &[SharedRegion {
            name: "ab",
            size: 0x20_0000,
            pa: 0x4a00_0000,
            peers: &[Peer {
                vm: "b",
                ipa: 0x9000_0000,
                access: Access::ReadOnly,
                doorbell: Some(Spi(100)),
            }],
        }],
        console: Console { input_first: "b" },
        gpu_owner: Some("b"),
        display_owner: None,
    };

    #[test]
    fn range_overlap_is_half_open() {
        let a = Range::new(0x1000, 0x1000);
        assert!(a.overlaps(&Range::new(0x1fff, 1)));
        assert!(!a.overlaps(&Range::new(0x2000, 1)));
        assert!(!a.overlaps(&Range::new(0x1000, 0)));
        assert!(a.contains(0x1fff) && !a.contains(0x2000));
        assert!(Range::new(u64::MAX - 1, 10).contains(u64::MAX - 1));
    }

    #[test]
    fn cores_map_to_vms_and_vcpus() {
        assert_eq!(PLAN.vm_for_core(0).map(|v| v.name), Some("a"));
        assert_eq!(PLAN.vm_for_core(1).map(|v| v.name), Some("b"));
        assert!(PLAN.vm_for_core(3).is_none());
        assert_eq!(PLAN.vm("b").unwrap().vcpu_of_core(1), Some(1));
        assert_eq!(PLAN.vm("b").unwrap().vcpu_of_core(0), None);
        assert_eq!(PLAN.vm_index("b"), Some(1));
        assert_eq!(PLAN.vm_by_vmid(2).map(|v| v.name), Some("b"));
        assert!(PLAN.vm("c").is_none());
    }

    #[test]
    fn ipa_translation_uses_the_right_region() {
        let b = PLAN.vm("b").unwrap();
        assert_eq!(b.ipa_to_pa(0x4000_0010), Some(0x4600_0010));
        assert_eq!(b.ipa_to_pa(0x8010_0000), Some(0x4810_0000));
        assert_eq!(b.ipa_to_pa(0x4020_0000), None);
        assert_eq!(b.ram_size(), 0x40_0000);
    }

    #[test]
    fn platform_lookups() {
        let p = &PLAN.platform;
        // Bits outside the affinity fields (MT, U, RES1) are ignored.
        assert_eq!(p.core_of_mpidr(0x8000_0000 | 0x1_0000_0100), Some(2));
        assert_eq!(p.core_of_mpidr(3), None);
        assert_eq!(p.cpu(1).map(|c| c.mpidr), Some(1));
        assert_eq!(p.gic.redistributor(2).base, 0x080e_0000);
        assert_eq!(p.device("rtc").map(|d| d.spis[0].intid()), Some(34));
        assert!(p.in_ram(&Range::new(0x7fff_f000, 0x1000)));
        assert!(!p.in_ram(&Range::new(0x7fff_f000, 0x2000)));
    }

    #[test]
    fn shared_regions_and_owners() {
        assert_eq!(PLAN.shared_of("b").count(), 1);
        assert_eq!(PLAN.shared_of("a").count(), 0);
        let (s, p) = PLAN.shared_of("b").next().unwrap();
        assert_eq!((s.name, p.doorbell), ("ab", Some(Spi(100))));
        assert_eq!(PLAN.shared("ab").unwrap().pa_range().end(), 0x4a20_0000);
        assert_eq!(PLAN.gpu_vm().map(|v| v.name), Some("b"));
        assert!(PLAN.display_vm().is_none());
        assert_eq!(PLAN.console_vm().map(|v| v.vmid), Some(2));
        assert_eq!(PLAN.ipa_end(PLAN.vm("b").unwrap()), 0x9020_0000);
        assert_eq!(PLAN.ipa_end(PLAN.vm("a").unwrap()), 0x4020_0000);
        assert!(PLAN.vm("b").unwrap().owns_spi(Spi(2)));
        assert!(!PLAN.vm("a").unwrap().owns_spi(Spi(2)));
    }

    #[test]
    fn pci_function_parse_and_print() {
        let f = PciFunction::parse("00:02.0").unwrap();
        assert_eq!(f, PciFunction(0x10));
        let g = PciFunction::parse("1f:1f.7").unwrap();
        assert_eq!((g.bus(), g.device(), g.function()), (0x1f, 0x1f, 7));
        assert_eq!(g.0, 0x1fff);
        for bad in [
            "", "0:2", "00:20.0", "00:02.8", "100:00.0", "xx:00.0", "00.02:0",
        ] {
            assert_eq!(PciFunction::parse(bad), None, "{bad}");
        }
    }
}
