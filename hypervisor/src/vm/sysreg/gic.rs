//! ICC_SGI1R_EL1 writes (trapped by HCR_EL2.IMO): the vGIC turns them into
//! virtual SGIs for the VM's vCPUs.

use super::Outcome;
use crate::vm::{vcpu, VmState};

pub fn sgi1r(vm: &VmState, vi: usize, value: u64) -> Outcome {
    let targets = vm.vgic.lock().send_sgi(vi, value);
    for t in (0..vm.vcpus.len()).filter(|t| targets & (1 << t) != 0) {
        vcpu::kick(vm, t);
    }
    Outcome::Done
}
