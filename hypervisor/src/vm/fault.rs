//! The fault policy: a guest's fault is contained to its VM, told in one log
//! line, and the VM is stopped or restarted as its plan says.

use super::vcpu::{self, SGI_KICK, SGI_STOP};
use super::{Power, VmState};
use crate::arch::cpu;
use crate::arch::esr;
use crate::arch::vectors::Frame;
use crate::drivers::gicv3;
use core::sync::atomic::Ordering;
use tessera_boards::FaultPolicy;

pub enum FaultKind {
    Unmapped(u64, bool),
    /// An access to an emulated device by an instruction that gives no
    /// syndrome (load/store pair, writeback, SIMD): it cannot be emulated.
    NoSyndrome(u64),
    /// Any other stage-2 abort (permission, walk, instruction fetch...).
    Abort(crate::arch::abort::Fault),
    Trap,
    SError,
}

/// A VM that keeps faulting right after (re)start is stopped, not restarted
/// forever.
const QUICK_FAULT_LIMIT: u32 = 5;

/// Contains a guest's fault to its VM: one log line, then stop or restart.
pub fn fault(vm: &'static VmState, vi: usize, frame: &Frame, esr: u64, kind: FaultKind) -> ! {
    let policy = match vm.cfg.fault {
        FaultPolicy::Stop => "stopping it",
        FaultPolicy::Restart => "restarting it",
    };
    // No heap here: this path never returns, so nothing it owns is dropped.
    let name = vm.name();
    let pc = frame.elr;
    // A guest can fault as often as it restarts: rate-limited per VM.
    if let Some(held) = vm.may_log() {
        match kind {
            FaultKind::Unmapped(ipa, w) => log::error!(
                "VM {name} vCPU {vi} fault: stage-2 fault: {} IPA {ipa:#x} outside its map; ESR {esr:#010x} PC {pc:#x}; {policy}{held}",
                if w { "write to" } else { "read of" }
            ),
            FaultKind::NoSyndrome(ipa) => log::error!(
                "VM {name} vCPU {vi} fault: access to emulated device at IPA {ipa:#x} with an instruction that cannot be emulated (use single LDR/STR); ESR {esr:#010x} PC {pc:#x}; {policy}{held}"
            ),
            FaultKind::Abort(what) => log::error!(
                "VM {name} vCPU {vi} fault: {what}; ESR {esr:#010x} PC {pc:#x}; {policy}{held}"
            ),
            FaultKind::Trap => log::error!(
                "VM {name} vCPU {vi} fault: unhandled trap: {}; ESR {esr:#010x} PC {pc:#x}; {policy}{held}",
                esr::class_name(esr::class(esr))
            ),
            FaultKind::SError => log::error!("VM {name} vCPU {vi} fault: SError; ESR {esr:#010x} PC {pc:#x}; {policy}{held}"),
        }
    }
    match vm.cfg.fault {
        FaultPolicy::Stop => stop(vm, vi),
        FaultPolicy::Restart if vm.note_quick_fault() >= QUICK_FAULT_LIMIT => {
            log::error!(
                "VM {name}: faulted {QUICK_FAULT_LIMIT} times in a row within 100 ms of starting: stopping it instead"
            );
            stop(vm, vi)
        }
        FaultPolicy::Restart => restart(vm, vi),
    }
}

/// A device of the VM made a DMA the SMMU blocked, and its board entry says
/// `dma_fault = "fault"`: the VM's fault policy applies, as for a fault of
/// its own (the SMMU line before this one names the device and address).
pub fn dma_fault(vm: &'static VmState, vi: usize) -> ! {
    let policy = match vm.cfg.fault {
        FaultPolicy::Stop => "stopping it",
        FaultPolicy::Restart => "restarting it",
    };
    log::error!(
        "VM {}: its device's DMA was blocked by the SMMU (dma_fault = \"fault\"): {policy}",
        vm.name()
    );
    match vm.cfg.fault {
        FaultPolicy::Stop => stop(vm, vi),
        FaultPolicy::Restart => restart(vm, vi),
    }
}

/// Claims the stop of `vm` for this vCPU: only one vCPU stops or restarts
/// a VM at a time. The loser just leaves; the winner is taking it out of
/// its guest anyway.
fn claim(vm: &VmState, vi: usize) {
    if vm
        .stopping
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        vcpu::leave(vm, vi);
    }
}

/// Takes every other vCPU of `vm` out of its guest and waits until they
/// are, then this one: afterwards nothing of the VM runs or is Active in
/// the physical GIC, and its passed-through SPIs are off (a restarted guest
/// enables them again) and routed to its first vCPU's core.
fn quiesce_vm(vm: &VmState, vi: usize) {
    for (i, v) in vm.vcpus.iter().enumerate() {
        if i != vi && v.power() != Power::Off {
            gicv3::send_sgi(SGI_STOP, v.mpidr);
        }
    }
    vcpu::wait_others_off(vm, vi);
    vcpu::quiesce(vm, vi);
    vm.vcpus[vi].set_power(Power::Off);
    let gicd = gicv3::distributor();
    for spi in vm.cfg.spis.iter().map(|s| s.intid()) {
        gicd.disable_spi(spi);
        gicd.deactivate_spi(spi);
        if let Some(v) = vm.vcpus.first() {
            gicd.route_spi(spi, v.mpidr);
        }
    }
    // Its devices' DMA in flight must not land in the next boot's memory.
    super::dma::quiesce(vm);
    // A stale CPU_ON from before the stop must not start a vCPU later.
    for v in vm.vcpus.iter() {
        v.set_power(Power::Off);
    }
}

/// SYSTEM_OFF, or a fault under the stop policy: every vCPU leaves for good.
pub fn stop(vm: &VmState, vi: usize) -> ! {
    claim(vm, vi);
    quiesce_vm(vm, vi);
    vcpu::park()
}

/// SYSTEM_RESET, or a fault under the restart policy: images and DTB
/// reloaded, virtual devices reset, vCPU 0 started again. Exactly once,
/// however many vCPUs fault at the same time.
pub fn restart(vm: &VmState, vi: usize) -> ! {
    claim(vm, vi);
    quiesce_vm(vm, vi);
    vm.boot_count.fetch_add(1, Ordering::Relaxed);
    *vm.vgic.lock() = vm.new_vgic();
    vm.uart.lock().reset();
    if let Err(e) = vm.load() {
        log::error!(
            "VM {}: reloading for restart failed: {e}; stopped",
            vm.name()
        );
        vcpu::park();
    }
    if let Err(e) = super::dma::attach(vm) {
        log::error!("VM {}: restart: {e}; stopped", vm.name());
        vcpu::park();
    }
    vm.reloaded();
    vm.stopping.store(false, Ordering::Release);
    let v0 = &vm.vcpus[0];
    if v0.request_on(vm.entry, vm.dtb_ipa).is_ok() && v0.core != cpu::core_index() {
        gicv3::send_sgi(SGI_KICK, v0.mpidr);
    }
    vcpu::park()
}
