//! HVC and trapped SMC calls under the SMC Calling Convention: PSCI goes to
//! the PSCI server, Tessera's own calls (vendor-specific hypervisor range)
//! are served here.

use super::{psci, vcpu, VmState};
use crate::arch::vectors::SmcccRegs;
use crate::drivers::console;

/// `TESSERA_PING`: returns 0 (a round trip, for latency measurements).
pub const TESSERA_PING: u64 = 0xc600_0000;
/// `TESSERA_DOORBELL(index)`: rings the VM's shared region `index`.
pub const TESSERA_DOORBELL: u64 = 0xc600_0001;

/// `TESSERA_EXITS`: this vCPU's exits to EL2 so far (this call included),
/// so a guest can check what costs it exits.
pub const TESSERA_EXITS: u64 = 0xc600_0002;

/// `TESSERA_UART_TOUCHES`: how many times EL2, on the cores of the caller's
/// VM, wrote to the physical UART or waited for it (since the VMs started).
pub const TESSERA_UART_TOUCHES: u64 = 0xc600_0003;

/// Every function `PSCI_FEATURES` reports.
const SUPPORTED: [u64; 14] = [
    psci::VERSION,
    psci::CPU_OFF,
    psci::CPU_ON_32,
    psci::CPU_ON_64,
    psci::AFFINITY_INFO_32,
    psci::AFFINITY_INFO_64,
    psci::MIGRATE_INFO_TYPE,
    psci::SYSTEM_OFF,
    psci::SYSTEM_RESET,
    psci::FEATURES,
    TESSERA_PING,
    TESSERA_DOORBELL,
    TESSERA_EXITS,
    TESSERA_UART_TOUCHES,
];

/// The vectors' HVC handler (this core's vCPU).
pub fn hvc(regs: &mut SmcccRegs) {
    let Some((vm, vi)) = super::this_vcpu() else {
        regs[0] = psci::NOT_SUPPORTED;
        return;
    };
    vm.vcpus[vi].count_exit();
    call(vm, vi, regs);
}

/// One call: the function ID in x0, arguments in x1-x3, the result to x0.
pub fn call(vm: &'static VmState, vi: usize, x: &mut SmcccRegs) {
    let fid = x[0] & 0xffff_ffff;
    let ret = match fid {
        psci::FEATURES => {
            if SUPPORTED.contains(&(x[1] & 0xffff_ffff)) {
                0
            } else {
                psci::NOT_SUPPORTED
            }
        }
        TESSERA_PING => 0,
        TESSERA_DOORBELL => doorbell(vm, x[1]),
        TESSERA_EXITS => vm.vcpus[vi].exits(),
        TESSERA_UART_TOUCHES => vm.vcpus.iter().map(|v| console::touches(v.core)).sum(),
        _ => psci::call(vm, vi, fid, x).unwrap_or(psci::NOT_SUPPORTED),
    };
    x[0] = ret;
}

/// Rings shared region `index` of `vm`: every other peer gets its doorbell.
pub fn doorbell(vm: &VmState, index: u64) -> u64 {
    let Some(peers) = vm.doorbells.get(index as usize) else {
        if let Some(held) = vm.may_log() {
            log::warn!(
                "VM {}: doorbell {index}: no such shared region{held}",
                vm.name()
            );
        }
        return psci::INVALID_PARAMETERS;
    };
    let vms = super::vms();
    for &(peer, intid) in peers {
        if let Some(target) = vms.get(peer).filter(|t| t.unrunnable.is_none()) {
            vcpu::inject(target, intid, 0);
        }
    }
    0
}
