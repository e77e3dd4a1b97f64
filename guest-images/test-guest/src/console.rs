//! The PL011 at 0x0900_0000 (output, and polled input) and the report format: one
//! `check <name>: pass (...)` or `check <name>: FAIL <reason>` line per check,
//! then `summary: <N> passed, <M> failed`.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

const UART: usize = 0x0900_0000;
const DR: usize = 0x000;
const FR: usize = 0x018;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;

/// Console input collected so far (up to the end of a line).
static INPUT: spin::Mutex<([u8; 64], usize)> = spin::Mutex::new(([0; 64], 0));

/// Reads what the console sent this VM; each complete line is echoed as
/// `input: <line>` (the hypervisor routes input to one VM at a time).
pub fn poll_input() {
    let mut input = INPUT.lock();
    loop {
        // SAFETY: the PL011's flag and data registers.
        let b = unsafe {
            if crate::mmio::read32(UART + FR) & FR_RXFE != 0 {
                return;
            }
            crate::mmio::read32(UART + DR) as u8
        };
        let (buf, len) = &mut *input;
        match b {
            b'\r' | b'\n' if *len > 0 => {
                let text = core::str::from_utf8(&buf[..*len]).unwrap_or("<not UTF-8>");
                line(format_args!("input: {text}"));
                *len = 0;
            }
            b'\r' | b'\n' => {}
            _ if *len < buf.len() => {
                buf[*len] = b;
                *len += 1;
            }
            _ => {}
        }
    }
}

static PASSED: AtomicU32 = AtomicU32::new(0);
static FAILED: AtomicU32 = AtomicU32::new(0);
/// Whole lines from several vCPUs stay whole.
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

struct Pl011;

impl Write for Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put(b'\r');
            }
            put(b);
        }
        Ok(())
    }
}

fn put(byte: u8) {
    // SAFETY: the PL011's data and flag registers; the guest owns its UART
    // (real or emulated) and only transmits.
    unsafe {
        while crate::mmio::read32(UART + FR) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        crate::mmio::write32(UART + DR, byte as u32);
    }
}

/// One line, whole.
pub fn line(args: fmt::Arguments) {
    let _guard = LOCK.lock();
    let _ = writeln!(Pl011, "{args}");
}

/// An informational line (not a check).
pub fn info(args: fmt::Arguments) {
    line(args)
}

pub fn pass(name: &str, details: impl fmt::Display) {
    PASSED.fetch_add(1, Ordering::Relaxed);
    line(format_args!("check {name}: pass ({details})"));
}

pub fn fail(name: &str, reason: impl fmt::Display) {
    FAILED.fetch_add(1, Ordering::Relaxed);
    line(format_args!("check {name}: FAIL {reason}"));
}

/// `pass` if `result` is `Ok(details)`, else `fail` with the reason.
pub fn report(name: &str, result: CheckResult) {
    match result {
        Ok(d) => pass(name, d),
        Err(e) => fail(name, e),
    }
}

pub fn summary() {
    line(format_args!(
        "summary: {} passed, {} failed",
        PASSED.load(Ordering::Relaxed),
        FAILED.load(Ordering::Relaxed)
    ));
}

/// From an exception or panic: no lock (it may be held by what failed).
pub fn emergency(args: fmt::Arguments) {
    let _ = writeln!(Pl011, "{args}");
}

/// A short formatted text without a heap: check details and reasons.
pub struct Msg {
    buf: [u8; 192],
    len: usize,
}

impl Msg {
    pub fn new(args: fmt::Arguments) -> Msg {
        let mut m = Msg {
            buf: [0; 192],
            len: 0,
        };
        let _ = m.write_fmt(args);
        m
    }
}

impl Write for Msg {
    /// Truncates what does not fit (at a character boundary).
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut tmp = [0u8; 4];
            let bytes = c.encode_utf8(&mut tmp).as_bytes();
            if self.len + bytes.len() > self.buf.len() {
                break;
            }
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
        Ok(())
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // Only whole characters are ever copied in.
        f.write_str(core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?"))
    }
}

/// `msg!("fmt", args...)`: a [`Msg`].
#[macro_export]
macro_rules! msg {
    ($($t:tt)*) => { $crate::console::Msg::new(format_args!($($t)*)) };
}

pub type CheckResult = Result<Msg, Msg>;
