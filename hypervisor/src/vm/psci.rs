//! The PSCI 1.1 server each VM sees (over HVC, and over SMC trapped by
//! HCR_EL2.TSC): power states of its own vCPUs and of the VM as a whole.

use super::fault::{restart, stop};
use super::{vcpu, Power, VmState};
use crate::drivers::gicv3;

pub const VERSION: u64 = 0x8400_0000;
pub const CPU_OFF: u64 = 0x8400_0002;
pub const CPU_ON_32: u64 = 0x8400_0003;
pub const CPU_ON_64: u64 = 0xc400_0003;
pub const AFFINITY_INFO_32: u64 = 0x8400_0004;
pub const AFFINITY_INFO_64: u64 = 0xc400_0004;
pub const MIGRATE_INFO_TYPE: u64 = 0x8400_0006;
pub const SYSTEM_OFF: u64 = 0x8400_0008;
pub const SYSTEM_RESET: u64 = 0x8400_0009;
pub const FEATURES: u64 = 0x8400_000a;

pub const NOT_SUPPORTED: u64 = -1i64 as u64;
pub const INVALID_PARAMETERS: u64 = -2i64 as u64;
const ALREADY_ON: u64 = -4i64 as u64;
const ON_PENDING: u64 = -5i64 as u64;
const INVALID_ADDRESS: u64 = -9i64 as u64;

/// Serves PSCI function `fid`; `None` if it is not a PSCI function we serve.
pub fn call(vm: &'static VmState, vi: usize, fid: u64, x: &[u64; 18]) -> Option<u64> {
    Some(match fid {
        VERSION => 0x1_0001,
        MIGRATE_INFO_TYPE => 2, // no trusted OS to migrate
        CPU_ON_32 | CPU_ON_64 => cpu_on(vm, x[1], x[2], x[3]),
        AFFINITY_INFO_32 | AFFINITY_INFO_64 => match vcpu_of(vm, x[1]) {
            Some(t) if x[2] == 0 => match vm.vcpus[t].power() {
                Power::On => 0,
                Power::Off => 1,
                Power::OnPending => 2,
            },
            _ => INVALID_PARAMETERS,
        },
        CPU_OFF => vcpu::leave(vm, vi),
        SYSTEM_OFF => {
            log::info!("VM {}: SYSTEM_OFF from vCPU {vi}: stopped", vm.name());
            stop(vm, vi);
        }
        SYSTEM_RESET => {
            if let Some(held) = vm.may_log() {
                log::info!(
                    "VM {}: SYSTEM_RESET from vCPU {vi}: restarting{held}",
                    vm.name()
                );
            }
            restart(vm, vi);
        }
        _ => return None,
    })
}

/// The vCPU an MPIDR names in this VM (Aff0 = vCPU index, nothing above).
fn vcpu_of(vm: &VmState, mpidr: u64) -> Option<usize> {
    let t = (mpidr & 0xff_00ff_ffff) as usize;
    (t < vm.vcpus.len()).then_some(t)
}

fn cpu_on(vm: &VmState, target: u64, entry: u64, context: u64) -> u64 {
    let Some(t) = vcpu_of(vm, target) else {
        return INVALID_PARAMETERS;
    };
    if vm.cfg.ipa_to_pa(entry).is_none() {
        return INVALID_ADDRESS;
    }
    match vm.vcpus[t].request_on(entry, context) {
        Ok(()) => {
            gicv3::send_sgi(vcpu::SGI_KICK, vm.vcpus[t].mpidr);
            0
        }
        Err(Power::OnPending) => ON_PENDING,
        Err(_) => ALREADY_ON,
    }
}
