//! Decoding a guest's data abort on an emulated device: which register it
//! used, how wide, which direction (ESR_EL2 ISS for EC 0x24, and HPFAR_EL2).

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// ISS.ISV clear: the instruction (e.g. a load pair, or with writeback)
    /// gives no syndrome, so it cannot be emulated.
    NoSyndrome,
    /// Not a data abort from a lower exception level.
    NotDataAbort,
}

/// Decodes ESR_EL2 and the faulting IPA (HPFAR_EL2.FIPA << 8 | FAR[11:0]).
pub fn decode(esr: u64, hpfar: u64, far: u64) -> Result<Access, DecodeError> {
    if super::esr::class(esr) != 0x24 {
        return Err(DecodeError::NotDataAbort);
    }
    if esr & (1 << 24) == 0 {
        return Err(DecodeError::NoSyndrome);
    }
    let ipa = fault_ipa(hpfar, far);
    Ok(Access {
        ipa,
        size: 1 << ((esr >> 22) & 3),
        write: esr & (1 << 6) != 0,
        reg: ((esr >> 16) & 0x1f) as u8,
        sign_extend: esr & (1 << 21) != 0,
        sixty_four: esr & (1 << 15) != 0,
    })
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
                sixty_four: false
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
}
