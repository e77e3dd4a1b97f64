//! Build-time checks of a board file. Every check reports through the sink
//! and carries on, so one run lists every problem.

use std::collections::BTreeMap;
use std::prelude::rust_2021::*;

use crate::error::{Errors, Sink};
use crate::model::{PciFunction, Range, Spi};
use crate::parse::{Board, RangeCfg, VmCfg};

/// Stage-2 granule: the smallest unit a VM's mappings can have.
pub const PAGE: u64 = 0x1000;
/// VMIDs are 8 bits (16-bit VMIDs are optional in the architecture).
pub const MAX_VMID: u64 = 255;
/// Size of a GICv3 distributor frame, which each VM sees virtualized.
const GICD_SIZE: u64 = 0x1_0000;

pub fn fmt_range(r: &Range) -> String {
    format!("{:#x}..{:#x}", r.base, r.end())
}

fn range(r: &RangeCfg) -> Range {
    Range::new(r.base, r.size.0)
}

fn vm_entry(name: &str) -> String {
    format!("vm \"{name}\"")
}

fn shared_entry(name: &str) -> String {
    format!("shared \"{name}\"")
}

fn check_addr(s: &mut Sink, entry: &str, what: &str, addr: u64) {
    if !addr.is_multiple_of(PAGE) {
        s.err(entry, format!("{what} {addr:#x} is not 4 KiB aligned"));
    }
}

fn check_size(s: &mut Sink, entry: &str, size: u64) {
    if size == 0 {
        s.err(entry, "size is zero");
    } else if !size.is_multiple_of(PAGE) {
        s.err(entry, format!("size {size:#x} is not a multiple of 4 KiB"));
    }
}

fn check_spi(s: &mut Sink, entry: &str, spi: u32) {
    if spi > Spi::MAX {
        s.err(
            entry,
            format!("SPI {spi} is beyond the last GICv3 SPI ({})", Spi::MAX),
        );
    }
}

/// Reports, for each range, the earlier ranges of the list it overlaps.
/// `space` says which address space ("guest-physical", "physical").
fn check_overlaps(s: &mut Sink, space: &str, ranges: &[(String, Range)]) {
    for (i, (entry, r)) in ranges.iter().enumerate() {
        for (other, o) in &ranges[..i] {
            if r.overlaps(o) {
                s.err(
                    entry,
                    format!(
                        "{space} range {} overlaps {other} ({})",
                        fmt_range(r),
                        fmt_range(o)
                    ),
                );
            }
        }
    }
}

/// Structure and naming checks; run before addresses are assigned.
pub fn check(board: &Board, errors: &mut Errors) {
    let mut s = Sink {
        file: &board.file,
        errors,
    };
    check_platform(board, &mut s);
    check_vms(board, &mut s);
    check_shared(board, &mut s);
    check_owners(board, &mut s);
    check_staging(board, &mut s);
}

/// Longest staged file name: it is a property name in the DTB the loader
/// hands over (`/chosen/tessera-loaded`), and those are at most 31 bytes.
pub const MAX_FILE_NAME: usize = 31;

/// Linux VMs and the staging area their files are loaded into.
fn check_staging(board: &Board, s: &mut Sink) {
    let p = &board.platform;
    let staging = p.staging.as_ref().map(range);
    if let Some(st) = &staging {
        check_addr(s, "platform.staging", "base", st.base);
        check_size(s, "platform.staging", st.size);
        if !p.ram.iter().any(|r| range(r).contains_range(st)) {
            s.err(
                "platform.staging",
                format!("range {} is outside RAM", fmt_range(st)),
            );
        }
    }
    // Every slot once, by file: two VMs may boot the same file from one slot.
    let mut slots: Vec<(String, &str, Range)> = Vec::new();
    for vm in &board.vms {
        let Some(linux) = &vm.linux else { continue };
        let e = vm_entry(&vm.name);
        if !vm.images.is_empty() {
            s.err(
                &e,
                "boots Linux, so it takes no `image` (its files come from platform.staging)",
            );
        }
        if vm.entry.is_some() {
            s.err(
                &e,
                "boots Linux, so it takes no `entry` (RAM base + the Image's text_offset)",
            );
        }
        if let Some(m) = vm.memory.first() {
            if !m.ipa.is_multiple_of(crate::assign::BLOCK) {
                s.err(
                    &format!("{e} memory[0]"),
                    format!(
                        "ipa {:#x} is not 2 MiB aligned, as a Linux kernel's RAM base must be",
                        m.ipa
                    ),
                );
            }
        }
        if linux.bootargs.contains('\0') {
            s.err(&format!("{e} linux.bootargs"), "contains a NUL byte");
        }
        for (key, f) in [
            ("kernel", Some(&linux.kernel)),
            ("initrd", linux.initrd.as_ref()),
        ] {
            let Some(f) = f else { continue };
            let fe = format!("{e} linux.{key}");
            let name_ok = !f.file.is_empty()
                && f.file.len() <= MAX_FILE_NAME
                && f.file
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
            if !name_ok {
                s.err(
                    &fe,
                    format!(
                        "file name \"{}\" must be 1 to {MAX_FILE_NAME} characters of A-Z a-z 0-9 . _ + -",
                        f.file
                    ),
                );
            }
            check_addr(s, &fe, "at", f.at);
            check_size(s, &fe, f.max.0);
            let slot = Range::new(f.at, f.max.0);
            match &staging {
                None => s.err(&fe, "needs platform.staging to be loaded into"),
                Some(st) if !st.contains_range(&slot) => s.err(
                    &fe,
                    format!(
                        "slot {} is outside platform.staging ({})",
                        fmt_range(&slot),
                        fmt_range(st)
                    ),
                ),
                Some(_) => {}
            }
            match slots.iter().find(|(_, file, _)| *file == f.file) {
                Some((other, _, r)) if *r != slot => s.err(
                    &fe,
                    format!(
                        "file \"{}\" is already loaded at {} by {other}",
                        f.file,
                        fmt_range(r)
                    ),
                ),
                Some(_) => {}
                None => slots.push((fe, &f.file, slot)),
            }
        }
    }
    let labelled: Vec<(String, Range)> = slots
        .into_iter()
        .map(|(e, file, r)| (format!("{e} (\"{file}\")"), r))
        .collect();
    check_overlaps(s, "staging", &labelled);
}

fn check_platform(board: &Board, s: &mut Sink) {
    let p = &board.platform;
    if p.ram.is_empty() {
        s.err("platform.ram", "no RAM range");
    }
    for (i, r) in p.ram.iter().enumerate() {
        let e = format!("platform.ram[{i}]");
        check_addr(s, &e, "base", r.base);
        check_size(s, &e, r.size.0);
    }
    let hyp = range(&p.hypervisor);
    check_addr(s, "platform.hypervisor", "base", hyp.base);
    check_size(s, "platform.hypervisor", hyp.size);
    if !p.ram.iter().any(|r| range(r).contains_range(&hyp)) {
        s.err(
            "platform.hypervisor",
            format!("range {} is outside RAM", fmt_range(&hyp)),
        );
    }
    if p.cpus.is_empty() {
        s.err("platform.cpus", "no CPU");
    }
    for (i, c) in p.cpus.iter().enumerate() {
        let e = format!("platform.cpus[{i}]");
        if let Some(j) = p.cpus[..i].iter().position(|o| o.core == c.core) {
            s.err(&e, format!("core {} is already cpus[{j}]", c.core));
        }
        if let Some(j) = p.cpus[..i].iter().position(|o| o.mpidr == c.mpidr) {
            s.err(&e, format!("mpidr {:#x} is already cpus[{j}]", c.mpidr));
        }
    }
    check_addr(s, "platform.uart", "base", p.uart.base);
    check_size(s, "platform.uart", p.uart.size.0);
    check_spi(s, "platform.uart", p.uart.spi);
    check_addr(s, "platform.gic", "distributor", p.gic.distributor);
    check_addr(s, "platform.gic", "redistributor", p.gic.redistributor);
    check_size(s, "platform.gic", p.gic.redistributor_stride.0);
    if let Some(smmu) = &p.smmu {
        check_addr(s, "platform.smmu", "base", smmu.base);
        check_size(s, "platform.smmu", smmu.size.0);
    }
    let mut spi_owner: BTreeMap<u32, &str> = BTreeMap::new();
    for (i, d) in p.devices.iter().enumerate() {
        let e = format!("platform device \"{}\"", d.name);
        if p.devices[..i].iter().any(|o| o.name == d.name) {
            s.err(&e, "duplicate device name");
        }
        for (j, m) in d.mmio.iter().enumerate() {
            let e = format!("{e} mmio[{j}]");
            check_addr(s, &e, "base", m.base);
            check_size(s, &e, m.size.0);
        }
        for &spi in &d.spis {
            check_spi(s, &e, spi);
            if spi == p.uart.spi {
                s.err(&e, format!("SPI {spi} is the console UART's"));
            } else if let Some(other) = spi_owner.insert(spi, &d.name) {
                if other != d.name {
                    s.err(&e, format!("SPI {spi} is already device \"{other}\"'s"));
                }
            }
        }
    }
    // A passed-through window over RAM or the hypervisor's own hardware
    // would hand a VM the keys to the others.
    let mut map: Vec<(String, Range)> = p
        .ram
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("platform.ram[{i}]"), range(r)))
        .collect();
    map.push((
        "platform.uart".into(),
        Range::new(p.uart.base, p.uart.size.0),
    ));
    map.push((
        "platform.gic distributor".into(),
        Range::new(p.gic.distributor, GICD_SIZE),
    ));
    map.push((
        "platform.gic redistributors".into(),
        Range::new(
            p.gic.redistributor,
            p.gic
                .redistributor_stride
                .0
                .saturating_mul(p.cpus.len() as u64),
        ),
    ));
    if let Some(smmu) = &p.smmu {
        map.push(("platform.smmu".into(), range(smmu)));
    }
    for d in &p.devices {
        for (j, m) in d.mmio.iter().enumerate() {
            map.push((
                format!("platform device \"{}\" mmio[{j}]", d.name),
                range(m),
            ));
        }
    }
    check_overlaps(s, "physical", &map);
    for (key, dev) in [("platform.gpu", &p.gpu), ("platform.display", &p.display)] {
        if let Some(dev) = dev {
            if !p.devices.iter().any(|d| &d.name == dev) {
                s.err(key, format!("unknown device \"{dev}\""));
            }
        }
    }
}

fn check_vms(board: &Board, s: &mut Sink) {
    let p = &board.platform;
    let vmids = board.vmids();
    let mut core_owner: BTreeMap<u32, &str> = BTreeMap::new();
    let mut device_owner: BTreeMap<&str, &str> = BTreeMap::new();
    let mut spi_owner: BTreeMap<u32, &str> = BTreeMap::new();
    let mut pci_owner: BTreeMap<PciFunction, String> = BTreeMap::new();
    let cores: Vec<String> = p.cpus.iter().map(|c| format!("{}", c.core)).collect();
    for (i, vm) in board.vms.iter().enumerate() {
        let e = vm_entry(&vm.name);
        if let Some(j) = board.vms[..i].iter().position(|o| o.name == vm.name) {
            s.err(&e, format!("duplicate vm name (vm[{i}] and vm[{j}])"));
        }
        match (vm.vmid, vmids[i]) {
            (Some(0), _) => s.err(&e, "vmid 0 is reserved (use 1..=255)"),
            (Some(id), _) if id > MAX_VMID => {
                s.err(&e, format!("vmid {id} overflows the 8-bit VMID (1..=255)"))
            }
            (None, id) if id > MAX_VMID => s.err(
                &e,
                format!("automatic vmid {id} overflows the 8-bit VMID (at most 255 VMs)"),
            ),
            (_, id) => {
                if let Some(j) = vmids[..i].iter().position(|&o| o == id) {
                    s.err(
                        &e,
                        format!("vmid {id} is already vm \"{}\"'s", board.vms[j].name),
                    );
                }
            }
        }

        if vm.cores.is_empty() {
            s.err(&e, "has no cores");
        } else if vm.cores.len() > crate::guest::MAX_VCPUS {
            s.err(
                &e,
                format!(
                    "{} cores, but a VM has at most {} vCPUs",
                    vm.cores.len(),
                    crate::guest::MAX_VCPUS
                ),
            );
        }
        for (j, &c) in vm.cores.iter().enumerate() {
            if !p.cpus.iter().any(|cpu| cpu.core == c) {
                s.err(
                    &e,
                    format!(
                        "core {c} is not a core of platform \"{}\" (cores: {})",
                        p.name,
                        cores.join(", ")
                    ),
                );
            } else if vm.cores[..j].contains(&c) {
                s.err(&e, format!("core {c} is listed twice"));
            } else if let Some(other) = core_owner.insert(c, &vm.name) {
                s.err(&e, format!("core {c} is already in vm \"{other}\""));
                core_owner.insert(c, other);
            }
        }

        if vm.memory.is_empty() {
            s.err(&e, "has no memory");
        }
        for (j, m) in vm.memory.iter().enumerate() {
            let e = format!("{e} memory[{j}]");
            check_addr(s, &e, "ipa", m.ipa);
            check_size(s, &e, m.size.0);
            if let Some(phys) = m.phys {
                check_addr(s, &e, "phys", phys);
            }
        }
        let in_memory = |ipa: u64| {
            vm.memory
                .iter()
                .any(|m| Range::new(m.ipa, m.size.0).contains(ipa))
        };
        for (j, img) in vm.images.iter().enumerate() {
            if !in_memory(img.ipa) {
                s.err(
                    &format!("{e} image[{j}]"),
                    format!(
                        "load address {:#x} of \"{}\" is outside the VM's memory",
                        img.ipa, img.name
                    ),
                );
            }
        }
        if let Some(entry) = vm.entry {
            if !in_memory(entry) {
                s.err(&e, format!("entry {entry:#x} is outside the VM's memory"));
            }
        }

        let names: Vec<&str> = p.devices.iter().map(|d| d.name.as_str()).collect();
        for (j, d) in vm.devices.iter().enumerate() {
            if !names.contains(&d.as_str()) {
                s.err(
                    &e,
                    format!(
                        "unknown device \"{d}\" (platform devices: {})",
                        names.join(", ")
                    ),
                );
            } else if vm.devices[..j].contains(d) {
                s.err(&e, format!("device \"{d}\" is listed twice"));
            } else if let Some(other) = device_owner.insert(d, &vm.name) {
                s.err(
                    &e,
                    format!("device \"{d}\" is already passed through to vm \"{other}\""),
                );
                device_owner.insert(d, other);
            }
        }
        check_pci(board, vm, &e, &mut pci_owner, s);
        // Device SPIs follow the device (checked above); explicit ones must
        // not be another VM's nor the hypervisor's console.
        for &spi in &vm.interrupts {
            check_spi(s, &e, spi);
            if spi == p.uart.spi {
                s.err(
                    &e,
                    format!("SPI {spi} is the console UART's, which the hypervisor owns"),
                );
            }
        }
        for spi in vm.spis(p) {
            match spi_owner.get(&spi) {
                Some(other) if *other != vm.name => s.err(
                    &e,
                    format!("SPI {spi} is already passed through to vm \"{other}\""),
                ),
                _ => {
                    spi_owner.insert(spi, &vm.name);
                }
            }
        }

        check_overlaps(s, "guest-physical", &guest_map(board, i));
    }
}

/// Everything a VM sees in its guest-physical space, labelled by entry:
/// RAM, passed-through MMIO (identity mapped), shared-memory windows and the
/// hypervisor's emulated GIC and UART.
fn guest_map(board: &Board, vm_index: usize) -> Vec<(String, Range)> {
    let p = &board.platform;
    let vm = &board.vms[vm_index];
    let e = vm_entry(&vm.name);
    let mut map = Vec::new();
    for (j, m) in vm.memory.iter().enumerate() {
        map.push((format!("{e} memory[{j}]"), Range::new(m.ipa, m.size.0)));
    }
    for d in &vm.devices {
        if let Some(dev) = p.devices.iter().find(|x| &x.name == d) {
            for (j, m) in dev.mmio.iter().enumerate() {
                map.push((format!("{e} device \"{d}\" mmio[{j}]"), range(m)));
            }
        }
    }
    for sh in &board.shared {
        for (j, peer) in sh.peers.iter().enumerate() {
            if peer.vm == vm.name {
                let r = Range::new(peer.ipa, sh.size.0);
                map.push((format!("{} peer[{j}]", shared_entry(&sh.name)), r));
            }
        }
    }
    // The emulated devices live at fixed guest addresses, not at the
    // platform's physical ones.
    for (what, r) in crate::guest::emulated(vm.cores.len()) {
        map.push((format!("{e} {what}"), r));
    }
    map
}

fn check_shared(board: &Board, s: &mut Sink) {
    let p = &board.platform;
    // Doorbells already given out, per VM: SPI -> region name.
    let mut doorbells: BTreeMap<(&str, u32), &str> = BTreeMap::new();
    for (i, sh) in board.shared.iter().enumerate() {
        let e = shared_entry(&sh.name);
        if board.shared[..i].iter().any(|o| o.name == sh.name) {
            s.err(&e, "duplicate shared region name");
        }
        check_size(s, &e, sh.size.0);
        if sh.size.0 != 0 && sh.size.0 <= crate::guest::SHM_HEADER_SIZE {
            s.err(
                &e,
                format!(
                    "size {:#x} leaves no room for data after the 4 KiB header page",
                    sh.size.0
                ),
            );
        }
        if let Some(phys) = sh.phys {
            check_addr(s, &e, "phys", phys);
        }
        if sh.peers.is_empty() {
            s.err(&e, "has no peers");
        }
        for w in &sh.writers {
            if !sh.peers.iter().any(|p| &p.vm == w) {
                s.err(&e, format!("writer \"{w}\" is not a peer"));
            }
        }
        for (j, peer) in sh.peers.iter().enumerate() {
            let pe = format!("{e} peer[{j}]");
            check_addr(s, &pe, "ipa", peer.ipa);
            let Some(vm) = board.vms.iter().find(|v| v.name == peer.vm) else {
                s.err(&pe, format!("unknown vm \"{}\"", peer.vm));
                continue;
            };
            if sh.peers[..j].iter().any(|o| o.vm == peer.vm) {
                s.err(&pe, format!("vm \"{}\" is a peer twice", peer.vm));
            }
            let Some(db) = peer.doorbell else { continue };
            check_spi(s, &pe, db);
            if vm.spis(p).contains(&db) {
                s.err(
                    &pe,
                    format!(
                        "doorbell SPI {db} collides with an interrupt passed through to vm \"{}\"",
                        vm.name
                    ),
                );
            } else if db == p.uart.spi {
                s.err(
                    &pe,
                    format!("doorbell SPI {db} collides with the virtual UART's SPI"),
                );
            } else if let Some(other) = doorbells.insert((&vm.name, db), &sh.name) {
                s.err(
                    &pe,
                    format!(
                        "doorbell SPI {db} is already the doorbell of shared \"{other}\" in vm \"{}\"",
                        vm.name
                    ),
                );
            }
        }
    }
}

fn check_owners(board: &Board, s: &mut Sink) {
    let p = &board.platform;
    let o = &board.owners;
    for (key, owner, device, what) in [
        ("owners.gpu", &o.gpu, &p.gpu, "the GPU"),
        ("owners.display", &o.display, &p.display, "the display"),
        ("owners.console", &o.console, &None, "console input"),
    ] {
        let Some(owner) = owner else { continue };
        let Some(vm) = board.vms.iter().find(|v| &v.name == owner) else {
            s.err(key, format!("unknown vm \"{owner}\""));
            continue;
        };
        if let Some(dev) = device {
            if !vm.devices.contains(dev) {
                s.err(
                    key,
                    format!(
                        "vm \"{owner}\" owns {what} but does not pass through device \"{dev}\""
                    ),
                );
            }
        }
    }
    if board.vms.is_empty() {
        s.err("vm", "the plan has no VM");
    }
}

/// Physical placement checks, once every region has an address: inside RAM
/// and no two of hypervisor, VM memory and shared regions overlapping.
pub fn check_placement(board: &Board, errors: &mut Errors) {
    let mut s = Sink {
        file: &board.file,
        errors,
    };
    let p = &board.platform;
    let mut placed = vec![(String::from("platform.hypervisor"), range(&p.hypervisor))];
    if let Some(st) = &p.staging {
        placed.push(("platform.staging".into(), range(st)));
    }
    for vm in &board.vms {
        for (j, m) in vm.memory.iter().enumerate() {
            let pa = m.phys.expect("assigned");
            placed.push((
                format!("{} memory[{j}]", vm_entry(&vm.name)),
                Range::new(pa, m.size.0),
            ));
        }
    }
    for sh in &board.shared {
        let pa = sh.phys.expect("assigned");
        placed.push((shared_entry(&sh.name), Range::new(pa, sh.size.0)));
    }
    // The hypervisor and staging ranges are checked against RAM by `check`.
    let fixed = 1 + p.staging.is_some() as usize;
    for (e, r) in &placed[fixed..] {
        if !p.ram.iter().any(|ram| range(ram).contains_range(r)) {
            s.err(e, format!("physical range {} is outside RAM", fmt_range(r)));
        }
    }
    check_overlaps(&mut s, "physical", &placed);
}

/// A VM's PCI functions: well formed, behind a PCIe host it owns, each
/// given to one VM; and a bus master is only passed through behind an SMMU,
/// which is what confines its DMA to the owner's memory.
fn check_pci(
    board: &Board,
    vm: &VmCfg,
    e: &str,
    owner: &mut BTreeMap<PciFunction, String>,
    s: &mut Sink,
) {
    let p = &board.platform;
    let hosts: Vec<&str> = vm
        .devices
        .iter()
        .filter(|d| p.devices.iter().any(|x| &x.name == *d && x.pci_host))
        .map(String::as_str)
        .collect();
    if let Some(host) = hosts.first() {
        if p.smmu.is_none() {
            s.err(
                e,
                format!(
                    "PCIe host \"{host}\" is a bus master: passing it through needs platform.smmu \
                     to confine its DMA to the VM's memory (no SMMU on this board)"
                ),
            );
        }
    }
    if vm.dma_fault == crate::parse::DmaFaultCfg::Fault && vm.pci.is_empty() {
        s.err(
            e,
            "dma_fault = \"fault\" but the VM lists no PCI functions (pci = [...])",
        );
    }
    for (j, f) in vm.pci.iter().enumerate() {
        let Some(func) = PciFunction::parse(f) else {
            s.err(
                e,
                format!("pci[{j}] \"{f}\" is not a PCI function (\"bus:device.function\", hex, e.g. \"00:02.0\")"),
            );
            continue;
        };
        if hosts.is_empty() {
            s.err(
                e,
                format!(
                    "pci[{j}] {func}: the VM owns no PCIe host (a device with pci_host = true)"
                ),
            );
        }
        if let Some(other) = owner.get(&func) {
            s.err(e, format!("pci[{j}] {func} is already vm \"{other}\"'s"));
        } else {
            owner.insert(func, vm.name.clone());
        }
    }
}
