//! The board's partition plan meets the machine: checking it against what
//! the firmware DTB says, and the stage-2 map each VM gets.

use crate::arch::pagetable::{Attrs, MemType};
use crate::fdt::firmware::Platform;
use core::fmt;
use tessera_boards::guest::SHM_HEADER_SIZE;
use tessera_boards::{Access, Plan, Vm};

/// A way in which the plan and the machine disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// A core of the plan whose MPIDR the DTB does not list.
    CoreMissing {
        core: u32,
        mpidr: u64,
    },
    /// A RAM range of the plan outside the DTB's RAM.
    RamMissing {
        base: u64,
        size: u64,
    },
    GicDistributor {
        plan: u64,
        dtb: u64,
    },
    Uart {
        plan: u64,
        dtb: u64,
    },
    /// The running image lies outside the plan's hypervisor range.
    ImageOutsideReserve {
        image: u64,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Mismatch::CoreMissing { core, mpidr } => {
                write!(
                    f,
                    "platform cpus: core {core} (MPIDR {mpidr:#x}) is not in the DTB"
                )
            }
            Mismatch::RamMissing { base, size } => {
                write!(
                    f,
                    "platform ram: {base:#x}+{size:#x} is not RAM according to the DTB"
                )
            }
            Mismatch::GicDistributor { plan, dtb } => {
                write!(
                    f,
                    "platform gic: distributor {plan:#x}, but the DTB says {dtb:#x}"
                )
            }
            Mismatch::Uart { plan, dtb } => {
                write!(f, "platform uart: {plan:#x}, but the DTB says {dtb:#x}")
            }
            Mismatch::ImageOutsideReserve { image } => {
                write!(
                    f,
                    "platform hypervisor: the image at {image:#x} is outside the reserved range"
                )
            }
        }
    }
}

/// DESIGN.md boot step 4: the plan must describe this machine.
pub fn check_against_dtb(plan: &Plan, dtb: &Platform, image: u64) -> Result<(), Mismatch> {
    let p = &plan.platform;
    for c in p.cpus {
        if !dtb.cpus.contains(&c.mpidr) {
            return Err(Mismatch::CoreMissing {
                core: c.core,
                mpidr: c.mpidr,
            });
        }
    }
    for r in p.ram {
        if !dtb
            .ram
            .iter()
            .any(|d| d.base <= r.base && r.end() <= d.end())
        {
            return Err(Mismatch::RamMissing {
                base: r.base,
                size: r.size,
            });
        }
    }
    if p.gic.distributor.base != dtb.gic.dist.base {
        return Err(Mismatch::GicDistributor {
            plan: p.gic.distributor.base,
            dtb: dtb.gic.dist.base,
        });
    }
    if let Some(u) = dtb.uart {
        if u.range.base != p.uart.mmio.base {
            return Err(Mismatch::Uart {
                plan: p.uart.mmio.base,
                dtb: u.range.base,
            });
        }
    }
    if !p.hypervisor.contains(image) {
        return Err(Mismatch::ImageOutsideReserve { image });
    }
    Ok(())
}

/// The plan's passed-through devices this machine does not have: a device
/// the guest gets a DTB node for must have a node at its address in the
/// firmware DTB (`present`), a PCIe host its ECAM at the DTB's. A VM that
/// owns one is not started; the others are.
pub fn absent_devices<'a>(
    plan: &'a Plan,
    dtb: &'a Platform,
    present: impl Fn(u64) -> bool + 'a,
) -> impl Iterator<Item = &'a tessera_boards::Device> + 'a {
    plan.platform.devices.iter().filter(move |d| {
        let Some(first) = d.mmio.first() else {
            return false;
        };
        if d.pci_host {
            dtb.pcie.as_ref().is_none_or(|p| p.ecam.base != first.base)
        } else {
            !d.compatible.is_empty() && !present(first.base)
        }
    })
}

/// One stage-2 mapping: guest-physical to physical, with attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub ipa: u64,
    pub pa: u64,
    pub size: u64,
    pub attrs: Attrs,
}

/// Everything a VM may touch directly: its RAM (read, write, execute), its
/// shared regions (the hypervisor's header page read-only, the data after
/// it with the peer's access, never executable), and its devices
/// (identity-mapped device memory). Emulated devices are left unmapped so
/// that they trap.
pub fn stage2_mappings<'a>(plan: &'a Plan, vm: &'a Vm) -> impl Iterator<Item = Mapping> + 'a {
    let ram = vm.memory.iter().map(|m| Mapping {
        ipa: m.ipa,
        pa: m.pa,
        size: m.size,
        attrs: Attrs::RWX,
    });
    let shared = plan.shared_of(vm.name).flat_map(|(s, p)| {
        // The board checker makes every region larger than its header.
        let header = SHM_HEADER_SIZE.min(s.size);
        let normal = |write| Attrs {
            mem: MemType::Normal,
            write,
            exec: false,
        };
        [
            Mapping {
                ipa: p.ipa,
                pa: s.pa,
                size: header,
                attrs: normal(false),
            },
            Mapping {
                ipa: p.ipa + header,
                pa: s.pa + header,
                size: s.size - header,
                attrs: normal(p.access == Access::ReadWrite),
            },
        ]
        .into_iter()
        .filter(|m| m.size != 0)
    });
    let devices = vm.devices.iter().flat_map(|d| d.mmio.iter()).map(|r| {
        let base = r.base & !0xfff;
        let size = (r.end() - base).next_multiple_of(0x1000);
        Mapping {
            ipa: base,
            pa: base,
            size,
            attrs: Attrs::DEVICE,
        }
    });
    ram.chain(shared).chain(devices)
}

/// The VM's shared regions in guest-ABI order (index = position).
pub fn shared_index<'a>(
    plan: &'a Plan,
    vm: &'a str,
) -> impl Iterator<Item = (usize, &'a tessera_boards::SharedRegion)> + 'a {
    plan.shared_of(vm).map(|(s, _)| s).enumerate()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt::firmware as dtb;

    const QEMU_VIRT: &[u8] = include_bytes!("../../tests/data/qemu-virt.dtb");

    fn plan() -> &'static Plan {
        let board = concat!(env!("CARGO_MANIFEST_DIR"), "/../boards/test-partition.toml");
        let b = tessera_boards::load(std::path::Path::new(board)).unwrap();
        Box::leak(Box::new(b.plan()))
    }

    #[test]
    fn test_plan_fits_qemu_virt() {
        let p = dtb::parse(QEMU_VIRT).unwrap();
        assert_eq!(check_against_dtb(plan(), &p, 0x4020_0000), Ok(()));
        assert_eq!(
            check_against_dtb(plan(), &p, 0x5000_0000),
            Err(Mismatch::ImageOutsideReserve { image: 0x5000_0000 })
        );
        let mut fewer = p.clone();
        fewer.cpus.truncate(3);
        let e = check_against_dtb(plan(), &fewer, 0x4020_0000).unwrap_err();
        assert_eq!(e, Mismatch::CoreMissing { core: 3, mpidr: 3 });
        assert_eq!(
            e.to_string(),
            "platform cpus: core 3 (MPIDR 0x3) is not in the DTB"
        );
        let mut small = p.clone();
        small.ram[0].size = 1 << 30;
        assert!(matches!(
            check_against_dtb(plan(), &small, 0x4020_0000),
            Err(Mismatch::RamMissing { .. })
        ));
    }

    #[test]
    fn devices_missing_from_the_machine() {
        let board = concat!(env!("CARGO_MANIFEST_DIR"), "/../boards/qemu-virt.toml");
        let b = tessera_boards::load(std::path::Path::new(board)).unwrap();
        let plan: &'static Plan = Box::leak(Box::new(b.plan()));
        let p = dtb::parse(QEMU_VIRT).unwrap();
        let names = |present: &dyn Fn(u64) -> bool, p: &Platform| -> Vec<&str> {
            absent_devices(plan, p, present).map(|d| d.name).collect()
        };
        assert!(names(&|a| dtb::node_at(QEMU_VIRT, a), &p).is_empty());
        // No PL061 (QEMU through firmware with ACPI), no PCIe host.
        let mut no_pcie = p.clone();
        no_pcie.pcie = None;
        assert_eq!(
            names(
                &|a| a != 0x0903_0000 && dtb::node_at(QEMU_VIRT, a),
                &no_pcie
            ),
            ["pcie", "gpio"]
        );
    }

    #[test]
    fn stage2_of_the_test_vms() {
        let plan = plan();
        let t0 = plan.vm("t0").unwrap();
        let maps: Vec<Mapping> = stage2_mappings(plan, t0).collect();
        assert_eq!(maps[0].ipa, 0x4000_0000);
        assert_eq!(maps[0].size, 32 << 20);
        assert_eq!(maps[0].attrs, Attrs::RWX);
        // Each shared region: its header page read-only, then the data with
        // the peer's access, never executable.
        let header = Attrs {
            mem: MemType::Normal,
            write: false,
            exec: false,
        };
        let t0_t2 = plan.shared("t0-t2").unwrap();
        assert_eq!(
            maps[1],
            Mapping {
                ipa: 0x5000_0000,
                pa: t0_t2.pa,
                size: 0x1000,
                attrs: header
            }
        );
        assert_eq!(
            (maps[2].ipa, maps[2].pa, maps[2].size),
            (0x5000_1000, t0_t2.pa + 0x1000, t0_t2.size - 0x1000)
        );
        assert!(maps[2].attrs.write && !maps[2].attrs.exec);
        assert_eq!(maps[3].attrs, header);
        assert_eq!(maps[3].ipa, 0x5100_0000);
        assert_eq!(maps[4].ipa, 0x5100_1000);
        assert!(!maps[4].attrs.write, "t0-t1 has no writers");
        assert_eq!(maps.len(), 5);
        let t1 = plan.vm("t1").unwrap();
        let maps: Vec<Mapping> = stage2_mappings(plan, t1).collect();
        // RAM, its region with t0 (header, data), then the passed-through
        // RTC (identity, device).
        assert_eq!(
            maps[3],
            Mapping {
                ipa: 0x0901_0000,
                pa: 0x0901_0000,
                size: 0x1000,
                attrs: Attrs::DEVICE
            }
        );
        // No two VMs share RAM pages.
        let t2 = plan.vm("t2").unwrap();
        let pa = |v: &Vm| v.memory[0].pa_range();
        assert!(
            !pa(t0).overlaps(&pa(t1)) && !pa(t1).overlaps(&pa(t2)) && !pa(t0).overlaps(&pa(t2))
        );
        assert_eq!(
            shared_index(plan, "t2")
                .map(|(i, s)| (i, s.name))
                .collect::<Vec<_>>(),
            vec![(0, "t0-t2")]
        );
        assert_eq!(shared_index(plan, "t1").count(), 1);
    }
}
