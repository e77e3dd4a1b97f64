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
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const READY_A: u32 = 0x4150_4C54; // "TLPA"
pub const READY_B: u32 = 0x4250_4C54; // "TLPB"
const RINGS: usize = 0x100;
const MAX_CAP: u32 = 64 * 1024;
const MAX_BODY: u32 = 251;
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

/// What the exchange needs from a region.
pub trait Link {
    fn data(&self) -> *mut u8;
    fn data_len(&self) -> usize;
    fn ring(&self) -> io::Result<()>;
    /// Waits for a doorbell; `false` on timeout.
    fn wait(&self, timeout: Duration) -> io::Result<bool>;
    /// The header's generation now.
    fn generation(&self) -> io::Result<u32>;
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
pub fn message(seq: u32, dir: u8) -> Vec<u8> {
    let mut m = Vec::with_capacity(9 + body_len(seq));
    m.extend_from_slice(&seq.to_le_bytes());
    m.push(dir);
    let mut x = seq ^ (dir as u32) << 24 | 1;
    for _ in 0..body_len(seq) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        m.push(x as u8);
    }
    let sum = fnv1a(&m);
    m.extend_from_slice(&sum.to_le_bytes());
    m
}

/// Checks a received message against what `seq` must be.
pub fn check(got: &[u8], seq: u32, dir: u8) -> Result<(), String> {
    if got.len() < 9 {
        return Err(format!("message {seq}: only {} bytes", got.len()));
    }
    let (body, sum) = got.split_at(got.len() - 4);
    if fnv1a(body) != u32::from_le_bytes(sum.try_into().unwrap()) {
        return Err(format!("message {seq}: bad checksum"));
    }
    let got_seq = u32::from_le_bytes(got[..4].try_into().unwrap());
    if got_seq != seq {
        return Err(format!(
            "expected message {seq}, got {got_seq} (lost or out of order)"
        ));
    }
    if got != message(seq, dir) {
        return Err(format!(
            "message {seq}: wrong contents or length {}",
            got.len()
        ));
    }
    Ok(())
}

fn word(link: &dyn Link, off: usize) -> &AtomicU32 {
    // SAFETY: `off` is one of the protocol's words, inside the data area
    // (checked by `layout`), 4-aligned.
    unsafe { &*(link.data().add(off) as *const AtomicU32) }
}

fn layout(link: &dyn Link) -> Result<u32, String> {
    let per_ring = (link.data_len().saturating_sub(RINGS) / 2) & !63;
    capacity_for(per_ring, MAX_CAP).ok_or_else(|| {
        format!(
            "{} bytes of data are too few for the rings",
            link.data_len()
        )
    })
}

enum Outcome {
    Done,
    /// The generation moved: start over.
    Restart,
}

fn err(e: io::Error) -> String {
    e.to_string()
}

fn ring_err(e: RingError) -> String {
    e.to_string()
}

/// Runs the exchange as `side`; returns when `n` messages went each way.
pub fn run(link: &dyn Link, side: Side, n: u32) -> Result<Stats, String> {
    run_observed(link, side, (n, u32::MAX, 1), &mut |_| {})
}

/// [`run`] as exchange `session` (both sides give the same number, a new
/// one for each exchange over the region), with A keeping at most `window`
/// messages unanswered (1: strict ping-pong, each message a doorbell round
/// trip), calling `received(count)` after each message received (a test
/// uses it to crash mid-exchange).
pub fn run_observed(
    link: &dyn Link,
    side: Side,
    (n, window, session): (u32, u32, u32),
    received: &mut dyn FnMut(u32),
) -> Result<Stats, String> {
    let mut stats = Stats::default();
    loop {
        match once(link, side, (n, window, session), &mut stats, received)? {
            Outcome::Done => return Ok(stats),
            Outcome::Restart => {
                stats.restarts += 1;
                if stats.restarts > 5 {
                    return Err("the peer restarted more than 5 times".into());
                }
            }
        }
    }
}

fn once(
    link: &dyn Link,
    side: Side,
    (n, window, session): (u32, u32, u32),
    stats: &mut Stats,
    observe: &mut dyn FnMut(u32),
) -> Result<Outcome, String> {
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
    let generation = link.generation().map_err(err)?;
    word(link, me).store(0, Ordering::Release);
    tx.reset();
    rx.reset();
    word(link, me + 4).store(generation, Ordering::Release);
    word(link, me + 8).store(session, Ordering::Release);
    word(link, me).store(mine, Ordering::Release);
    link.ring().map_err(err)?;
    let ready = || {
        word(link, peer).load(Ordering::Acquire) == theirs
            && word(link, peer + 4).load(Ordering::Acquire) == generation
            && word(link, peer + 8).load(Ordering::Acquire) == session
    };
    if let Some(o) = meet(link, generation, ready, "ready")? {
        return Ok(o);
    }
    // The peer's READY may have been its ring: ring again so it sees ours.
    link.ring().map_err(err)?;

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
        Err(_) if link.generation().map_err(err)? != generation => return Ok(Outcome::Restart),
        Ok(Outcome::Done) => {}
        r => return r,
    }

    // 3. Both finished before either moves on.
    word(link, me + 12).store(session, Ordering::Release);
    link.ring().map_err(err)?;
    let done = || word(link, peer + 12).load(Ordering::Acquire) == session;
    if let Some(o) = meet(link, generation, done, "done")? {
        return Ok(o);
    }
    link.ring().map_err(err)?;
    Ok(Outcome::Done)
}

/// Waits (up to [`READY_TIMEOUT`]) until `cond` holds; `Some(Restart)` if
/// the generation moves first.
fn meet(
    link: &dyn Link,
    generation: u32,
    cond: impl Fn() -> bool,
    what: &str,
) -> Result<Option<Outcome>, String> {
    let start = Instant::now();
    while !cond() {
        if link.generation().map_err(err)? != generation {
            return Ok(Some(Outcome::Restart));
        }
        if start.elapsed() > READY_TIMEOUT {
            return Err(format!(
                "the peer was not {what} within {} s",
                READY_TIMEOUT.as_secs()
            ));
        }
        link.wait(Duration::from_millis(100)).map_err(err)?;
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

fn exchange(
    link: &dyn Link,
    ends: &Ends,
    n: u32,
    generation: u32,
    stats: &mut Stats,
    observe: &mut dyn FnMut(u32),
) -> Result<Outcome, String> {
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
    let mut buf = Vec::new();
    let mut quiet_since = Instant::now();
    while sent < n || received < n {
        if link.generation().map_err(err)? != generation {
            return Ok(Outcome::Restart);
        }
        let mut progress = false;
        match side {
            Side::A => {
                while sent < n
                    && sent - received < window
                    && tx.try_send(&message(sent, out_dir)).map_err(ring_err)?
                {
                    sent += 1;
                    progress = true;
                }
            }
            Side::B => {
                if let Some(seq) = pending {
                    if tx.try_send(&message(seq, out_dir)).map_err(ring_err)? {
                        sent += 1;
                        pending = None;
                        progress = true;
                    }
                }
            }
        }
        while pending.is_none() && rx.try_recv(&mut buf).map_err(ring_err)? {
            check(&buf, received, in_dir)?;
            stats.bytes += body_len(received) as u64;
            progress = true;
            if side == Side::B {
                if !tx.try_send(&message(received, out_dir)).map_err(ring_err)? {
                    pending = Some(received);
                } else {
                    sent += 1;
                }
            }
            received += 1;
            observe(received);
        }
        if progress {
            link.ring().map_err(err)?;
            quiet_since = Instant::now();
            continue;
        }
        if quiet_since.elapsed() > TIMEOUT {
            return Err(format!(
                "stalled after {sent} sent, {received} received: no doorbell for {} s",
                TIMEOUT.as_secs()
            ));
        }
        link.wait(Duration::from_millis(200)).map_err(err)?;
    }
    stats.messages = n;
    Ok(Outcome::Done)
}

#[cfg(target_os = "linux")]
impl Link for crate::Region {
    fn data(&self) -> *mut u8 {
        crate::Region::data(self)
    }
    fn data_len(&self) -> usize {
        crate::Region::data_len(self)
    }
    fn ring(&self) -> io::Result<()> {
        crate::Region::ring(self)
    }
    fn wait(&self, timeout: Duration) -> io::Result<bool> {
        crate::Region::wait(self, Some(timeout)).map(|c| c.is_some())
    }
    fn generation(&self) -> io::Result<u32> {
        self.header()
            .map(|h| h.generation)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Condvar, Mutex};

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
        fn data(&self) -> *mut u8 {
            self.mem as *mut u8
        }
        fn data_len(&self) -> usize {
            self.len
        }
        fn ring(&self) -> io::Result<()> {
            *self.peers.count.lock().unwrap() += 1;
            self.peers.cv.notify_all();
            Ok(())
        }
        fn wait(&self, t: Duration) -> io::Result<bool> {
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
        fn generation(&self) -> io::Result<u32> {
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
        assert!(check(&m, 7, 0xAB).is_ok());
        assert!(check(&m, 8, 0xAB).unwrap_err().contains("out of order"));
        assert!(check(&m, 7, 0xBA).is_err());
        let mut bad = m.clone();
        bad[6] ^= 1;
        assert!(check(&bad, 7, 0xAB).unwrap_err().contains("checksum"));
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
        assert!(run(&a, Side::A, 1).unwrap_err().contains("too few"));
        drop(mem);
    }
}
