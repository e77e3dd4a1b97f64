//! The console: `println!` for boot output and the `log` backend, both on the
//! physical PL011, one line at a time so that cores do not interleave.

use crate::drivers::pl011::Pl011;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

static CONSOLE: Mutex<Option<Pl011>> = Mutex::new(None);
/// Counter value at entry; log timestamps count from here.
static BOOT_TICKS: AtomicU64 = AtomicU64::new(0);
static FREQ: AtomicU64 = AtomicU64::new(0);

/// # Safety
/// As [`Pl011::new`].
pub unsafe fn init(uart_base: u64) {
    // SAFETY: forwarded contract.
    *CONSOLE.lock() = Some(unsafe { Pl011::new(uart_base) });
}

pub fn print(args: fmt::Arguments) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// For the crash path: the core that crashed may hold the lock. Waits a while
/// for it, then writes regardless (a garbled line beats a silent hang).
pub fn print_forced(args: fmt::Arguments) {
    for _ in 0..1_000_000 {
        if let Some(mut guard) = CONSOLE.try_lock() {
            if let Some(uart) = guard.as_mut() {
                let _ = uart.write_fmt(args);
            }
            return;
        }
        core::hint::spin_loop();
    }
    // SAFETY: the lock holder is stuck (it is this core or a dead one).
    unsafe { CONSOLE.force_unlock() };
    print(args);
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
            crate::arch::cpu::core_index(),
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

/// One byte of input from the physical console, if any.
pub fn read_byte() -> Option<u8> {
    CONSOLE.lock().as_ref().and_then(|u| u.get())
}

/// Interrupt on received data (the hypervisor routes input to a VM).
pub fn enable_rx_interrupt() {
    if let Some(u) = CONSOLE.lock().as_ref() {
        u.enable_rx_interrupt();
    }
}
