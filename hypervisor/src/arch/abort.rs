//! Decoding a guest's data abort on an emulated device: which register it
//! used, how wide, which direction (ESR_EL2 ISS for EC 0x24, and HPFAR_EL2);
//! and describing a stage-2 abort that is not emulated, for the fault log.

use core::fmt;

/// One trapped load or store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Guest-physical address accessed.
    pub ipa: u64,
    /// 1, 2, 4 or 8 bytes.
    pub size: u8,
    pub write: bool,
    /// General-purpose register (0-30; 31 means XZR/WZR).
    pub reg: u8,
    /// Loads: sign-extend the value to the register width.
    pub sign_extend: bool,
    /// Loads: the register is 64-bit (X), else 32-bit (W).
    pub sixty_four: bool,
    /// Length of the trapping instruction (ESR.IL): 4, or 2 for a 16-bit
    /// T32 instruction of an AArch32 EL0. The return skips this much.
    pub len: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// ISS.ISV clear: the instruction (e.g. a load pair, or with writeback)
    /// gives no syndrome, so it cannot be emulated.
    NoSyndrome,
    /// Not a data abort from a lower exception level.
    NotDataAbort,
    /// Not a stage-2 translation fault of the access itself (a permission,
    /// access-flag, address-size or external abort, or a fault on the
    /// stage-1 table walk): HPFAR does not hold the accessed IPA (it is
    /// UNKNOWN for permission faults, the table's address for a walk), so
    /// there is nothing to emulate.
    NotTranslation,
}

const ISS_IL: u64 = 1 << 25;
const ISS_ISV: u64 = 1 << 24;
const ISS_S1PTW: u64 = 1 << 7;
const ISS_WNR: u64 = 1 << 6;

/// A translation fault at level 0-3 (FEAT_LPA2 adds level -1, 0x2b).
fn is_translation(esr: u64) -> bool {
    matches!(esr & 0x3f, 0x04..=0x07 | 0x2b)
}

/// Decodes ESR_EL2 and the faulting IPA (HPFAR_EL2.FIPA << 8 | FAR[11:0]).
pub fn decode(esr: u64, hpfar: u64, far: u64) -> Result<Access, DecodeError> {
    if super::esr::class(esr) != 0x24 {
        return Err(DecodeError::NotDataAbort);
    }
    if !is_translation(esr) || esr & ISS_S1PTW != 0 {
        return Err(DecodeError::NotTranslation);
    }
    if esr & ISS_ISV == 0 {
        return Err(DecodeError::NoSyndrome);
    }
    let ipa = fault_ipa(hpfar, far);
    Ok(Access {
        ipa,
        size: 1 << ((esr >> 22) & 3),
        write: esr & ISS_WNR != 0,
        reg: ((esr >> 16) & 0x1f) as u8,
        sign_extend: esr & (1 << 21) != 0,
        sixty_four: esr & (1 << 15) != 0,
        len: if esr & ISS_IL != 0 { 4 } else { 2 },
    })
}

/// A guest's stage-2 abort (data or instruction) that is not emulated, as
/// the fault log line says it. Trusts HPFAR only where the architecture
/// makes it valid (translation faults, and the walk's table address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    esr: u64,
    hpfar: u64,
    far: u64,
}

impl Fault {
    pub fn new(esr: u64, hpfar: u64, far: u64) -> Fault {
        Fault { esr, hpfar, far }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (esr, far) = (self.esr, self.far);
        let ipa = fault_ipa(self.hpfar, far);
        let fetch = super::esr::class(esr) == 0x20;
        let what = if fetch {
            "instruction fetch from"
        } else if esr & ISS_WNR != 0 {
            "write to"
        } else {
            "read of"
        };
        let status = super::esr::fault_status_name(esr);
        if esr & ISS_S1PTW != 0 {
            write!(
                f,
                "stage-2 {status} in the stage-1 table walk for VA {far:#x}: table at IPA {ipa:#x}"
            )?;
            return if is_translation(esr) {
                f.write_str(" outside its map")
            } else {
                Ok(())
            };
        }
        match esr & 0x3f {
            _ if is_translation(esr) && fetch => {
                write!(f, "stage-2 fault: instruction fetch from IPA {ipa:#x}")
            }
            _ if is_translation(esr) => write!(f, "stage-2 fault: {what} IPA {ipa:#x} outside its map"),
            0x0c..=0x0f => write!(
                f,
                "stage-2 permission fault: {what} VA {far:#x} (its IPA is mapped without that access)"
            ),
            fsc => write!(
                f,
                "stage-2 abort: {status} ({} {fsc:#04x}) at VA {far:#x}",
                if fetch { "IFSC" } else { "DFSC" }
            ),
        }
    }
}

/// The faulting IPA of a stage-2 abort: HPFAR_EL2.FIPA (bits 51:12) and
/// the page offset from FAR_EL2.
pub fn fault_ipa(hpfar: u64, far: u64) -> u64 {
    ((hpfar >> 4) & 0xff_ffff_ffff) << 12 | (far & 0xfff)
}

impl Access {
    /// The value a load puts in its register, from the device's `raw` bytes.
    pub fn load_value(&self, raw: u64) -> u64 {
        let bits = self.size as u32 * 8;
        let v = if bits == 64 {
            raw
        } else {
            raw & ((1u64 << bits) - 1)
        };
        let v = if self.sign_extend && bits < 64 {
            (((v << (64 - bits)) as i64) >> (64 - bits)) as u64
        } else {
            v
        };
        if self.sixty_four {
            v
        } else {
            v & 0xffff_ffff
        }
    }

    /// The bytes a store writes, from its register's value.
    pub fn store_value(&self, reg_value: u64) -> u64 {
        if self.size == 8 {
            reg_value
        } else {
            reg_value & ((1u64 << (self.size as u32 * 8)) - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esr(isv: bool, sas: u64, sse: bool, srt: u64, sf: bool, wnr: bool) -> u64 {
        (0x24 << 26)
            | (1 << 25)
            | (isv as u64) << 24
            | sas << 22
            | (sse as u64) << 21
            | srt << 16
            | (sf as u64) << 15
            | (wnr as u64) << 6
            | 0x07 // translation fault, level 3
    }

    #[test]
    fn decodes_a_word_store() {
        let a = decode(
            esr(true, 2, false, 3, false, true),
            0x0090_0000 << 4 >> 12 << 4,
            0x0900_0018,
        )
        .unwrap();
        assert_eq!(
            a,
            Access {
                ipa: 0x0900_0018,
                size: 4,
                write: true,
                reg: 3,
                sign_extend: false,
                sixty_four: false,
                len: 4,
            }
        );
        assert_eq!(a.store_value(0xffff_ffff_1234_5678), 0x1234_5678);
    }

    #[test]
    fn ipa_from_hpfar_and_far() {
        // HPFAR_EL2.FIPA holds IPA[47:12] in bits [39:4].
        let hpfar = (0x0_080a_0000u64 >> 12) << 4;
        let a = decode(
            esr(true, 3, false, 0, true, false),
            hpfar,
            0xffff_0000_dead_0108,
        )
        .unwrap();
        assert_eq!(a.ipa, 0x080a_0108);
        assert_eq!(a.size, 8);
    }

    #[test]
    fn sign_extension_and_widths() {
        let ldrsb_w = decode(esr(true, 0, true, 1, false, false), 0, 0).unwrap();
        assert_eq!(ldrsb_w.load_value(0x80), 0xffff_ff80);
        let ldrsh_x = decode(esr(true, 1, true, 1, true, false), 0, 0).unwrap();
        assert_eq!(ldrsh_x.load_value(0x8001), 0xffff_ffff_ffff_8001);
        let ldrb = decode(esr(true, 0, false, 1, false, false), 0, 0).unwrap();
        assert_eq!(ldrb.load_value(0x1ff), 0xff);
        let ldr_x = decode(esr(true, 3, false, 1, true, false), 0, 0).unwrap();
        assert_eq!(ldr_x.load_value(u64::MAX), u64::MAX);
    }

    #[test]
    fn refuses_what_it_cannot_emulate() {
        assert_eq!(
            decode(esr(false, 2, false, 0, false, false), 0, 0),
            Err(DecodeError::NoSyndrome)
        );
        assert_eq!(decode(0x16 << 26, 0, 0), Err(DecodeError::NotDataAbort));
    }

    /// ESR with a given fault status code (DFSC/IFSC) and S1PTW.
    fn esr_fsc(ec: u64, fsc: u64, s1ptw: bool) -> u64 {
        (ec << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (s1ptw as u64) << 7 | fsc
    }

    #[test]
    fn only_translation_faults_are_emulated() {
        // Permission (level 3), access flag, address size, external abort,
        // alignment: HPFAR says nothing reliable about an access to emulate.
        for fsc in [0x0f, 0x0b, 0x01, 0x10, 0x21] {
            assert_eq!(
                decode(
                    esr_fsc(0x24, fsc, false),
                    0x0090_0000 << 4 >> 12 << 4,
                    0x0900_0000
                ),
                Err(DecodeError::NotTranslation),
                "DFSC {fsc:#x}"
            );
        }
        // Level 0-3 translation faults are.
        for fsc in 0x04..=0x07 {
            assert!(
                decode(esr_fsc(0x24, fsc, false), 0, 0).is_ok(),
                "DFSC {fsc:#x}"
            );
        }
    }

    #[test]
    fn stage_one_walk_faults_are_not_emulated() {
        // The guest's own page tables at an unmapped IPA: HPFAR holds the
        // table's address, not the access's.
        assert_eq!(
            decode(
                esr_fsc(0x24, 0x07, true),
                0x0090_0000 << 4 >> 12 << 4,
                0x1234_5000
            ),
            Err(DecodeError::NotTranslation)
        );
    }

    #[test]
    fn instruction_length_from_il() {
        let a32 = decode(esr(true, 2, false, 0, false, true), 0, 0).unwrap();
        assert_eq!(a32.len, 4);
        let t16 = decode(esr(true, 2, false, 0, false, true) & !(1 << 25), 0, 0).unwrap();
        assert_eq!(t16.len, 2);
    }

    #[test]
    fn fault_descriptions() {
        let hpfar = (0x5000_0000u64 >> 12) << 4;
        let describe = |esr| alloc::format!("{}", Fault::new(esr, hpfar, 0x7f00_0123));
        assert_eq!(
            describe(esr_fsc(0x24, 0x0f, false) | (1 << 6)),
            "stage-2 permission fault: write to VA 0x7f000123 (its IPA is mapped without that access)"
        );
        assert_eq!(
            describe(esr_fsc(0x20, 0x0f, false)),
            "stage-2 permission fault: instruction fetch from VA 0x7f000123 (its IPA is mapped without that access)"
        );
        assert_eq!(
            describe(esr_fsc(0x24, 0x07, true)),
            "stage-2 translation fault in the stage-1 table walk for VA 0x7f000123: table at IPA 0x50000123 outside its map"
        );
        assert_eq!(
            describe(esr_fsc(0x24, 0x07, false)),
            "stage-2 fault: read of IPA 0x50000123 outside its map"
        );
        assert_eq!(
            describe(esr_fsc(0x20, 0x06, false)),
            "stage-2 fault: instruction fetch from IPA 0x50000123"
        );
        assert_eq!(
            describe(esr_fsc(0x24, 0x10, false)),
            "stage-2 abort: synchronous external abort (DFSC 0x10) at VA 0x7f000123"
        );
    }
}
