//! Physical interrupts taken at EL2: the hypervisor's own (its timer, its
//! SGIs, the console's input) and those forwarded to this core's guest.

use super::vcpu::{self, MAINTENANCE_INTID, PTIMER_INTID, SGI_KICK, SGI_STOP, VTIMER_INTID};
use super::{Power, VmState};
use crate::arch::{cpu, timer};
use crate::drivers::{console, gicv3};
use core::sync::atomic::{AtomicU64, Ordering};

/// Counter value at which each core last took its EL2 timer interrupt.
pub static TIMER_FIRED_AT: [AtomicU64; cpu::MAX_CPUS] =
    [const { AtomicU64::new(0) }; cpu::MAX_CPUS];

/// The vectors' IRQ handler: `from_guest` when it interrupted a guest.
pub fn on_exception(from_guest: bool) {
    let here = super::this_vcpu();
    if from_guest {
        if let Some((vm, vi)) = here {
            vm.vcpus[vi].count_exit();
        }
    }
    take(here);
}

/// Takes one pending interrupt; false if there was none.
pub fn handle() -> bool {
    take(super::this_vcpu())
}

/// [`handle`], for the vCPU `here` on this core (if any).
fn take(here: Option<(&'static VmState, usize)>) -> bool {
    let intid = gicv3::ack();
    if intid >= gicv3::SPURIOUS_FIRST {
        return false;
    }
    gicv3::eoi(intid);
    match intid {
        timer::CNTHP_INTID => {
            let now = timer::now();
            timer::disarm_el2();
            TIMER_FIRED_AT[cpu::core_index()].store(now, Ordering::Release);
            // The drain core paces the console's output with it.
            console::drain();
        }
        // The guest's timers first: the hot path.
        VTIMER_INTID | PTIMER_INTID => {
            if let Irq::Forwarded = for_vcpu(here, intid) {
                return true;
            }
        }
        console::SGI_DRAIN => console::drain(),
        _ if Some(intid) == super::console::intid() => super::console::on_interrupt(),
        _ if super::dma::is_smmu_interrupt(intid) => super::dma::on_interrupt(),
        // Forwarded to this core's guest, which deactivates it when done.
        _ => match for_vcpu(here, intid) {
            Irq::Forwarded => return true,
            Irq::Handled => {}
            Irq::Unknown => log::warn!("unexpected interrupt {intid}"),
        },
    }
    gicv3::deactivate(intid);
    true
}

enum Irq {
    /// Given to the guest, hardware-linked: its EOI deactivates it.
    Forwarded,
    /// Handled here; the caller deactivates it.
    Handled,
    Unknown,
}

/// An interrupt for this core's vCPU (after EOI/priority drop).
fn for_vcpu(here: Option<(&'static VmState, usize)>, intid: u32) -> Irq {
    let Some((vm, vi)) = here else {
        return Irq::Unknown;
    };
    match intid {
        // A vCPU that is off keeps its pending interrupts in the model; its
        // list registers are loaded when it enters.
        SGI_KICK | MAINTENANCE_INTID if vm.vcpus[vi].power() != Power::On => Irq::Handled,
        SGI_KICK | MAINTENANCE_INTID => {
            if intid == SGI_KICK && super::dma::take_contain(vm) {
                gicv3::deactivate(intid);
                super::fault::dma_fault(vm, vi);
            }
            vcpu::refresh_lrs(vm, vi);
            Irq::Handled
        }
        SGI_STOP => {
            if vm.stopping.load(Ordering::Acquire) && vm.vcpus[vi].power() == Power::On {
                gicv3::deactivate(intid);
                vcpu::leave(vm, vi);
            }
            Irq::Handled
        }
        // Forwarded only to a vCPU in its guest, whose EOI deactivates it; a
        // vCPU that is off would never end it (the source stays Active).
        VTIMER_INTID | PTIMER_INTID if vm.vcpus[vi].power() != Power::On => Irq::Handled,
        VTIMER_INTID | PTIMER_INTID => {
            vcpu::inject_here(vm, vi, intid);
            Irq::Forwarded
        }
        _ if vm.cfg.spis.iter().any(|s| s.intid() == intid) => {
            if vm.stopping.load(Ordering::Acquire) {
                return Irq::Handled;
            }
            vcpu::inject_here(vm, vi, intid);
            Irq::Forwarded
        }
        _ => Irq::Unknown,
    }
}
