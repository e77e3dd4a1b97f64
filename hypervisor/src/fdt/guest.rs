//! The device tree each VM boots with (`docs/guest-abi.md`, "Guest DTB"): a
//! QEMU-virt-like machine, so a stock Linux kernel binds its drivers, plus
//! Tessera's control page and shared-memory regions.
//!
//! [`build`] writes it into a caller's buffer with [`FdtWriter`]: no
//! allocation, no panic, and the same input always gives the same bytes.

use crate::fdt::writer::{FdtWriteError, FdtWriter};
use core::fmt::Write;
use heapless::String;

// The emulated devices' fixed guest addresses, shared with the board
// checker (which keeps RAM, devices and shared windows off them).
pub use tessera_boards::guest::{
    CONTROL_IPA, CONTROL_SIZE, GICD_IPA, GICD_SIZE, GICR_IPA, GICR_STRIDE, UART_IPA, UART_SIZE,
};
/// PL011 console (emulated), SPI 1 (INTID 33), level.
pub const UART_SPI: u32 = 1;
/// Virtual timer (CNTV), PPI 11.
pub const VTIMER_INTID: u32 = 27;
/// EL1 physical timer (CNTP), PPI 14.
pub const PTIMER_INTID: u32 = 30;
/// INTID of SPI 0.
pub const SPI_BASE_INTID: u32 = 32;
/// Highest SPI number a GICv3 has (INTID 1019).
pub const MAX_SPI: u32 = 1019 - SPI_BASE_INTID;
/// vCPUs per VM at most (the board checker refuses more).
pub const MAX_VCPUS: u32 = tessera_boards::guest::MAX_VCPUS as u32;
/// Phandles of the GIC (`interrupt-parent`) and of the UART's clock.
pub const GIC_PHANDLE: u32 = 1;
pub const CLOCK_PHANDLE: u32 = 2;
/// `clock-frequency` of `/apb-pclk`.
pub const APB_PCLK_HZ: u32 = 24_000_000;
/// The guest DTB's room in guest RAM (`docs/guest-abi.md`, "under 64 KiB").
pub const MAX_GUEST_DTB_SIZE: usize = 0x1_0000;

/// `interrupts` cells: type, then flags.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
const IRQ_EDGE_RISING: u32 = 1;
const IRQ_LEVEL_HIGH: u32 = 4;
/// Secure physical, non-secure physical, virtual, hypervisor timer PPIs, in
/// the order `arm,armv8-timer` wants them.
const TIMER_PPIS: [u32; 4] = [13, PTIMER_INTID - 16, VTIMER_INTID - 16, 10];

/// A shared-memory region as one VM sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestShm<'a> {
    /// The region's index for this VM (doorbell hypercall / control page).
    pub index: u32,
    pub name: &'a str,
    pub ipa: u64,
    pub size: u64,
    pub writable: bool,
    /// SPI number (INTID - 32) this VM's doorbell raises, if any.
    pub doorbell_spi: Option<u32>,
    /// Where the peers' data starts: after the hypervisor's header page.
    pub data_offset: u64,
    /// This VM's position among the region's peers (its boot-count slot
    /// in the header).
    pub peer_index: u32,
}

/// A device passed through to the VM (MMIO at IPA = PA, SPIs level-high).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestDevice<'a> {
    pub compatible: &'a [&'a str],
    pub mmio: &'a [(u64, u64)],
    pub spis: &'a [u32],
}

/// A PCIe host bridge passed through (`pci-host-ecam-generic`): ECAM and
/// windows at IPA = PA, INTx routed to the VM's own (virtual) GIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestPci<'a> {
    pub ecam: (u64, u64),
    pub bus_range: (u32, u32),
    /// (PCI address cells hi/mid/lo, CPU address, size) per window.
    pub ranges: &'a [([u32; 3], u64, u64)],
    pub intx_mask: [u32; 4],
    /// (child address hi cell, pin, SPI number, trigger flags).
    pub intx: &'a [[u32; 4]],
}

/// Most device nodes need no more than this many ranges or interrupts.
const MAX_DEVICE_CELLS: usize = 48;

/// Everything that differs between the guest DTBs of two VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestDtb<'a> {
    pub vm_name: &'a str,
    pub vcpus: u32,
    /// (ipa, size) RAM regions.
    pub memory: &'a [(u64, u64)],
    pub shared: &'a [GuestShm<'a>],
    /// Passed-through devices that have a `compatible` (others get no node).
    pub devices: &'a [GuestDevice<'a>],
    pub pci: Option<GuestPci<'a>>,
    pub bootargs: &'a str,
    /// 0 at first boot, +1 at each restart of this VM.
    pub boot_count: u32,
    /// A Linux initramfs: (ipa, length), for `linux,initrd-start`/`-end`.
    pub initrd: Option<(u64, u64)>,
}

/// A node name with a unit address: `prefix@<hex, no leading zeros>`.
fn node_name(prefix: &str, addr: u64) -> Result<String<48>, FdtWriteError> {
    let mut s = String::new();
    write!(s, "{prefix}@{addr:x}").map_err(|_| FdtWriteError::NameTooLong)?;
    Ok(s)
}

/// `reg` cells for `#address-cells = <2>`, `#size-cells = <2>`.
fn reg(base: u64, size: u64) -> [u32; 4] {
    [
        (base >> 32) as u32,
        base as u32,
        (size >> 32) as u32,
        size as u32,
    ]
}

/// A range that is not empty and does not wrap.
fn sane_range(base: u64, size: u64) -> bool {
    size != 0 && base.checked_add(size).is_some()
}

/// Rejects what cannot be described: the board-config checks should have
/// caught all of it, but a malformed tree must not reach a guest.
fn check(spec: &GuestDtb) -> Result<(), FdtWriteError> {
    if spec.vcpus == 0 || spec.vcpus > MAX_VCPUS {
        return Err(FdtWriteError::InvalidInput("vCPU count"));
    }
    if spec.memory.is_empty() {
        return Err(FdtWriteError::InvalidInput("a VM without RAM"));
    }
    if !spec.memory.iter().all(|&(ipa, size)| sane_range(ipa, size)) {
        return Err(FdtWriteError::InvalidInput("RAM region"));
    }
    let mem = spec.memory;
    if (1..mem.len()).any(|i| mem[..i].iter().any(|m| m.0 == mem[i].0)) {
        return Err(FdtWriteError::InvalidInput("two RAM regions at one IPA"));
    }
    for shm in spec.shared {
        if !sane_range(shm.ipa, shm.size) || shm.data_offset >= shm.size {
            return Err(FdtWriteError::InvalidInput("shared region"));
        }
        if shm
            .doorbell_spi
            .is_some_and(|spi| spi > MAX_SPI || spi == UART_SPI)
        {
            return Err(FdtWriteError::InvalidInput("doorbell SPI"));
        }
    }
    let shm = spec.shared;
    if (1..shm.len()).any(|i| shm[..i].iter().any(|s| s.ipa == shm[i].ipa)) {
        return Err(FdtWriteError::InvalidInput("two shared regions at one IPA"));
    }
    if spec.vm_name.contains('\0') {
        return Err(FdtWriteError::InvalidString);
    }
    Ok(())
}

/// Writes the guest DTB of the VM `spec` describes into `out`; returns its
/// size (the blob is `out[..size]`).
pub fn build(spec: &GuestDtb, out: &mut [u8]) -> Result<usize, FdtWriteError> {
    check(spec)?;
    let uart = node_name("pl011", UART_IPA)?;
    let mut w = FdtWriter::new(out)?;

    w.begin_node("")?;
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 2)?;
    w.property_string_list("compatible", &["tessera,vm", "linux,dummy-virt"])?;
    w.property_concat("model", &[b"Tessera VM ", spec.vm_name.as_bytes(), b"\0"])?;
    w.property_u32("interrupt-parent", GIC_PHANDLE)?;

    w.begin_node("chosen")?;
    w.property_concat("stdout-path", &[b"/", uart.as_bytes(), b"\0"])?;
    w.property_string("bootargs", spec.bootargs)?;
    w.property_string("tessera,vm-name", spec.vm_name)?;
    w.property_u32("tessera,boot-count", spec.boot_count)?;
    if let Some((ipa, len)) = spec.initrd {
        // 64-bit values: Linux reads these by their length.
        w.property_u64("linux,initrd-start", ipa)?;
        w.property_u64("linux,initrd-end", ipa + len)?;
    }
    w.end_node()?;

    for &(ipa, size) in spec.memory {
        w.begin_node(&node_name("memory", ipa)?)?;
        w.property_string("device_type", "memory")?;
        w.property_cells("reg", &reg(ipa, size))?;
        w.end_node()?;
    }

    w.begin_node("cpus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 0)?;
    for i in 0..spec.vcpus {
        w.begin_node(&node_name("cpu", i.into())?)?;
        w.property_string("device_type", "cpu")?;
        w.property_string("compatible", "arm,armv8")?;
        w.property_u32("reg", i)?;
        w.property_string("enable-method", "psci")?;
        w.end_node()?;
    }
    w.end_node()?;

    w.begin_node("psci")?;
    w.property_string_list("compatible", &["arm,psci-1.0", "arm,psci-0.2"])?;
    w.property_string("method", "hvc")?;
    w.end_node()?;

    w.begin_node("timer")?;
    w.property_string("compatible", "arm,armv8-timer")?;
    let t = TIMER_PPIS;
    w.property_cells(
        "interrupts",
        &[
            GIC_PPI,
            t[0],
            IRQ_LEVEL_HIGH,
            GIC_PPI,
            t[1],
            IRQ_LEVEL_HIGH,
            GIC_PPI,
            t[2],
            IRQ_LEVEL_HIGH,
            GIC_PPI,
            t[3],
            IRQ_LEVEL_HIGH,
        ],
    )?;
    w.property_null("always-on")?;
    w.end_node()?;

    w.begin_node(&node_name("intc", GICD_IPA)?)?;
    w.property_string("compatible", "arm,gic-v3")?;
    w.property_null("interrupt-controller")?;
    w.property_u32("#interrupt-cells", 3)?;
    // Not in the ABI's list, but dtc warns about an interrupt provider
    // without it; 0 (no child bus, no address in interrupt-map parents).
    w.property_u32("#address-cells", 0)?;
    w.property_u32("#redistributor-regions", 1)?;
    let (d, r) = (
        reg(GICD_IPA, GICD_SIZE),
        reg(GICR_IPA, u64::from(spec.vcpus) * GICR_STRIDE),
    );
    w.property_cells("reg", &[d[0], d[1], d[2], d[3], r[0], r[1], r[2], r[3]])?;
    w.property_u32("phandle", GIC_PHANDLE)?;
    w.end_node()?;

    w.begin_node("apb-pclk")?;
    w.property_string("compatible", "fixed-clock")?;
    w.property_u32("#clock-cells", 0)?;
    w.property_u32("clock-frequency", APB_PCLK_HZ)?;
    w.property_u32("phandle", CLOCK_PHANDLE)?;
    w.end_node()?;

    w.begin_node(&uart)?;
    w.property_string_list("compatible", &["arm,pl011", "arm,primecell"])?;
    w.property_cells("reg", &reg(UART_IPA, UART_SIZE))?;
    w.property_cells("interrupts", &[GIC_SPI, UART_SPI, IRQ_LEVEL_HIGH])?;
    w.property_cells("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
    w.property_string_list("clock-names", &["uartclk", "apb_pclk"])?;
    w.end_node()?;

    w.begin_node(&node_name("tessera-control", CONTROL_IPA)?)?;
    w.property_string("compatible", "tessera,control")?;
    w.property_cells("reg", &reg(CONTROL_IPA, CONTROL_SIZE))?;
    w.end_node()?;

    for shm in spec.shared {
        w.begin_node(&node_name("tessera-shm", shm.ipa)?)?;
        w.property_string_list("compatible", &["tessera,shm", "generic-uio"])?;
        w.property_cells("reg", &reg(shm.ipa, shm.size))?;
        if let Some(spi) = shm.doorbell_spi {
            w.property_cells("interrupts", &[GIC_SPI, spi, IRQ_EDGE_RISING])?;
        }
        w.property_u32("tessera,index", shm.index)?;
        w.property_string("tessera,name", shm.name)?;
        // `data_offset < size` (checked above), so it fits 32 bits when the
        // region does not; larger regions still have a one-page header.
        w.property_u32("tessera,data-offset", shm.data_offset as u32)?;
        w.property_u32("tessera,peer-index", shm.peer_index)?;
        if shm.writable {
            w.property_null("tessera,writable")?;
        }
        w.end_node()?;
    }

    for dev in spec
        .devices
        .iter()
        .filter(|d| !d.compatible.is_empty() && !d.mmio.is_empty())
    {
        w.begin_node(&node_name(
            dev.compatible[0].rsplit(',').next().unwrap_or("device"),
            dev.mmio[0].0,
        )?)?;
        w.property_string_list("compatible", dev.compatible)?;
        let mut cells: heapless::Vec<u32, MAX_DEVICE_CELLS> = heapless::Vec::new();
        for &(base, size) in dev.mmio {
            cells
                .extend_from_slice(&reg(base, size))
                .map_err(|_| FdtWriteError::InvalidInput("too many device ranges"))?;
        }
        w.property_cells("reg", &cells)?;
        if !dev.spis.is_empty() {
            cells.clear();
            for &spi in dev.spis {
                cells
                    .extend_from_slice(&[GIC_SPI, spi, IRQ_LEVEL_HIGH])
                    .map_err(|_| FdtWriteError::InvalidInput("too many device interrupts"))?;
            }
            w.property_cells("interrupts", &cells)?;
        }
        // AMBA (PrimeCell) drivers in Linux want their bus clock.
        if dev.compatible.contains(&"arm,primecell") {
            w.property_cells("clocks", &[CLOCK_PHANDLE])?;
            w.property_string_list("clock-names", &["apb_pclk"])?;
        }
        w.end_node()?;
    }

    if let Some(pci) = &spec.pci {
        write_pci(&mut w, pci)?;
    }

    w.end_node()?;
    w.finish()
}

fn write_pci(w: &mut FdtWriter, pci: &GuestPci) -> Result<(), FdtWriteError> {
    let too_many = |_| FdtWriteError::InvalidInput("too many PCIe ranges or INTx routes");
    w.begin_node(&node_name("pcie", pci.ecam.0)?)?;
    w.property_string("compatible", "pci-host-ecam-generic")?;
    w.property_string("device_type", "pci")?;
    w.property_cells("reg", &reg(pci.ecam.0, pci.ecam.1))?;
    w.property_cells("bus-range", &[pci.bus_range.0, pci.bus_range.1])?;
    w.property_u32("#address-cells", 3)?;
    w.property_u32("#size-cells", 2)?;
    w.property_u32("#interrupt-cells", 1)?;
    w.property_u32("linux,pci-domain", 0)?;
    // The SMMU makes the VM's DMA addresses its guest-physical ones, and
    // its walks are coherent.
    w.property_null("dma-coherent")?;
    let mut cells: heapless::Vec<u32, { 7 * 4 }> = heapless::Vec::new();
    for &(space, cpu, size) in pci.ranges {
        cells
            .extend_from_slice(&[
                space[0],
                space[1],
                space[2],
                (cpu >> 32) as u32,
                cpu as u32,
                (size >> 32) as u32,
                size as u32,
            ])
            .map_err(too_many)?;
    }
    w.property_cells("ranges", &cells)?;
    w.property_cells("interrupt-map-mask", &pci.intx_mask)?;
    // child address (3) + pin, the GIC (no address cells), SPI.
    let mut map: heapless::Vec<u32, { 8 * 32 }> = heapless::Vec::new();
    for &[hi, pin, spi, flags] in pci.intx {
        map.extend_from_slice(&[hi, 0, 0, pin, GIC_PHANDLE, GIC_SPI, spi, flags])
            .map_err(too_many)?;
    }
    w.property_cells("interrupt-map", &map)?;
    w.end_node()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt::firmware::{self as dtb, Conduit, Range, Uart};
    use fdt::Fdt;
    use std::string::String;

    const RAM: &[(u64, u64)] = &[(0x4000_0000, 0x1000_0000)];
    const SHARED: &[GuestShm] = &[
        GuestShm {
            index: 0,
            name: "gpu-cluster",
            ipa: 0x5000_0000,
            size: 0x40_0000,
            writable: true,
            doorbell_spi: Some(40),
            data_offset: 0x1000,
            peer_index: 1,
        },
        GuestShm {
            index: 1,
            name: "status",
            ipa: 0x1_2345_6000,
            size: 0x2000,
            writable: false,
            doorbell_spi: None,
            data_offset: 0x1000,
            peer_index: 0,
        },
    ];

    fn spec(vcpus: u32) -> GuestDtb<'static> {
        GuestDtb {
            vm_name: "cluster",
            vcpus,
            memory: RAM,
            shared: SHARED,
            devices: &[],
            pci: None,
            bootargs: "console=ttyAMA0 earlycon",
            boot_count: 3,
            initrd: Some((0x4f00_0000, 0x12_3456)),
        }
    }

    fn build_vec(spec: &GuestDtb) -> Vec<u8> {
        let mut out = vec![0u8; MAX_GUEST_DTB_SIZE];
        let n = build(spec, &mut out).expect("guest DTB builds");
        out.truncate(n);
        out
    }

    fn prop<'a>(fdt: &Fdt<'a>, node: &str, name: &str) -> Option<&'a [u8]> {
        let node = fdt.find_node(node).unwrap_or_else(|| panic!("no {node}"));
        node.properties().find(|p| p.name == name).map(|p| p.value)
    }

    fn cells(bytes: &[u8]) -> Vec<u32> {
        assert_eq!(bytes.len() % 4, 0);
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    fn string_list(bytes: &[u8]) -> Vec<&str> {
        assert_eq!(bytes.last(), Some(&0), "strings are NUL-terminated");
        core::str::from_utf8(&bytes[..bytes.len() - 1])
            .unwrap()
            .split('\0')
            .collect()
    }

    fn check_platform(blob: &[u8], vcpus: u32) {
        dtb::validate(blob).expect("validates");
        let p = dtb::parse(blob).expect("parses");
        assert_eq!(p.size, blob.len());
        assert_eq!(p.model, "Tessera VM cluster");
        assert_eq!(
            p.ram.as_slice(),
            &[Range {
                base: 0x4000_0000,
                size: 0x1000_0000
            }]
        );
        let want: Vec<u64> = (0..u64::from(vcpus)).collect();
        assert_eq!(p.cpus.as_slice(), want.as_slice());
        assert_eq!(
            p.gic.dist,
            Range {
                base: GICD_IPA,
                size: GICD_SIZE
            }
        );
        assert_eq!(
            p.gic.redists.as_slice(),
            &[Range {
                base: GICR_IPA,
                size: u64::from(vcpus) * GICR_STRIDE
            }]
        );
        assert_eq!(
            p.uart,
            Some(Uart {
                range: Range {
                    base: UART_IPA,
                    size: UART_SIZE
                },
                spi: Some(UART_SPI)
            })
        );
        assert_eq!(p.psci, Some(Conduit::Hvc));
        assert_eq!(p.bootargs, "console=ttyAMA0 earlycon");
        assert_eq!(p.smmu, None);
        assert_eq!(p.pcie, None);
    }

    #[test]
    fn one_and_two_vcpus_parse_as_specified() {
        for vcpus in [1, 2] {
            let blob = build_vec(&spec(vcpus));
            check_platform(&blob, vcpus);
            let fdt = Fdt::new(&blob).unwrap();
            let cpus: Vec<&str> = fdt
                .find_node("/cpus")
                .unwrap()
                .children()
                .map(|n| n.name)
                .collect();
            let want: Vec<String> = (0..vcpus).map(|i| format!("cpu@{i}")).collect();
            assert_eq!(cpus, want);
            for i in 0..vcpus {
                let cpu = format!("/cpus/cpu@{i}");
                assert_eq!(cells(prop(&fdt, &cpu, "reg").unwrap()), [i]);
                assert_eq!(
                    string_list(prop(&fdt, &cpu, "enable-method").unwrap()),
                    ["psci"]
                );
                assert_eq!(
                    string_list(prop(&fdt, &cpu, "compatible").unwrap()),
                    ["arm,armv8"]
                );
            }
        }
    }

    #[test]
    fn root_chosen_and_fixed_devices() {
        let blob = build_vec(&spec(2));
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(cells(prop(&fdt, "/", "#address-cells").unwrap()), [2]);
        assert_eq!(cells(prop(&fdt, "/", "#size-cells").unwrap()), [2]);
        assert_eq!(
            string_list(prop(&fdt, "/", "compatible").unwrap()),
            ["tessera,vm", "linux,dummy-virt"]
        );
        assert_eq!(
            cells(prop(&fdt, "/", "interrupt-parent").unwrap()),
            [GIC_PHANDLE]
        );
        let gic = fdt.find_phandle(GIC_PHANDLE).unwrap();
        assert_eq!(gic.name, "intc@8000000");
        assert!(gic
            .property("interrupt-controller")
            .unwrap()
            .value
            .is_empty());
        assert_eq!(gic.interrupt_cells(), Some(3));
        assert_eq!(
            cells(prop(&fdt, "/intc@8000000", "#address-cells").unwrap()),
            [0]
        );

        let chosen = "/chosen";
        assert_eq!(
            string_list(prop(&fdt, chosen, "stdout-path").unwrap()),
            ["/pl011@9000000"]
        );
        assert_eq!(
            string_list(prop(&fdt, chosen, "tessera,vm-name").unwrap()),
            ["cluster"]
        );
        assert_eq!(
            cells(prop(&fdt, chosen, "tessera,boot-count").unwrap()),
            [3]
        );
        assert_eq!(fdt.chosen().stdout().unwrap().name, "pl011@9000000");
        assert_eq!(
            cells(prop(&fdt, chosen, "linux,initrd-start").unwrap()),
            [0, 0x4f00_0000]
        );
        assert_eq!(
            cells(prop(&fdt, chosen, "linux,initrd-end").unwrap()),
            [0, 0x4f12_3456]
        );

        let mem = "/memory@40000000";
        assert_eq!(
            string_list(prop(&fdt, mem, "device_type").unwrap()),
            ["memory"]
        );
        assert_eq!(
            string_list(prop(&fdt, "/psci", "compatible").unwrap()),
            ["arm,psci-1.0", "arm,psci-0.2"]
        );
        assert_eq!(
            cells(prop(&fdt, "/timer", "interrupts").unwrap()),
            [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]
        );
        assert_eq!(prop(&fdt, "/timer", "always-on"), Some(&[][..]));
        assert_eq!(
            cells(prop(&fdt, "/intc@8000000", "reg").unwrap()),
            [0, 0x800_0000, 0, 0x1_0000, 0, 0x80A_0000, 0, 0x4_0000]
        );

        let clk = fdt.find_phandle(CLOCK_PHANDLE).unwrap();
        assert_eq!(clk.name, "apb-pclk");
        assert_eq!(
            clk.property("clock-frequency").unwrap().as_usize(),
            Some(24_000_000)
        );
        assert_eq!(cells(prop(&fdt, "/apb-pclk", "#clock-cells").unwrap()), [0]);

        let uart = "/pl011@9000000";
        assert_eq!(
            string_list(prop(&fdt, uart, "compatible").unwrap()),
            ["arm,pl011", "arm,primecell"]
        );
        assert_eq!(
            cells(prop(&fdt, uart, "reg").unwrap()),
            [0, 0x900_0000, 0, 0x1000]
        );
        assert_eq!(cells(prop(&fdt, uart, "interrupts").unwrap()), [0, 1, 4]);
        assert_eq!(
            cells(prop(&fdt, uart, "clocks").unwrap()),
            [CLOCK_PHANDLE, CLOCK_PHANDLE]
        );
        assert_eq!(
            string_list(prop(&fdt, uart, "clock-names").unwrap()),
            ["uartclk", "apb_pclk"]
        );

        let ctl = "/tessera-control@b000000";
        assert_eq!(
            string_list(prop(&fdt, ctl, "compatible").unwrap()),
            ["tessera,control"]
        );
        assert_eq!(
            cells(prop(&fdt, ctl, "reg").unwrap()),
            [0, 0xB00_0000, 0, 0x1000]
        );

        // Exactly the specified nodes, in this order.
        let top: Vec<&str> = fdt
            .find_node("/")
            .unwrap()
            .children()
            .map(|n| n.name)
            .collect();
        assert_eq!(
            top,
            [
                "chosen",
                "memory@40000000",
                "cpus",
                "psci",
                "timer",
                "intc@8000000",
                "apb-pclk",
                "pl011@9000000",
                "tessera-control@b000000",
                "tessera-shm@50000000",
                "tessera-shm@123456000",
            ]
        );
    }

    #[test]
    fn shared_regions() {
        let blob = build_vec(&spec(1));
        let fdt = Fdt::new(&blob).unwrap();
        let rw = "/tessera-shm@50000000";
        assert_eq!(
            string_list(prop(&fdt, rw, "compatible").unwrap()),
            ["tessera,shm", "generic-uio"]
        );
        assert_eq!(
            cells(prop(&fdt, rw, "reg").unwrap()),
            [0, 0x5000_0000, 0, 0x40_0000]
        );
        assert_eq!(cells(prop(&fdt, rw, "interrupts").unwrap()), [0, 40, 1]);
        assert_eq!(cells(prop(&fdt, rw, "tessera,index").unwrap()), [0]);
        assert_eq!(
            string_list(prop(&fdt, rw, "tessera,name").unwrap()),
            ["gpu-cluster"]
        );
        assert_eq!(prop(&fdt, rw, "tessera,writable"), Some(&[][..]));
        assert_eq!(
            cells(prop(&fdt, rw, "tessera,data-offset").unwrap()),
            [0x1000]
        );
        assert_eq!(cells(prop(&fdt, rw, "tessera,peer-index").unwrap()), [1]);
        // The fdt crate resolves the root's interrupt-parent for it.
        let node = fdt.find_node(rw).unwrap();
        let r = node.reg().unwrap().next().unwrap();
        assert_eq!(
            (r.starting_address as u64, r.size),
            (0x5000_0000, Some(0x40_0000))
        );

        let ro = "/tessera-shm@123456000";
        assert_eq!(
            cells(prop(&fdt, ro, "reg").unwrap()),
            [1, 0x2345_6000, 0, 0x2000]
        );
        assert_eq!(prop(&fdt, ro, "interrupts"), None);
        assert_eq!(cells(prop(&fdt, ro, "tessera,index").unwrap()), [1]);
        assert_eq!(
            string_list(prop(&fdt, ro, "tessera,name").unwrap()),
            ["status"]
        );
        assert_eq!(prop(&fdt, ro, "tessera,writable"), None);
    }

    #[test]
    fn passed_through_devices_get_nodes() {
        let rtc = GuestDevice {
            compatible: &["arm,pl031", "arm,primecell"],
            mmio: &[(0x0901_0000, 0x1000)],
            spis: &[2],
        };
        let hidden = GuestDevice {
            compatible: &[],
            mmio: &[(0x0903_0000, 0x1000)],
            spis: &[7],
        };
        let s = GuestDtb {
            vm_name: "t1",
            vcpus: 1,
            memory: RAM,
            shared: &[],
            devices: &[rtc, hidden],
            pci: None,
            bootargs: "",
            boot_count: 0,
            initrd: None,
        };
        let blob = build_vec(&s);
        dtb::validate(&blob).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let node = "/pl031@9010000";
        assert_eq!(
            cells(prop(&fdt, node, "reg").unwrap()),
            [0, 0x0901_0000, 0, 0x1000]
        );
        assert_eq!(cells(prop(&fdt, node, "interrupts").unwrap()), [0, 2, 4]);
        assert_eq!(
            prop(&fdt, node, "compatible"),
            Some(&b"arm,pl031\0arm,primecell\0"[..])
        );
        assert_eq!(cells(prop(&fdt, node, "clocks").unwrap()), [CLOCK_PHANDLE]);
        // A device without a compatible gets no node.
        assert!(fdt.all_nodes().all(|n| !n.name.contains("9030000")));
    }

    #[test]
    fn pci_host_node_routes_intx_to_the_vgic() {
        let firmware = dtb::parse(include_bytes!("../../tests/data/qemu-virt.dtb")).unwrap();
        let host = firmware.pcie.unwrap();
        let ranges: Vec<([u32; 3], u64, u64)> = host
            .ranges
            .iter()
            .map(|(s, r)| (*s, r.base, r.size))
            .collect();
        let s = GuestDtb {
            pci: Some(GuestPci {
                ecam: (host.ecam.base, host.ecam.size),
                bus_range: host.bus_range,
                ranges: &ranges,
                intx_mask: host.intx_mask,
                intx: &host.intx,
            }),
            ..spec(2)
        };
        let blob = build_vec(&s);
        dtb::validate(&blob).unwrap();
        // Read back with the firmware parser: same windows and routing,
        // now pointing at the guest's GIC.
        let guest = dtb::parse(&blob).unwrap().pcie.unwrap();
        assert_eq!(guest.ecam, host.ecam);
        assert_eq!(guest.windows, host.windows);
        assert_eq!(guest.ranges, host.ranges);
        assert_eq!(guest.bus_range, (0, 0xff));
        assert_eq!(guest.intx_mask, host.intx_mask);
        assert_eq!(guest.intx, host.intx);
        assert!(guest.iommu_map.is_empty(), "the guest sees no SMMU");
        let fdt = Fdt::new(&blob).unwrap();
        let node = "/pcie@4010000000";
        assert_eq!(prop(&fdt, node, "device_type"), Some(&b"pci\0"[..]));
        assert_eq!(prop(&fdt, node, "dma-coherent"), Some(&[][..]));
    }

    #[test]
    fn minimal_vm_and_empty_bootargs() {
        let mem = [(0x4000_0000, 0x20_0000), (0x8_0000_0000, 0x4000_0000)];
        let s = GuestDtb {
            vm_name: "x",
            vcpus: 1,
            memory: &mem,
            shared: &[],
            devices: &[],
            pci: None,
            bootargs: "",
            boot_count: 0,
            initrd: None,
        };
        let blob = build_vec(&s);
        let p = dtb::parse(&blob).unwrap();
        assert_eq!(p.bootargs, "");
        assert_eq!(p.ram.len(), 2);
        assert_eq!(p.ram[1].base, 0x8_0000_0000);
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(prop(&fdt, "/chosen", "bootargs"), Some(&b"\0"[..]));
        assert_eq!(prop(&fdt, "/chosen", "linux,initrd-start"), None);
        assert_eq!(
            cells(prop(&fdt, "/chosen", "tessera,boot-count").unwrap()),
            [0]
        );
        assert!(fdt.find_node("/memory@800000000").is_some());
        assert!(fdt.find_node("/tessera-shm").is_none());
    }

    #[test]
    fn every_short_buffer_fails_cleanly() {
        let s = spec(2);
        let blob = build_vec(&s);
        let need = blob.len();
        for len in 0..need {
            // Room behind the slice, to see that nothing is written past it.
            let mut buf = vec![0x5au8; len + 64];
            let r = build(&s, &mut buf[..len]);
            assert_eq!(r, Err(FdtWriteError::BufferTooSmall), "len {len}");
            assert!(buf[len..].iter().all(|&b| b == 0x5a), "len {len}");
        }
        // Exactly enough, over a dirty buffer: the same bytes.
        let mut buf = vec![0xffu8; need];
        assert_eq!(build(&s, &mut buf), Ok(need));
        assert_eq!(buf, blob);
    }

    #[test]
    fn largest_vm_fits_its_room() {
        let shared: Vec<GuestShm> = (0..16)
            .map(|i| GuestShm {
                index: i,
                name: "a-rather-long-shared-region-name",
                ipa: 0x1_0000_0000 + u64::from(i) * 0x100_0000,
                size: 0x100_0000,
                writable: i % 2 == 0,
                doorbell_spi: Some(100 + i),
                data_offset: 0x1000,
                peer_index: i,
            })
            .collect();
        let mem = [(0x4000_0000u64, 0x4000_0000u64); 1];
        let s = GuestDtb {
            vm_name: "a-vm-with-a-long-name",
            vcpus: MAX_VCPUS,
            memory: &mem,
            shared: &shared,
            devices: &[],
            pci: None,
            bootargs: "console=ttyAMA0 earlycon root=/dev/vda rw quiet loglevel=3",
            boot_count: u32::MAX,
            initrd: None,
        };
        let blob = build_vec(&s);
        assert!(blob.len() < MAX_GUEST_DTB_SIZE);
        dtb::validate(&blob).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(fdt.find_node("/cpus").unwrap().children().count(), 4);
        assert_eq!(
            cells(prop(&fdt, "/intc@8000000", "reg").unwrap())[4..],
            [0, 0x80A_0000, 0, 4 * 0x2_0000]
        );
        // The redistributors end before the UART.
        assert!(GICR_IPA + u64::from(MAX_VCPUS) * GICR_STRIDE <= UART_IPA);
    }

    #[test]
    fn bad_input_is_refused() {
        let bad = |s: GuestDtb| build(&s, &mut [0u8; MAX_GUEST_DTB_SIZE]);
        let base = spec(1);
        assert!(matches!(
            bad(GuestDtb { vcpus: 0, ..base }),
            Err(FdtWriteError::InvalidInput(_))
        ));
        assert!(matches!(
            bad(GuestDtb {
                vcpus: MAX_VCPUS + 1,
                ..base
            }),
            Err(FdtWriteError::InvalidInput(_))
        ));
        assert!(matches!(
            bad(GuestDtb {
                vcpus: u32::MAX,
                ..base
            }),
            Err(FdtWriteError::InvalidInput(_))
        ));
        assert!(matches!(
            bad(GuestDtb {
                memory: &[],
                ..base
            }),
            Err(FdtWriteError::InvalidInput(_))
        ));
        for memory in [
            &[(0x4000_0000u64, 0u64)][..],
            &[(u64::MAX, 2)],
            &[(0x4000_0000, 0x1000), (0x4000_0000, 0x2000)],
        ] {
            assert!(
                matches!(
                    bad(GuestDtb { memory, ..base }),
                    Err(FdtWriteError::InvalidInput(_))
                ),
                "{memory:x?}"
            );
        }
        let one = SHARED[0];
        for shared in [
            [GuestShm { size: 0, ..one }, SHARED[1]],
            [
                GuestShm {
                    data_offset: one.size,
                    ..one
                },
                SHARED[1],
            ],
            [
                one,
                GuestShm {
                    ipa: one.ipa,
                    ..SHARED[1]
                },
            ],
            [
                GuestShm {
                    doorbell_spi: Some(MAX_SPI + 1),
                    ..one
                },
                SHARED[1],
            ],
            [
                GuestShm {
                    doorbell_spi: Some(UART_SPI),
                    ..one
                },
                SHARED[1],
            ],
        ] {
            assert!(matches!(
                bad(GuestDtb {
                    shared: &shared,
                    ..base
                }),
                Err(FdtWriteError::InvalidInput(_))
            ));
        }
        let nul_name = [GuestShm {
            name: "a\0b",
            ..one
        }];
        for s in [
            GuestDtb {
                vm_name: "a\0b",
                ..base
            },
            GuestDtb {
                bootargs: "a\0b",
                ..base
            },
            GuestDtb {
                shared: &nul_name,
                ..base
            },
        ] {
            assert_eq!(bad(s), Err(FdtWriteError::InvalidString));
        }
        // The highest SPI is fine.
        let top = [GuestShm {
            doorbell_spi: Some(MAX_SPI),
            ..one
        }];
        assert!(bad(GuestDtb {
            shared: &top,
            ..base
        })
        .is_ok());
    }

    /// Runs dtc with `input` on stdin; `None` where dtc is missing.
    fn dtc(args: &[&str], input: &[u8]) -> Option<std::process::Output> {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let mut child = match Command::new("dtc")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                eprintln!("note: dtc not run ({e}); skipping the dtc check");
                return None;
            }
        };
        child.stdin.take().unwrap().write_all(input).unwrap();
        Some(child.wait_with_output().unwrap())
    }

    /// An extra check with the reference tool, skipped where it is missing.
    #[test]
    fn dtc_accepts_it_without_warnings() {
        let blob = build_vec(&spec(2));
        let Some(out) = dtc(&["-I", "dtb", "-O", "dts", "-o", "-", "-"], &blob) else {
            return;
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        let dts = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "dtc failed: {stderr}");
        assert!(stderr.trim().is_empty(), "dtc warns: {stderr}\n{dts}");
        assert!(dts.contains("tessera-shm@50000000 {"), "{dts}");
        assert!(dts.contains("stdout-path = \"/pl011@9000000\";"), "{dts}");
        // dtc's own blob of the same tree decompiles to the same text (with
        // dtc 1.6.1 it is the same bytes, but that may vary by version).
        let back = dtc(
            &["-I", "dts", "-O", "dtb", "-q", "-o", "-", "-"],
            &out.stdout,
        )
        .unwrap();
        assert!(back.status.success());
        let again = dtc(&["-I", "dtb", "-O", "dts", "-o", "-", "-"], &back.stdout).unwrap();
        assert_eq!(String::from_utf8_lossy(&again.stdout), dts);
        if back.stdout != blob {
            eprintln!("note: dtc lays out the same tree differently");
        }
    }
}
