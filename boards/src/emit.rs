//! Turns a checked, placed board into the `no_std` tables and prints them as
//! Rust source for the hypervisor to `include!`.

use std::prelude::rust_2021::*;

use crate::model::*;
use crate::parse::{Board, DmaFaultCfg, FaultCfg, RangeCfg, StagedCfg};

// The tables want `&'static` data; a build script or tool runs once, so
// leaking the few kilobytes a plan takes is the simple way to get it.
fn leak<T>(v: Vec<T>) -> &'static [T] {
    Vec::leak(v)
}

fn leak_str(s: &str) -> &'static str {
    String::leak(s.to_owned())
}

fn range(r: &RangeCfg) -> Range {
    Range::new(r.base, r.size.0)
}

fn staged(f: &StagedCfg) -> Staged {
    Staged {
        file: leak_str(&f.file),
        pa: f.at,
        max: f.max.0,
    }
}

impl Board {
    /// The board as the hypervisor's tables. Call on a board from
    /// [`crate::load`] (checked, every `phys` assigned).
    pub fn plan(&self) -> Plan {
        let p = &self.platform;
        let devices: &'static [Device] = leak(
            p.devices
                .iter()
                .map(|d| Device {
                    name: leak_str(&d.name),
                    compatible: leak(d.compatible.iter().map(|c| leak_str(c)).collect()),
                    mmio: leak(d.mmio.iter().map(range).collect()),
                    spis: leak(d.spis.iter().map(|&s| Spi(s)).collect()),
                    pci_host: d.pci_host,
                })
                .collect(),
        );
        let platform = Platform {
            name: leak_str(&p.name),
            ram: leak(p.ram.iter().map(range).collect()),
            cpus: leak(
                p.cpus
                    .iter()
                    .map(|c| Cpu {
                        core: c.core,
                        mpidr: c.mpidr,
                    })
                    .collect(),
            ),
            uart: Uart {
                mmio: Range::new(p.uart.base, p.uart.size.0),
                spi: Spi(p.uart.spi),
            },
            gic: Gic {
                distributor: Range::new(p.gic.distributor, 0x1_0000),
                redistributor_base: p.gic.redistributor,
                redistributor_stride: p.gic.redistributor_stride.0,
            },
            smmu: p.smmu.as_ref().map(range),
            staging: p.staging.as_ref().map(range),
            hypervisor: range(&p.hypervisor),
            devices,
            gpu_device: p.gpu.as_deref().map(leak_str),
            display_device: p.display.as_deref().map(leak_str),
        };
        let vmids = self.vmids();
        let vms = self
            .vms
            .iter()
            .zip(vmids)
            .map(|(vm, vmid)| Vm {
                name: leak_str(&vm.name),
                vmid: vmid as u16,
                cores: leak(vm.cores.clone()),
                memory: leak(
                    vm.memory
                        .iter()
                        .map(|m| MemRegion {
                            ipa: m.ipa,
                            pa: m.phys.expect("load() assigns every phys"),
                            size: m.size.0,
                        })
                        .collect(),
                ),
                images: leak(
                    vm.images
                        .iter()
                        .map(|i| Image {
                            name: leak_str(&i.name),
                            ipa: i.ipa,
                        })
                        .collect(),
                ),
                entry: vm.entry_ipa(),
                devices: leak(
                    vm.devices
                        .iter()
                        .filter_map(|d| devices.iter().find(|x| x.name == d).copied())
                        .collect(),
                ),
                spis: leak(vm.spis(p).into_iter().map(Spi).collect()),
                pci: leak(
                    vm.pci
                        .iter()
                        .filter_map(|f| PciFunction::parse(f))
                        .collect(),
                ),
                fault: match vm.fault {
                    FaultCfg::Stop => FaultPolicy::Stop,
                    FaultCfg::Restart => FaultPolicy::Restart,
                },
                dma_fault_is_fault: vm.dma_fault == DmaFaultCfg::Fault,
                linux: vm.linux.as_ref().map(|l| Linux {
                    kernel: staged(&l.kernel),
                    initrd: l.initrd.as_ref().map(staged),
                    bootargs: leak_str(&l.bootargs),
                }),
            })
            .collect();
        let shared = self
            .shared
            .iter()
            .map(|s| SharedRegion {
                name: leak_str(&s.name),
                size: s.size.0,
                pa: s.phys.expect("load() assigns every phys"),
                peers: leak(
                    s.peers
                        .iter()
                        .map(|p| Peer {
                            vm: leak_str(&p.vm),
                            ipa: p.ipa,
                            access: if s.writers.contains(&p.vm) {
                                Access::ReadWrite
                            } else {
                                Access::ReadOnly
                            },
                            doorbell: p.doorbell.map(Spi),
                        })
                        .collect(),
                ),
            })
            .collect();
        Plan {
            platform,
            vms: leak(vms),
            shared: leak(shared),
            console: Console {
                input_first: leak_str(self.console_vm().unwrap_or("")),
            },
            gpu_owner: self.owners.gpu.as_deref().map(leak_str),
            display_owner: self.owners.display.as_deref().map(leak_str),
        }
    }
}

/// A small pretty-printer: one field per line, so a diff of two generated
/// plans reads like a diff of the board files.
struct W {
    out: String,
    depth: usize,
}

impl W {
    fn newline(&mut self) {
        self.out.push('\n');
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
    }

    fn strukt(&mut self, name: &str, fields: &[(&str, &dyn Rust)]) {
        self.out.push_str(name);
        self.out.push_str(" {");
        self.depth += 1;
        for (field, value) in fields {
            self.newline();
            self.out.push_str(field);
            self.out.push_str(": ");
            value.rust(self);
            self.out.push(',');
        }
        self.depth -= 1;
        self.newline();
        self.out.push('}');
    }
}

/// Prints a value as a Rust constant expression (with `tessera_boards::*`
/// in scope).
trait Rust {
    fn rust(&self, w: &mut W);
}

/// `Rust` for leaf values through a format string.
macro_rules! rust_fmt {
    ($($ty:ty => $fmt:literal),* $(,)?) => {
        $(impl Rust for $ty {
            fn rust(&self, w: &mut W) {
                w.out.push_str(&format!($fmt, self));
            }
        })*
    };
}

// Debug of a str is a valid Rust string literal; the enums' Debug is their
// variant name.
rust_fmt!(
    u64 => "{:#x}",
    u32 => "{}",
    u16 => "{}",
    &str => "{:?}",
    FaultPolicy => "FaultPolicy::{:?}",
    Access => "Access::{:?}",
);

impl Rust for PciFunction {
    fn rust(&self, w: &mut W) {
        w.out.push_str(&format!("PciFunction({:#06x})", self.0));
    }
}

impl Rust for bool {
    fn rust(&self, w: &mut W) {
        w.out.push_str(if *self { "true" } else { "false" });
    }
}

impl Rust for Spi {
    fn rust(&self, w: &mut W) {
        w.out.push_str(&format!("Spi({})", self.0));
    }
}

impl<T: Rust> Rust for Option<T> {
    fn rust(&self, w: &mut W) {
        match self {
            None => w.out.push_str("None"),
            Some(v) => {
                w.out.push_str("Some(");
                v.rust(w);
                w.out.push(')');
            }
        }
    }
}

impl<T: Rust> Rust for &[T] {
    fn rust(&self, w: &mut W) {
        if self.is_empty() {
            w.out.push_str("&[]");
            return;
        }
        w.out.push_str("&[");
        w.depth += 1;
        for v in self.iter() {
            w.newline();
            v.rust(w);
            w.out.push(',');
        }
        w.depth -= 1;
        w.newline();
        w.out.push(']');
    }
}

/// `Rust` for a struct, field by field; naming every field makes the
/// generated code fail to compile if the model gains one the emitter misses.
macro_rules! rust_struct {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl Rust for $ty {
            fn rust(&self, w: &mut W) {
                let $ty { $($field),* } = self;
                w.strukt(stringify!($ty), &[$((stringify!($field), $field as &dyn Rust)),*]);
            }
        }
    };
}

rust_struct!(Range { base, size });
rust_struct!(Cpu { core, mpidr });
rust_struct!(Uart { mmio, spi });
rust_struct!(Gic {
    distributor,
    redistributor_base,
    redistributor_stride
});
rust_struct!(Device {
    name,
    compatible,
    mmio,
    spis,
    pci_host
});
rust_struct!(Platform {
    name,
    ram,
    cpus,
    uart,
    gic,
    smmu,
    staging,
    hypervisor,
    devices,
    gpu_device,
    display_device
});
rust_struct!(MemRegion { ipa, pa, size });
rust_struct!(Image { name, ipa });
rust_struct!(Vm {
    name,
    vmid,
    cores,
    memory,
    images,
    entry,
    devices,
    spis,
    pci,
    fault,
    dma_fault_is_fault,
    linux
});
rust_struct!(Staged { file, pa, max });
rust_struct!(Linux {
    kernel,
    initrd,
    bootargs
});
rust_struct!(Peer {
    vm,
    ipa,
    access,
    doorbell
});
rust_struct!(SharedRegion {
    name,
    size,
    pa,
    peers
});
rust_struct!(Console { input_first });
rust_struct!(Plan {
    platform,
    vms,
    shared,
    console,
    gpu_owner,
    display_owner
});

pub fn emit(board: &Board) -> String {
    let mut w = W {
        out: String::new(),
        depth: 1,
    };
    w.out.push_str(&format!(
        "// @generated by tessera-boards from {}; do not edit.\n\
         pub static PLAN: ::tessera_boards::Plan = {{\n    use ::tessera_boards::*;\n    ",
        board.file
    ));
    board.plan().rust(&mut w);
    w.out.push_str("\n};\n");
    w.out
}
