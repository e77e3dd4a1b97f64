//! The control page: one hypervisor-trapped page per VM. A store of `n` at
//! offset 0 rings the doorbell of the VM's shared region `n` (usable from
//! Linux user space, where `hvc` is not); loads read 0.

use super::{Effect, Effects, MmioAccess, MmioDevice};

/// Offset of the doorbell register.
pub const DOORBELL: u64 = 0;

pub struct ControlPage;

impl MmioDevice for ControlPage {
    fn name(&self) -> &'static str {
        "control page"
    }

    fn read(&self, _: &MmioAccess, _: &mut Effects) -> u64 {
        0
    }

    fn write(&self, a: &MmioAccess, value: u64, effects: &mut Effects) {
        if a.offset == DOORBELL {
            let _ = effects.push(Effect::Doorbell(value));
        }
    }
}
