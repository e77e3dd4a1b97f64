//! A vCPU on its physical core: waiting to be switched on, entering EL1,
//! leaving for good (park), and the virtual interrupts it receives through
//! the GIC list registers.

use super::{Power, VmState};
use crate::arch::sysreg::{
    self, CPTR, CPTR_EL2, ICH_AP0R0_EL2, ICH_AP1R0_EL2, ICH_VMCR_EL2, VPIDR_EL2,
};
use crate::arch::vectors::{self, Frame};
use crate::arch::{cpu, timer};
use crate::drivers::gicv3;
use crate::vdev::{vgic::Action, Effect, Effects};
use aarch64_cpu::registers::*;
use core::sync::atomic::Ordering;
use spin::{Mutex, Once};

/// Physical SGIs the hypervisor sends itself.
pub const SGI_KICK: u32 = 0; // refresh the target's list registers / wake it
pub const SGI_STOP: u32 = 1; // the target's VM is stopping: leave the guest
/// Maintenance interrupt (PPI 9): list registers ran low (ICH_HCR_EL2.UIE).
pub const MAINTENANCE_INTID: u32 = 25;
/// Guest timers, forwarded as hardware-linked virtual interrupts.
pub const VTIMER_INTID: u32 = 27;
pub const PTIMER_INTID: u32 = 30;

/// Each core's life after boot: wait until its vCPU is switched on, enter
/// the guest. Also where a core comes back to when its vCPU goes off.
pub extern "C" fn run(core: usize) -> ! {
    let Some((vm, vi)) = super::this_vcpu() else {
        // No vCPU here; the core may still serve the console's input.
        loop {
            // SAFETY: sleep until an interrupt is pending (IRQs masked).
            unsafe { core::arch::asm!("wfi") };
            drain_pending_irqs();
        }
    };
    debug_assert_eq!(core, cpu::core_index());
    // KICK wakes this core for CPU_ON; STOP is sent to running vCPUs.
    let rd = gicv3::this_redistributor();
    rd.enable_ppi(SGI_KICK);
    rd.enable_ppi(SGI_STOP);
    let v = &vm.vcpus[vi];
    loop {
        if v.power() == Power::OnPending && !vm.stopping.load(Ordering::Acquire) {
            break;
        }
        // SAFETY: sleep until an interrupt (a KICK SGI) is pending; IRQs
        // stay masked at EL2 and are acknowledged below.
        unsafe { core::arch::asm!("wfi") };
        drain_pending_irqs();
    }
    v.set_power(Power::On);
    if vi == 0 {
        vm.note_started();
    }
    enter(
        vm,
        vi,
        v.entry.load(Ordering::Relaxed),
        v.context.load(Ordering::Relaxed),
    )
}

/// While idle with IRQs masked: handle what woke us.
fn drain_pending_irqs() {
    while super::irq::handle() {}
}

/// This core's vCPU leaves its guest for good (`CPU_OFF`, or its VM stops
/// or restarts): what its list registers hold goes back to the vGIC (a
/// pending SGI survives `CPU_OFF`), hardware-linked interrupts it had
/// taken are deactivated, its timers stop, and the core waits in [`run`].
pub fn leave(vm: &VmState, vi: usize) -> ! {
    quiesce(vm, vi);
    vm.vcpus[vi].set_power(Power::Off);
    park()
}

/// [`leave`] but for the power state and the wait: the restart path needs
/// this core quiet before it rebuilds the VM.
pub fn quiesce(vm: &VmState, vi: usize) {
    let n = sysreg::lr_count().min(16);
    let mut lrs = [0u64; 16];
    for (i, lr) in lrs.iter_mut().enumerate().take(n) {
        *lr = sysreg::read_lr(i);
    }
    let physical = vm.vgic.lock().unload_lrs(vi, &lrs[..n]);
    clear_lrs();
    ICH_HCR_EL2.set(0);
    clear_active_priorities();
    // A core that is off has no running timers (as after a real power-down).
    CNTV_CTL_EL0.set(0);
    CNTP_CTL_EL0.set(0);
    let rd = gicv3::this_redistributor();
    rd.disable_ppi(VTIMER_INTID);
    rd.disable_ppi(PTIMER_INTID);
    for intid in physical {
        gicv3::deactivate(intid);
    }
}

/// Goes back to waiting in [`run`] on a fresh stack.
pub fn park() -> ! {
    let core = cpu::core_index();
    vectors::restart_stack(cpu::stack_top(core), run, core)
}

/// No interrupt priority stays active from an earlier run of the guest: one
/// left set would mask every interrupt of its priority and below for good.
/// (5 priority bits, as QEMU and most cores implement, need only the first
/// of each; wider ones would need the others cleared too.)
fn clear_active_priorities() {
    ICH_AP0R0_EL2.set(0);
    ICH_AP1R0_EL2.set(0);
}

/// The guest's traps and routing (HCR_EL2): stage 2 on, physical
/// interrupts to EL2, SMC trapped (PSCI is served here), EL1 is AArch64.
/// The guest owns its pointer-authentication keys (API, APK: its core is its
/// own, so there is nothing to switch). Trapped: the feature ID registers
/// (TID3, to hide what guests do not get), set/way cache maintenance (TSW)
/// and implementation-defined registers (TIDCP); see `vm/sysreg/`.
fn guest_hcr() -> u64 {
    (HCR_EL2::VM::Enable
        + HCR_EL2::API::SET
        + HCR_EL2::APK::SET
        + HCR_EL2::TID3::SET
        + HCR_EL2::TSW::SET
        + HCR_EL2::TIDCP::SET
        + HCR_EL2::SWIO::SET
        + HCR_EL2::FMO::EnableVirtualFIQ
        + HCR_EL2::IMO::EnableVirtualIRQ
        + HCR_EL2::AMO::SET
        + HCR_EL2::FB::SET
        + HCR_EL2::BSU::InnerShareable
        + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
        + HCR_EL2::RW::EL1IsAarch64)
        .value
}

/// Stage-2 translation control for `ipa_bits` of guest address space, with
/// the output size the CPU has (`pagetable::stage2_vtcr`).
pub(crate) fn guest_vtcr(ipa_bits: u32) -> u64 {
    crate::arch::pagetable::stage2_vtcr(ipa_bits, crate::arch::mmu::pa_bits().1)
}

/// What the guest may use without a trap (CPTR_EL2): FP/SIMD and, where the
/// core has it, SVE belong to the guest outright (its core is its own and
/// EL2 never touches them, so nothing is switched); SME stays trapped.
fn guest_cptr(sve: bool) -> u64 {
    let tz = if sve { CPTR::TZ::CLEAR } else { CPTR::TZ::SET }; // RES1 without SVE
    (CPTR::RES1_LOW::Ones + CPTR::RES1_9::SET + CPTR::RES1_13::SET + CPTR::TSM::SET + tz).value
}

/// Debug and PMU (MDCR_EL2): the guest's core is its own, so its debug
/// registers, breakpoints and every PMU counter are the guest's, untrapped,
/// whatever the firmware left here; but counting stops at EL2 (HPMD, where
/// the PMU has it), so a guest learns nothing of the hypervisor's work.
fn guest_mdcr() -> u64 {
    let pmu = ID_AA64DFR0_EL1.read(ID_AA64DFR0_EL1::PMUVer);
    // PMUv3 for Armv8.1 (4) and later have HPMD; 0xf is IMPLEMENTATION DEFINED.
    let hpmd = if (4..0xf).contains(&pmu) {
        MDCR_EL2::HPMD::SET
    } else {
        MDCR_EL2::HPMD::CLEAR
    };
    (MDCR_EL2::HPMN.val(sysreg::pmu_counters()) + hpmd).value
}

fn enter(vm: &VmState, vi: usize, pc: u64, x0: u64) -> ! {
    MDCR_EL2.set(guest_mdcr());
    let sve = ID_AA64PFR0_EL1.read(ID_AA64PFR0_EL1::SVE) != 0;
    CPTR_EL2.set(guest_cptr(sve));
    barrier_isb();
    if sve {
        sysreg::sve_full_length_for_guest();
    }
    VTCR_EL2.set(guest_vtcr(super::ipa_bits()));
    VTTBR_EL2.set(vm.vttbr);
    barrier_isb();
    // SAFETY: invalidates this VMID's stage-1 and stage-2 TLB entries (left
    // by an earlier run of the VM) before its first instruction.
    unsafe { core::arch::asm!("tlbi vmalls12e1", "dsb nsh") };
    HCR_EL2.set(guest_hcr());
    VPIDR_EL2.set(MIDR_EL1.get());
    VMPIDR_EL2.set((1 << 31) | vi as u64);
    // A restarted VM starts clean: EL1 MMU and caches off, FP trapped at EL1
    // until it enables it, no vectors, guest timers off.
    SCTLR_EL1.set(0x30d0_0800); // the RES1 bits of SCTLR_EL1, nothing else
    CPACR_EL1.set(0);
    VBAR_EL1.set(0);
    CNTV_CTL_EL0.set(0);
    CNTP_CTL_EL0.set(0);
    CNTKCTL_EL1.set(0);
    ICH_VMCR_EL2.set(0);
    clear_active_priorities();
    ICH_HCR_EL2.write(ICH_HCR_EL2::En::SET);
    // SAFETY: invalidates the instruction cache so the freshly loaded image
    // is what runs.
    unsafe { core::arch::asm!("ic iallu", "dsb nsh", "isb") };
    let rd = gicv3::this_redistributor();
    rd.enable_ppi(MAINTENANCE_INTID);
    // Guest timers are enabled physically as the guest's vGIC says (off in a
    // fresh VM; as left before `CPU_OFF` otherwise).
    for intid in [VTIMER_INTID, PTIMER_INTID] {
        if vm.vgic.lock().private_enabled(vi, intid) {
            rd.enable_ppi(intid)
        } else {
            rd.disable_ppi(intid)
        }
    }
    rd.enable_ppi(SGI_KICK);
    rd.enable_ppi(SGI_STOP);
    // What is already pending for this vCPU (an SGI sent before its
    // `CPU_OFF`) goes into the list registers now.
    refresh_lrs(vm, vi);
    let core = cpu::core_index();
    // The first frame must not live on the stack it is copied to the top of.
    let frame = ENTRY_FRAMES[core].call_once(|| Mutex::new(Frame::entry(0, 0)));
    let mut f = frame.lock();
    *f = Frame::entry(pc, x0);
    let ptr: *const Frame = &*f;
    drop(f);
    // SAFETY: only this core uses its entry frame, and only here.
    vectors::enter_guest(unsafe { &*ptr }, cpu::stack_top(core))
}

fn barrier_isb() {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

static ENTRY_FRAMES: [Once<Mutex<Frame>>; cpu::MAX_CPUS] = [const { Once::new() }; cpu::MAX_CPUS];

// ---- list registers --------------------------------------------------------

/// Empties the list registers (their reset values are UNKNOWN); at boot on
/// each core, and whenever a vCPU leaves.
pub fn clear_lrs() {
    for n in 0..sysreg::lr_count() {
        sysreg::write_lr(n, 0);
    }
}

/// Folds the list registers back into the VM's vGIC, refills them, and asks
/// for a maintenance interrupt if more is pending than fits.
pub fn refresh_lrs(vm: &VmState, vi: usize) {
    let n = sysreg::lr_count().min(16);
    let mut lrs = [0u64; 16];
    for (i, lr) in lrs.iter_mut().enumerate().take(n) {
        *lr = sysreg::read_lr(i);
    }
    let overflow = {
        let mut g = vm.vgic.lock();
        g.sync_lrs(vi, &lrs[..n]);
        g.flush_lrs(vi, &mut lrs[..n])
    };
    for (i, &lr) in lrs.iter().enumerate().take(n) {
        sysreg::write_lr(i, lr);
    }
    let underflow = if overflow {
        ICH_HCR_EL2::UIE::SET
    } else {
        ICH_HCR_EL2::UIE::CLEAR
    };
    ICH_HCR_EL2.write(ICH_HCR_EL2::En::SET + underflow);
    barrier_isb();
}

/// Makes the target vCPU look at its pending interrupts: here, or by SGI.
pub fn kick(vm: &VmState, target: usize) {
    let here = cpu::core_index();
    let v = &vm.vcpus[target];
    if v.core == here {
        refresh_lrs(vm, target);
    } else {
        gicv3::send_sgi(SGI_KICK, v.mpidr);
    }
}

/// A hardware interrupt for the vCPU running on this core: straight into a
/// free list register when the vGIC allows, else through the model.
pub fn inject_here(vm: &VmState, vi: usize, intid: u32) {
    // Bits of list registers that do not exist read as 0.
    let empty = sysreg::empty_lrs();
    let mut g = vm.vgic.lock();
    // The LR that held it last, emptied by the guest since: pending again.
    let mut bits = empty;
    while bits != 0 {
        let n = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let lr = sysreg::read_lr(n);
        if let Some(v) = g.repend_in_place(vi, intid, n, lr) {
            sysreg::write_lr(n, v);
            return;
        }
    }
    match g.load_direct(vi, intid, empty) {
        Some((n, lr)) => sysreg::write_lr(n, lr),
        None => {
            drop(g);
            inject(vm, intid, vi)
        }
    }
}

/// Injects `intid` into `vm` (SPIs go where the guest routed them).
pub fn inject(vm: &VmState, intid: u32, vcpu: usize) {
    let target = vm.vgic.lock().inject(intid, vcpu);
    if let Some(t) = target {
        kick(vm, t);
    }
}

/// Carries out what an emulated access asked for.
pub fn apply(vm: &VmState, effects: &Effects) {
    for e in effects.iter() {
        match *e {
            Effect::Gic(a) => apply_gic(vm, a),
            Effect::Doorbell(index) => {
                super::hypercall::doorbell(vm, index);
            }
        }
    }
}

fn apply_gic(vm: &VmState, a: Action) {
    let gicd = gicv3::distributor();
    match a {
        Action::EnablePhysSpi(i) => gicd.enable_spi(i),
        Action::DisablePhysSpi(i) => gicd.disable_spi(i),
        Action::RoutePhysSpi { intid, vcpu } => {
            if let Some(v) = vm.vcpus.get(vcpu) {
                gicd.route_spi(intid, v.mpidr)
            }
        }
        Action::EnablePhysPpi { vcpu, intid } => ppi_on_vcpu(vm, vcpu, intid, true),
        Action::DisablePhysPpi { vcpu, intid } => ppi_on_vcpu(vm, vcpu, intid, false),
        Action::Kick(t) => kick(vm, t),
    }
}

/// A guest enabled or disabled a HW-linked PPI of one of its vCPUs (maybe
/// another vCPU than the writer's): that vCPU's core's redistributor.
fn ppi_on_vcpu(vm: &VmState, vcpu: usize, intid: u32, on: bool) {
    let Some(rd) = vm
        .vcpus
        .get(vcpu)
        .and_then(|v| gicv3::redistributor(v.core))
    else {
        return;
    };
    if on {
        rd.enable_ppi(intid)
    } else {
        rd.disable_ppi(intid)
    }
}

/// Waits (in WFE) until every vCPU of `vm` but `vi` has left its guest.
/// A vCPU busy in EL2 leaves as soon as it returns towards its guest (the
/// STOP SGI is pending), so this ends; a note is logged if it takes 100 ms.
pub fn wait_others_off(vm: &VmState, vi: usize) {
    let all_off = || {
        vm.vcpus
            .iter()
            .enumerate()
            .all(|(i, v)| i == vi || v.power() == Power::Off)
    };
    let noted = timer::now() + timer::frequency() / 10;
    if !timer::wait_until(noted, all_off) {
        log::warn!(
            "VM {}: a vCPU has not left after 100 ms; waiting",
            vm.name()
        );
        timer::wait_until(u64::MAX, all_off);
    }
}
