//! A readable summary of a loaded board, printed by `check-board`.

use std::fmt::Write;
use std::prelude::rust_2021::*;

use crate::check::fmt_range;
use crate::model::{Access, Range};
use crate::parse::Board;

fn mib(size: u64) -> String {
    if size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else {
        format!("{} KiB", size >> 10)
    }
}

pub fn summary(board: &Board) -> String {
    let plan = board.plan();
    let p = &plan.platform;
    let mut s = String::new();
    let ram: Vec<String> = p.ram.iter().map(fmt_range).collect();
    let _ = writeln!(
        s,
        "{}: platform \"{}\", {} cores, RAM {}, hypervisor {}",
        board.file,
        p.name,
        p.cpus.len(),
        ram.join(", "),
        fmt_range(&p.hypervisor)
    );
    if let Some(st) = &p.staging {
        let _ = writeln!(s, "  staging {} ({})", fmt_range(st), mib(st.size));
    }
    for vm in plan.vms {
        let _ = writeln!(
            s,
            "  vm \"{}\" vmid {} cores {:?} fault {:?} entry {:#x}",
            vm.name, vm.vmid, vm.cores, vm.fault, vm.entry
        );
        for m in vm.memory {
            let _ = writeln!(
                s,
                "    memory ipa {} -> pa {} ({})",
                fmt_range(&m.ipa_range()),
                fmt_range(&m.pa_range()),
                mib(m.size)
            );
        }
        for i in vm.images {
            let _ = writeln!(s, "    image \"{}\" at ipa {:#x}", i.name, i.ipa);
        }
        if let Some(l) = &vm.linux {
            for (what, f) in [("kernel", Some(&l.kernel)), ("initrd", l.initrd.as_ref())] {
                if let Some(f) = f {
                    let _ = writeln!(
                        s,
                        "    linux {what} \"{}\" staged at {}",
                        f.file,
                        fmt_range(&f.slot())
                    );
                }
            }
            let _ = writeln!(s, "    linux bootargs {:?}", l.bootargs);
        }
        for d in vm.devices {
            let mmio: Vec<String> = d.mmio.iter().map(fmt_range).collect();
            let _ = writeln!(s, "    device \"{}\" mmio {}", d.name, mmio.join(", "));
        }
        if !vm.spis.is_empty() {
            let spis: Vec<u32> = vm.spis.iter().map(|s| s.0).collect();
            let _ = writeln!(s, "    SPIs {spis:?}");
        }
        for (sh, peer) in plan.shared_of(vm.name) {
            let _ = writeln!(
                s,
                "    shared \"{}\" ipa {} -> pa {} {}{}",
                sh.name,
                fmt_range(&Range::new(peer.ipa, sh.size)),
                fmt_range(&sh.pa_range()),
                match peer.access {
                    Access::ReadOnly => "ro",
                    Access::ReadWrite => "rw",
                },
                match peer.doorbell {
                    Some(spi) => format!(" doorbell SPI {}", spi.0),
                    None => String::new(),
                }
            );
        }
    }
    let owner = |o: Option<&str>| o.unwrap_or("-").to_owned();
    let _ = writeln!(
        s,
        "  gpu {}, display {}, console input first {}",
        owner(plan.gpu_owner),
        owner(plan.display_owner),
        plan.console.input_first
    );
    s
}
