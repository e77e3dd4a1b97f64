//! The guest's view of the distributor (GICD) and redistributor (GICR)
//! frames: register decode, reads and writes.

use super::{
    bit, for_each_bit, word_index, Action, Actions, Vgic, MAX_INTID, PRIORITY_MASK, PRIVATE,
    SGI_COUNT, WORDS,
};

const GICD_CTLR: u64 = 0x0000;
const GICD_TYPER: u64 = 0x0004;
const GICD_IIDR: u64 = 0x0008;
/// IGROUPR, IS/ICENABLER, IS/ICPENDR, IS/ICACTIVER: 0x080..0x400, in
/// blocks of 0x80, the same offsets in GICD and the GICR SGI_base page.
const BITS_START: u64 = 0x0080;
const BITS_END: u64 = 0x0400;
pub(super) const IPRIORITYR: u64 = 0x0400;
pub(super) const ICFGR: u64 = 0x0c00;
const IROUTER: u64 = 0x6000;
const IROUTER_FIRST: u64 = IROUTER + 8 * PRIVATE as u64;
const IROUTER_END: u64 = IROUTER + 8 * MAX_INTID as u64;
const ID_START: u64 = 0xffd0;

const GICR_CTLR: u64 = 0x0000;
const GICR_IIDR: u64 = 0x0004;
const GICR_TYPER: u64 = 0x0008;
const GICR_WAKER: u64 = 0x0014;
/// The SGI_base page within a vCPU's redistributor frame.
pub(super) const SGI_BASE: u64 = 0x1_0000;
const FRAME: u64 = 0x1_0000;

/// RWP bit 31 reads 0: writes take effect at once.
const CTLR_ENABLE_GRP1: u64 = 1 << 1;
const CTLR_ARE: u64 = 1 << 4;
const CTLR_DS: u64 = 1 << 6;
/// Implementer Arm (JEP106 0x43B), product and revision 0.
pub const IIDR: u64 = 0x0000_043b;
/// TYPER.IDbits: 10 INTID bits.
const TYPER_IDBITS: u64 = 9 << 19;
/// TYPER.No1N: 1-of-N SPI routing not supported (IROUTER.IRM is RES0).
const TYPER_NO1N: u64 = 1 << 25;
const WAKER_PROCESSOR_SLEEP: u64 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u64 = 1 << 2;

/// The 1-bit-per-INTID registers, by the block they sit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BitReg {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

impl BitReg {
    /// The register and its word index for an offset in 0x080..0x400.
    fn decode(offset: u64) -> (BitReg, usize) {
        let reg = match offset >> 7 {
            1 => BitReg::Group,
            2 => BitReg::SetEnable,
            3 => BitReg::ClearEnable,
            4 => BitReg::SetPending,
            5 => BitReg::ClearPending,
            6 => BitReg::SetActive,
            _ => BitReg::ClearActive,
        };
        (reg, ((offset & 0x7f) / 4) as usize)
    }
}

/// The CoreSight ID registers (PIDR4..7, PIDR0..3, CIDR0..3), shared by
/// GICD and GICR: PIDR2.ArchRev = 3 (GICv3).
fn id_register(offset: u64) -> u64 {
    match offset {
        0xffe8 => 0x30,
        0xfff0 => 0x0d,
        0xfff4 => 0xf0,
        0xfff8 => 0x05,
        0xfffc => 0xb1,
        _ => 0,
    }
}

/// Naturally aligned 1-, 2-, 4- or 8-byte access.
fn aligned(offset: u64, size: u8) -> bool {
    matches!(size, 1 | 2 | 4 | 8) && offset.is_multiple_of(size as u64)
}

/// Bits of word `w` that name INTIDs below MAX_INTID.
fn valid_bits(w: usize) -> u32 {
    if w == WORDS - 1 {
        (1 << (MAX_INTID % 32)) - 1
    } else {
        u32::MAX
    }
}

/// IROUTER value to packed route (Aff3 moved next to Aff2.Aff1.Aff0; IRM dropped).
fn pack_route(irouter: u64) -> u32 {
    (irouter & 0xff_ffff) as u32 | (((irouter >> 32) & 0xff) as u32) << 24
}

fn unpack_route(route: u32) -> u64 {
    (route & 0xff_ffff) as u64 | ((route >> 24) as u64) << 32
}

impl Vgic {
    /// A guest read of the distributor frame (`offset` within its 64 KiB).
    pub fn dist_read(&self, offset: u64, size: u8) -> u64 {
        if !aligned(offset, size) || offset >= FRAME {
            return 0;
        }
        match (offset, size) {
            (GICD_CTLR, 4) => CTLR_ARE | CTLR_DS | if self.group1 { CTLR_ENABLE_GRP1 } else { 0 },
            (GICD_TYPER, 4) => self.dist_typer(),
            (GICD_IIDR, 4) => IIDR,
            // SGI/PPI words (index 0) are RAZ/WI in the distributor with ARE.
            (BITS_START..BITS_END, 4) => match BitReg::decode(offset) {
                (_, 0) => 0,
                (reg, w) => self.read_bits(0, w, reg) as u64,
            },
            (IPRIORITYR..ICFGR, 1 | 2 | 4) => self.read_priority(None, offset - IPRIORITYR, size),
            (ICFGR..0x0d00, 4) => self.read_config(None, (offset - ICFGR) / 4),
            (IROUTER_FIRST..IROUTER_END, 4 | 8) => {
                let intid = ((offset - IROUTER) / 8) as u32;
                let value = if self.owns(intid) {
                    unpack_route(self.route[intid as usize])
                } else {
                    0
                };
                match (size, offset % 8) {
                    (8, _) => value,
                    (_, 0) => value & 0xffff_ffff,
                    _ => value >> 32,
                }
            }
            (ID_START.., 4) => id_register(offset),
            _ => 0,
        }
    }

    /// A guest write to the distributor frame.
    pub fn dist_write(&mut self, offset: u64, size: u8, value: u64) -> Actions {
        let mut actions = Actions::default();
        if !aligned(offset, size) || offset >= FRAME {
            return actions;
        }
        match (offset, size) {
            (GICD_CTLR, 4) => {
                let group1 = value & CTLR_ENABLE_GRP1 != 0;
                if group1 != self.group1 {
                    self.group1 = group1;
                    // SPIs became deliverable, or LRs hold ones that no longer are.
                    for vcpu in 0..self.vcpus {
                        actions.push(Action::Kick(vcpu));
                    }
                }
            }
            (BITS_START..BITS_END, 4) => match BitReg::decode(offset) {
                (_, 0) => {}
                (reg, w) => self.write_bits(0, w, reg, value as u32, &mut actions),
            },
            (IPRIORITYR..ICFGR, 1 | 2 | 4) => {
                self.write_priority(None, offset - IPRIORITYR, size, value)
            }
            (ICFGR..0x0d00, 4) => self.write_config(None, (offset - ICFGR) / 4, value as u32),
            (IROUTER_FIRST..IROUTER_END, 4 | 8) => {
                let intid = ((offset - IROUTER) / 8) as u32;
                self.write_route(intid, offset % 8, size, value, &mut actions);
            }
            _ => {}
        }
        actions
    }

    /// A guest read of vCPU `vcpu`'s redistributor frame (`offset` within its
    /// 128 KiB: RD_base page, then SGI_base page).
    pub fn redist_read(&self, vcpu: usize, offset: u64, size: u8) -> u64 {
        if vcpu >= self.vcpus || !aligned(offset, size) || offset >= 2 * FRAME {
            return 0;
        }
        if offset >= SGI_BASE {
            let offset = offset - SGI_BASE;
            return match (offset, size) {
                (BITS_START..BITS_END, 4) => match BitReg::decode(offset) {
                    (reg, 0) => self.read_bits(vcpu, 0, reg) as u64,
                    _ => 0,
                },
                (IPRIORITYR..0x0420, 1 | 2 | 4) => {
                    self.read_priority(Some(vcpu), offset - IPRIORITYR, size)
                }
                (ICFGR | 0x0c04, 4) => self.read_config(Some(vcpu), (offset - ICFGR) / 4),
                _ => 0,
            };
        }
        match (offset, size) {
            (GICR_IIDR, 4) => IIDR,
            (GICR_TYPER, 8) => self.redist_typer(vcpu),
            (GICR_TYPER, 4) => self.redist_typer(vcpu) & 0xffff_ffff,
            (0x000c, 4) => self.redist_typer(vcpu) >> 32,
            (GICR_WAKER, 4) if self.cpu[vcpu].asleep => {
                WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
            }
            (ID_START.., 4) => id_register(offset),
            // No LPIs to enable, RWP 0.
            (GICR_CTLR, 4) => 0,
            _ => 0,
        }
    }

    /// A guest write to vCPU `vcpu`'s redistributor frame.
    pub fn redist_write(&mut self, vcpu: usize, offset: u64, size: u8, value: u64) -> Actions {
        let mut actions = Actions::default();
        if vcpu >= self.vcpus || !aligned(offset, size) || offset >= 2 * FRAME {
            return actions;
        }
        if offset >= SGI_BASE {
            let offset = offset - SGI_BASE;
            match (offset, size) {
                (BITS_START..BITS_END, 4) => {
                    if let (reg, 0) = BitReg::decode(offset) {
                        self.write_bits(vcpu, 0, reg, value as u32, &mut actions);
                    }
                }
                (IPRIORITYR..0x0420, 1 | 2 | 4) => {
                    self.write_priority(Some(vcpu), offset - IPRIORITYR, size, value)
                }
                (ICFGR | 0x0c04, 4) => {
                    self.write_config(Some(vcpu), (offset - ICFGR) / 4, value as u32)
                }
                _ => {}
            }
        } else if (offset, size) == (GICR_WAKER, 4) {
            self.cpu[vcpu].asleep = value & WAKER_PROCESSOR_SLEEP != 0;
        }
        actions
    }

    fn dist_typer(&self) -> u64 {
        let it_lines = (self.max_spi / 32) as u64;
        let cpus = (self.vcpus as u64 - 1) << 5;
        it_lines | cpus | TYPER_IDBITS | TYPER_NO1N
    }

    /// GICR_TYPER: affinity 0.0.0.vcpu, processor number vcpu, Last on the last one.
    fn redist_typer(&self, vcpu: usize) -> u64 {
        let last = if vcpu + 1 == self.vcpus { 1 << 4 } else { 0 };
        (vcpu as u64) << 32 | (vcpu as u64) << 8 | last
    }

    fn read_bits(&self, vcpu: usize, w: usize, reg: BitReg) -> u32 {
        let word = self.word(vcpu, w);
        let value = match reg {
            BitReg::Group => u32::MAX,
            BitReg::SetEnable | BitReg::ClearEnable => word.enabled,
            BitReg::SetPending | BitReg::ClearPending => {
                word.pending | (word.lr_pending & !word.unpend)
            }
            BitReg::SetActive | BitReg::ClearActive => {
                word.active | (word.lr_active & !word.deactivate)
            }
        };
        value & word.owned
    }

    fn write_bits(
        &mut self,
        vcpu: usize,
        w: usize,
        reg: BitReg,
        value: u32,
        actions: &mut Actions,
    ) {
        let sets = matches!(
            reg,
            BitReg::SetEnable | BitReg::SetPending | BitReg::SetActive
        );
        let word = self.word_mut(vcpu, w);
        if sets && value & !word.owned & valid_bits(w) != 0 {
            self.denied = self.denied.saturating_add(1);
        }
        let word = self.word_mut(vcpu, w);
        let value = value & word.owned;
        let changed = match reg {
            BitReg::Group => 0,
            BitReg::SetEnable => {
                let changed = value & !word.enabled;
                word.enabled |= value;
                changed
            }
            BitReg::ClearEnable => {
                let changed = value & word.enabled;
                word.enabled &= !value;
                changed
            }
            BitReg::SetPending => {
                word.pending |= value;
                value
            }
            // A HW-linked interrupt's pending state stands for a physical one
            // EL2 acknowledged: only the guest's deactivation may release it.
            BitReg::ClearPending => {
                let value = value & !word.hw;
                word.pending &= !value;
                word.unpend |= value & word.in_lr;
                value
            }
            BitReg::SetActive => {
                word.active |= value;
                word.deactivate &= !value;
                value
            }
            BitReg::ClearActive => {
                word.active &= !value;
                word.deactivate |= value & word.in_lr & !word.hw;
                value
            }
        };
        let hw = word.hw;
        for_each_bit(w, changed, |intid| {
            if hw & bit(intid) != 0 {
                let action = match (reg, intid < PRIVATE) {
                    (BitReg::SetEnable, false) => Some(Action::EnablePhysSpi(intid)),
                    (BitReg::ClearEnable, false) => Some(Action::DisablePhysSpi(intid)),
                    (BitReg::SetEnable, true) => Some(Action::EnablePhysPpi { vcpu, intid }),
                    (BitReg::ClearEnable, true) => Some(Action::DisablePhysPpi { vcpu, intid }),
                    _ => None,
                };
                if let Some(action) = action {
                    actions.push(action);
                }
            }
            self.kick_if_needed(vcpu, intid, actions);
        });
    }

    /// The priority byte the guest sees (`vcpu` is None in the distributor,
    /// where the private INTIDs read as zero).
    fn priority_byte(&self, vcpu: Option<usize>, intid: u32) -> u8 {
        match vcpu {
            Some(vcpu) if intid < PRIVATE => self.priority(vcpu, intid),
            None if intid >= PRIVATE && self.owns(intid) => self.priority(0, intid),
            _ => 0,
        }
    }

    fn read_priority(&self, vcpu: Option<usize>, first: u64, size: u8) -> u64 {
        (0..size as u64).fold(0, |value, i| {
            value | (self.priority_byte(vcpu, (first + i) as u32) as u64) << (8 * i)
        })
    }

    fn write_priority(&mut self, vcpu: Option<usize>, first: u64, size: u8, value: u64) {
        for i in 0..size as u64 {
            let intid = (first + i) as u32;
            let byte = (value >> (8 * i)) as u8 & PRIORITY_MASK;
            match vcpu {
                Some(vcpu) if intid < PRIVATE => self.cpu[vcpu].priority[intid as usize] = byte,
                None if intid >= PRIVATE && self.owns(intid) => {
                    self.spi_priority[intid as usize] = byte
                }
                _ => {}
            }
        }
    }

    /// Which INTIDs of ICFGR<index> (16 per register) the guest may configure,
    /// and the register's current value.
    fn config(&self, vcpu: Option<usize>, index: u64) -> (u32, u32) {
        let first = index as u32 * 16;
        let private = first < PRIVATE;
        if private != vcpu.is_some() {
            return (0, 0);
        }
        let word = self.word(vcpu.unwrap_or(0), word_index(first));
        let shift = first % 32;
        // SGIs are always edge; the hardware PPIs always level.
        let fixed = if private {
            ((1 << SGI_COUNT) - 1) | word.hw
        } else {
            0
        };
        let writable = ((word.owned & !fixed) >> shift) & 0xffff;
        let edge = (word.edge >> shift) & 0xffff;
        let spread = |bits: u32| (0..16).fold(0, |v, i| v | ((bits >> i) & 1) << (2 * i + 1));
        (spread(writable), spread(edge & (word.owned >> shift)))
    }

    fn read_config(&self, vcpu: Option<usize>, index: u64) -> u64 {
        self.config(vcpu, index).1 as u64
    }

    fn write_config(&mut self, vcpu: Option<usize>, index: u64, value: u32) {
        let (writable, _) = self.config(vcpu, index);
        let first = index as u32 * 16;
        let shift = first % 32;
        let word = self.word_mut(vcpu.unwrap_or(0), word_index(first));
        for i in 0..16 {
            if writable & (2 << (2 * i)) != 0 {
                let b = 1 << (shift + i);
                if value & (2 << (2 * i)) != 0 {
                    word.edge |= b;
                } else {
                    word.edge &= !b;
                }
            }
        }
    }

    fn write_route(&mut self, intid: u32, half: u64, size: u8, value: u64, actions: &mut Actions) {
        if !self.owns(intid) {
            return;
        }
        let old = unpack_route(self.route[intid as usize]);
        let new = match (size, half) {
            (8, _) => value,
            (_, 0) => (old & !0xffff_ffff) | (value & 0xffff_ffff),
            _ => (old & 0xffff_ffff) | value << 32,
        };
        self.route[intid as usize] = pack_route(new);
        let target = self.target(0, intid);
        if let Some(vcpu) = target {
            if self.is(0, intid, |w| w.hw) {
                actions.push(Action::RoutePhysSpi { intid, vcpu });
            }
        }
        self.kick_if_needed(0, intid, actions);
    }
}
