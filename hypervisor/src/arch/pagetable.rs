//! VMSAv8-64 translation tables, 4 KiB granule, for the EL2 stage-1 regime
//! (the hypervisor's own map) and for stage 2 (a VM's map).
//!
//! The builder always uses the largest block that fits (1 GiB, 2 MiB, 4 KiB),
//! refuses to map over an existing mapping, and reaches table memory only
//! through [`TableMemory`], so the same code is tested on the host with
//! ordinary vectors and runs at EL2 on an identity-mapped pool.

pub const PAGE_SIZE: u64 = 4096;
const ENTRIES: usize = 512;

const VALID: u64 = 1 << 0;
/// At levels 0-2: next-level table; at level 3: page. Clear at 1-2: block.
const TABLE_OR_PAGE: u64 = 1 << 1;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
// EL2 stage 1 (HCR_EL2.E2H = 0: one VA range, no EL0).
const S1_ATTRINDX_SHIFT: u64 = 2;
const S1_AP_RO: u64 = 1 << 7;
/// AP[1] is RES1 in a regime with a single privilege level.
const S1_AP1_RES1: u64 = 1 << 6;
const S1_XN: u64 = 1 << 54;
// Stage 2.
const S2_MEMATTR_SHIFT: u64 = 2;
const S2_AP_R: u64 = 1 << 6;
const S2_AP_W: u64 = 1 << 7;
const S2_XN: u64 = 0b10 << 53;

/// MAIR_EL2 for the stage-1 attribute indices used here:
/// 0 = Normal write-back read/write-allocate, 1 = Device-nGnRE.
pub const MAIR_EL2: u64 = 0xff | (0x04 << 8);
const MAIR_IDX_NORMAL: u64 = 0;
const MAIR_IDX_DEVICE: u64 = 1;
/// Stage-2 MemAttr: Normal inner/outer write-back; Device-nGnRE.
const S2_NORMAL_WB: u64 = 0b1111;
const S2_DEVICE_NGNRE: u64 = 0b0001;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The hypervisor's own stage-1 map (TTBR0_EL2).
    El2,
    /// A VM's stage-2 map (VTTBR_EL2).
    Stage2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemType {
    Normal,
    Device,
}

/// What a mapping allows. Every mapping is readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    pub mem: MemType,
    pub write: bool,
    pub exec: bool,
}

impl Attrs {
    pub const CODE: Attrs = Attrs {
        mem: MemType::Normal,
        write: false,
        exec: true,
    };
    pub const RODATA: Attrs = Attrs {
        mem: MemType::Normal,
        write: false,
        exec: false,
    };
    pub const DATA: Attrs = Attrs {
        mem: MemType::Normal,
        write: true,
        exec: false,
    };
    /// Normal memory that a guest may also execute from (stage 2 only).
    pub const RWX: Attrs = Attrs {
        mem: MemType::Normal,
        write: true,
        exec: true,
    };
    pub const DEVICE: Attrs = Attrs {
        mem: MemType::Device,
        write: true,
        exec: false,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// Address or size not a multiple of 4 KiB.
    Misaligned { va: u64, pa: u64, size: u64 },
    /// The range leaves the table's input-address space.
    OutOfRange { va: u64, size: u64 },
    /// Part of the range is already mapped.
    AlreadyMapped { va: u64 },
    /// The table pool is exhausted.
    NoMemory,
    /// Input-address width this builder does not handle.
    BadVaBits(u8),
}

/// Where table pages come from. `alloc` returns the physical address of a
/// zeroed, 4 KiB-aligned page; `entries` gives access to a page it returned.
pub trait TableMemory {
    fn alloc(&mut self) -> Option<u64>;
    fn entries(&mut self, pa: u64) -> &mut [u64; ENTRIES];
}

pub struct PageTable<M: TableMemory> {
    mem: M,
    root: u64,
    stage: Stage,
    va_bits: u8,
    start_level: u8,
}

const fn level_shift(level: u8) -> u32 {
    12 + 9 * (3 - level as u32)
}

impl<M: TableMemory> PageTable<M> {
    /// `va_bits` is the input-address width (T0SZ = 64 - va_bits), 25 to 48.
    pub fn new(mut mem: M, stage: Stage, va_bits: u8) -> Result<Self, MapError> {
        if !(25..=48).contains(&va_bits) {
            return Err(MapError::BadVaBits(va_bits));
        }
        // Levels needed to resolve va_bits, 9 bits each above the 12-bit page offset.
        let levels = (va_bits as u32 - 12).div_ceil(9) as u8;
        let root = mem.alloc().ok_or(MapError::NoMemory)?;
        Ok(PageTable {
            mem,
            root,
            stage,
            va_bits,
            start_level: 4 - levels,
        })
    }

    pub fn root(&self) -> u64 {
        self.root
    }

    pub fn start_level(&self) -> u8 {
        self.start_level
    }

    pub fn va_bits(&self) -> u8 {
        self.va_bits
    }

    fn leaf_bits(&self, attrs: Attrs) -> u64 {
        match self.stage {
            Stage::El2 => {
                let (idx, sh, xn) = match attrs.mem {
                    MemType::Normal => (MAIR_IDX_NORMAL, SH_INNER, !attrs.exec),
                    MemType::Device => (MAIR_IDX_DEVICE, 0, true),
                };
                (idx << S1_ATTRINDX_SHIFT)
                    | sh
                    | S1_AP1_RES1
                    | if attrs.write { 0 } else { S1_AP_RO }
                    | if xn { S1_XN } else { 0 }
                    | AF
            }
            Stage::Stage2 => {
                let (memattr, sh, xn) = match attrs.mem {
                    MemType::Normal => (S2_NORMAL_WB, SH_INNER, !attrs.exec),
                    MemType::Device => (S2_DEVICE_NGNRE, 0, true),
                };
                (memattr << S2_MEMATTR_SHIFT)
                    | sh
                    | S2_AP_R
                    | if attrs.write { S2_AP_W } else { 0 }
                    | if xn { S2_XN } else { 0 }
                    | AF
            }
        }
    }

    fn decode_attrs(&self, desc: u64) -> Attrs {
        match self.stage {
            Stage::El2 => Attrs {
                mem: if (desc >> S1_ATTRINDX_SHIFT) & 7 == MAIR_IDX_DEVICE {
                    MemType::Device
                } else {
                    MemType::Normal
                },
                write: desc & S1_AP_RO == 0,
                exec: desc & S1_XN == 0,
            },
            Stage::Stage2 => Attrs {
                mem: if (desc >> S2_MEMATTR_SHIFT) & 0xf == S2_DEVICE_NGNRE {
                    MemType::Device
                } else {
                    MemType::Normal
                },
                write: desc & S2_AP_W != 0,
                exec: desc & S2_XN == 0,
            },
        }
    }

    fn index(&self, va: u64, level: u8) -> usize {
        ((va >> level_shift(level)) & (ENTRIES as u64 - 1)) as usize
    }

    /// Maps `[va, va + size)` to `[pa, pa + size)` with the largest blocks
    /// that alignment allows.
    pub fn map(&mut self, va: u64, pa: u64, size: u64, attrs: Attrs) -> Result<(), MapError> {
        if !(va | pa | size).is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Misaligned { va, pa, size });
        }
        let limit = 1u64 << self.va_bits;
        if va.checked_add(size).is_none_or(|end| end > limit) || pa & !ADDR_MASK != 0 {
            return Err(MapError::OutOfRange { va, size });
        }
        let leaf = self.leaf_bits(attrs);
        let (mut va, mut pa, mut left) = (va, pa, size);
        while left > 0 {
            let step = self.map_one(va, pa, left, leaf)?;
            va += step;
            pa += step;
            left -= step;
        }
        Ok(())
    }

    /// Maps one block or page at `va`, the largest that fits; returns its size.
    fn map_one(&mut self, va: u64, pa: u64, left: u64, leaf: u64) -> Result<u64, MapError> {
        let mut table = self.root;
        let mut level = self.start_level;
        loop {
            let block = 1u64 << level_shift(level);
            let idx = self.index(va, level);
            let entry = self.mem.entries(table)[idx];
            // Blocks exist at levels 1 and 2, pages at level 3.
            let can_leaf = level >= 1 && (va | pa).is_multiple_of(block) && left >= block;
            if entry & VALID == 0 {
                if can_leaf {
                    let kind = if level == 3 { TABLE_OR_PAGE } else { 0 };
                    self.mem.entries(table)[idx] = pa | leaf | kind | VALID;
                    return Ok(block);
                }
                let next = self.mem.alloc().ok_or(MapError::NoMemory)?;
                self.mem.entries(table)[idx] = next | TABLE_OR_PAGE | VALID;
                table = next;
            } else if level < 3 && entry & TABLE_OR_PAGE != 0 {
                table = entry & ADDR_MASK;
            } else {
                return Err(MapError::AlreadyMapped { va });
            }
            level += 1;
        }
    }

    /// Walks the table like the MMU would: the output address, the attributes
    /// and the size of the block or page that maps `va`.
    pub fn translate(&mut self, va: u64) -> Option<(u64, Attrs, u64)> {
        if va >> self.va_bits != 0 {
            return None;
        }
        let mut table = self.root;
        let mut level = self.start_level;
        loop {
            let idx = self.index(va, level);
            let entry = self.mem.entries(table)[idx];
            if entry & VALID == 0 {
                return None;
            }
            let block = 1u64 << level_shift(level);
            if level < 3 && entry & TABLE_OR_PAGE != 0 {
                table = entry & ADDR_MASK;
                level += 1;
                continue;
            }
            let base = entry & ADDR_MASK & !(block - 1);
            return Some((base | (va & (block - 1)), self.decode_attrs(entry), block));
        }
    }
}

/// VTCR_EL2 for a stage 2 of `ipa_bits` (39 or 48) on a CPU whose physical
/// address size is `ps` (ID_AA64MMFR0_EL1.PARange encoding, at most 5 = 48
/// bits: descriptors here carry 48-bit addresses): 4 KiB granule,
/// write-back inner-shareable walks, start level from the IPA size.
pub fn stage2_vtcr(ipa_bits: u32, ps: u64) -> u64 {
    use aarch64_cpu::registers::VTCR_EL2;
    // PS is what the CPU can output, not the guest's address size: larger
    // than PARange is CONSTRAINED UNPREDICTABLE.
    let ps = ps.min(5);
    // SL0 with a 4 KiB granule: 2 = start at level 0, 1 = level 1.
    let sl0 = if ipa_bits > 39 { 2 } else { 1 };
    (VTCR_EL2::T0SZ.val(64 - ipa_bits as u64)
        + VTCR_EL2::SL0.val(sl0)
        + VTCR_EL2::IRGN0::NormalWBRAWA
        + VTCR_EL2::ORGN0::NormalWBRAWA
        + VTCR_EL2::SH0::Inner
        + VTCR_EL2::TG0::Granule4KB
        + VTCR_EL2::PS.val(ps)
        + VTCR_EL2::RES1::SET)
        .value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Host stand-in: pages in a vector, at made-up physical addresses.
    struct VecMemory {
        pages: Vec<[u64; ENTRIES]>,
        limit: usize,
    }
    const BASE: u64 = 0x7_0000_0000;
    impl TableMemory for VecMemory {
        fn alloc(&mut self) -> Option<u64> {
            if self.pages.len() == self.limit {
                return None;
            }
            self.pages.push([0; ENTRIES]);
            Some(BASE + (self.pages.len() as u64 - 1) * PAGE_SIZE)
        }
        fn entries(&mut self, pa: u64) -> &mut [u64; ENTRIES] {
            &mut self.pages[((pa - BASE) / PAGE_SIZE) as usize]
        }
    }
    fn table(stage: Stage, va_bits: u8) -> PageTable<VecMemory> {
        PageTable::new(
            VecMemory {
                pages: Vec::new(),
                limit: 64,
            },
            stage,
            va_bits,
        )
        .unwrap()
    }

    #[test]
    fn largest_blocks_are_used() {
        let mut t = table(Stage::El2, 48);
        assert_eq!(t.start_level(), 0);
        // 1 GiB + 2 MiB + 4 KiB, all aligned: one block of each size.
        t.map(
            0x4000_0000,
            0x4000_0000,
            (1 << 30) + (2 << 20) + 4096,
            Attrs::DATA,
        )
        .unwrap();
        assert_eq!(
            t.translate(0x4000_1234),
            Some((0x4000_1234, Attrs::DATA, 1 << 30))
        );
        assert_eq!(
            t.translate(0x8000_0000),
            Some((0x8000_0000, Attrs::DATA, 2 << 20))
        );
        assert_eq!(
            t.translate(0x8020_0fff),
            Some((0x8020_0fff, Attrs::DATA, 4096))
        );
        assert_eq!(t.translate(0x8020_1000), None);
        // root, L1, L2, L3: exactly four tables.
        assert_eq!(t.mem.pages.len(), 4);
    }

    #[test]
    fn misaligned_physical_address_falls_back_to_pages() {
        let mut t = table(Stage::El2, 48);
        t.map(0x4000_0000, 0x4000_1000, 2 << 20, Attrs::CODE)
            .unwrap();
        assert_eq!(
            t.translate(0x401f_f000),
            Some((0x4020_0000, Attrs::CODE, 4096))
        );
    }

    #[test]
    fn stage1_descriptor_bits() {
        let mut t = table(Stage::El2, 48);
        t.map(0x0900_0000, 0x0900_0000, 4096, Attrs::DEVICE)
            .unwrap();
        t.map(0x4020_0000, 0x4020_0000, 4096, Attrs::CODE).unwrap();
        let (_, a, _) = t.translate(0x0900_0000).unwrap();
        assert_eq!(a, Attrs::DEVICE);
        let (_, a, _) = t.translate(0x4020_0000).unwrap();
        assert_eq!(a, Attrs::CODE);
        // Find the raw page descriptor for the code page.
        let pages = &t.mem.pages;
        let code = pages
            .iter()
            .flatten()
            .find(|&&d| d & ADDR_MASK == 0x4020_0000)
            .copied()
            .unwrap();
        assert_eq!(code & 0b11, 0b11, "level-3 page descriptor");
        assert_ne!(code & AF, 0);
        assert_ne!(code & S1_AP_RO, 0, "code is read-only");
        assert_eq!(code & S1_XN, 0, "code is executable");
        assert_eq!(code & (0b11 << 8), SH_INNER);
    }

    #[test]
    fn stage2_descriptor_bits() {
        let mut t = table(Stage::Stage2, 40);
        assert_eq!(t.start_level(), 0);
        t.map(0x4000_0000, 0x8000_0000, 2 << 20, Attrs::RWX)
            .unwrap();
        t.map(0x0900_0000, 0x0900_0000, 4096, Attrs::DEVICE)
            .unwrap();
        t.map(0x5000_0000, 0x9000_0000, 4096, Attrs::RODATA)
            .unwrap();
        assert_eq!(
            t.translate(0x4000_0010),
            Some((0x8000_0010, Attrs::RWX, 2 << 20))
        );
        assert_eq!(t.translate(0x0900_0004).unwrap().1, Attrs::DEVICE);
        assert_eq!(t.translate(0x5000_0000).unwrap().1, Attrs::RODATA);
        let block = t
            .mem
            .pages
            .iter()
            .flatten()
            .find(|&&d| d & ADDR_MASK == 0x8000_0000)
            .copied()
            .unwrap();
        assert_eq!(block & 0b11, 0b01, "level-2 block descriptor");
        assert_eq!((block >> 2) & 0xf, S2_NORMAL_WB);
        assert_eq!(block & (S2_AP_R | S2_AP_W), S2_AP_R | S2_AP_W);
        assert_eq!(block & S2_XN, 0);
    }

    #[test]
    fn errors() {
        let mut t = table(Stage::El2, 39);
        assert_eq!(t.start_level(), 1);
        assert_eq!(
            t.map(0x1000, 0x1001, 4096, Attrs::DATA),
            Err(MapError::Misaligned {
                va: 0x1000,
                pa: 0x1001,
                size: 4096
            })
        );
        assert_eq!(
            t.map(1 << 39, 0, 4096, Attrs::DATA),
            Err(MapError::OutOfRange {
                va: 1 << 39,
                size: 4096
            })
        );
        t.map(0x4000_0000, 0x4000_0000, 1 << 30, Attrs::DATA)
            .unwrap();
        // Inside a block, and a larger range covering it.
        assert_eq!(
            t.map(0x4020_0000, 0x4020_0000, 4096, Attrs::DATA),
            Err(MapError::AlreadyMapped { va: 0x4020_0000 })
        );
        t.map(0x1000_0000, 0x1000_0000, 4096, Attrs::DEVICE)
            .unwrap();
        assert_eq!(
            t.map(0x1000_0000, 0x1000_0000, 2 << 20, Attrs::DEVICE),
            Err(MapError::AlreadyMapped { va: 0x1000_0000 })
        );
        assert_eq!(
            PageTable::new(
                VecMemory {
                    pages: vec![],
                    limit: 1
                },
                Stage::El2,
                52
            )
            .err(),
            Some(MapError::BadVaBits(52))
        );
        let mut small = PageTable::new(
            VecMemory {
                pages: vec![],
                limit: 2,
            },
            Stage::El2,
            48,
        )
        .unwrap();
        assert_eq!(small.map(0, 0, 4096, Attrs::DATA), Err(MapError::NoMemory));
    }

    #[test]
    fn vtcr_output_size_is_the_cpus() {
        // A 40-bit-PA CPU with a 39-bit stage 2: PS says 40 bits, not the
        // 48 the CPU does not have.
        let v = stage2_vtcr(39, 2);
        assert_eq!((v >> 16) & 7, 2, "VTCR_EL2.PS");
        assert_eq!(v & 0x3f, 25, "T0SZ");
        assert_eq!((v >> 6) & 3, 1, "SL0: start at level 1");
        // A 48-bit CPU with a 48-bit stage 2.
        let v = stage2_vtcr(48, 5);
        assert_eq!((v >> 16) & 7, 5);
        assert_eq!((v >> 6) & 3, 2);
        // A 44-bit CPU still gets a 39-bit stage 2 with PS = 44 bits.
        assert_eq!((stage2_vtcr(39, 4) >> 16) & 7, 4);
        assert_eq!(stage2_vtcr(48, 5) & (1 << 31 | 0xff00), 1 << 31 | 0x3500);
    }
}
