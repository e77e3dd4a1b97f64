//! The doorbell ping-pong protocol, free of hardware so that it is also
//! unit-tested on the host (two threads standing in for t0 and t2).
//!
//! Shared region 0, 32-bit words at these offsets; each word has one writer:
//!
//! | offset | writer | what |
//! | --- | --- | --- |
//! | 0x00 | initiator | `READY_A` = 0x5445_5341 ("TESA") once it is set up |
//! | 0x04 | responder | `READY_B` = 0x5445_5342 ("TESB") once it is set up |
//! | 0x08 | initiator | `HEARTBEAT_A` = 0x4842_4541 when its heartbeat starts (the flood may begin) |
//! | 0x0c | responder | `FLOOD`: 1 while its vCPU 1 floods, 2 when done |
//! | 0x20 | initiator | counter value just before its latest ring (lo, hi): for the latency figure only |
//! | 0x28 | responder | the same, for its rings |
//! | 0x40 | initiator | message slot A->B: `seq`, `payload[6]`, `checksum` |
//! | 0x80 | responder | message slot B->A: same layout |
//!
//! 1. Each side (its doorbell interrupt already enabled) clears the words it
//!    writes, notes its doorbell count, then sets its READY word and waits
//!    (up to 30 s) for the other's: either may start first, and a ring that
//!    follows the peer's READY at once is not missed.
//! 2. For seq = 1..=200 the initiator writes payload and checksum, then
//!    `seq` (after a barrier), and rings: odd seq through the control page,
//!    even seq by the `TESSERA_DOORBELL` hypercall.
//! 3. The responder waits (up to 5 s) for its doorbell number seq (count
//!    since step 1) and for `seq` in the slot; checks `seq` is exactly the
//!    one expected (else: lost or reordered), the checksum and the payload;
//!    then replies in its own slot with the same seq, ringing the same way.
//! 4. The initiator waits (up to 5 s) for its doorbell number seq and the
//!    reply with that seq, and checks it the same way.
//! 5. 20 ms after the last message each side checks exactly 200 doorbells
//!    arrived (none doubled).
//!
//! `payload[i] = seq * 0x9e3779b9 ^ i * 0x01010101 ^ dir` (dir 0xa0000000
//! A->B, 0xb0000000 B->A); `checksum` = FNV-1a over the 32-bit words
//! `seq, payload[0..6]`. One message is in flight at a time, so each
//! doorbell (an edge) stands for exactly one message.

// On the host only the tests use it.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

use core::fmt;

pub const READY_A: usize = 0x00;
pub const READY_B: usize = 0x04;
pub const HEARTBEAT_A: usize = 0x08;
pub const FLOOD: usize = 0x0c;
/// t2's vCPU 0, after its heartbeat: its mean and maximum timer lateness
/// (ticks, saturated to 32 bits), then `HB_MAGIC` in `CONTROL_DONE`.
pub const CONTROL_MEAN: usize = 0x10;
pub const CONTROL_MAX: usize = 0x14;
pub const CONTROL_DONE: usize = 0x18;
pub const RING_TS_A: usize = 0x20;
pub const RING_TS_B: usize = 0x28;
pub const SLOT_A: usize = 0x40;
pub const SLOT_B: usize = 0x80;
/// Bytes of the region the protocol uses.
pub const SIZE: usize = 0x100;
pub const MAGIC_A: u32 = 0x5445_5341;
pub const MAGIC_B: u32 = 0x5445_5342;
pub const HB_MAGIC: u32 = 0x4842_4541;
const DIR_A: u32 = 0xa000_0000;
const DIR_B: u32 = 0xb000_0000;
const PAYLOAD_WORDS: usize = 6;
pub const MESSAGES: u32 = 200;
const READY_WAIT_MS: u64 = 30_000;
const MESSAGE_WAIT_MS: u64 = 5_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// t0: sends first, measures the round trip and the flood's effect.
    Initiator,
    /// t2: answers; its vCPU 1 floods.
    Responder,
}

/// What one side needs from its machine.
pub trait Link {
    /// A 32-bit word of the shared region at byte offset `off`.
    fn get(&self, off: usize) -> u32;
    fn set(&self, off: usize, v: u32);
    /// Earlier region accesses before later ones.
    fn barrier(&self);
    /// Rings the peer, by hypercall or through the control page; Err(x0) if
    /// the hypercall refused.
    fn ring(&self, hypercall: bool) -> Result<(), i64>;
    /// Doorbell interrupts received so far.
    fn doorbells(&self) -> u32;
    /// Waits up to `ms` milliseconds for `done`; returns it.
    fn wait(&self, ms: u64, done: &mut dyn FnMut() -> bool) -> bool;
    /// A timestamp (counter ticks) for the round-trip figure.
    fn now(&self) -> u64;
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    PeerNotReady(u32),
    Ring { seq: u32, ret: i64 },
    Timeout { seq: u32, doorbells: u32, slot: u32 },
    Order { seq: u32, got: u32 },
    Checksum { seq: u32, sum: u32 },
    Payload { seq: u32, word: usize, value: u32 },
    Doorbells(u32),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            Error::PeerNotReady(w) => write!(f, "the peer never became ready (word {w:#x})"),
            Error::Ring { seq, ret } => {
                write!(f, "message {seq}: TESSERA_DOORBELL returned {ret}")
            }
            Error::Timeout {
                seq,
                doorbells,
                slot,
            } => write!(
                f,
                "message {seq}: timed out ({doorbells} doorbells, slot holds {slot})"
            ),
            Error::Order { seq, got } => write!(
                f,
                "expected message {seq}, slot holds {got} ({})",
                if got < seq { "lost" } else { "reordered" }
            ),
            Error::Checksum { seq, sum } => write!(f, "message {seq}: bad checksum {sum:#x}"),
            Error::Payload { seq, word, value } => {
                write!(f, "message {seq}: payload word {word} = {value:#x}")
            }
            Error::Doorbells(n) => write!(f, "{n} doorbells for {MESSAGES} messages"),
        }
    }
}

fn payload(seq: u32, i: usize, dir: u32) -> u32 {
    seq.wrapping_mul(0x9e37_79b9) ^ (i as u32).wrapping_mul(0x0101_0101) ^ dir
}

fn checksum(words: impl Iterator<Item = u32>) -> u32 {
    words.fold(0x811c_9dc5, |h, w| (h ^ w).wrapping_mul(0x0100_0193))
}

fn send(l: &impl Link, slot: usize, seq: u32, dir: u32) -> Result<(), Error> {
    let words = (0..PAYLOAD_WORDS).map(|i| payload(seq, i, dir));
    for (i, w) in words.clone().enumerate() {
        l.set(slot + 4 + 4 * i, w);
    }
    l.set(
        slot + 4 + 4 * PAYLOAD_WORDS,
        checksum(core::iter::once(seq).chain(words)),
    );
    l.barrier();
    l.set(slot, seq);
    l.barrier();
    l.ring(seq.is_multiple_of(2))
        .map_err(|ret| Error::Ring { seq, ret })
}

/// Checks the message in `slot` is `seq` from direction `dir`.
fn verify(l: &impl Link, slot: usize, seq: u32, dir: u32) -> Result<(), Error> {
    let got = l.get(slot);
    l.barrier();
    if got != seq {
        return Err(Error::Order { seq, got });
    }
    let words: [u32; PAYLOAD_WORDS] = core::array::from_fn(|i| l.get(slot + 4 + 4 * i));
    let sum = l.get(slot + 4 + 4 * PAYLOAD_WORDS);
    if checksum(core::iter::once(got).chain(words.iter().copied())) != sum {
        return Err(Error::Checksum { seq, sum });
    }
    match (0..PAYLOAD_WORDS).find(|&i| words[i] != payload(seq, i, dir)) {
        Some(word) => Err(Error::Payload {
            seq,
            word,
            value: words[word],
        }),
        None => Ok(()),
    }
}

/// One side of the ping-pong; returns the counter ticks the 200 round
/// trips took (from the first send to the last reply).
pub fn run(l: &impl Link, role: Role) -> Result<u64, Error> {
    let (ready, peer_ready, magic, peer_magic) = match role {
        Role::Initiator => (READY_A, READY_B, MAGIC_A, MAGIC_B),
        Role::Responder => (READY_B, READY_A, MAGIC_B, MAGIC_A),
    };
    let (slot, peer_slot, dir, peer_dir, other_word) = match role {
        Role::Initiator => (SLOT_A, SLOT_B, DIR_A, DIR_B, HEARTBEAT_A),
        Role::Responder => (SLOT_B, SLOT_A, DIR_B, DIR_A, FLOOD),
    };
    for off in (slot..slot + 0x40).step_by(4) {
        l.set(off, 0);
    }
    l.set(other_word, 0);
    let base = l.doorbells();
    l.barrier();
    l.set(ready, magic);
    if !l.wait(READY_WAIT_MS, &mut || l.get(peer_ready) == peer_magic) {
        return Err(Error::PeerNotReady(l.get(peer_ready)));
    }
    let rung = || l.doorbells().wrapping_sub(base);
    let start = l.now();
    for seq in 1..=MESSAGES {
        if role == Role::Initiator {
            send(l, slot, seq, dir)?;
        }
        if !l.wait(MESSAGE_WAIT_MS, &mut || {
            rung() >= seq && l.get(peer_slot) >= seq
        }) {
            return Err(Error::Timeout {
                seq,
                doorbells: rung(),
                slot: l.get(peer_slot),
            });
        }
        verify(l, peer_slot, seq, peer_dir)?;
        if role == Role::Responder {
            send(l, slot, seq, dir)?;
        }
    }
    let elapsed = l.now() - start;
    // Late doubles would show up here.
    l.wait(20, &mut || false);
    match rung() {
        MESSAGES => Ok(elapsed),
        n => Err(Error::Doorbells(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Two sides in one process: the region, and each side's doorbells.
    struct Shared {
        words: Vec<AtomicU32>,
        bells: [AtomicU32; 2],
        /// Drop this ring of side 0 (1-based), to lose a doorbell.
        drop_ring: u32,
        /// Corrupt payload word 2 of this message of side 0.
        corrupt: u32,
    }

    struct Side {
        s: Arc<Shared>,
        me: usize,
        rings: AtomicU32,
    }

    impl Link for Side {
        fn get(&self, off: usize) -> u32 {
            self.s.words[off / 4].load(SeqCst)
        }
        fn set(&self, off: usize, v: u32) {
            let v = if self.me == 0 && off == SLOT_A + 12 && payload_seq(self) == self.s.corrupt {
                v ^ 1
            } else {
                v
            };
            self.s.words[off / 4].store(v, SeqCst)
        }
        fn barrier(&self) {}
        fn ring(&self, _hypercall: bool) -> Result<(), i64> {
            let n = self.rings.fetch_add(1, SeqCst) + 1;
            if !(self.me == 0 && n == self.s.drop_ring) {
                self.s.bells[1 - self.me].fetch_add(1, SeqCst);
            }
            Ok(())
        }
        fn doorbells(&self) -> u32 {
            self.s.bells[self.me].load(SeqCst)
        }
        /// Milliseconds run 20 times faster here, to keep failures quick.
        fn wait(&self, ms: u64, done: &mut dyn FnMut() -> bool) -> bool {
            let end = Instant::now() + Duration::from_micros(ms * 50);
            while Instant::now() < end {
                if done() {
                    return true;
                }
                std::thread::yield_now();
            }
            done()
        }
        fn now(&self) -> u64 {
            0
        }
    }

    /// The seq side 0 is writing: one more than what its slot holds.
    fn payload_seq(side: &Side) -> u32 {
        side.s.words[SLOT_A / 4].load(SeqCst) + 1
    }

    fn pair(drop_ring: u32, corrupt: u32, delay: [u64; 2]) -> [Result<u64, Error>; 2] {
        let s = Arc::new(Shared {
            words: (0..SIZE / 4).map(|_| AtomicU32::new(0)).collect(),
            bells: [AtomicU32::new(0), AtomicU32::new(0)],
            drop_ring,
            corrupt,
        });
        let sides: Vec<_> = [Role::Initiator, Role::Responder]
            .into_iter()
            .enumerate()
            .map(|(me, role)| {
                let side = Side {
                    s: Arc::clone(&s),
                    me,
                    rings: AtomicU32::new(0),
                };
                let d = delay[me];
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(d));
                    run(&side, role)
                })
            })
            .collect();
        let mut r = sides.into_iter().map(|t| t.join().unwrap());
        [r.next().unwrap(), r.next().unwrap()]
    }

    #[test]
    fn either_side_may_start_first() {
        for delay in [[0, 0], [0, 50], [50, 0]] {
            let [a, b] = pair(0, 0, delay);
            assert!(a.is_ok() && b.is_ok(), "{delay:?}: {a:?} {b:?}");
        }
    }

    #[test]
    fn a_lost_doorbell_times_out() {
        let [a, b] = pair(7, 0, [0, 0]);
        assert!(matches!(b, Err(Error::Timeout { seq: 7, .. })), "{b:?}");
        assert!(matches!(a, Err(Error::Timeout { seq: 7, .. })), "{a:?}");
    }

    #[test]
    fn a_corrupted_message_is_caught() {
        let [_, b] = pair(0, 9, [0, 0]);
        assert!(matches!(b, Err(Error::Checksum { seq: 9, .. })), "{b:?}");
    }

    #[test]
    fn no_peer_is_a_failure_not_a_hang() {
        let s = Arc::new(Shared {
            words: (0..SIZE / 4).map(|_| AtomicU32::new(0)).collect(),
            bells: [AtomicU32::new(0), AtomicU32::new(0)],
            drop_ring: 0,
            corrupt: 0,
        });
        let side = Side {
            s,
            me: 0,
            rings: AtomicU32::new(0),
        };
        assert_eq!(run(&side, Role::Initiator), Err(Error::PeerNotReady(0)));
    }
}
