//! Ping-pong over a shared region with doorbells: the Linux self-check's
//! exchange (and a worked example of the library).
//!
//! Data area layout (offsets from the region's data):
//!
//! | offset | writer | what |
//! | --- | --- | --- |
//! | 0x000 | A | `READY_A`; 0x004: the header generation A set up in; 0x008: the session; 0x00C: the last session A finished |
//! | 0x040 | B | the same for B (`READY_B`) |
//! | 0x100 | A → B | a [`crate::ring`] ring |
//! | 0x100 + ring | B → A | a ring of the same size |
//!
//! 1. Each side resets the ring words it writes, stores the generation it
//!    sees and the session (a number the caller gives each exchange), then
//!    its READY, and rings. It waits for the other's READY with the same
//!    generation and session (so nothing left over from before a restart,
//!    or from an earlier exchange, is taken for the peer's).
//! 2. A sends messages 0..n as fast as A → B has room; B answers each with
//!    the same sequence number. Message *i* is `seq`, a direction byte, a
//!    body of [`body_len`]`(i)` bytes (odd sizes, so they land at odd
//!    offsets), and an FNV-1a checksum; the receiver checks all of it and
//!    the order. Each side rings after any step that sent or consumed.
//! 3. Each side stores the session as finished and waits for the other's,
//!    so neither starts resetting the rings for a next exchange while the
//!    other still reads them.
//! 4. If the generation moves (a peer restarted), both go back to 1.

use crate::ring::{capacity_for, Consumer, Producer, RingError};
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

pub const READY_A: u32 = 0x4150_4C54; // "TLPA"
pub const READY_B: u32 = 0x4250_4C54; // "TLPB"
const RINGS: usize = 0x100;
const MAX_CAP: u32 = 64 * 1024;
const MAX_BODY: u32 = 251;
/// Bytes of the longest message: `seq`, direction, body, checksum.
pub const MAX_MESSAGE: usize = 9 + MAX_BODY as usize;
/// A silent peer for this long mid-exchange is an error.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a peer may take to be ready: long enough for a restarted
/// Linux VM to boot again and reach its exchange.
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// What the exchange needs from a region (and its OS).
pub trait Link {
    /// What the region's own operations fail with.
    type Error: fmt::Display;
    fn data(&self) -> *mut u8;
    fn data_len(&self) -> usize;
    fn ring(&self) -> Result<(), Self::Error>;
    /// Waits for a doorbell; `false` on timeout.
    fn wait(&self, timeout: Duration) -> Result<bool, Self::Error>;
    /// The header's generation now.
    fn generation(&self) -> Result<u32, Self::Error>;
    /// A monotonic clock (any origin), for the timeouts.
    fn now(&self) -> Duration;
}

/// Why an exchange failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The region's own operation failed.
    Link(E),
    Ring(RingError),
    /// The data area cannot hold the rings.
    TooSmall {
        len: usize,
    },
    Short {
        seq: u32,
        len: usize,
    },
    Checksum {
        seq: u32,
    },
    Order {
        expected: u32,
        got: u32,
    },
    Contents {
        seq: u32,
        len: usize,
    },
    NotReady {
        what: &'static str,
        secs: u64,
    },
    Stalled {
        sent: u32,
        received: u32,
        secs: u64,
    },
    TooManyRestarts,
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Link(e) => write!(f, "{e}"),
            Error::Ring(e) => write!(f, "{e}"),
            Error::TooSmall { len } => write!(f, "{len} bytes of data are too few for the rings"),
            Error::Short { seq, len } => write!(f, "message {seq}: only {len} bytes"),
            Error::Checksum { seq } => write!(f, "message {seq}: bad checksum"),
            Error::Order { expected, got } => write!(
                f,
                "expected message {expected}, got {got} (lost or out of order)"
            ),
            Error::Contents { seq, len } => {
                write!(f, "message {seq}: wrong contents or length {len}")
            }
            Error::NotReady { what, secs } => {
                write!(f, "the peer was not {what} within {secs} s")
            }
            Error::Stalled {
                sent,
                received,
                secs,
            } => write!(
                f,
                "stalled after {sent} sent, {received} received: no doorbell for {secs} s"
            ),
            Error::TooManyRestarts => write!(f, "the peer restarted more than 5 times"),
        }
    }
}

impl<E> From<RingError> for Error<E> {
    fn from(e: RingError) -> Self {
        Error::Ring(e)
    }
}

/// A message, built in place (no allocation).
#[derive(Clone)]
pub struct Message {
    bytes: [u8; MAX_MESSAGE],
    len: usize,
}

impl core::ops::Deref for Message {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl core::ops::DerefMut for Message {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Messages each way.
    pub messages: u32,
    /// Bytes each way (bodies).
    pub bytes: u64,
    /// Times the exchange started over after a peer restart.
    pub restarts: u32,
}

/// Body bytes of message `seq`: 1 to 251, mostly odd.
pub fn body_len(seq: u32) -> usize {
    (1 + (seq.wrapping_mul(2_654_435_761) >> 8) % MAX_BODY) as usize
}

fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// Message `seq` in direction `dir` (0xAB: A to B, 0xBA: back).
pub fn message(seq: u32, dir: u8) -> Message {
    let mut m = Message {
        bytes: [0; MAX_MESSAGE],
        len: 9 + body_len(seq),
    };
    let b = &mut m.bytes;
    b[..4].copy_from_slice(&seq.to_le_bytes());
    b[4] = dir;
    let mut x = seq ^ (dir as u32) << 24 | 1;
    let end = 5 + body_len(seq);
    for byte in &mut b[5..end] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *byte = x as u8;
    }
    let sum = fnv1a(&b[..end]);
    b[end..end + 4].copy_from_slice(&sum.to_le_bytes());
    m
}

/// Checks a received message against what `seq` must be.
pub fn check<E>(got: &[u8], seq: u32, dir: u8) -> Result<(), Error<E>> {
    if got.len() < 9 {
        return Err(Error::Short {
            seq,
            len: got.len(),
        });
    }
    let (body, sum) = got.split_at(got.len() - 4);
    if fnv1a(body) != u32::from_le_bytes(sum.try_into().unwrap()) {
        return Err(Error::Checksum { seq });
    }
    let got_seq = u32::from_le_bytes(got[..4].try_into().unwrap());
    if got_seq != seq {
        return Err(Error::Order {
            expected: seq,
            got: got_seq,
        });
    }
    if got != &*message(seq, dir) {
        return Err(Error::Contents {
            seq,
            len: got.len(),
        });
    }
    Ok(())
}

fn word<L: Link + ?Sized>(link: &L, off: usize) -> &AtomicU32 {
    // SAFETY: `off` is one of the protocol's words, inside the data area
    // (checked by `layout`), 4-aligned.
    unsafe { &*(link.data().add(off) as *const AtomicU32) }
}

fn layout<L: Link + ?Sized>(link: &L) -> Result<u32, Error<L::Error>> {
    let per_ring = (link.data_len().saturating_sub(RINGS) / 2) & !63;
    capacity_for(per_ring, MAX_CAP).ok_or(Error::TooSmall {
        len: link.data_len(),
    })
}

enum Outcome {
    Done,
    /// The generation moved: start over.
    Restart,
}

/// Runs the exchange as `side`; returns when `n` messages went each way.
pub fn run<L: Link + ?Sized>(link: &L, side: Side, n: u32) -> Result<Stats, Error<L::Error>> {
    run_observed(link, side, (n, u32::MAX, 1), &mut |_| {})
}

/// [`run`] as exchange `session` (both sides give the same number, a new
/// one for each exchange over the region), with A keeping at most `window`
/// messages unanswered (1: strict ping-pong, each message a doorbell round
/// trip), calling `received(count)` after each message received (a test
/// uses it to crash mid-exchange).
pub fn run_observed<L: Link + ?Sized>(
    link: &L,
    side: Side,
    (n, window, session): (u32, u32, u32),
    received: &mut dyn FnMut(u32),
) -> Result<Stats, Error<L::Error>> {
    let mut stats = Stats::default();
    loop {
        match once(link, side, (n, window, session), &mut stats, received)? {
            Outcome::Done => return Ok(stats),
            Outcome::Restart => {
                stats.restarts += 1;
                if stats.restarts > 5 {
                    return Err(Error::TooManyRestarts);
                }
            }
        }
    }
}

fn once<L: Link + ?Sized>(
    link: &L,
    side: Side,
    (n, window, session): (u32, u32, u32),
    stats: &mut Stats,
    observe: &mut dyn FnMut(u32),
) -> Result<Outcome, Error<L::Error>> {
    let cap = layout(link)?;
    let ring_bytes = crate::ring::HEADER + cap as usize;
    let a_to_b = RINGS;
    let b_to_a = RINGS + ring_bytes;
    let (me, peer, mine, theirs, out_dir, in_dir) = match side {
        Side::A => (0x000, 0x040, READY_A, READY_B, 0xAB, 0xBA),
        Side::B => (0x040, 0x000, READY_B, READY_A, 0xBA, 0xAB),
    };
    let (tx_at, rx_at) = if side == Side::A {
        (a_to_b, b_to_a)
    } else {
        (b_to_a, a_to_b)
    };
    // SAFETY: both rings lie in the data area (`layout`), 64-aligned; this
    // side is the only producer of one and consumer of the other.
    let (tx, rx) = unsafe {
        (
            Producer::new(link.data().add(tx_at), cap),
            Consumer::new(link.data().add(rx_at), cap),
        )
    };

    // 1. Set up, then meet the peer in the same generation.
    let generation = link.generation().map_err(Error::Link)?;
    word(link, me).store(0, Ordering::Release);
    tx.reset();
    rx.reset();
    word(link, me + 4).store(generation, Ordering::Release);
    word(link, me + 8).store(session, Ordering::Release);
    word(link, me).store(mine, Ordering::Release);
    link.ring().map_err(Error::Link)?;
    let ready = || {
        word(link, peer).load(Ordering::Acquire) == theirs
            && word(link, peer + 4).load(Ordering::Acquire) == generation
            && word(link, peer + 8).load(Ordering::Acquire) == session
    };
    if let Some(o) = meet(link, generation, ready, "ready")? {
        return Ok(o);
    }
    // The peer's READY may have been its ring: ring again so it sees ours.
    link.ring().map_err(Error::Link)?;

    // 2. The exchange. A peer that restarts mid-way leaves its words in any
    // state; whatever that trips over here, the generation tells.
    let ends = Ends {
        side,
        window,
        tx: &tx,
        rx: &rx,
        out_dir,
        in_dir,
    };
    match exchange(link, &ends, n, generation, stats, observe) {
        Err(_) if link.generation().map_err(Error::Link)? != generation => {
            return Ok(Outcome::Restart)
        }
        Ok(Outcome::Done) => {}
        r => return r,
    }

    // 3. Both finished before either moves on.
    word(link, me + 12).store(session, Ordering::Release);
    link.ring().map_err(Error::Link)?;
    let done = || word(link, peer + 12).load(Ordering::Acquire) == session;
    if let Some(o) = meet(link, generation, done, "done")? {
        return Ok(o);
    }
    link.ring().map_err(Error::Link)?;
    Ok(Outcome::Done)
}

/// Waits (up to [`READY_TIMEOUT`]) until `cond` holds; `Some(Restart)` if
/// the generation moves first.
fn meet<L: Link + ?Sized>(
    link: &L,
    generation: u32,
    cond: impl Fn() -> bool,
    what: &'static str,
) -> Result<Option<Outcome>, Error<L::Error>> {
    let start = link.now();
    while !cond() {
        if link.generation().map_err(Error::Link)? != generation {
            return Ok(Some(Outcome::Restart));
        }
        if link.now().saturating_sub(start) > READY_TIMEOUT {
            return Err(Error::NotReady {
                what,
                secs: READY_TIMEOUT.as_secs(),
            });
        }
        link.wait(Duration::from_millis(100)).map_err(Error::Link)?;
    }
    Ok(None)
}

/// This side's view of the two rings.
struct Ends<'a> {
    side: Side,
    /// A: messages sent and not answered yet, at most.
    window: u32,
    tx: &'a Producer,
    rx: &'a Consumer,
    /// Direction bytes of what we send and what we receive.
    out_dir: u8,
    in_dir: u8,
}

fn exchange<L: Link + ?Sized>(
    link: &L,
    ends: &Ends,
    n: u32,
    generation: u32,
    stats: &mut Stats,
    observe: &mut dyn FnMut(u32),
) -> Result<Outcome, Error<L::Error>> {
    let Ends {
        side,
        window,
        tx,
        rx,
        out_dir,
        in_dir,
    } = *ends;
    let (mut sent, mut received) = (0u32, 0u32);
    let mut pending: Option<u32> = None; // B: an answer that did not fit yet
    let mut buf = [0u8; MAX_MESSAGE];
    let mut quiet_since = link.now();
    while sent < n || received < n {
        if link.generation().map_err(Error::Link)? != generation {
            return Ok(Outcome::Restart);
        }
        let mut progress = false;
        match side {
            Side::A => {
                while sent < n
                    && sent - received < window
                    && tx.try_send(&message(sent, out_dir))?
                {
                    sent += 1;
                    progress = true;
                }
            }
            Side::B => {
                if let Some(seq) = pending {
                    if tx.try_send(&message(seq, out_dir))? {
                        sent += 1;
                        pending = None;
                        progress = true;
                    }
                }
            }
        }
        while pending.is_none() {
            let Some(len) = rx.try_recv(&mut buf)? else {
                break;
            };
            check(&buf[..len], received, in_dir)?;
            stats.bytes += body_len(received) as u64;
            progress = true;
            if side == Side::B {
                if !tx.try_send(&message(received, out_dir))? {
                    pending = Some(received);
                } else {
                    sent += 1;
                }
            }
            received += 1;
            observe(received);
        }
        if progress {
            link.ring().map_err(Error::Link)?;
            quiet_since = link.now();
            continue;
        }
        if link.now().saturating_sub(quiet_since) > TIMEOUT {
            return Err(Error::Stalled {
                sent,
                received,
                secs: TIMEOUT.as_secs(),
            });
        }
        link.wait(Duration::from_millis(200)).map_err(Error::Link)?;
    }
    stats.messages = n;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2021::*;
    use std::sync::{Arc, Condvar, Mutex};
    use std::vec;

    /// Two "VMs" as threads: shared memory and a doorbell each.
    struct Bell {
        count: Mutex<u32>,
        cv: Condvar,
    }
    struct Fake {
        mem: usize,
        len: usize,
        mine: Arc<Bell>,
        peers: Arc<Bell>,
        seen: Mutex<u32>,
        generation: Arc<AtomicU32>,
    }
    impl Link for Fake {
        type Error = core::convert::Infallible;
        fn now(&self) -> Duration {
            std::time::UNIX_EPOCH.elapsed().unwrap()
        }
        fn data(&self) -> *mut u8 {
            self.mem as *mut u8
        }
        fn data_len(&self) -> usize {
            self.len
        }
        fn ring(&self) -> Result<(), Self::Error> {
            *self.peers.count.lock().unwrap() += 1;
            self.peers.cv.notify_all();
            Ok(())
        }
        fn wait(&self, t: Duration) -> Result<bool, Self::Error> {
            let mut seen = self.seen.lock().unwrap();
            let c = self.mine.count.lock().unwrap();
            let (c, _) = self
                .mine
                .cv
                .wait_timeout_while(c, t, |c| *c == *seen)
                .unwrap();
            let got = *c != *seen;
            *seen = *c;
            Ok(got)
        }
        fn generation(&self) -> Result<u32, Self::Error> {
            Ok(self.generation.load(Ordering::Acquire))
        }
    }

    #[derive(Clone, Copy)]
    #[repr(C, align(64))]
    struct Line([u8; 64]);

    fn pair(len: usize) -> (Fake, Fake, Vec<Line>) {
        let mut mem = vec![Line([0; 64]); len / 64];
        let p = mem.as_mut_ptr() as usize;
        let (a, b) = (
            Arc::new(Bell {
                count: Mutex::new(0),
                cv: Condvar::new(),
            }),
            Arc::new(Bell {
                count: Mutex::new(0),
                cv: Condvar::new(),
            }),
        );
        let g = Arc::new(AtomicU32::new(0));
        let fake = |mine: &Arc<Bell>, peers: &Arc<Bell>| Fake {
            mem: p,
            len,
            mine: mine.clone(),
            peers: peers.clone(),
            seen: Mutex::new(0),
            generation: g.clone(),
        };
        (fake(&a, &b), fake(&b, &a), mem)
    }

    #[test]
    fn messages_check_themselves() {
        let m = message(7, 0xAB);
        assert_eq!(m.len(), 9 + body_len(7));
        let check = check::<&str>;
        assert!(check(&m, 7, 0xAB).is_ok());
        let e = check(&m, 8, 0xAB).unwrap_err().to_string();
        assert!(e.contains("out of order"), "{e}");
        assert!(check(&m, 7, 0xBA).is_err());
        let mut bad = m.clone();
        bad[6] ^= 1;
        assert_eq!(check(&bad, 7, 0xAB), Err(Error::Checksum { seq: 7 }));
        let odd = (0..1000).filter(|&i| body_len(i) % 2 == 1).count();
        assert!(odd > 400 && (0..1000).all(|i| (1..=251).contains(&body_len(i))));
    }

    #[test]
    fn ten_thousand_each_way_through_a_small_region() {
        let (a, b, mem) = pair(16 * 1024);
        let t = std::thread::spawn(move || run(&b, Side::B, 10_000));
        let sa = run(&a, Side::A, 10_000).unwrap();
        let sb = t.join().unwrap().unwrap();
        assert_eq!((sa.messages, sb.messages, sa.restarts), (10_000, 10_000, 0));
        assert_eq!(sa.bytes, sb.bytes);
        drop(mem);
    }

    #[test]
    fn exchanges_back_to_back() {
        let (a, b, mem) = pair(16 * 1024);
        let t = std::thread::spawn(move || {
            for session in 1..=3 {
                run_observed(&b, Side::B, (2_000, u32::MAX, session), &mut |_| {}).unwrap();
            }
        });
        for session in 1..=3 {
            let s = run_observed(&a, Side::A, (2_000, u32::MAX, session), &mut |_| {}).unwrap();
            assert_eq!((s.messages, s.restarts), (2_000, 0));
        }
        t.join().unwrap();
        drop(mem);
    }

    #[test]
    fn one_at_a_time() {
        let (a, b, mem) = pair(16 * 1024);
        let t = std::thread::spawn(move || run(&b, Side::B, 300));
        // SAFETY: the A->B ring's head word, in `mem`.
        let head = unsafe { &*((mem.as_ptr() as usize + RINGS) as *const AtomicU32) };
        // When A has its k-th answer it has sent exactly k messages.
        let (mut ok, mut sent_bytes) = (true, 0u32);
        let sa = run_observed(&a, Side::A, (300, 1, 1), &mut |got| {
            sent_bytes += 4 + message(got - 1, 0xAB).len() as u32;
            ok &= head.load(Ordering::Acquire) == sent_bytes;
        })
        .unwrap();
        let sb = t.join().unwrap().unwrap();
        assert!(ok, "A sent ahead of its answers");
        assert_eq!((sa.messages, sb.messages), (300, 300));
        assert_eq!(sa.bytes, sb.bytes);
        drop(mem);
    }

    #[test]
    fn a_restart_mid_exchange_starts_both_over() {
        let (a, b, mem) = pair(16 * 1024);
        let (g, bells) = (a.generation.clone(), (a.mine.clone(), a.peers.clone()));
        let head_a_to_b = mem.as_ptr() as usize + RINGS;
        // The "hypervisor": once 100 KB went A to B, a peer restarted.
        let hv = std::thread::spawn(move || {
            // SAFETY: the A->B ring's head word, in `mem` (alive until
            // the exchange, which outlasts this, is over).
            let head = unsafe { &*(head_a_to_b as *const AtomicU32) };
            while head.load(Ordering::Acquire) < 100_000 {
                std::thread::yield_now();
            }
            g.fetch_add(1, Ordering::AcqRel);
            for bell in [bells.0, bells.1] {
                *bell.count.lock().unwrap() += 1;
                bell.cv.notify_all();
            }
        });
        let t = std::thread::spawn(move || run(&b, Side::B, 20_000));
        let sa = run(&a, Side::A, 20_000).unwrap();
        let sb = t.join().unwrap().unwrap();
        hv.join().unwrap();
        assert_eq!((sa.messages, sb.messages), (20_000, 20_000));
        assert_eq!((sa.restarts, sb.restarts), (1, 1));
        drop(mem);
    }

    #[test]
    fn a_region_too_small_is_refused() {
        let (a, _b, mem) = pair(512);
        // Too small for the rings: a clear error at once.
        let e = run(&a, Side::A, 1).unwrap_err().to_string();
        assert!(e.contains("too few"), "{e}");
        drop(mem);
    }
}
