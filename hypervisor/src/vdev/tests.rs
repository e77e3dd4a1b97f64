use super::vgic::{Action, Vgic, VmGicConfig};
use super::*;
use spin::Mutex;

struct Probe(&'static str);

impl MmioDevice for Probe {
    fn name(&self) -> &'static str {
        self.0
    }
    fn read(&self, a: &MmioAccess, _: &mut Effects) -> u64 {
        a.offset
    }
    fn write(&self, _: &MmioAccess, _: u64, _: &mut Effects) {}
}

#[test]
fn finds_devices_by_range_and_offset() {
    let mut r = Registry::new();
    r.add(0x1000, 0x100, Box::new(Probe("a"))).unwrap();
    r.add(0x2000, 0x1000, Box::new(Probe("b"))).unwrap();
    assert!(r.find(0xfff).is_none());
    let (d, off) = r.find(0x1000).unwrap();
    assert_eq!((d.name(), off), ("a", 0));
    let (d, off) = r.find(0x10ff).unwrap();
    assert_eq!((d.name(), off), ("a", 0xff));
    assert!(r.find(0x1100).is_none());
    let (d, off) = r.find(0x2fff).unwrap();
    assert_eq!((d.name(), off), ("b", 0xfff));
    assert!(r.find(0x3000).is_none());
    assert!(r.find(u64::MAX).is_none());
}

#[test]
fn refuses_overlaps_and_empty_ranges() {
    let mut r = Registry::new();
    r.add(0x1000, 0x1000, Box::new(Probe("a"))).unwrap();
    assert_eq!(
        r.add(0x1fff, 2, Box::new(Probe("b"))),
        Err(RegistryError::Overlap {
            base: 0x1fff,
            with: "a"
        })
    );
    assert_eq!(
        r.add(0x0, 0x1001, Box::new(Probe("b"))),
        Err(RegistryError::Overlap { base: 0, with: "a" })
    );
    assert_eq!(
        r.add(0x5000, 0, Box::new(Probe("b"))),
        Err(RegistryError::Empty { base: 0x5000 })
    );
    assert_eq!(
        r.add(u64::MAX, 2, Box::new(Probe("b"))),
        Err(RegistryError::Empty { base: u64::MAX })
    );
    // Touching ranges are fine.
    r.add(0x2000, 0x10, Box::new(Probe("c"))).unwrap();
    r.add(0xff0, 0x10, Box::new(Probe("d"))).unwrap();
    for (ipa, name) in [(0x1000, "a"), (0x2000, "c"), (0xff0, "d")] {
        assert_eq!(r.find(ipa).map(|(d, _)| d.name()), Some(name));
    }
}

#[test]
fn control_page_store_rings_a_doorbell() {
    let mut fx = Effects::new();
    let a = MmioAccess {
        vcpu: 0,
        offset: control::DOORBELL,
        size: 4,
    };
    control::ControlPage.write(&a, 3, &mut fx);
    assert_eq!(fx.as_slice(), &[Effect::Doorbell(3)]);
    let mut fx = Effects::new();
    control::ControlPage.write(&MmioAccess { offset: 8, ..a }, 3, &mut fx);
    assert!(fx.is_empty());
    assert_eq!(control::ControlPage.read(&a, &mut fx), 0);
}

fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

fn sink(_: &'static str, _: &str) {}

#[test]
fn uart_read_of_last_input_byte_retracts_its_interrupt() {
    const UART_SPI: u32 = 33;
    let vgic = leak(Mutex::new(Vgic::new(&VmGicConfig {
        vcpus: 1,
        hw_spis: &[],
        virtual_spis: &[UART_SPI],
    })));
    let uart = leak(Mutex::new(vuart::VUart::new("t", sink)));
    let dev = vuart::Device {
        uart,
        vgic,
        intid: UART_SPI,
    };
    let gicd = gic::Distributor(vgic);
    let mut fx = Effects::new();
    // The guest enables group 1 (GICD_CTLR), SPI 33 (GICD_ISENABLER1 bit 1)
    // and the vUART's RX interrupt.
    let ctlr = MmioAccess {
        vcpu: 0,
        offset: 0,
        size: 4,
    };
    gicd.write(&ctlr, 0x12, &mut fx);
    gicd.write(
        &MmioAccess {
            vcpu: 0,
            offset: 0x104,
            size: 4,
        },
        1 << 1,
        &mut fx,
    );
    let imsc = MmioAccess {
        vcpu: 0,
        offset: 0x38,
        size: 4,
    };
    dev.write(&imsc, 1 << 4, &mut fx);
    uart.lock().push_rx(b'x');
    vgic.lock().inject(UART_SPI, 0);
    let mut lrs = [0u64; 4];
    vgic.lock().flush_lrs(0, &mut lrs);
    assert!(lrs.iter().any(|&lr| lr as u32 == UART_SPI), "{lrs:x?}");
    let dr = MmioAccess { offset: 0, ..imsc };
    let mut fx = Effects::new();
    assert_eq!(dev.read(&dr, &mut fx), u64::from(b'x'));
    assert_eq!(fx.as_slice(), &[Effect::Gic(Action::Kick(0))]);
}

#[test]
fn redistributor_frames_select_the_vcpu() {
    let vgic = leak(Mutex::new(Vgic::new(&VmGicConfig {
        vcpus: 2,
        hw_spis: &[],
        virtual_spis: &[],
    })));
    let gicr = gic::Redistributors {
        vgic,
        stride: 0x2_0000,
    };
    let mut fx = Effects::new();
    // GICR_TYPER's Processor_Number (bits 23:8) names the frame's vCPU.
    let typer = |offset| {
        gicr.read(
            &MmioAccess {
                vcpu: 0,
                offset,
                size: 8,
            },
            &mut Effects::new(),
        )
    };
    assert_eq!((typer(0x8) >> 8) & 0xffff, 0);
    assert_eq!((typer(0x2_0008) >> 8) & 0xffff, 1);
    gicr.write(
        &MmioAccess {
            vcpu: 0,
            offset: 0x2_0000 + 0x1_0100,
            size: 4,
        },
        1 << 3,
        &mut fx,
    );
    assert!(fx.iter().all(|e| matches!(e, Effect::Gic(_))));
}

#[test]
fn uart_holds_a_pasted_line_of_4_kib_in_order_then_refuses() {
    let mut u = vuart::VUart::new("t", sink);
    for i in 0..vuart::RX_BUFFER {
        assert!(u.push_rx(i as u8), "byte {i} refused");
    }
    assert!(!u.push_rx(0), "a byte past the buffer was taken");
    for i in 0..vuart::RX_BUFFER {
        assert_eq!(u.read(0x000), u64::from(i as u8), "byte {i}");
    }
    // Empty again: FR says so and DR reads 0.
    assert_ne!(u.read(0x018) & (1 << 4), 0);
    assert!(u.push_rx(b'a'));
    u.reset();
    assert_ne!(u.read(0x018) & (1 << 4), 0, "input survived a VM reset");
}
