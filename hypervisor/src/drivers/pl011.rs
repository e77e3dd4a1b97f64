//! Arm PL011 UART: the hypervisor's console.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields![u32,
    FR [
        TXFF OFFSET(5) NUMBITS(1) [],
        RXFE OFFSET(4) NUMBITS(1) [],
        BUSY OFFSET(3) NUMBITS(1) [],
    ],
    CR [
        RXE OFFSET(9) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        UARTEN OFFSET(0) NUMBITS(1) [],
    ],
    LCR_H [
        WLEN OFFSET(5) NUMBITS(2) [EightBit = 3],
        FEN OFFSET(4) NUMBITS(1) [],
    ],
];

register_structs! {
    Regs {
        (0x000 => dr: ReadWrite<u32>),
        (0x004 => _r0),
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01c => _r1),
        (0x02c => lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x030 => cr: ReadWrite<u32, CR::Register>),
        (0x034 => _r2),
        (0x038 => imsc: ReadWrite<u32>),
        (0x03c => _r3),
        (0x044 => icr: WriteOnly<u32>),
        (0x048 => @END),
    }
}

pub struct Pl011 {
    regs: &'static Regs,
}

// SAFETY: the console lock serialises all use of the registers.
unsafe impl Send for Pl011 {}

impl Pl011 {
    /// # Safety
    /// `base` must be a PL011 that is accessible (MMU off, or mapped as
    /// device memory) and used through this value only.
    pub unsafe fn new(base: u64) -> Pl011 {
        // SAFETY: per the contract above.
        let uart = Pl011 {
            regs: unsafe { &*(base as *const Regs) },
        };
        // Firmware normally leaves the UART configured (baud rate included,
        // which needs the board's clock); only enable it if it is off.
        if !uart.regs.cr.is_set(CR::UARTEN) {
            uart.regs
                .lcr_h
                .write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
            uart.regs.icr.set(0x7ff);
            uart.regs
                .cr
                .write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
        }
        uart
    }

    pub fn put(&self, byte: u8) {
        while self.regs.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs.dr.set(byte as u32);
    }

    /// Queues `byte` if the transmit FIFO has room; never waits.
    pub fn try_put(&self, byte: u8) -> bool {
        if self.regs.fr.is_set(FR::TXFF) {
            return false;
        }
        self.regs.dr.set(byte as u32);
        true
    }

    /// TXIM: an interrupt while the transmit FIFO is at or below its
    /// trigger level (half full), i.e. has room.
    pub fn set_tx_interrupt(&self, on: bool) {
        let imsc = self.regs.imsc.get() & !(1 << 5);
        self.regs.imsc.set(imsc | if on { 1 << 5 } else { 0 });
    }

    /// RXIM and RTIM: an interrupt when data arrives or waits.
    pub fn enable_rx_interrupt(&self) {
        self.regs
            .imsc
            .set(self.regs.imsc.get() | (1 << 4) | (1 << 6));
    }

    pub fn get(&self) -> Option<u8> {
        if self.regs.fr.is_set(FR::RXFE) {
            None
        } else {
            Some(self.regs.dr.get() as u8)
        }
    }
}

impl core::fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
        Ok(())
    }
}
