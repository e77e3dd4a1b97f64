//! The board file format (TOML) as read from disk: every key is known
//! (`deny_unknown_fields`), sizes take "256M"-style strings, addresses are
//! integers (TOML allows `0x4000_0000`).

use serde::{de, Deserialize, Deserializer};
use std::fmt;
use std::prelude::rust_2021::*;

use crate::error::{Error, Errors};

/// A parsed board file. After [`crate::load`] every `phys` is filled in.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// The file name used in errors (not part of the TOML).
    #[serde(skip)]
    pub file: String,
    pub platform: PlatformCfg,
    #[serde(default)]
    pub owners: OwnersCfg,
    #[serde(default, rename = "vm")]
    pub vms: Vec<VmCfg>,
    #[serde(default)]
    pub shared: Vec<SharedCfg>,
    /// The compositor's layout (`crate::cockpit`).
    pub cockpit: Option<crate::cockpit::CockpitCfg>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformCfg {
    pub name: String,
    pub ram: Vec<RangeCfg>,
    pub hypervisor: RangeCfg,
    pub cpus: Vec<CpuCfg>,
    pub uart: UartCfg,
    pub gic: GicCfg,
    pub smmu: Option<RangeCfg>,
    /// Where the boot loader places the guest images Tessera does not embed
    /// (Linux kernels, initramfs); they stay there as the clean copy each VM
    /// start copies from.
    pub staging: Option<RangeCfg>,
    #[serde(default, rename = "device")]
    pub devices: Vec<DeviceCfg>,
    pub gpu: Option<String>,
    pub display: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeCfg {
    pub base: u64,
    pub size: Size,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuCfg {
    pub core: u32,
    pub mpidr: u64,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UartCfg {
    pub base: u64,
    pub size: Size,
    pub spi: u32,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GicCfg {
    pub distributor: u64,
    pub redistributor: u64,
    pub redistributor_stride: Size,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCfg {
    pub name: String,
    #[serde(default)]
    pub compatible: Vec<String>,
    pub mmio: Vec<RangeCfg>,
    #[serde(default)]
    pub spis: Vec<u32>,
    /// A PCIe host bridge (`pci-host-ecam-generic`): `mmio[0]` is its ECAM,
    /// the rest its windows. Its functions master the bus, so a VM may own
    /// it only behind an SMMU.
    #[serde(default)]
    pub pci_host: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnersCfg {
    pub gpu: Option<String>,
    pub display: Option<String>,
    /// VM that gets console input first; the first VM when absent.
    pub console: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmCfg {
    pub name: String,
    /// Wider than a VMID so that an overflow is reported, not a parse error.
    pub vmid: Option<u64>,
    pub cores: Vec<u32>,
    #[serde(default)]
    pub memory: Vec<MemCfg>,
    #[serde(default, rename = "image")]
    pub images: Vec<ImageCfg>,
    pub entry: Option<u64>,
    #[serde(default)]
    pub devices: Vec<String>,
    /// SPIs passed through besides those of `devices`.
    #[serde(default)]
    pub interrupts: Vec<u32>,
    /// PCI functions ("bus:device.function", hex) behind the VM's PCIe host
    /// that may do DMA: only these get SMMU stream-table entries.
    #[serde(default)]
    pub pci: Vec<String>,
    /// What a DMA fault by one of those functions does to the VM.
    #[serde(default)]
    pub dma_fault: DmaFaultCfg,
    #[serde(default)]
    pub fault: FaultCfg,
    /// Boots a Linux kernel `Image` (with an initramfs) from the staging
    /// area instead of embedded bare-metal images.
    pub linux: Option<LinuxCfg>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinuxCfg {
    pub kernel: StagedCfg,
    pub initrd: Option<StagedCfg>,
    #[serde(default)]
    pub bootargs: String,
}

/// A file the boot loader places at `at` (physical, inside
/// `platform.staging`), at most `max` bytes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagedCfg {
    pub file: String,
    pub at: u64,
    pub max: Size,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemCfg {
    pub ipa: u64,
    pub size: Size,
    pub phys: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageCfg {
    pub name: String,
    pub ipa: u64,
}

/// `dma_fault`: "log" (the VM runs on; the SMMU blocked the access) or
/// "fault" (treated as the VM's own fault: its `fault` policy applies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmaFaultCfg {
    #[default]
    Log,
    Fault,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultCfg {
    #[default]
    Stop,
    Restart,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedCfg {
    pub name: String,
    pub size: Size,
    pub phys: Option<u64>,
    /// Peers that may write; the others map the region read-only.
    #[serde(default)]
    pub writers: Vec<String>,
    #[serde(rename = "peer")]
    pub peers: Vec<PeerCfg>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerCfg {
    pub vm: String,
    pub ipa: u64,
    /// Virtual SPI this peer receives when the doorbell rings.
    pub doorbell: Option<u32>,
}

/// A byte count: a TOML integer or a string with a K/M/G/T suffix (binary
/// multiples), e.g. "4K", "256M", "2G".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    pub fn parse(s: &str) -> Result<Size, String> {
        let t = s.trim().replace('_', "");
        let (digits, shift) = match t.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => {
                let shift = match c.to_ascii_uppercase() {
                    'K' => 10,
                    'M' => 20,
                    'G' => 30,
                    'T' => 40,
                    _ => {
                        return Err(format!(
                            "size \"{s}\": unknown unit `{c}` (use K, M, G or T)"
                        ))
                    }
                };
                (&t[..i], shift)
            }
            _ => (t.as_str(), 0),
        };
        let n = match digits.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => digits.parse::<u64>(),
        }
        .map_err(|_| format!("size \"{s}\" is not a number with an optional K/M/G/T unit"))?;
        n.checked_mul(1 << shift)
            .map(Size)
            .ok_or_else(|| format!("size \"{s}\" does not fit in 64 bits"))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size: an integer or a string like \"4K\", \"256M\", \"2G\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("size {v} is negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Size::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

pub fn parse(file: &str, text: &str) -> Result<Board, Errors> {
    let mut board: Board = toml::from_str(text).map_err(|e| {
        // toml's message already carries line, column and a snippet.
        Errors::one(Error::new(file, "", e.to_string().trim_end().to_string()))
    })?;
    board.file = file.to_string();
    Ok(board)
}

impl Board {
    /// VMIDs in VM order: explicit ones as written, the others the lowest
    /// value from 1 up that no VM claims, so adding an explicit VMID never
    /// renumbers the VMs before it. Values may exceed 255; the checker says so.
    pub fn vmids(&self) -> Vec<u64> {
        let explicit: Vec<u64> = self.vms.iter().filter_map(|v| v.vmid).collect();
        let mut next = 1;
        self.vms
            .iter()
            .map(|v| match v.vmid {
                Some(id) => id,
                None => {
                    while explicit.contains(&next) {
                        next += 1;
                    }
                    next += 1;
                    next - 1
                }
            })
            .collect()
    }

    /// The console-input VM: `owners.console`, else the first VM.
    pub fn console_vm(&self) -> Option<&str> {
        self.owners
            .console
            .as_deref()
            .or(self.vms.first().map(|v| v.name.as_str()))
    }
}

impl VmCfg {
    /// Every SPI passed through (its devices' and `interrupts`), sorted.
    pub fn spis(&self, platform: &PlatformCfg) -> Vec<u32> {
        let mut spis: Vec<u32> = self
            .devices
            .iter()
            .filter_map(|d| platform.devices.iter().find(|p| &p.name == d))
            .flat_map(|d| d.spis.iter().copied())
            .chain(self.interrupts.iter().copied())
            .collect();
        spis.sort_unstable();
        spis.dedup();
        spis
    }

    /// Where the boot vCPU starts: `entry`, else the first image, else the
    /// start of the first memory region (for Linux, the hypervisor adds the
    /// kernel's `text_offset` to it at boot).
    pub fn entry_ipa(&self) -> u64 {
        self.entry
            .or(self.images.first().map(|i| i.ipa))
            .or(self.memory.first().map(|m| m.ipa))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units() {
        assert_eq!(Size::parse("4K"), Ok(Size(0x1000)));
        assert_eq!(Size::parse("256M"), Ok(Size(256 << 20)));
        assert_eq!(Size::parse("2G"), Ok(Size(2 << 30)));
        assert_eq!(Size::parse("2g"), Ok(Size(2 << 30)));
        assert_eq!(Size::parse("0x20_0000"), Ok(Size(0x20_0000)));
        assert_eq!(Size::parse("12"), Ok(Size(12)));
        assert!(Size::parse("4Q").unwrap_err().contains("unknown unit `Q`"));
        assert!(Size::parse("M").is_err());
        assert!(Size::parse("99999999999T").unwrap_err().contains("64 bits"));
    }
}
