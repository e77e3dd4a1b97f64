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
use crate::vm::features::guest_value;

pub fn access(frame: &mut Frame, a: &SysRegAccess) -> Outcome {
    if !a.read {
        // ID registers are read-only.
        return Outcome::Undefined;
    }
    let value = guest_value(a.crm, a.op2, read_id_register(a.crm, a.op2));
    set_reg(frame, a.rt, value);
    Outcome::Done
}
