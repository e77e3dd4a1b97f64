//! Emulated devices, all portable: each one behind [`MmioDevice`], found by
//! guest address range through a VM's [`Registry`]. The trap path asks the
//! registry and never names a device, so a new device is one `add` where the
//! VM is built. Devices change only their own state and say what else must
//! happen (a physical GIC change, a kick, a doorbell) as [`Effect`]s, which
//! the VM layer carries out.

use alloc::boxed::Box;
use alloc::vec::Vec;

pub mod control;
pub mod gic;
pub mod vgic;
pub mod vuart;

/// One trapped access, relative to the device's base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioAccess {
    /// The vCPU that made it.
    pub vcpu: usize,
    pub offset: u64,
    /// 1, 2, 4 or 8 bytes.
    pub size: u8,
}

/// What an access needs beyond the device's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A change to the physical GIC or a vCPU to kick.
    Gic(vgic::Action),
    /// Ring the doorbell of the VM's shared region with this index.
    Doorbell(u64),
}

/// The effects of one access: a vGIC access's actions, plus one doorbell.
pub type Effects = heapless::Vec<Effect, { vgic::MAX_ACTIONS + 1 }>;

/// An emulated MMIO device.
pub trait MmioDevice: Send + Sync {
    /// For logs.
    fn name(&self) -> &'static str;
    /// A load: the device's bytes (the caller narrows and extends them).
    fn read(&self, access: &MmioAccess, effects: &mut Effects) -> u64;
    /// A store of `value` (already narrowed to the access size).
    fn write(&self, access: &MmioAccess, value: u64, effects: &mut Effects);
}

struct Region {
    base: u64,
    size: u64,
    device: Box<dyn MmioDevice>,
}

/// Why a device could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryError {
    /// Size zero, or the range wraps around.
    Empty { base: u64 },
    /// The range overlaps the device already registered under that name.
    Overlap { base: u64, with: &'static str },
}

/// A VM's emulated devices by guest-physical range (a handful: a linear
/// search beats anything cleverer).
#[derive(Default)]
pub struct Registry {
    regions: Vec<Region>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds `device` at `[base, base + size)`.
    pub fn add(
        &mut self,
        base: u64,
        size: u64,
        device: Box<dyn MmioDevice>,
    ) -> Result<(), RegistryError> {
        let Some(end) = base.checked_add(size).filter(|_| size != 0) else {
            return Err(RegistryError::Empty { base });
        };
        if let Some(r) = self
            .regions
            .iter()
            .find(|r| base < r.base + r.size && r.base < end)
        {
            return Err(RegistryError::Overlap {
                base,
                with: r.device.name(),
            });
        }
        self.regions.push(Region { base, size, device });
        Ok(())
    }

    /// The device at `ipa` and the offset into it.
    pub fn find(&self, ipa: u64) -> Option<(&dyn MmioDevice, u64)> {
        self.regions
            .iter()
            .find(|r| ipa.wrapping_sub(r.base) < r.size)
            .map(|r| (&*r.device, ipa - r.base))
    }
}

#[cfg(test)]
mod tests;
