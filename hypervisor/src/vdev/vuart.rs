//! The PL011 every VM sees at 0x0900_0000: output goes to the physical
//! console a line at a time (through the sink the VM layer gives it), and
//! input comes from the console router.

use super::vgic::{Action, Vgic};
use super::{Effect, Effects, MmioAccess, MmioDevice};
use spin::Mutex;

const DR: u64 = 0x000;
const FR: u64 = 0x018;
const FR_TXFE: u64 = 1 << 7;
const FR_RXFE: u64 = 1 << 4;
const CR: u64 = 0x030;
const LCR_H: u64 = 0x02c;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
/// RXIS | RTIS: data received / receive time-out.
const RX_INTERRUPTS: u64 = (1 << 4) | (1 << 6);
/// PrimeCell peripheral and cell ID registers, as a real PL011 (r1p5) has:
/// Linux's AMBA bus matches drivers on them.
const ID: [(u64, u64); 8] = [
    (0xfe0, 0x11),
    (0xfe4, 0x10),
    (0xfe8, 0x34),
    (0xfec, 0x00),
    (0xff0, 0x0d),
    (0xff4, 0xf0),
    (0xff8, 0x05),
    (0xffc, 0xb1),
];
const LINE: usize = 160;
/// Console input held for a VM until it reads it. The input core takes
/// bytes from the physical UART as fast as they come (it does not hold them
/// back: a VM that never reads must not block Ctrl-T switching), so a paste
/// has to fit here while the VM's vCPU catches up: Linux's line buffer is
/// 4 KiB, so is this.
pub const RX_BUFFER: usize = 4096;

/// Where a finished line goes: (VM name, text).
pub type LineSink = fn(&'static str, &str);

pub struct VUart {
    name: &'static str,
    sink: LineSink,
    line: heapless::Vec<u8, LINE>,
    /// Console input routed to this VM, not yet read.
    rx: heapless::Deque<u8, RX_BUFFER>,
    cr: u64,
    lcr_h: u64,
    imsc: u64,
}

impl VUart {
    pub const fn new(name: &'static str, sink: LineSink) -> VUart {
        VUart {
            name,
            sink,
            line: heapless::Vec::new(),
            rx: heapless::Deque::new(),
            cr: 0x301,
            lcr_h: 0x70,
            imsc: 0,
        }
    }

    fn flush(&mut self) {
        let text = core::str::from_utf8(&self.line).unwrap_or("<non-UTF-8 output>");
        (self.sink)(self.name, text);
        self.line.clear();
    }

    /// Raw interrupt status: receive (bit 4) while input waits.
    fn ris(&self) -> u64 {
        if self.rx.is_empty() {
            0
        } else {
            RX_INTERRUPTS
        }
    }

    /// Whether the VM's UART interrupt line is high.
    pub fn irq_level(&self) -> bool {
        self.ris() & self.imsc != 0
    }

    /// Console input for this VM; false if its buffer is full (byte dropped).
    pub fn push_rx(&mut self, b: u8) -> bool {
        self.rx.push_back(b).is_ok()
    }

    pub fn read(&mut self, offset: u64) -> u64 {
        match offset {
            FR => FR_TXFE | if self.rx.is_empty() { FR_RXFE } else { 0 },
            CR => self.cr,
            LCR_H => self.lcr_h,
            IMSC => self.imsc,
            RIS => self.ris(),
            MIS => self.ris() & self.imsc,
            DR => self.rx.pop_front().map_or(0, u64::from),
            _ => ID.iter().find(|(o, _)| *o == offset).map_or(0, |(_, v)| *v),
        }
    }

    pub fn write(&mut self, offset: u64, value: u64) {
        match offset {
            DR => {
                let b = value as u8;
                match b {
                    b'\n' => self.flush(),
                    b'\r' => {}
                    _ => {
                        if self.line.push(b).is_err() {
                            self.flush();
                            let _ = self.line.push(b);
                        }
                    }
                }
            }
            CR => self.cr = value,
            LCR_H => self.lcr_h = value,
            IMSC => self.imsc = value,
            _ => {}
        }
    }

    /// A restarted VM starts with a clean line and no input waiting.
    pub fn reset(&mut self) {
        if !self.line.is_empty() {
            self.flush();
        }
        self.rx.clear();
        self.cr = 0x301;
        self.lcr_h = 0x70;
        self.imsc = 0;
    }
}

/// The vUART as an MMIO device. Reading the last byte of input lowers its
/// interrupt line, so the pending interrupt is taken back from the vGIC.
pub struct Device {
    pub uart: &'static Mutex<VUart>,
    pub vgic: &'static Mutex<Vgic>,
    /// The vUART's SPI.
    pub intid: u32,
}

impl MmioDevice for Device {
    fn name(&self) -> &'static str {
        "vUART"
    }

    fn read(&self, a: &MmioAccess, effects: &mut Effects) -> u64 {
        let (value, low) = {
            let mut u = self.uart.lock();
            (u.read(a.offset), !u.irq_level())
        };
        if low && a.offset == DR {
            if let Some(t) = self.vgic.lock().retract(self.intid, 0) {
                let _ = effects.push(Effect::Gic(Action::Kick(t)));
            }
        }
        value
    }

    fn write(&self, a: &MmioAccess, value: u64, _: &mut Effects) {
        self.uart.lock().write(a.offset, value);
    }
}
