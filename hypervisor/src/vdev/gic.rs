//! The vGIC's distributor and redistributor frames as MMIO devices over a
//! VM's vGIC model (`vgic`): the model answers, and its actions become
//! effects.

use super::vgic::{Actions, Vgic};
use super::{Effect, Effects, MmioAccess, MmioDevice};
use spin::Mutex;

fn push_all(effects: &mut Effects, actions: Actions) {
    for a in actions.iter() {
        // `Effects` holds a whole `Actions` plus one.
        let _ = effects.push(Effect::Gic(*a));
    }
}

/// GICD: one frame for the VM.
pub struct Distributor(pub &'static Mutex<Vgic>);

impl MmioDevice for Distributor {
    fn name(&self) -> &'static str {
        "vGIC distributor"
    }

    fn read(&self, a: &MmioAccess, _: &mut Effects) -> u64 {
        self.0.lock().dist_read(a.offset, a.size)
    }

    fn write(&self, a: &MmioAccess, value: u64, effects: &mut Effects) {
        let actions = self.0.lock().dist_write(a.offset, a.size, value);
        push_all(effects, actions);
    }
}

/// GICR: one frame of `stride` bytes per vCPU, in vCPU order.
pub struct Redistributors {
    pub vgic: &'static Mutex<Vgic>,
    pub stride: u64,
}

impl MmioDevice for Redistributors {
    fn name(&self) -> &'static str {
        "vGIC redistributors"
    }

    fn read(&self, a: &MmioAccess, _: &mut Effects) -> u64 {
        let target = (a.offset / self.stride) as usize;
        self.vgic
            .lock()
            .redist_read(target, a.offset % self.stride, a.size)
    }

    fn write(&self, a: &MmioAccess, value: u64, effects: &mut Effects) {
        let target = (a.offset / self.stride) as usize;
        let actions = self
            .vgic
            .lock()
            .redist_write(target, a.offset % self.stride, a.size, value);
        push_all(effects, actions);
    }
}
