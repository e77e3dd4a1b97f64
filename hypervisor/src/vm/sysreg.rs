//! Trapped system-register accesses, one family per function (Hafnium's
//! model): today the GICv3 SGI register, which the vGIC turns into virtual
//! SGIs.

use super::{vcpu, VmState};
use crate::arch::vectors::Frame;

/// Handles a trapped MSR/MRS (EC 0x18); false if it is not one we emulate.
pub fn trapped(vm: &VmState, vi: usize, frame: &Frame, esr: u64) -> bool {
    if is_sgi1r_write(esr) {
        let rt = ((esr >> 5) & 0x1f) as usize;
        let value = if rt == 31 { 0 } else { frame.x[rt] };
        let targets = vm.vgic.lock().send_sgi(vi, value);
        for t in (0..vm.vcpus.len()).filter(|t| targets & (1 << t) != 0) {
            vcpu::kick(vm, t);
        }
        return true;
    }
    false
}

/// ICC_SGI1R_EL1 write: op0 3, op1 0, CRn 12, CRm 11, op2 5, direction write.
fn is_sgi1r_write(esr: u64) -> bool {
    let iss = esr & 0x1ff_ffff;
    let (op0, op2, op1, crn, crm, read) = (
        (iss >> 20) & 3,
        (iss >> 17) & 7,
        (iss >> 14) & 7,
        (iss >> 10) & 0xf,
        (iss >> 1) & 0xf,
        iss & 1,
    );
    (op0, op1, crn, crm, op2, read) == (3, 0, 12, 11, 5, 0)
}
