//! Trapped system-register accesses and system instructions (EC 0x18), one
//! file per family as Hafnium does: the GIC's SGI register, the feature ID
//! registers (HCR_EL2.TID3), set/way cache maintenance (TSW) and
//! implementation-defined registers (TIDCP). What each family does, and
//! why, is written in docs/guest-abi.md ("Trapped registers").

mod cache;
mod feature_id;
mod gic;
mod impdef;

use super::VmState;
use crate::arch::esr::SysRegAccess;
use crate::arch::vectors::Frame;

/// What became of a trapped access.
pub enum Outcome {
    /// Emulated: the guest goes on after the instruction.
    Done,
    /// The guest gets an Undefined Instruction exception, as on a core
    /// without the register.
    Undefined,
    /// Nothing here handles it: the fault policy applies.
    Unknown,
}

pub fn trapped(vm: &VmState, vi: usize, frame: &mut Frame, esr: u64) -> Outcome {
    let a = SysRegAccess::decode(esr);
    match a.encoding() {
        (3, 0, 12, 11, 5) if !a.read => gic::sgi1r(vm, vi, reg(frame, a.rt)),
        (3, 0, 0, 1..=7, _) => feature_id::access(frame, &a),
        (1, 0, 7, 6 | 10 | 14, 2) => cache::set_way(),
        (3, _, 11 | 15, _, _) => impdef::access(),
        _ => Outcome::Unknown,
    }
}

/// Register `rt` of the trapped instruction (31: XZR reads 0).
fn reg(frame: &Frame, rt: u8) -> u64 {
    if rt == 31 {
        0
    } else {
        frame.x[rt as usize]
    }
}

/// Writes register `rt` (31: XZR, discarded).
fn set_reg(frame: &mut Frame, rt: u8, value: u64) {
    if rt != 31 {
        frame.x[rt as usize] = value;
    }
}
