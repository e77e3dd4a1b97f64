//! What this guest learns from its DTB: VM name and boot count (Tessera's
//! `/chosen` properties), vCPUs, RAM, the PSCI conduit and shared region 0.

use crate::psci;
use core::sync::atomic::Ordering;
use fdt::Fdt;

/// A shared region of this VM (`tessera-shm@` node): its data part, after
/// the hypervisor's header page (`tessera,data-offset`).
#[derive(Clone, Copy, Debug)]
pub struct Shm {
    pub base: u64,
    pub size: u64,
    /// Start of the region (the header page, when it has one).
    pub header: u64,
    /// `tessera,data-offset`, if the DTB gives it.
    pub data_offset: Option<u64>,
    /// This VM's position among the region's peers (`tessera,peer-index`).
    pub peer_index: Option<u32>,
    /// The doorbell's INTID (SPI + 32), if it has one.
    pub intid: Option<u32>,
    pub writable: bool,
}

pub struct VmInfo {
    name: [u8; 32],
    name_len: usize,
    pub boot_count: u32,
    pub vcpus: usize,
    /// The first RAM region: (base, size).
    pub ram: (u64, u64),
    /// The DTB itself: (base, size).
    pub dtb: (u64, u64),
    pub shm: Option<Shm>,
    /// Shared regions by index (0-3).
    pub shms: [Option<Shm>; 4],
    /// A passed-through PL031 RTC, if the DTB has one: (base, SPI).
    pub rtc: Option<(u64, u32)>,
}

impl VmInfo {
    /// `native` when the DTB names no VM (plain QEMU virt).
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }
    pub fn in_vm(&self) -> bool {
        self.name() != "native"
    }
}

fn be32(bytes: &[u8], cell: usize) -> Option<u32> {
    let b = bytes.get(cell * 4..cell * 4 + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads the DTB at `addr`; a missing or broken DTB leaves defaults (one
/// vCPU, QEMU virt's RAM at 0x4000_0000, 128 MiB) and a message.
pub fn read(addr: u64) -> VmInfo {
    let mut vm = VmInfo {
        name: [0; 32],
        name_len: 0,
        boot_count: 0,
        vcpus: 1,
        ram: (0x4000_0000, 128 << 20),
        dtb: (addr, 0),
        shm: None,
        shms: [None; 4],
        rtc: None,
    };
    let set_name = |vm: &mut VmInfo, s: &str| {
        let n = s.len().min(vm.name.len());
        vm.name[..n].copy_from_slice(&s.as_bytes()[..n]);
        vm.name_len = n;
    };
    set_name(&mut vm, "native");
    // SAFETY: x0 at entry is the DTB's address (boot protocol); the parser
    // checks the magic before it reads further.
    let fdt = match unsafe { Fdt::from_ptr(addr as *const u8) } {
        Ok(f) => f,
        Err(e) => {
            crate::console::info(format_args!("no usable DTB at {addr:#x}: {e:?}"));
            return vm;
        }
    };
    vm.dtb.1 = fdt.total_size() as u64;
    // By node name over all nodes: `find_node` of fdt 0.1.5 gets lost in
    // DTBs with NOP tokens (QEMU's own, once it has edited /chosen).
    let node = |name: &str| fdt.all_nodes().find(|n| n.name == name);
    if let Some(chosen) = node("chosen") {
        if let Some(name) = chosen.property("tessera,vm-name").and_then(|p| p.as_str()) {
            set_name(&mut vm, name);
        }
        if let Some(n) = chosen
            .property("tessera,boot-count")
            .and_then(|p| p.as_usize())
        {
            vm.boot_count = n as u32;
        }
    }
    vm.vcpus = fdt
        .all_nodes()
        .filter(|n| n.name.starts_with("cpu@"))
        .count()
        .clamp(1, crate::MAX_VCPUS);
    if let Some(psci) = node("psci") {
        let smc = psci.property("method").and_then(|p| p.as_str()) == Some("smc");
        psci::USE_SMC.store(smc, Ordering::Relaxed);
    }
    for node in fdt.all_nodes() {
        if node.name.starts_with("memory@") {
            if let Some(r) = node.reg().and_then(|mut r| r.next()) {
                vm.ram = (r.starting_address as u64, r.size.unwrap_or(0) as u64);
                break;
            }
        }
    }
    if let Some(n) = fdt.all_nodes().find(|n| n.name.starts_with("pl031@")) {
        let base = n
            .reg()
            .and_then(|mut r| r.next())
            .map(|r| r.starting_address as u64);
        let spi = n.property("interrupts").and_then(|p| be32(p.value, 1));
        if let (Some(base), Some(spi)) = (base, spi) {
            vm.rtc = Some((base, spi));
        }
    }
    for node in fdt.all_nodes() {
        if !node.name.starts_with("tessera-shm@") {
            continue;
        }
        let index = node.property("tessera,index").and_then(|p| p.as_usize());
        let reg = node.reg().and_then(|mut r| r.next());
        if let (Some(index @ 0..4), Some(reg)) = (index, reg) {
            // interrupts = <0 spi flags>: an SPI.
            let intid = node
                .property("interrupts")
                .and_then(|p| (be32(p.value, 0)? == 0).then_some(be32(p.value, 1)? + 32));
            let cell = |name: &str| node.property(name).and_then(|p| be32(p.value, 0));
            let data_offset = cell("tessera,data-offset").map(u64::from);
            let (start, size) = (reg.starting_address as u64, reg.size.unwrap_or(0) as u64);
            let skip = data_offset.unwrap_or(0).min(size);
            vm.shms[index] = Some(Shm {
                base: start + skip,
                size: size - skip,
                header: start,
                data_offset,
                peer_index: cell("tessera,peer-index"),
                intid,
                writable: node.property("tessera,writable").is_some(),
            });
        }
    }
    vm.shm = vm.shms[0];
    vm
}
