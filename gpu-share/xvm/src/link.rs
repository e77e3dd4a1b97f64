//! The link page: how a client and the server find each other in a shared
//! region, and notice that the other side restarted.
//!
//! Words of the link page (little-endian u32 at the region's data offset):
//!
//! | offset | written by | what |
//! |--------|------------|------|
//! | 0x00   | client     | magic `TXVM` |
//! | 0x04   | client     | hello: a new number for every connection (never 0) |
//! | 0x08   | server     | answer: the hello it took |
//! | 0x0C   | server     | status of that answer: 0 accepted, else why refused |
//! | 0x10   | server     | server instance: changes each time a server starts |
//! | 0x14   | server     | heartbeat: counts while the server lives |
//! | 0x18   | client     | ready: the hello whose region is set up |
//! | 0x1C   | server     | free: the hello for which the server let go of the region |
//!
//! A client writes a new hello and rings. The server ends whatever session
//! it ran on this region (at its next wait) and says the region is free
//! for that hello; only then does the client set up the gpu-share region
//! after the link page (so a session that is ending never reads a region
//! that is being set up), says ready and rings; the server checks the
//! region's header and answers. From then on both sides run the ordinary
//! gpu-share session on it. Each side then checks the
//! other: the server that the hello is unchanged and no other peer's boot
//! count moved; the client that the server instance and the hello are the
//! same, no other peer's boot count moved and the heartbeat still counts. Either change
//! ends the session on that side (the ordinary "peer gone" path), and the
//! client connects again.

use crate::shm::{ShmHeader, PAGE};
use crate::Port;
use core::sync::atomic::{AtomicU32, Ordering};
use gpu_wire::Layout;

pub const LINK_MAGIC: u32 = u32::from_le_bytes(*b"TXVM");
const L_MAGIC: usize = 0x00;
const L_HELLO: usize = 0x04;
const L_ANSWER: usize = 0x08;
const L_STATUS: usize = 0x0C;
const L_SERVER: usize = 0x10;
const L_BEAT: usize = 0x14;
const L_READY: usize = 0x18;
const L_FREE: usize = 0x1C;

/// Answer status: the region's gpu-share header is not valid.
pub const REFUSED_LAYOUT: u32 = 1;
/// How often the server counts its heartbeat.
pub const BEAT_MS: u64 = 100;
/// A heartbeat that stood still this long means the server is gone.
pub const BEAT_DEAD_MS: u64 = 1500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XvmError {
    RegionTooSmall,
    /// No `TSHM` magic (the value found): not a Tessera region, or not
    /// set up yet.
    NoHeader(u32),
    HeaderVersion(u32),
    BadPeers(u32),
    BadDataOffset(u32),
    /// No server heartbeat within the time allowed.
    NoServer,
    /// The server refused the region (its status code).
    Refused(u32),
    /// The server did not answer in time.
    Timeout,
}

impl core::fmt::Display for XvmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            XvmError::RegionTooSmall => write!(f, "shared region too small for gpu-share"),
            XvmError::NoHeader(m) => write!(f, "no Tessera region header (magic {m:#x})"),
            XvmError::HeaderVersion(v) => write!(f, "region header version {v}"),
            XvmError::BadPeers(n) => write!(f, "region header names {n} peers"),
            XvmError::BadDataOffset(o) => write!(f, "region data offset {o:#x}"),
            XvmError::NoServer => write!(f, "no gpu-share server on the region"),
            XvmError::Refused(c) => write!(f, "server refused the region (status {c})"),
            XvmError::Timeout => write!(f, "server did not answer"),
        }
    }
}

fn word(port: &impl Port, _hdr: &ShmHeader, off: usize) -> &'static AtomicU32 {
    // SAFETY: a checked header means at least two pages of data; off is
    // inside the first; AtomicU32 has u32's layout.
    unsafe { &*(port.data().add(off) as *const AtomicU32) }
}

/// The gpu-share region inside the shared region: pointer and length.
pub fn gpu_area(port: &impl Port, _hdr: &ShmHeader) -> (*mut u8, usize) {
    // SAFETY: data_len >= 2 pages (checked with the header).
    (unsafe { port.data().add(PAGE) }, port.data_len() - PAGE)
}

/// Section sizes for a gpu-share region of `len` bytes: commands up to
/// 1 MiB (an eighth of the room), replies a quarter of that, the heap as
/// large a power of two as fits. None if even the smallest does not fit.
pub fn layout_for(len: usize) -> Option<Layout> {
    let prev_pow2 = |n: usize| {
        if n == 0 {
            0
        } else {
            1usize << (usize::BITS - 1 - n.leading_zeros())
        }
    };
    let min = gpu_wire::header::MIN_SECTION as usize;
    let cmd = prev_pow2(len / 8).clamp(min, 1 << 20);
    let reply = (cmd / 4).max(min);
    let rest = len.checked_sub(gpu_wire::header::HEADER_SIZE as usize + cmd + reply)?;
    let heap = prev_pow2(rest).min(1 << 30);
    let l = Layout {
        cmd_size: cmd as u32,
        reply_size: reply as u32,
        heap_size: heap as u32,
    };
    (l.valid() && l.region_size() <= len).then_some(l)
}

/// A connection as either side recorded it when it was made.
#[derive(Debug, Clone, Copy)]
pub struct Attached {
    pub hello: u32,
    pub server: u32,
    pub header: ShmHeader,
}

/// Client side: waits (up to `timeout_ms`) for a live server, sets the
/// gpu-share region up, says hello and waits for the answer. Returns the
/// connection and the gpu-share region (pointer, length).
pub fn connect(port: &impl Port, timeout_ms: u32) -> Result<(Attached, *mut u8, usize), XvmError> {
    let hdr = ShmHeader::read(port)?;
    let deadline = port.now_ms() + timeout_ms as u64;
    let beat = word(port, &hdr, L_BEAT);
    let first = beat.load(Ordering::Acquire);
    // A heartbeat that moves: a server that left its words behind (its VM
    // stopped) must not be mistaken for one that runs.
    while beat.load(Ordering::Acquire) == first {
        if port.now_ms() >= deadline {
            return Err(XvmError::NoServer);
        }
        let irq = port.irq_count();
        port.wait_irq(irq, 20);
    }
    let (gpu, len) = gpu_area(port, &hdr);
    let layout = layout_for(len).ok_or(XvmError::RegionTooSmall)?;
    let hello_w = word(port, &hdr, L_HELLO);
    let answer = word(port, &hdr, L_ANSWER);
    let mut seq = hello_w.load(Ordering::Acquire).wrapping_add(1);
    while seq == 0 || seq == answer.load(Ordering::Acquire) {
        seq = seq.wrapping_add(1);
    }
    word(port, &hdr, L_MAGIC).store(LINK_MAGIC, Ordering::Relaxed);
    hello_w.store(seq, Ordering::Release);
    port.ring();
    wait_for(port, word(port, &hdr, L_FREE), seq, deadline)?;
    // SAFETY: gpu..gpu+len is this region's data, which the server has let
    // go of for this hello; page aligned.
    unsafe { layout.init(gpu, len) }.map_err(|_| XvmError::RegionTooSmall)?;
    word(port, &hdr, L_READY).store(seq, Ordering::Release);
    port.ring();
    wait_for(port, answer, seq, deadline)?;
    match word(port, &hdr, L_STATUS).load(Ordering::Acquire) {
        0 => {}
        code => return Err(XvmError::Refused(code)),
    }
    let a = Attached {
        hello: seq,
        server: word(port, &hdr, L_SERVER).load(Ordering::Acquire),
        header: ShmHeader::read(port)?,
    };
    Ok((a, gpu, len))
}

/// Waits until `w` holds `v`, up to `deadline`.
fn wait_for(port: &impl Port, w: &AtomicU32, v: u32, deadline: u64) -> Result<(), XvmError> {
    loop {
        let irq = port.irq_count();
        if w.load(Ordering::Acquire) == v {
            return Ok(());
        }
        if port.now_ms() >= deadline {
            return Err(XvmError::Timeout);
        }
        port.wait_irq(irq, 20);
    }
}

/// Client side: whether the server of `a` still serves (see the module
/// comment); `beat` keeps (last heartbeat seen, when it changed).
pub fn server_alive(port: &impl Port, a: &Attached, beat: &mut (u32, u64)) -> bool {
    let Ok(now) = ShmHeader::read(port) else {
        return false;
    };
    // Another client's hello took the region (a second instance of this
    // client, say): this connection is over too.
    if a.header.other_restarted(&now, port.peer_index())
        || word(port, &now, L_SERVER).load(Ordering::Acquire) != a.server
        || word(port, &now, L_HELLO).load(Ordering::Acquire) != a.hello
    {
        return false;
    }
    let b = word(port, &now, L_BEAT).load(Ordering::Acquire);
    let t = port.now_ms();
    if b != beat.0 || beat.1 == 0 {
        *beat = (b, t);
    }
    t.saturating_sub(beat.1) < BEAT_DEAD_MS
}

/// A new hello a server found waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello(pub u32);

/// The server's side of one region.
pub struct ServerLink<'p, P: Port> {
    pub port: &'p P,
    pub header: ShmHeader,
}

impl<'p, P: Port> ServerLink<'p, P> {
    /// Announces a new server instance on the region.
    pub fn start(port: &'p P) -> Result<Self, XvmError> {
        let header = ShmHeader::read(port)?;
        let s = word(port, &header, L_SERVER);
        let mut id = s.load(Ordering::Acquire).wrapping_add(1);
        if id == 0 {
            id = 1;
        }
        s.store(id, Ordering::Release);
        let l = ServerLink { port, header };
        l.beat();
        Ok(l)
    }

    /// One heartbeat; call every [`BEAT_MS`] while the server lives.
    pub fn beat(&self) {
        word(self.port, &self.header, L_BEAT).fetch_add(1, Ordering::Release);
    }

    fn hello_word(&self) -> &'static AtomicU32 {
        word(self.port, &self.header, L_HELLO)
    }

    /// Waits up to `timeout_ms` for a hello not answered yet whose client
    /// has set its region up. Call it only between sessions: it tells the
    /// client that the region is free.
    pub fn poll_hello(&self, timeout_ms: u32) -> Option<Hello> {
        let deadline = self.port.now_ms() + timeout_ms as u64;
        let answer = word(self.port, &self.header, L_ANSWER);
        let free = word(self.port, &self.header, L_FREE);
        let ready = word(self.port, &self.header, L_READY);
        loop {
            let irq = self.port.irq_count();
            let h = self.hello_word().load(Ordering::Acquire);
            if h != 0 && h != answer.load(Ordering::Acquire) {
                if free.load(Ordering::Acquire) != h {
                    free.store(h, Ordering::Release);
                    self.port.ring();
                }
                if ready.load(Ordering::Acquire) == h {
                    return Some(Hello(h));
                }
            }
            let now = self.port.now_ms();
            if now >= deadline {
                return None;
            }
            self.port.wait_irq(irq, (deadline - now).min(50) as u32);
        }
    }

    /// Takes a hello: checks the client's gpu-share header and answers. Returns the region
    /// (pointer, length) to serve.
    pub fn accept(&self, h: Hello) -> Result<(Attached, *mut u8, usize), XvmError> {
        let (gpu, len) = gpu_area(self.port, &self.header);
        // SAFETY: the region's data part, mapped for the port's life.
        let ok = unsafe { Layout::check(gpu, len) }.is_ok();
        let status = if ok { 0 } else { REFUSED_LAYOUT };
        word(self.port, &self.header, L_STATUS).store(status, Ordering::Relaxed);
        word(self.port, &self.header, L_ANSWER).store(h.0, Ordering::Release);
        self.port.ring();
        if !ok {
            return Err(XvmError::Refused(status));
        }
        let header = ShmHeader::read(self.port)?;
        let server = word(self.port, &header, L_SERVER).load(Ordering::Acquire);
        Ok((
            Attached {
                hello: h.0,
                server,
                header,
            },
            gpu,
            len,
        ))
    }

    /// Whether the client of `a` is still the one connected.
    pub fn client_alive(&self, a: &Attached) -> bool {
        let Ok(now) = ShmHeader::read(self.port) else {
            return false;
        };
        self.hello_word().load(Ordering::Acquire) == a.hello
            && !a.header.other_restarted(&now, self.port.peer_index())
    }
}
