//! The compiled generated tables equal what the loader builds from the same
//! board files, and hold the addresses the board files promise.

use std::path::Path;
use tessera_boards::{Access, FaultPolicy, Spi};
use tessera_boards_gentest::{qemu_virt, test_partition};

fn loaded(file: &str) -> tessera_boards::Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    tessera_boards::load(&path).unwrap().plan()
}

#[test]
fn generated_tables_round_trip() {
    assert_eq!(qemu_virt::PLAN, loaded("qemu-virt.toml"));
    assert_eq!(test_partition::PLAN, loaded("test-partition.toml"));
}

#[test]
fn qemu_virt_cockpit_layout() {
    let plan = &qemu_virt::PLAN;
    let p = &plan.platform;
    assert_eq!(p.uart.mmio.base, 0x0900_0000);
    assert_eq!(p.uart.spi.intid(), 33);
    assert_eq!(p.gic.redistributor(3).base, 0x080A_0000 + 3 * 0x2_0000);
    assert_eq!(p.smmu.map(|s| s.base), Some(0x0905_0000));
    assert_eq!(
        [0, 1, 2, 3].map(|c| plan.vm_for_core(c).unwrap().name),
        ["cluster", "ivi", "gpu", "gpu"]
    );
    let cluster = plan.vm("cluster").unwrap();
    assert_eq!(cluster.fault, FaultPolicy::Restart);
    // First VM memory starts right after the hypervisor's 64 MiB.
    assert_eq!(cluster.memory[0].pa, 0x4400_0000);
    assert_eq!(cluster.ipa_to_pa(0x4000_1000), Some(0x4400_1000));
    let gpu = plan.gpu_vm().unwrap();
    assert_eq!(gpu.name, "gpu");
    assert_eq!(gpu.ram_size(), 768 << 20);
    // The 64-bit PCIe window ends at 1 TiB: a 40-bit stage-2 input size.
    assert_eq!(plan.ipa_end(gpu), 1 << 40);
    assert!(gpu.owns_spi(Spi(3)) && !cluster.owns_spi(Spi(3)));
    assert_eq!(plan.display_vm().unwrap().name, "gpu");
    assert_eq!(plan.console_vm().unwrap().name, "ivi");
    let doorbells: Vec<_> = plan
        .shared_of("gpu")
        .map(|(s, p)| (s.name, p.access, p.doorbell))
        .collect();
    assert_eq!(
        doorbells,
        [
            ("gpu-cluster", Access::ReadWrite, Some(Spi(100))),
            ("gpu-ivi", Access::ReadWrite, Some(Spi(101)))
        ]
    );
}

#[test]
fn test_partition_layout() {
    let plan = &test_partition::PLAN;
    assert_eq!(plan.vms.len(), 3);
    assert_eq!(plan.vm_for_core(3).unwrap().name, "t2");
    assert_eq!(plan.vm("t1").unwrap().fault, FaultPolicy::Restart);
    for vm in plan.vms {
        assert_eq!(vm.ram_size(), 32 << 20);
    }
    assert_eq!(plan.shared("t0-t2").unwrap().peers.len(), 2);
}
