//! Single-producer single-consumer byte ring of variable-length records.
//!
//! `head` and `tail` are free-running `u32` byte counters (the ring size is a
//! power of two, so they wrap cleanly). A record is an 8-byte header
//! (`stamp: u32`, then `len: u16`, the exact length including the header,
//! and `tag: u16`) followed by its payload; the next record starts at the
//! next multiple of 8. A record never straddles the end: the producer fills
//! the rest with a pad record and starts again at offset 0. The consumer
//! copies each record out before it releases it, so the producer cannot
//! change a record under the consumer's feet.
//!
//! The stamp is the record's position counter plus one, written last: a
//! consumer that is behind finds each next record by looking at the line it
//! lies in, without first fetching `head` from the producer's core. The
//! producer zeroes the stamp word after each record before publishing it,
//! so the consumer never takes the previous lap's bytes for a record.
//! `head` is still published (before the stamp): a waiting consumer polls
//! it (polling the record's own line makes the producer's writes to that
//! line lose it to the poller, measured slower on the H200), and when the
//! ring looks empty the consumer checks that its tail never went past it.
//! A sleeping consumer waits on the stamp word of the record it expects
//! ([`Producer::waiter_word`]): the last word a push writes, so no wake-up
//! is lost between head and stamp.

use core::sync::atomic::{AtomicU32, Ordering};

/// Tag of the filler record at the end of the ring.
pub const PAD: u32 = 0xffff;
const HDR: usize = 8;
/// Largest record, header included (the length is a `u16`).
const MAX_RECORD: usize = 0xffff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// Not enough free space now; wait for the consumer.
    Full,
    /// The record can never fit (larger than half the ring).
    TooLarge,
    /// The peer published indices or a record header that cannot be right.
    Corrupt(&'static str),
    /// The caller's buffer is too small for the next record.
    BufferTooSmall(usize),
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RingError::Full => write!(f, "ring full"),
            RingError::TooLarge => write!(f, "record larger than half the ring or 64 KiB"),
            RingError::Corrupt(why) => write!(f, "corrupt ring: {why}"),
            RingError::BufferTooSmall(n) => {
                write!(f, "record of {n} bytes exceeds the receive buffer")
            }
        }
    }
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// How far ahead of the record in hand each end asks for cache lines. The
/// two ends run on different cores: a line the producer wrote reaches the
/// consumer only on demand, one cross-core transfer (100 ns or more on a
/// large machine) after another, unless asked for early so that several
/// are in flight at once.
const AHEAD: u32 = 512;

/// Asks the cache for the line at `p`, to read (`write == false`) or to
/// write. Only a hint: it never faults and changes no memory.
#[inline(always)]
fn prefetch(p: *const u8, write: bool) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch instruction neither faults nor writes.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0, _MM_HINT_T0};
        if write {
            _mm_prefetch::<_MM_HINT_ET0>(p as *const i8)
        } else {
            _mm_prefetch::<_MM_HINT_T0>(p as *const i8)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, write);
}

pub struct Producer<'a> {
    head: &'a AtomicU32,
    tail: &'a AtomicU32,
    buf: *mut u8,
    size: u32,
    /// The consumer's tail as last read: the shared word is read again only
    /// when the ring looks full by this one, so the two sides do not pass
    /// the tail's cache line back and forth on every record.
    tail_seen: u32,
}

impl<'a> Producer<'a> {
    pub(crate) fn new(head: &'a AtomicU32, tail: &'a AtomicU32, buf: *mut u8, size: u32) -> Self {
        let tail_seen = tail.load(Ordering::Acquire);
        Producer {
            head,
            tail,
            buf,
            size,
            tail_seen,
        }
    }

    /// The word the consumer waits on (rung after a push).
    pub fn head_word(&self) -> &'a AtomicU32 {
        self.head
    }
    /// The word to wait on when the ring is full.
    pub fn tail_word(&self) -> &'a AtomicU32 {
        self.tail
    }
    /// The word a sleeping consumer waits on: the stamp of the record at
    /// its tail (rung after a push when the consumer sleeps). A futex on
    /// the stamp itself, not on head, cannot miss the wake-up: the stamp is
    /// the last thing a push writes.
    pub fn waiter_word(&self) -> &'a AtomicU32 {
        let off = self.tail.load(Ordering::Relaxed) & (self.size - 1) & !3;
        // SAFETY: masked into the ring and 4-aligned; AtomicU32 has u32's
        // layout; the ring lives as long as 'a.
        unsafe { &*(self.buf.add(off as usize) as *const AtomicU32) }
    }

    /// Largest payload a single record may carry.
    pub fn max_payload(&self) -> usize {
        (self.size as usize / 2).min(MAX_RECORD) - HDR
    }

    /// Appends one record made of the concatenation of `parts` and publishes
    /// it. Fails with `Full` without writing anything if there is no room.
    pub fn push(&mut self, tag: u32, parts: &[&[u8]]) -> Result<(), RingError> {
        let payload: usize = parts.iter().map(|p| p.len()).sum();
        if payload > self.max_payload() || tag >= PAD {
            return Err(RingError::TooLarge);
        }
        let total = align8(HDR + payload) as u32;
        let head = self.head.load(Ordering::Relaxed);
        let off = head & (self.size - 1);
        let contig = self.size - off;
        let pad = if total > contig { contig } else { 0 };
        // The tail only moves forward, so room seen by an older value of it
        // is there; the shared word is read when that room runs out.
        let fits = |tail: u32| {
            let used = head.wrapping_sub(tail);
            if used > self.size {
                return Err(RingError::Corrupt("consumer tail ahead of head"));
            }
            // Room for the next record's stamp word too: it is zeroed below.
            Ok(used + pad + total + 4 <= self.size)
        };
        if !fits(self.tail_seen)? {
            self.tail_seen = self.tail.load(Ordering::Acquire);
            if !fits(self.tail_seen)? {
                return Err(RingError::Full);
            }
        }
        let pos = head.wrapping_add(pad);
        let off = pos & (self.size - 1);
        // Ask for ownership of a line ahead, if the consumer is done with
        // it (free space as last seen), before the writes need it.
        let free = self.size - head.wrapping_sub(self.tail_seen);
        if free > AHEAD + pad + total {
            prefetch(self.ahead(pos.wrapping_add(total)), true);
        }
        let mut at = off as usize + HDR;
        for p in parts {
            // SAFETY: off + total <= size was ensured above; the area between
            // head and tail+size belongs to the producer.
            unsafe { core::ptr::copy_nonoverlapping(p.as_ptr(), self.buf.add(at), p.len()) };
            at += p.len();
        }
        let end = pos.wrapping_add(total);
        self.stamp(end, 0);
        self.write_len_tag(off, (HDR + payload) as u32, tag);
        self.head.store(end, Ordering::Release);
        // The record before the pad: a consumer that sees the pad's stamp
        // finds this one complete at offset 0.
        self.stamp(pos, pos.wrapping_add(1));
        if pad != 0 {
            self.write_len_tag(head & (self.size - 1), pad, PAD);
            self.stamp(head, head.wrapping_add(1));
        }
        Ok(())
    }

    /// The ring address AHEAD bytes past counter `pos`.
    fn ahead(&self, pos: u32) -> *const u8 {
        let at = pos.wrapping_add(AHEAD) & (self.size - 1);
        // SAFETY: masked into the ring.
        unsafe { self.buf.add(at as usize) }
    }

    fn write_len_tag(&mut self, off: u32, len: u32, tag: u32) {
        // SAFETY: off is 8-aligned and at least 8 bytes remain before the end.
        unsafe {
            let p = self.buf.add(off as usize + 4) as *mut u32;
            core::ptr::write_volatile(p, (len | tag << 16).to_le());
        }
    }

    /// Publishes (or, with 0, clears) the stamp of the record at counter
    /// `pos`: a release store, after everything the record holds.
    fn stamp(&mut self, pos: u32, v: u32) {
        let off = pos & (self.size - 1);
        // SAFETY: off is 8-aligned inside the ring; the word belongs to the
        // producer (room for it was checked); AtomicU32 has u32's layout.
        let w = unsafe { &*(self.buf.add(off as usize) as *const AtomicU32) };
        w.store(v.to_le(), Ordering::Release);
    }

    /// True when every pushed record has been consumed.
    pub fn is_drained(&self) -> bool {
        self.head.load(Ordering::Relaxed) == self.tail.load(Ordering::Acquire)
    }
}

pub struct Consumer<'a> {
    head: &'a AtomicU32,
    tail: &'a AtomicU32,
    buf: *const u8,
    size: u32,
    /// The producer's head as last read (when the ring looked empty): the
    /// lines up to it are published, safe to ask for ahead.
    head_seen: u32,
    /// Records taken since head was last read.
    since_head: u32,
}

/// One received record: its tag and how many payload bytes were copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub tag: u32,
    pub len: usize,
}

impl<'a> Consumer<'a> {
    pub(crate) fn new(head: &'a AtomicU32, tail: &'a AtomicU32, buf: *mut u8, size: u32) -> Self {
        let head_seen = tail.load(Ordering::Relaxed);
        Consumer {
            head,
            tail,
            buf,
            size,
            head_seen,
            since_head: 0,
        }
    }

    pub fn head_word(&self) -> &'a AtomicU32 {
        self.head
    }
    pub fn tail_word(&self) -> &'a AtomicU32 {
        self.tail
    }

    /// The stamp word of the record the consumer takes next, and what it
    /// holds now: it changes when that record is published, so a poll or a
    /// wait on it ends when there is something to take.
    pub fn next_word(&self) -> (&'a AtomicU32, u32) {
        let w = self.stamp_word(self.tail.load(Ordering::Relaxed));
        (w, w.load(Ordering::Acquire))
    }

    /// True when the next record is published.
    pub fn ready(&self) -> bool {
        let tail = self.tail.load(Ordering::Relaxed);
        u32::from_le(self.stamp_word(tail).load(Ordering::Acquire)) == tail.wrapping_add(1)
    }

    fn stamp_word(&self, tail: u32) -> &'a AtomicU32 {
        let off = (tail & (self.size - 1) & !3) as usize;
        // SAFETY: masked into the ring and 4-aligned; AtomicU32 has u32's
        // layout; the ring lives as long as 'a.
        unsafe { &*(self.buf.add(off) as *const AtomicU32) }
    }

    /// Copies the next record's payload into `out` and releases it.
    /// `Ok(None)` means the ring is empty.
    pub fn pop(&mut self, out: &mut [u8]) -> Result<Option<Record>, RingError> {
        loop {
            let tail = self.tail.load(Ordering::Relaxed);
            if !tail.is_multiple_of(8) {
                return Err(RingError::Corrupt("tail not at a record"));
            }
            if u32::from_le(self.stamp_word(tail).load(Ordering::Acquire)) != tail.wrapping_add(1) {
                // Empty: whatever the producer published must be at or past
                // every record taken (it publishes head before the stamp).
                self.head_seen = self.head.load(Ordering::Acquire);
                self.since_head = 0;
                let ahead = self.head_seen.wrapping_sub(tail);
                if ahead > self.size || !ahead.is_multiple_of(8) {
                    return Err(RingError::Corrupt("head outside the ring"));
                }
                return Ok(None);
            }
            let off = (tail & (self.size - 1)) as usize;
            // SAFETY: off is 8-aligned and inside the ring, so 8 bytes remain.
            let w = u32::from_le(unsafe {
                core::ptr::read_volatile(self.buf.add(off + 4) as *const u32)
            });
            let (len, tag) = ((w & 0xffff) as usize, w >> 16);
            let adv = align8(len);
            if len < HDR || off + adv > self.size as usize || adv > self.size as usize / 2 {
                return Err(RingError::Corrupt("record length out of bounds"));
            }
            if tag == PAD {
                // Only legal to reach the end of the ring exactly.
                if off + adv != self.size as usize {
                    return Err(RingError::Corrupt("pad record not at the end"));
                }
                self.tail
                    .store(tail.wrapping_add(adv as u32), Ordering::Release);
                continue;
            }
            // Lines published when head was last read are asked for ahead
            // of use; newer ones are left alone (the producer may be writing
            // them). Head is read again once tail has passed it, and not
            // before 8 records since the last look: its line comes from the
            // producer's core, and a consumer that just found a record
            // should not wait for that too.
            self.since_head = self.since_head.saturating_add(1);
            if self.since_head >= 8
                && self.head_seen.wrapping_sub(tail).wrapping_sub(1) >= self.size
            {
                self.head_seen = self.head.load(Ordering::Relaxed);
                self.since_head = 0;
            }
            if self.head_seen.wrapping_sub(tail).wrapping_sub(AHEAD) < self.size {
                let at = tail.wrapping_add(AHEAD) & (self.size - 1);
                // SAFETY: masked into the ring.
                prefetch(unsafe { self.buf.add(at as usize) }, false);
            }
            let payload = len - HDR;
            if payload > out.len() {
                return Err(RingError::BufferTooSmall(payload));
            }
            // SAFETY: bounds checked above; the copy detaches the record from
            // memory the producer may reuse once tail moves.
            unsafe {
                core::ptr::copy_nonoverlapping(self.buf.add(off + HDR), out.as_mut_ptr(), payload)
            };
            self.tail
                .store(tail.wrapping_add(adv as u32), Ordering::Release);
            return Ok(Some(Record { tag, len: payload }));
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.ready()
    }
}

// SAFETY: each end is used by one thread at a time (it is `!Sync`); the
// shared words are atomics and the byte area is only touched through them.
unsafe impl Send for Producer<'_> {}
unsafe impl Send for Consumer<'_> {}
