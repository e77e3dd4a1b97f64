//! The console on the physical PL011: `println!`, the `log` backend and
//! every VM's output lines.
//!
//! Until [`start_draining`] (boot, one core) lines are written as they come,
//! waiting for the UART. From then on nobody but the drain core touches the
//! UART: each source (the hypervisor's own lines, and each VM's) has an
//! [`Outbox`] that producers fill without waiting, whole lines or nothing,
//! and the drain core empties them from the UART's interrupt, at most
//! [`BUDGET`] bytes per interrupt and never waiting for the FIFO. A line that
//! does not fit is dropped and counted (`[N bytes dropped]`). The crash and
//! panic path still writes synchronously ([`print_forced`]).

use crate::arch::{cpu, timer};
use crate::drivers::gicv3;
use crate::drivers::outbox::Outbox;
use crate::drivers::pl011::Pl011;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Mutex;

/// The physical SGI that tells the drain core output is waiting.
pub const SGI_DRAIN: u32 = 2;
/// Bytes written per drain (one interrupt): the PL011's FIFO holds 32 (16
/// in QEMU) and interrupts at half full, so this never waits for room.
pub const BUDGET: usize = 16;
/// At most one drain per this many microseconds while the UART keeps up
/// (QEMU's never fills): [`BUDGET`] bytes per 100 us is 160 KB/s, 14 times
/// 115200 baud, for at most one interrupt's work per 100 us on the drain
/// core (about 1.5 % of it), whatever the VMs print.
pub const PACE_US: u64 = 100;
/// A line longer than this is cut (VM lines are at most 160 bytes of text).
const LINE_MAX: usize = 384;

/// Outbox 0 is the hypervisor's; outbox 1 + i is VM i's (one VM per core
/// at most).
const SOURCES: usize = 1 + cpu::MAX_CPUS;

struct Console {
    uart: Pl011,
    /// The source whose line is being sent (lines are not interleaved).
    current: usize,
    mid_line: bool,
}

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);
static OUTBOXES: [Mutex<Outbox>; SOURCES] = [const { Mutex::new(Outbox::new()) }; SOURCES];
/// Lines go to the outboxes (set once the drain core takes the UART's
/// interrupt and [`SGI_DRAIN`]).
static BUFFERED: AtomicBool = AtomicBool::new(false);
static DRAIN_MPIDR: AtomicU64 = AtomicU64::new(0);
/// A drain is due: the SGI was sent, or the TX interrupt or the EL2 timer
/// is on. Producers send the SGI only when they set it.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Counter value at entry; log timestamps count from here.
static BOOT_TICKS: AtomicU64 = AtomicU64::new(0);
static FREQ: AtomicU64 = AtomicU64::new(0);

/// Per core: how many times EL2 on that core wrote to the physical UART
/// (and so could wait for it) since the VMs started. Guests read their cores' sum with
/// `TESSERA_UART_TOUCHES`.
static TOUCHES: [AtomicU64; cpu::MAX_CPUS] = [const { AtomicU64::new(0) }; cpu::MAX_CPUS];

fn touched() {
    // Counted once the VMs run (boot output is nobody's exit, and before
    // the EL check this may run at EL1, where TPIDR_EL2 is undefined).
    if !BUFFERED.load(Ordering::Relaxed) {
        return;
    }
    if let Some(t) = TOUCHES.get(cpu::core_index()) {
        t.fetch_add(1, Ordering::Relaxed);
    }
}

/// Times EL2 on `core` wrote to the physical UART.
pub fn touches(core: usize) -> u64 {
    TOUCHES.get(core).map_or(0, |t| t.load(Ordering::Relaxed))
}

/// # Safety
/// As [`Pl011::new`].
pub unsafe fn init(uart_base: u64) {
    *CONSOLE.lock() = Some(Console {
        // SAFETY: forwarded contract.
        uart: unsafe { Pl011::new(uart_base) },
        current: 0,
        mid_line: false,
    });
}

/// One line's bytes: `\n` becomes `\r\n`; what does not fit is cut, and a
/// cut line still ends the line.
struct LineBuf {
    bytes: heapless::Vec<u8, LINE_MAX>,
    cut: bool,
}

impl LineBuf {
    fn new() -> LineBuf {
        LineBuf {
            bytes: heapless::Vec::new(),
            cut: false,
        }
    }

    fn finish(&mut self) -> &[u8] {
        if self.cut {
            let _ = self.bytes.extend_from_slice(b"\r\n");
        }
        &self.bytes
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            let need = if b == b'\n' { 2 } else { 1 };
            // Two bytes stay free for the end of a cut line.
            if self.cut || self.bytes.len() + need > LINE_MAX - 2 {
                self.cut = true;
                return Ok(());
            }
            if b == b'\n' {
                let _ = self.bytes.push(b'\r');
            }
            let _ = self.bytes.push(b);
        }
        Ok(())
    }
}

/// Queues `args` on `source`'s outbox and makes sure a drain is due.
fn queue(source: usize, tag: Option<&'static str>, args: fmt::Arguments) {
    let mut line = LineBuf::new();
    let _ = line.write_fmt(args);
    let Some(outbox) = OUTBOXES.get(source) else {
        return;
    };
    {
        let mut o = outbox.lock();
        if let Some(t) = tag {
            o.set_tag(t);
        }
        o.push(line.finish());
    }
    if !ARMED.swap(true, Ordering::SeqCst) {
        gicv3::send_sgi(SGI_DRAIN, DRAIN_MPIDR.load(Ordering::Relaxed));
    }
}

/// Writes `args` now, waiting for the UART (boot, before draining starts).
fn write_now(args: fmt::Arguments) {
    touched();
    if let Some(c) = CONSOLE.lock().as_mut() {
        let _ = c.uart.write_fmt(args);
    }
}

pub fn print(args: fmt::Arguments) {
    if BUFFERED.load(Ordering::Acquire) {
        queue(0, None, args);
    } else {
        write_now(args);
    }
}

/// A line of VM number `vm` (tagged `name`), without its newline.
pub fn vm_line(vm: usize, name: &'static str, text: &str) {
    let args = format_args!("{name:>8} | {text}\n");
    if BUFFERED.load(Ordering::Acquire) {
        queue(1 + vm, Some(name), args);
    } else {
        write_now(args);
    }
}

/// From now on lines are buffered and drained by the core `mpidr` (this
/// one), which must route the UART's interrupt to itself, enable
/// [`SGI_DRAIN`] and call [`drain`] on both.
pub fn start_draining(mpidr: u64) {
    DRAIN_MPIDR.store(mpidr, Ordering::Relaxed);
    BUFFERED.store(true, Ordering::Release);
}

/// Whether any outbox holds output (or an unreported drop count), or is
/// being filled right now.
fn pending() -> bool {
    OUTBOXES.iter().any(|o| {
        o.try_lock().is_none_or(|mut o| {
            o.flush_marker();
            !o.is_empty()
        })
    })
}

/// Why [`Console::send`] stopped.
enum Sent {
    /// Every outbox is empty.
    All,
    /// The FIFO is full: the UART is the bottleneck.
    FifoFull,
    /// The budget is spent, or an outbox was being filled.
    Budget,
}

impl Console {
    /// Sends up to `budget` bytes, a line at a time per source, round-robin
    /// between sources at line ends, while the FIFO has room.
    ///
    /// An outbox is held while its bytes go into the FIFO (at most
    /// `BUDGET` register writes, none of which waits), so a producer may
    /// wait that long; this core never waits for a producer: an outbox
    /// being filled is left for the next drain.
    fn send(&mut self, mut budget: usize) -> Sent {
        let mut idle = 0;
        while idle < SOURCES {
            if budget == 0 {
                return Sent::Budget;
            }
            if !self.mid_line {
                self.current = (self.current + 1) % SOURCES;
            }
            let Some(mut o) = OUTBOXES[self.current].try_lock() else {
                return Sent::Budget;
            };
            o.flush_marker();
            let mut chunk = [0u8; BUDGET];
            let n = o.peek_line(&mut chunk[..budget.min(BUDGET)]);
            if n == 0 {
                self.mid_line = false;
                idle += 1;
                continue;
            }
            idle = 0;
            let written = chunk[..n]
                .iter()
                .take_while(|b| self.uart.try_put(**b))
                .count();
            o.consume(written);
            budget -= written;
            if written > 0 {
                self.mid_line = chunk[written - 1] != b'\n';
            }
            if written < n {
                return Sent::FifoFull;
            }
        }
        Sent::All
    }
}

/// On the drain core, from [`SGI_DRAIN`], the UART's interrupt or the EL2
/// timer: up to [`BUDGET`] bytes into the FIFO, never waiting. While output
/// remains, the next drain comes from the UART's TX interrupt if the FIFO
/// filled (the line is the bottleneck), else from the EL2 timer
/// [`PACE_US`] later (so a fast UART cannot make this core drain back to
/// back while a VM floods).
pub fn drain() {
    if !BUFFERED.load(Ordering::Acquire) || cpu::mpidr() != DRAIN_MPIDR.load(Ordering::Relaxed) {
        return;
    }
    let pace = || timer::arm_el2(timer::now() + timer::frequency() * PACE_US / 1_000_000);
    // The crash path may hold the console for a moment: try again later.
    let Some(mut guard) = CONSOLE.try_lock() else {
        pace();
        return;
    };
    let Some(c) = guard.as_mut() else {
        return;
    };
    touched();
    loop {
        match c.send(BUDGET) {
            Sent::FifoFull => {
                c.uart.set_tx_interrupt(true);
                return;
            }
            Sent::Budget => {
                c.uart.set_tx_interrupt(false);
                pace();
                return;
            }
            Sent::All => {}
        }
        c.uart.set_tx_interrupt(false);
        // A producer that queued after `send` looked either sees ARMED
        // false and sends the SGI, or set it before this store and its
        // line is seen below.
        ARMED.store(false, Ordering::SeqCst);
        if !pending() || ARMED.swap(true, Ordering::SeqCst) {
            return;
        }
    }
}

/// For the crash path: the core that crashed may hold the lock. Waits a while
/// for it, then writes regardless (a garbled line beats a silent hang):
/// first what the outboxes hold, then `args`, waiting for the UART.
pub fn print_forced(args: fmt::Arguments) {
    let mut guard = None;
    for _ in 0..1_000_000 {
        if let Some(g) = CONSOLE.try_lock() {
            guard = Some(g);
            break;
        }
        core::hint::spin_loop();
    }
    if guard.is_none() {
        // SAFETY: the lock holder is stuck (it is this core or a dead one).
        unsafe { CONSOLE.force_unlock() };
        guard = Some(CONSOLE.lock());
    }
    let Some(mut guard) = guard else { return };
    let Some(c) = guard.as_mut() else { return };
    touched();
    for outbox in OUTBOXES.iter() {
        // An outbox held by a stuck producer is skipped.
        let Some(mut o) = outbox.try_lock() else {
            continue;
        };
        o.flush_marker();
        let mut chunk = [0u8; BUDGET];
        loop {
            let n = o.peek_line(&mut chunk);
            if n == 0 {
                break;
            }
            chunk[..n].iter().for_each(|b| c.uart.put(*b));
            o.consume(n);
        }
    }
    let _ = c.uart.write_fmt(args);
}

#[macro_export]
macro_rules! println {
    () => { $crate::drivers::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::drivers::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let since = crate::arch::timer::now().wrapping_sub(BOOT_TICKS.load(Ordering::Relaxed));
        let freq = FREQ.load(Ordering::Relaxed).max(1);
        let us = (since as u128 * 1_000_000 / freq as u128) as u64;
        print(format_args!(
            "[{:4}.{:06}] core{} {:<5} {}\n",
            us / 1_000_000,
            us % 1_000_000,
            cpu::core_index(),
            record.level(),
            record.args()
        ));
    }
    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

pub fn init_logger(boot_ticks: u64, freq: u64, level: log::LevelFilter) {
    BOOT_TICKS.store(boot_ticks, Ordering::Relaxed);
    FREQ.store(freq, Ordering::Relaxed);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// One byte of input from the physical console, if any (the drain core).
pub fn read_byte() -> Option<u8> {
    CONSOLE.lock().as_ref().and_then(|c| c.uart.get())
}

/// Interrupt on received data (the hypervisor routes input to a VM).
pub fn enable_rx_interrupt() {
    if let Some(c) = CONSOLE.lock().as_ref() {
        c.uart.enable_rx_interrupt();
    }
}
