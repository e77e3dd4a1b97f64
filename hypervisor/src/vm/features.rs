//! Portable: which feature-ID fields a guest sees as absent
//! (`vm/sysreg/feature_id.rs` says why each is hidden).

/// Fields of one register, as (lsb, width) pairs.
type Fields = &'static [(u32, u32)];

/// (CRm, op2, fields hidden).
const HIDDEN: &[(u8, u8, Fields)] = &[
    // ID_AA64PFR0_EL1: MPAM [43:40].
    (4, 0, &[(40, 4)]),
    // ID_AA64PFR1_EL1: MTE [11:8], MPAM_frac [19:16], SME [27:24], NMI [39:36].
    (4, 1, &[(8, 4), (16, 4), (24, 4), (36, 4)]),
    // ID_AA64SMFR0_EL1: all of it.
    (4, 5, &[(0, 64)]),
    // ID_AA64DFR0_EL1: TraceVer [7:4], PMSVer [35:32], TraceFilt [43:40],
    // TraceBuffer [47:44], BRBE [55:52].
    (5, 0, &[(4, 4), (32, 4), (40, 4), (44, 4), (52, 4)]),
];

/// The value a guest reads from ID register (CRm, op2).
pub fn guest_value(crm: u8, op2: u8, hardware: u64) -> u64 {
    HIDDEN
        .iter()
        .filter(|(c, o, _)| (*c, *o) == (crm, op2))
        .flat_map(|(_, _, fields)| fields.iter())
        .fold(hardware, |v, &(lsb, width)| {
            let mask = if width == 64 {
                u64::MAX
            } else {
                ((1u64 << width) - 1) << lsb
            };
            v & !mask
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_sme_mte_and_friends_and_nothing_else() {
        // ID_AA64PFR1_EL1 with BT, SSBS, MTE, SME, NMI all present.
        let pfr1 = 0x1 | 0x2 << 4 | 0x3 << 8 | 0x1 << 16 | 0x2 << 24 | 0x1 << 36;
        assert_eq!(guest_value(4, 1, pfr1), 0x1 | 0x2 << 4);
        // ID_AA64SMFR0_EL1: nothing left.
        assert_eq!(guest_value(4, 5, u64::MAX), 0);
        // ID_AA64PFR0_EL1: SVE (35:32) stays, MPAM (43:40) goes.
        let pfr0 = 0x1 << 32 | 0x1 << 40 | 0x11;
        assert_eq!(guest_value(4, 0, pfr0), 0x1 << 32 | 0x11);
        // ID_AA64DFR0_EL1: PMUVer (11:8) and DebugVer (3:0) stay; SPE, trace, BRBE go.
        let dfr0 = 0x6 | 0x1 << 4 | 0x7 << 8 | 0x1 << 32 | 0x1 << 40 | 0x1 << 44 | 0x1 << 52;
        assert_eq!(guest_value(5, 0, dfr0), 0x6 | 0x7 << 8);
        // ID_AA64ISAR1_EL1 (pointer authentication) passes unchanged.
        assert_eq!(
            guest_value(6, 1, 0x0123_4567_89ab_cdef),
            0x0123_4567_89ab_cdef
        );
    }
}
