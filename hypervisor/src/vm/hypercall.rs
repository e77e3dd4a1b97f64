//! HVC and trapped SMC calls under the SMC Calling Convention: PSCI goes to
//! the PSCI server, Tessera's own calls (vendor-specific hypervisor range)
//! are served here.

use super::{psci, vcpu, VmState};
use crate::arch::psci as fw;
use crate::arch::vectors::SmcccRegs;
use crate::drivers::console;
use crate::fdt::firmware::Conduit;
use spin::Once;

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

/// SMCCC: the version this hypervisor implements (1.1), and the query of
/// one function's support.
pub const SMCCC_VERSION: u64 = 0x8000_0000;
pub const SMCCC_ARCH_FEATURES: u64 = 0x8000_0001;
/// The Spectre workarounds (v2, v4, BHB): they act on the physical core,
/// which the guest owns, so they are the firmware's to answer.
const WORKAROUNDS: [u64; 3] = [0x8000_8000, 0x8000_7fff, 0x8000_3fff];

/// Every function `PSCI_FEATURES` reports.
const SUPPORTED: [u64; 16] = [
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
    SMCCC_VERSION,
    SMCCC_ARCH_FEATURES,
    TESSERA_PING,
    TESSERA_DOORBELL,
    TESSERA_EXITS,
    TESSERA_UART_TOUCHES,
];

/// What the firmware said at boot about each of `WORKAROUNDS` (its
/// `SMCCC_ARCH_FEATURES` answer, or NOT_SUPPORTED when it has no SMCCC 1.1),
/// and how to call it.
struct Firmware {
    conduit: Option<Conduit>,
    workarounds: [u64; 3],
}

static FIRMWARE: Once<Firmware> = Once::new();

/// At boot: asks the firmware, as Linux would, whether the CPU needs the
/// Spectre workarounds and the firmware has them.
pub fn probe_firmware(conduit: Option<Conduit>) {
    let ask = |c: Conduit, fid: u64, arg: u64| fw::call(c, fid as u32, arg, 0, 0) as u64;
    let workarounds = match conduit {
        // SMCCC_VERSION exists from SMCCC 1.1 on, which PSCI_FEATURES tells.
        Some(c)
            if ask(c, psci::FEATURES, SMCCC_VERSION) == 0
                && (ask(c, SMCCC_VERSION, 0) as i64) >= 0x1_0001 =>
        {
            WORKAROUNDS.map(|w| ask(c, SMCCC_ARCH_FEATURES, w))
        }
        _ => [psci::NOT_SUPPORTED; 3],
    };
    log::info!(
        "firmware SMCCC_ARCH_FEATURES for WORKAROUND_1/2/3: {:?}",
        workarounds.map(|w| w as i64)
    );
    FIRMWARE.call_once(|| Firmware {
        conduit,
        workarounds,
    });
}

/// The firmware's answer for workaround `fid`, if `fid` is one.
fn workaround(fid: u64) -> Option<(usize, u64)> {
    let i = WORKAROUNDS.iter().position(|&w| w == fid)?;
    let fw = FIRMWARE.get()?;
    Some((i, fw.workarounds[i]))
}

/// `SMCCC_ARCH_FEATURES(fid)`.
fn arch_features(fid: u64) -> u64 {
    match workaround(fid) {
        Some((_, answer)) => answer,
        None if SUPPORTED.contains(&fid) => 0,
        None => psci::NOT_SUPPORTED,
    }
}

/// A workaround call: on to the firmware if it said the CPU needs it and
/// it has it (0), else NOT_SUPPORTED.
fn call_workaround(i: usize, arg: u64) -> u64 {
    match FIRMWARE.get() {
        Some(Firmware {
            conduit: Some(c),
            workarounds,
        }) if workarounds[i] == 0 => {
            // WORKAROUND_2's argument is enable (non-zero) or disable.
            fw::call(*c, WORKAROUNDS[i] as u32, (arg != 0) as u64, 0, 0) as u64
        }
        _ => psci::NOT_SUPPORTED,
    }
}

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
    // SMC32/HVC32 calls (bit 30 clear) take 32-bit arguments: the upper
    // halves are not theirs (SMCCC). x1-x3 are all any call here reads,
    // and result registers, so they are cut in place.
    if fid & (1 << 30) == 0 {
        for a in &mut x[1..4] {
            *a &= 0xffff_ffff;
        }
    }
    let ret = match fid {
        psci::FEATURES => {
            if SUPPORTED.contains(&x[1]) {
                0
            } else {
                psci::NOT_SUPPORTED
            }
        }
        SMCCC_VERSION => 0x1_0001,
        SMCCC_ARCH_FEATURES => arch_features(x[1]),
        TESSERA_PING => 0,
        TESSERA_DOORBELL => doorbell(vm, x[1]),
        TESSERA_EXITS => vm.vcpus[vi].exits(),
        TESSERA_UART_TOUCHES => vm.vcpus.iter().map(|v| console::touches(v.core)).sum(),
        _ => match workaround(fid) {
            Some((i, _)) => call_workaround(i, x[1]),
            None => psci::call(vm, vi, fid, x).unwrap_or(psci::NOT_SUPPORTED),
        },
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
