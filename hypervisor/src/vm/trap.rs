//! A guest's synchronous exceptions and SErrors, dispatched by class:
//! hypercalls and SMCs, data aborts (emulated devices through the VM's
//! registry, or a fault), trapped system registers, and everything else
//! as a contained fault.

use super::fault::{fault, FaultKind};
use super::{hypercall, sysreg, vcpu, VmState};
use crate::arch::abort;
use crate::arch::esr;
use crate::arch::sysreg::syndrome;
use crate::arch::vectors::{Frame, Kind, SmcccRegs};
use crate::vdev::{Effects, MmioAccess};

/// A synchronous exception from the guest on this core.
pub fn sync(frame: &mut Frame) {
    let (esr, far, hpfar) = syndrome();
    let Some((vm, vi)) = super::this_vcpu() else {
        crate::arch::vectors::unexpected(frame, Kind::Lower64Sync);
    };
    vm.vcpus[vi].count_exit();
    match esr::class(esr) {
        // HVCs come through `hypercall::hvc` (the vectors' short path).
        0x16 | 0x17 => {
            let regs: &mut SmcccRegs = (&mut frame.x[..18]).try_into().expect("18 registers");
            hypercall::call(vm, vi, regs);
            if esr::class(esr) == 0x17 {
                frame.elr += 4; // a trapped SMC returns to itself
            }
        }
        0x24 => match abort::decode(esr, hpfar, far) {
            // ESR.IL: a 16-bit T32 access from an AArch32 EL0 is 2 bytes.
            Ok(access) if emulate(vm, vi, frame, &access) => frame.elr += access.len as u64,
            Ok(access) => fault(
                vm,
                vi,
                frame,
                esr,
                FaultKind::Unmapped(access.ipa, access.write),
            ),
            Err(abort::DecodeError::NoSyndrome) => {
                // A translation fault: HPFAR is valid.
                let ipa = abort::fault_ipa(hpfar, far);
                let kind = if vm.mmio.find(ipa).is_some() {
                    FaultKind::NoSyndrome(ipa)
                } else {
                    FaultKind::Unmapped(ipa, esr & (1 << 6) != 0)
                };
                fault(vm, vi, frame, esr, kind)
            }
            Err(_) => fault(
                vm,
                vi,
                frame,
                esr,
                FaultKind::Abort(abort::Fault::new(esr, hpfar, far)),
            ),
        },
        0x20 => fault(
            vm,
            vi,
            frame,
            esr,
            FaultKind::Abort(abort::Fault::new(esr, hpfar, far)),
        ),
        0x18 => match sysreg::trapped(vm, vi, frame, esr) {
            sysreg::Outcome::Done => frame.elr += 4,
            sysreg::Outcome::Undefined => inject_undefined(frame),
            sysreg::Outcome::Unknown => fault(vm, vi, frame, esr, FaultKind::Trap),
        },
        0x01 => frame.elr += 4, // WFI/WFE, should they ever be trapped
        _ => fault(vm, vi, frame, esr, FaultKind::Trap),
    }
}

/// An SError from the guest: contained like any fault.
pub fn serror(frame: &mut Frame) {
    let (esr, _, _) = syndrome();
    match super::this_vcpu() {
        Some((vm, vi)) => {
            vm.vcpus[vi].count_exit();
            fault(vm, vi, frame, esr, FaultKind::SError)
        }
        None => crate::arch::vectors::unexpected(frame, Kind::Lower64SError),
    }
}

/// Makes the trapped instruction raise an Undefined Instruction exception at
/// the guest's EL1, as a core without the register would: ESR_EL1 says
/// "unknown reason", and the guest's vector for its current state runs with
/// every interrupt masked.
fn inject_undefined(frame: &mut Frame) {
    use aarch64_cpu::registers::{Readable, Writeable, ELR_EL1, ESR_EL1, SPSR_EL1, VBAR_EL1};
    const IL: u64 = 1 << 25;
    const M_MASK: u64 = 0xf;
    const EL1T: u64 = 0b0100;
    const EL1H: u64 = 0b0101;
    // Vector offsets: current EL with SP_EL0, with SP_ELx, lower EL (AArch64).
    let offset = match frame.spsr & M_MASK {
        EL1T => 0x000,
        EL1H => 0x200,
        _ => 0x400,
    };
    ESR_EL1.set(IL);
    ELR_EL1.set(frame.elr);
    SPSR_EL1.set(frame.spsr);
    frame.elr = VBAR_EL1.get() + offset;
    frame.spsr = 0x3c0 | EL1H; // D, A, I, F masked; EL1h
}

/// An access to an emulated device; false if none is at that address.
fn emulate(vm: &VmState, vi: usize, frame: &mut Frame, a: &abort::Access) -> bool {
    let Some((device, offset)) = vm.mmio.find(a.ipa) else {
        return false;
    };
    let access = MmioAccess {
        vcpu: vi,
        offset,
        size: a.size,
    };
    let mut effects = Effects::new();
    if a.write {
        let reg_value = if a.reg == 31 {
            0
        } else {
            frame.x[a.reg as usize]
        };
        device.write(&access, a.store_value(reg_value), &mut effects);
    } else {
        let raw = device.read(&access, &mut effects);
        if a.reg != 31 {
            frame.x[a.reg as usize] = a.load_value(raw);
        }
    }
    vcpu::apply(vm, &effects);
    true
}
