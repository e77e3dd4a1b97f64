//! The feature ID registers a guest reads (HCR_EL2.TID3 traps them all):
//! the core's own values, less the features Tessera does not give guests.
//! - SME: its state is not the guest's to own yet (CPTR_EL2.TSM traps it),
//!   so a guest that saw it would be stopped on first use.
//! - MTE: allocation-tag access is trapped (HCR_EL2.ATA clear).
//! - MPAM, statistical profiling, trace, branch records: their EL2 controls
//!   are not set up for guests.
//!
//! Everything else (SVE, pointer authentication, the PMU, debug) is the
//! guest's, on a core of its own.

use super::{set_reg, Outcome};
use crate::arch::esr::SysRegAccess;
use crate::arch::sysreg::read_id_register;
use crate::arch::vectors::Frame;

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

pub fn access(frame: &mut Frame, a: &SysRegAccess) -> Outcome {
    if !a.read {
        // ID registers are read-only.
        return Outcome::Undefined;
    }
    let value = guest_value(a.crm, a.op2, read_id_register(a.crm, a.op2));
    set_reg(frame, a.rt, value);
    Outcome::Done
}
