//! The firmware device tree: structural validation, then a summary of what
//! Tessera needs (RAM, CPUs, GIC, UART, PSCI, SMMU, PCIe, bootargs).
//!
//! The `fdt` crate does the parsing, but it trusts the blob (it panics or reads
//! out of bounds on some malformed input), so [`validate`] walks the whole
//! structure block first and every later lookup is on a blob known to be sound.

use core::fmt;
use fdt::{node::FdtNode, Fdt};
use heapless::Vec;

pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Larger than any real firmware DTB; a header claiming more is corrupt.
pub const MAX_DTB_SIZE: usize = 2 << 20;
const HEADER_LEN: usize = 40;
const MAX_DEPTH: usize = 32;

pub const MAX_CPUS: usize = 8;
pub const MAX_RAM_RANGES: usize = 8;
pub const MAX_REDIST_REGIONS: usize = 4;
pub const MAX_PCIE_WINDOWS: usize = 4;
/// 4 pins x 4 slots, as `interrupt-map` usually spells the swizzle out.
pub const MAX_INTX_ROUTES: usize = 32;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// Why a DTB was rejected. Offsets are bytes from the start of the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtbError {
    /// x0 was zero: the loader passed no device tree.
    Missing,
    /// x0 was not 8-byte aligned (the arm64 boot protocol requires it).
    Misaligned(u64),
    BadMagic(u32),
    TooLarge(usize),
    UnsupportedVersion(u32),
    /// A header field points outside `totalsize`.
    BlockOutOfBounds(&'static str),
    /// The structure block is damaged at this offset.
    BadStructure {
        offset: usize,
        what: &'static str,
    },
    /// A required node or property is absent or unusable.
    MissingNode(&'static str),
    TooMany(&'static str),
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DtbError::Missing => write!(f, "no device tree was passed in x0 (x0 = 0)"),
            DtbError::Misaligned(a) => {
                write!(f, "device tree address {a:#x} is not 8-byte aligned")
            }
            DtbError::BadMagic(m) => {
                write!(
                    f,
                    "bad magic {m:#010x} (expected {FDT_MAGIC:#010x}): not a device tree"
                )
            }
            DtbError::TooLarge(n) => {
                write!(
                    f,
                    "header claims {n} bytes, more than the {MAX_DTB_SIZE}-byte limit"
                )
            }
            DtbError::UnsupportedVersion(v) => write!(f, "unsupported version {v} (need 16 or 17)"),
            DtbError::BlockOutOfBounds(b) => {
                write!(f, "the {b} lies outside the blob (truncated?)")
            }
            DtbError::BadStructure { offset, what } => {
                write!(
                    f,
                    "structure damaged at offset {offset:#x}: {what} (truncated?)"
                )
            }
            DtbError::MissingNode(n) => write!(f, "no usable {n}"),
            DtbError::TooMany(n) => write!(f, "more {n} than Tessera supports"),
        }
    }
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads the `totalsize` a header claims, after checking the magic, so the
/// caller knows how many bytes to hand to [`validate`]. `header` needs at
/// least 40 bytes.
pub fn header_total_size(header: &[u8]) -> Result<usize, DtbError> {
    let magic = be32(header, 0).ok_or(DtbError::BlockOutOfBounds("header"))?;
    if magic != FDT_MAGIC {
        return Err(DtbError::BadMagic(magic));
    }
    let total = be32(header, 4).ok_or(DtbError::BlockOutOfBounds("header"))? as usize;
    if total > MAX_DTB_SIZE {
        return Err(DtbError::TooLarge(total));
    }
    if total < HEADER_LEN {
        return Err(DtbError::BlockOutOfBounds("header"));
    }
    Ok(total)
}

/// Checks the header and walks every token of the structure block: node names
/// and property values in bounds, property names inside the strings block,
/// nodes balanced, and an `FDT_END` at depth zero.
pub fn validate(blob: &[u8]) -> Result<(), DtbError> {
    let total = header_total_size(blob)?;
    if blob.len() < total {
        return Err(DtbError::BlockOutOfBounds("blob"));
    }
    let field = |i: usize| be32(blob, i * 4).unwrap_or(0) as usize;
    let (off_struct, off_strings, off_rsv) = (field(2), field(3), field(4));
    let version = field(5) as u32;
    let last_comp = field(6) as u32;
    let (size_strings, size_struct) = (field(8), field(9));
    if version < 16 || last_comp > 17 {
        return Err(DtbError::UnsupportedVersion(version));
    }
    let within = |off: usize, len: usize| off.checked_add(len).is_some_and(|end| end <= total);
    if !within(off_struct, size_struct) || off_struct % 4 != 0 {
        return Err(DtbError::BlockOutOfBounds("structure block"));
    }
    if !within(off_strings, size_strings) {
        return Err(DtbError::BlockOutOfBounds("strings block"));
    }
    if !within(off_rsv, 16) || off_rsv % 8 != 0 {
        return Err(DtbError::BlockOutOfBounds("memory reservation block"));
    }
    // The reservation map ends with a zero entry that must lie inside the blob.
    let mut rsv = off_rsv;
    loop {
        if !within(rsv, 16) {
            return Err(DtbError::BlockOutOfBounds("memory reservation block"));
        }
        if blob[rsv..rsv + 16].iter().all(|&b| b == 0) {
            break;
        }
        rsv += 16;
    }

    let block = &blob[off_struct..off_struct + size_struct];
    let strings = &blob[off_strings..off_strings + size_strings];
    let bad = |pos: usize, what| DtbError::BadStructure {
        offset: off_struct + pos,
        what,
    };
    let mut pos = 0usize;
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let token = be32(block, pos).ok_or(bad(pos, "ends without FDT_END"))?;
        let at = pos;
        pos += 4;
        match token {
            FDT_BEGIN_NODE => {
                if depth == 0 && seen_root {
                    return Err(bad(at, "second root node"));
                }
                seen_root = true;
                let name = block.get(pos..).ok_or(bad(at, "node name out of bounds"))?;
                let len = name
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(bad(at, "unterminated node name"))?;
                core::str::from_utf8(&name[..len])
                    .map_err(|_| bad(at, "node name is not UTF-8"))?;
                pos = align4(pos + len + 1);
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(bad(at, "nodes nested too deeply"));
                }
            }
            FDT_END_NODE => {
                depth = depth
                    .checked_sub(1)
                    .ok_or(bad(at, "FDT_END_NODE without a node"))?;
            }
            FDT_PROP => {
                if depth == 0 {
                    return Err(bad(at, "property outside any node"));
                }
                let len = be32(block, pos).ok_or(bad(at, "property header out of bounds"))?;
                let nameoff =
                    be32(block, pos + 4).ok_or(bad(at, "property header out of bounds"))?;
                let name = strings
                    .get(nameoff as usize..)
                    .ok_or(bad(at, "property name outside the strings block"))?;
                let name_len = name
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(bad(at, "unterminated property name"))?;
                // The `fdt` crate assumes cell counts are one sane u32.
                let name = &name[..name_len];
                core::str::from_utf8(name).map_err(|_| bad(at, "property name is not UTF-8"))?;
                if name.starts_with(b"#") && name.ends_with(b"-cells") {
                    let v = be32(block, pos + 8).filter(|_| len == 4);
                    if v.is_none_or(|v| v > 4) {
                        return Err(bad(at, "bad #...-cells property"));
                    }
                }
                let end = (pos + 8)
                    .checked_add(len as usize)
                    .filter(|&e| e <= block.len())
                    .ok_or(bad(at, "property value out of bounds"))?;
                pos = align4(end);
            }
            FDT_NOP => {}
            FDT_END => {
                if depth != 0 || !seen_root {
                    return Err(bad(at, "FDT_END inside an open node"));
                }
                return Ok(());
            }
            _ => return Err(bad(at, "unknown token")),
        }
    }
}

/// Copies a blob that passed [`validate`] into `out` in a normal form: header,
/// reservation map, structure block without `FDT_NOP` tokens, strings, and no
/// trailing padding. Editors such as libfdt (QEMU, U-Boot) leave NOPs behind,
/// and the `fdt` crate does not skip them everywhere. Returns the new size.
pub fn normalize_into(blob: &[u8], out: &mut [u8]) -> Result<usize, DtbError> {
    validate(blob)?;
    let field = |i: usize| be32(blob, i * 4).unwrap_or(0) as usize;
    let (off_struct, off_strings, off_rsv) = (field(2), field(3), field(4));
    let (size_strings, size_struct) = (field(8), field(9));
    let mut rsv_len = 16;
    while blob[off_rsv + rsv_len - 16..off_rsv + rsv_len]
        .iter()
        .any(|&b| b != 0)
    {
        rsv_len += 16;
    }
    let new_rsv = HEADER_LEN.next_multiple_of(8);
    let new_struct = new_rsv + rsv_len;
    let mut put = |at: usize, bytes: &[u8]| -> Result<(), DtbError> {
        out.get_mut(at..at + bytes.len())
            .ok_or(DtbError::TooLarge(at + bytes.len()))?
            .copy_from_slice(bytes);
        Ok(())
    };
    put(new_rsv, &blob[off_rsv..off_rsv + rsv_len])?;
    let block = &blob[off_struct..off_struct + size_struct];
    let (mut pos, mut w) = (0usize, new_struct);
    loop {
        let token = be32(block, pos).unwrap_or(FDT_END);
        let len = match token {
            FDT_BEGIN_NODE => {
                align4(4 + block[pos + 4..].iter().position(|&b| b == 0).unwrap_or(0) + 1)
            }
            FDT_PROP => 12 + align4(be32(block, pos + 4).unwrap_or(0) as usize),
            _ => 4,
        };
        if token != FDT_NOP {
            put(w, &block[pos..pos + len])?;
            w += len;
        }
        pos += len;
        if token == FDT_END {
            break;
        }
    }
    let new_strings = w;
    put(new_strings, &blob[off_strings..off_strings + size_strings])?;
    let total = new_strings + size_strings;
    put(0, &blob[..HEADER_LEN])?;
    for (i, v) in [
        (1, total),
        (2, new_struct),
        (3, new_strings),
        (4, new_rsv),
        (9, new_struct.abs_diff(w)),
    ] {
        put(i * 4, &(v as u32).to_be_bytes())?;
    }
    Ok(total)
}

fn align4(x: usize) -> usize {
    (x + 3) & !3
}

/// A physical address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub base: u64,
    pub size: u64,
}

impl Range {
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.base + self.size
    }
}

/// How to call PSCI firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conduit {
    Smc,
    Hvc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gic {
    pub dist: Range,
    pub redists: Vec<Range, MAX_REDIST_REGIONS>,
    /// Maintenance interrupt (PPI number, not INTID), used for vGIC later.
    pub maintenance_ppi: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcie {
    pub ecam: Range,
    /// CPU-visible windows of the host bridge (`ranges`): I/O, 32-bit and 64-bit MMIO.
    pub windows: Vec<Range, MAX_PCIE_WINDOWS>,
    /// The same `ranges` entries with their PCI side: (PCI address cells
    /// hi/mid/lo, CPU range), for a guest's copy of the node.
    pub ranges: Vec<([u32; 3], Range), MAX_PCIE_WINDOWS>,
    pub bus_range: (u32, u32),
    /// `interrupt-map-mask` (3 address cells and the pin).
    pub intx_mask: [u32; 4],
    /// INTx routing (`interrupt-map` entries): (child address hi cell, pin
    /// 1-4, SPI number, trigger flags).
    pub intx: Vec<[u32; 4], MAX_INTX_ROUTES>,
    /// Requester ID to SMMU stream ID (`iommu-map` entries naming the SMMU):
    /// (RID base, stream ID base, length). Empty: DMA is not behind it.
    pub iommu_map: Vec<(u32, u32, u32), 4>,
}

impl Pcie {
    /// The SMMU stream ID of requester ID `rid`, if the host maps it.
    pub fn stream_id(&self, rid: u16) -> Option<u32> {
        let rid = rid as u32;
        self.iommu_map
            .iter()
            .find(|&&(base, _, len)| rid >= base && rid - base < len)
            .map(|&(base, sid, _)| sid + (rid - base))
    }

    /// The requester ID behind SMMU stream `sid` (the inverse of
    /// [`Pcie::stream_id`]), if the host maps it.
    pub fn requester_id(&self, sid: u32) -> Option<u16> {
        self.iommu_map
            .iter()
            .find(|&&(_, base, len)| sid >= base && sid - base < len)
            .map(|&(rid, base, _)| (rid + (sid - base)) as u16)
    }
}

/// The SMMUv3's wired interrupts (SPI numbers) by `interrupt-names`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmmuIrqs {
    pub eventq: Option<u32>,
    pub gerror: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uart {
    pub range: Range,
    /// SPI number (INTID - 32), if the node gives one.
    pub spi: Option<u32>,
}

/// What Tessera takes from the firmware DTB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform<'a> {
    pub model: &'a str,
    pub size: usize,
    pub ram: Vec<Range, MAX_RAM_RANGES>,
    /// MPIDR affinity value (`reg` of each /cpus/cpu node), in DTB order.
    pub cpus: Vec<u64, MAX_CPUS>,
    pub gic: Gic,
    pub uart: Option<Uart>,
    pub psci: Option<Conduit>,
    pub smmu: Option<Range>,
    pub smmu_irqs: SmmuIrqs,
    pub pcie: Option<Pcie>,
    pub bootargs: &'a str,
}

fn first_reg(node: FdtNode) -> Option<Range> {
    let r = node.reg()?.next()?;
    Some(Range {
        base: r.starting_address as u64,
        size: r.size.unwrap_or(0) as u64,
    })
}

/// The nodes Tessera looks at, found in one pass over the tree that reads
/// each node's properties once (each `fdt` lookup by path or compatible
/// walks the whole tree again, and this runs with the MMU off).
struct Found<'b, 'a> {
    root: Option<FdtNode<'b, 'a>>,
    chosen: Option<FdtNode<'b, 'a>>,
    aliases: Option<FdtNode<'b, 'a>>,
    gic: Option<FdtNode<'b, 'a>>,
    psci: Option<FdtNode<'b, 'a>>,
    smmu: Option<FdtNode<'b, 'a>>,
    pcie: Option<FdtNode<'b, 'a>>,
    pl011s: Vec<FdtNode<'b, 'a>, 4>,
    ram: Vec<Range, MAX_RAM_RANGES>,
    cpus: Vec<u64, MAX_CPUS>,
}

fn scan<'b, 'a>(fdt: &'b Fdt<'a>) -> Result<Found<'b, 'a>, DtbError> {
    let mut f = Found {
        root: None,
        chosen: None,
        aliases: None,
        gic: None,
        psci: None,
        smmu: None,
        pcie: None,
        pl011s: Vec::new(),
        ram: Vec::new(),
        cpus: Vec::new(),
    };
    for node in fdt.all_nodes() {
        if f.root.is_none() {
            f.root = Some(node);
        }
        match node.name {
            "chosen" => f.chosen = Some(node),
            "aliases" => f.aliases = Some(node),
            _ => {}
        }
        let (mut device_type, mut compatible, mut okay) = (None, None, true);
        for p in node.properties() {
            match p.name {
                "device_type" => device_type = p.as_str(),
                "compatible" => compatible = Some(p.value),
                "status" => okay = matches!(p.as_str(), Some("okay" | "ok")),
                _ => {}
            }
        }
        match device_type {
            Some("memory") => {
                for r in node.reg().into_iter().flatten() {
                    let size = r.size.unwrap_or(0) as u64;
                    if size > 0 {
                        let range = Range {
                            base: r.starting_address as u64,
                            size,
                        };
                        f.ram
                            .push(range)
                            .map_err(|_| DtbError::TooMany("memory ranges"))?;
                    }
                }
            }
            Some("cpu") => {
                let reg = node
                    .property("reg")
                    .ok_or(DtbError::MissingNode("cpu reg"))?;
                let mpidr = match reg.value.len() {
                    4 => be32(reg.value, 0).unwrap_or(0) as u64,
                    8 => {
                        ((be32(reg.value, 0).unwrap_or(0) as u64) << 32)
                            | be32(reg.value, 4).unwrap_or(0) as u64
                    }
                    _ => return Err(DtbError::MissingNode("cpu reg")),
                };
                f.cpus.push(mpidr).map_err(|_| DtbError::TooMany("CPUs"))?;
            }
            _ => {}
        }
        let Some(compatible) = compatible.filter(|_| okay) else {
            continue;
        };
        let is = |names: &[&str]| {
            compatible
                .split(|&b| b == 0)
                .any(|c| names.iter().any(|n| n.as_bytes() == c))
        };
        if is(&["arm,pl011"]) {
            let _ = f.pl011s.push(node);
        } else if f.gic.is_none() && is(&["arm,gic-v3"]) {
            f.gic = Some(node);
        } else if f.psci.is_none() && is(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]) {
            f.psci = Some(node);
        } else if f.smmu.is_none() && is(&["arm,smmu-v3"]) {
            f.smmu = Some(node);
        } else if f.pcie.is_none() && is(&["pci-host-ecam-generic"]) {
            f.pcie = Some(node);
        }
    }
    Ok(f)
}

impl<'b, 'a> Found<'b, 'a> {
    /// The PL011 `/chosen/stdout-path` names (a path, or an alias, with
    /// optional `:options`), else the first enabled PL011.
    fn stdout_pl011(&self) -> Option<FdtNode<'b, 'a>> {
        let path = self
            .chosen
            .and_then(|c| c.property("stdout-path"))
            .and_then(|p| p.as_str());
        let path = path.map(|p| p.split(':').next().unwrap_or(p));
        let path = match path {
            Some(p) if !p.starts_with('/') => self
                .aliases
                .and_then(|a| a.property(p))
                .and_then(|v| v.as_str()),
            other => other,
        };
        let name = path.and_then(|p| p.rsplit('/').next());
        name.and_then(|n| self.pl011s.iter().find(|u| u.name == n).copied())
            .or_else(|| self.pl011s.first().copied())
    }
}

/// Validates, then extracts the platform summary.
pub fn parse(blob: &[u8]) -> Result<Platform<'_>, DtbError> {
    validate(blob)?;
    let fdt = Fdt::new(blob).map_err(|_| DtbError::BlockOutOfBounds("blob"))?;

    let found = scan(&fdt)?;
    let stdout = found.stdout_pl011();
    let Found {
        root,
        chosen,
        gic: gic_node,
        psci: psci_node,
        smmu: smmu_node,
        pcie: pcie_node,
        ram,
        cpus,
        ..
    } = found;
    if ram.is_empty() {
        return Err(DtbError::MissingNode("memory node"));
    }
    if cpus.is_empty() {
        return Err(DtbError::MissingNode("cpu node"));
    }

    let gic_node = gic_node.ok_or(DtbError::MissingNode("GICv3 node"))?;
    let mut regs = gic_node.reg().ok_or(DtbError::MissingNode("GICv3 reg"))?;
    let to_range = |r: fdt::standard_nodes::MemoryRegion| Range {
        base: r.starting_address as u64,
        size: r.size.unwrap_or(0) as u64,
    };
    let dist = regs
        .next()
        .map(to_range)
        .ok_or(DtbError::MissingNode("GICD reg"))?;
    let n_redist = gic_node
        .property("#redistributor-regions")
        .and_then(|p| p.as_usize())
        .unwrap_or(1);
    let mut redists = Vec::new();
    for r in regs.take(n_redist) {
        redists
            .push(to_range(r))
            .map_err(|_| DtbError::TooMany("redistributor regions"))?;
    }
    if redists.is_empty() {
        return Err(DtbError::MissingNode("GICR reg"));
    }
    let maintenance_ppi = gic_node
        .property("interrupts")
        .and_then(|p| be32(p.value, 4));
    let gic = Gic {
        dist,
        redists,
        maintenance_ppi,
    };

    let uart = stdout.and_then(|n| {
        let range = first_reg(n)?;
        // interrupts = <type number flags>; type 0 = SPI.
        let spi = n
            .property("interrupts")
            .filter(|p| be32(p.value, 0) == Some(0))
            .and_then(|p| be32(p.value, 4));
        Some(Uart { range, spi })
    });

    let psci = psci_node
        .and_then(|n| n.property("method").and_then(|p| p.as_str()))
        .and_then(|m| match m {
            "smc" => Some(Conduit::Smc),
            "hvc" => Some(Conduit::Hvc),
            _ => None,
        });

    let smmu = smmu_node.and_then(first_reg);
    let smmu_irqs = smmu_node.map(smmu_irqs).unwrap_or_default();
    let smmu_phandle = smmu_node
        .and_then(|n| n.property("phandle"))
        .and_then(|p| be32(p.value, 0));
    let gic_phandle = gic_node.property("phandle").and_then(|p| be32(p.value, 0));
    let gic_addr_cells = gic_node
        .property("#address-cells")
        .and_then(|p| be32(p.value, 0))
        .unwrap_or(0) as usize;

    let pcie = match pcie_node {
        None => None,
        Some(node) => Some(pcie(node, smmu_phandle, gic_phandle, gic_addr_cells)?),
    };
    Ok(Platform {
        model: root
            .and_then(|r| r.property("model"))
            .and_then(|p| p.as_str())
            .unwrap_or("(no model)"),
        size: fdt.total_size(),
        ram,
        cpus,
        gic,
        uart,
        psci,
        smmu,
        smmu_irqs,
        pcie,
        bootargs: chosen
            .and_then(|c| c.property("bootargs"))
            .and_then(|p| p.as_str())
            .unwrap_or(""),
    })
}

fn smmu_irqs(node: FdtNode) -> SmmuIrqs {
    let mut irqs = SmmuIrqs::default();
    let (Some(names), Some(ints)) = (
        node.property("interrupt-names"),
        node.property("interrupts"),
    ) else {
        return irqs;
    };
    for (i, name) in names.value.split(|&b| b == 0).enumerate() {
        // <type number flags>, type 0 = SPI.
        let spi = (be32(ints.value, i * 12) == Some(0))
            .then(|| be32(ints.value, i * 12 + 4))
            .flatten();
        match name {
            b"eventq" => irqs.eventq = spi,
            b"gerror" => irqs.gerror = spi,
            _ => {}
        }
    }
    irqs
}

/// The PCIe host bridge: ECAM, windows, INTx routing (to the GIC only) and
/// the stream IDs of its functions (through the SMMU only).
fn pcie(
    node: FdtNode,
    smmu_phandle: Option<u32>,
    gic_phandle: Option<u32>,
    gic_addr_cells: usize,
) -> Result<Pcie, DtbError> {
    let ecam = first_reg(node).ok_or(DtbError::MissingNode("PCIe ECAM reg"))?;
    let cells = |name: &str| node.property(name).map(|p| p.value).unwrap_or(&[]);
    let mut windows = Vec::new();
    let mut ranges = Vec::new();
    // (pci-addr: 3 cells, cpu-addr: parent's 2 cells, size: 2 cells)
    for entry in cells("ranges").chunks_exact(28) {
        let cell = |i: usize| be32(entry, i * 4).unwrap_or(0);
        let range = Range {
            base: (cell(3) as u64) << 32 | cell(4) as u64,
            size: (cell(5) as u64) << 32 | cell(6) as u64,
        };
        windows
            .push(range)
            .map_err(|_| DtbError::TooMany("PCIe windows"))?;
        let _ = ranges.push(([cell(0), cell(1), cell(2)], range));
    }
    let bus = cells("bus-range");
    let bus_range = (
        be32(bus, 0).unwrap_or(0),
        be32(bus, 4).unwrap_or(((ecam.size >> 20).max(1) - 1) as u32),
    );
    let m = cells("interrupt-map-mask");
    let intx_mask = [0, 1, 2, 3].map(|i| be32(m, i * 4).unwrap_or(0));
    let mut intx = Vec::new();
    // child unit address (3) + pin (1) + phandle + parent address cells +
    // parent interrupt (3: type, number, flags).
    let entry_cells = 5 + gic_addr_cells + 3;
    for entry in cells("interrupt-map").chunks_exact(entry_cells * 4) {
        let cell = |i: usize| be32(entry, i * 4).unwrap_or(0);
        let to_gic = Some(cell(4)) == gic_phandle;
        let (kind, spi, flags) = (
            cell(5 + gic_addr_cells),
            cell(6 + gic_addr_cells),
            cell(7 + gic_addr_cells),
        );
        if to_gic && kind == 0 {
            intx.push([cell(0), cell(3), spi, flags])
                .map_err(|_| DtbError::TooMany("PCIe interrupt-map entries"))?;
        }
    }
    let mut iommu_map = Vec::new();
    for entry in cells("iommu-map").chunks_exact(16) {
        let cell = |i: usize| be32(entry, i * 4).unwrap_or(0);
        if smmu_phandle.is_some() && Some(cell(1)) == smmu_phandle {
            iommu_map
                .push((cell(0), cell(2), cell(3)))
                .map_err(|_| DtbError::TooMany("PCIe iommu-map entries"))?;
        }
    }
    Ok(Pcie {
        ecam,
        windows,
        ranges,
        bus_range,
        intx_mask,
        intx,
        iommu_map,
    })
}

/// Whether the DTB has an enabled node whose first `reg` range starts at
/// `base`: a device a board file passes through must exist on the machine
/// (QEMU's virt, booted through firmware with ACPI on, has an ACPI GED
/// where the PL061 would be, and a guest probing it takes an external
/// abort). Call on a validated blob.
pub fn node_at(blob: &[u8], base: u64) -> bool {
    let Ok(fdt) = Fdt::new(blob) else {
        return false;
    };
    let found = fdt.all_nodes().any(|n| {
        let okay = n
            .property("status")
            .and_then(|p| p.as_str())
            .is_none_or(|s| matches!(s, "okay" | "ok"));
        okay && first_reg(n).is_some_and(|r| r.base == base)
    });
    found
}

/// Just the console, from a validated blob: used before the full parse so that
/// a later error can already be printed.
pub fn console_uart(blob: &[u8]) -> Option<Range> {
    validate(blob).ok()?;
    let fdt = Fdt::new(blob).ok()?;
    let uart = scan(&fdt).ok()?.stdout_pl011()?;
    first_reg(uart)
}

struct Mib(u64);
impl fmt::Display for Mib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1 << 30 && self.0.is_multiple_of(1 << 30) {
            write!(f, "{} GiB", self.0 >> 30)
        } else if self.0 >= 1 << 20 {
            write!(f, "{} MiB", self.0 >> 20)
        } else {
            write!(f, "{} KiB", self.0 >> 10)
        }
    }
}

/// The one-screen boot summary.
impl fmt::Display for Platform<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "platform: \"{}\", DTB {} bytes", self.model, self.size)?;
        for r in &self.ram {
            writeln!(
                f,
                "  RAM     {:#012x}-{:#012x} ({})",
                r.base,
                r.end() - 1,
                Mib(r.size)
            )?;
        }
        write!(f, "  CPUs    {}:", self.cpus.len())?;
        for m in &self.cpus {
            write!(f, " {m:#x}")?;
        }
        writeln!(f, " (MPIDR)")?;
        write!(f, "  GICv3   GICD {:#x}, GICR", self.gic.dist.base)?;
        for r in &self.gic.redists {
            write!(f, " {:#x} ({})", r.base, Mib(r.size))?;
        }
        writeln!(f)?;
        match self.uart {
            Some(Uart {
                range,
                spi: Some(s),
            }) => writeln!(
                f,
                "  UART    PL011 {:#x}, SPI {s} (INTID {})",
                range.base,
                s + 32
            )?,
            Some(Uart { range, spi: None }) => writeln!(f, "  UART    PL011 {:#x}", range.base)?,
            None => writeln!(f, "  UART    none found")?,
        }
        match self.psci {
            Some(c) => writeln!(
                f,
                "  PSCI    method {}",
                if c == Conduit::Smc { "smc" } else { "hvc" }
            )?,
            None => writeln!(f, "  PSCI    none found")?,
        }
        match self.smmu {
            Some(r) => {
                write!(f, "  SMMUv3  {:#x} ({})", r.base, Mib(r.size))?;
                if let Some(spi) = self.smmu_irqs.eventq {
                    write!(f, ", event queue SPI {spi}")?;
                }
                if let Some(spi) = self.smmu_irqs.gerror {
                    write!(f, ", global errors SPI {spi}")?;
                }
                writeln!(f)?
            }
            None => writeln!(f, "  SMMUv3  none found")?,
        }
        match &self.pcie {
            Some(p) => {
                write!(
                    f,
                    "  PCIe    ECAM {:#x} ({}), windows",
                    p.ecam.base,
                    Mib(p.ecam.size)
                )?;
                for w in &p.windows {
                    write!(f, " {:#x}+{}", w.base, Mib(w.size))?;
                }
                match p.iommu_map.first() {
                    Some(&(rid, sid, len)) => writeln!(
                        f,
                        ", requester IDs {rid:#x}+{len:#x} -> SMMU streams {sid:#x}"
                    )?,
                    None => writeln!(f, ", not behind an SMMU")?,
                }
            }
            None => writeln!(f, "  PCIe    none found")?,
        }
        write!(f, "  bootargs \"{}\"", self.bootargs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_VIRT: &[u8] = include_bytes!("../../tests/data/qemu-virt.dtb");

    #[test]
    fn finds_device_nodes_by_address() {
        assert!(node_at(QEMU_VIRT, 0x0903_0000), "PL061");
        assert!(node_at(QEMU_VIRT, 0x0901_0000), "PL031");
        assert!(!node_at(QEMU_VIRT, 0x0904_0000), "nothing there");
        assert!(!node_at(&QEMU_VIRT[..64], 0x0903_0000), "not a DTB");
    }

    #[test]
    fn qemu_virt_smmu_and_pcie_routing() {
        let p = parse(QEMU_VIRT).expect("captured DTB parses");
        assert_eq!(
            p.smmu_irqs,
            SmmuIrqs {
                eventq: Some(74),
                gerror: Some(77)
            }
        );
        let pcie = p.pcie.unwrap();
        assert_eq!(pcie.iommu_map.as_slice(), &[(0, 0, 0x1_0000)]);
        assert_eq!(pcie.stream_id(0x10), Some(0x10), "00:02.0");
        assert_eq!(pcie.requester_id(0x18), Some(0x18), "00:03.0");
        assert_eq!(pcie.requester_id(0x1_0000), None, "beyond iommu-map");
        assert_eq!(pcie.bus_range, (0, 0xff));
        assert_eq!(pcie.intx_mask, [0x1800, 0, 0, 7]);
        assert_eq!(pcie.intx.len(), 16);
        // Slot 1 (0x800), INTA (pin 1) is SPI 4; slot 0 INTA is SPI 3.
        assert!(pcie.intx.contains(&[0x800, 1, 4, 4]));
        assert!(pcie.intx.contains(&[0, 1, 3, 4]));
        assert_eq!(pcie.ranges[0].0, [0x0100_0000, 0, 0], "I/O space first");
        assert_eq!(pcie.ranges[1].1.base, 0x1000_0000);
    }

    #[test]
    fn qemu_virt_summary() {
        let p = parse(QEMU_VIRT).expect("captured DTB parses");
        assert_eq!(
            p.ram.as_slice(),
            &[Range {
                base: 0x4000_0000,
                size: 0x8000_0000
            }]
        );
        assert_eq!(p.cpus.as_slice(), &[0, 1, 2, 3]);
        assert_eq!(
            p.gic.dist,
            Range {
                base: 0x0800_0000,
                size: 0x1_0000
            }
        );
        assert_eq!(
            p.gic.redists.as_slice(),
            &[Range {
                base: 0x080a_0000,
                size: 0xf6_0000
            }]
        );
        assert_eq!(p.gic.maintenance_ppi, Some(9));
        assert_eq!(
            p.uart,
            Some(Uart {
                range: Range {
                    base: 0x0900_0000,
                    size: 0x1000
                },
                spi: Some(1)
            })
        );
        assert_eq!(p.psci, Some(Conduit::Smc));
        assert_eq!(
            p.smmu,
            Some(Range {
                base: 0x0905_0000,
                size: 0x2_0000
            })
        );
        let pcie = p.pcie.as_ref().unwrap();
        assert_eq!(
            pcie.ecam,
            Range {
                base: 0x40_1000_0000,
                size: 0x1000_0000
            }
        );
        assert_eq!(
            pcie.windows[1],
            Range {
                base: 0x1000_0000,
                size: 0x2eff_0000
            }
        );
        assert_eq!(
            pcie.windows[2],
            Range {
                base: 0x80_0000_0000,
                size: 0x80_0000_0000
            }
        );
        let text = format!("{p}");
        assert!(
            text.contains("RAM     0x0040000000-0x00bfffffff (2 GiB)"),
            "{text}"
        );
        assert!(text.contains("CPUs    4: 0x0 0x1 0x2 0x3"), "{text}");
        assert!(text.contains("PSCI    method smc"), "{text}");
        assert!(text.lines().count() <= 24, "summary fits one screen");
        assert_eq!(
            console_uart(QEMU_VIRT),
            Some(Range {
                base: 0x0900_0000,
                size: 0x1000
            })
        );
    }

    #[test]
    fn every_truncation_is_rejected_without_panicking() {
        let total = header_total_size(QEMU_VIRT).unwrap();
        for len in 0..total {
            // A loader that copied only `len` bytes leaves zeroes behind them.
            let mut blob = QEMU_VIRT[..total].to_vec();
            blob[len..].fill(0);
            if len < 4 {
                assert!(matches!(
                    header_total_size(&blob),
                    Err(DtbError::BadMagic(_))
                ));
                continue;
            }
            // Some prefixes only cut the padding or the strings' tail; those
            // that still validate must parse cleanly.
            if validate(&blob).is_ok() {
                let _ = parse(&blob);
            }
        }
        // Cutting into the structure block is always caught.
        let mut blob = QEMU_VIRT.to_vec();
        let off_struct = be32(&blob, 8).unwrap() as usize;
        blob[off_struct + 200..].fill(0);
        assert!(matches!(
            validate(&blob),
            Err(DtbError::BadStructure { .. })
        ));
    }

    #[test]
    fn normalizing_removes_nops() {
        let nops: &[u8] = include_bytes!("../../tests/data/qemu-virt-nops.dtb");
        // QEMU's libfdt edits left NOPs that the fdt crate trips over.
        assert!(validate(nops).is_ok());
        let mut out = vec![0u8; 64 * 1024];
        let n = normalize_into(nops, &mut out).unwrap();
        let p = parse(&out[..n]).unwrap();
        assert_eq!(p.cpus.as_slice(), &[0x100, 0, 1, 2, 3]);
        assert_eq!(p.bootargs, "tessera.exit=poweroff");
        // Idempotent, and the clean QEMU tree loses only its padding.
        let mut again = vec![0u8; 64 * 1024];
        assert_eq!(normalize_into(&out[..n], &mut again), Ok(n));
        assert_eq!(&again[..n], &out[..n]);
        let m = normalize_into(QEMU_VIRT, &mut again).unwrap();
        assert_eq!(parse(&again[..m]).unwrap().cpus.len(), 4);
        assert!(normalize_into(QEMU_VIRT, &mut [0u8; 100]).is_err());
    }

    #[test]
    fn header_errors() {
        assert_eq!(header_total_size(&[0; 40]), Err(DtbError::BadMagic(0)));
        let mut big = QEMU_VIRT[..40].to_vec();
        big[4..8].copy_from_slice(&(64u32 << 20).to_be_bytes());
        assert_eq!(header_total_size(&big), Err(DtbError::TooLarge(64 << 20)));
        let mut old = QEMU_VIRT.to_vec();
        old[20..24].copy_from_slice(&15u32.to_be_bytes());
        assert_eq!(validate(&old), Err(DtbError::UnsupportedVersion(15)));
        let short = &QEMU_VIRT[..QEMU_VIRT.len() - 1];
        assert_eq!(validate(short), Err(DtbError::BlockOutOfBounds("blob")));
    }

    #[test]
    fn random_corruption_never_panics() {
        // Deterministic xorshift so a failure reproduces.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let mut blob = QEMU_VIRT.to_vec();
            for _ in 0..(next() % 8 + 1) {
                let i = (next() as usize) % blob.len();
                blob[i] = next() as u8;
            }
            let _ = parse(&blob);
        }
    }
}
