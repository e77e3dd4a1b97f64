//! The reply slot: one cache line of the header that carries the answer to
//! every synchronous call.
//!
//! A reply through the reply ring moves at least two lines from the
//! server's core to the client's (the ring's `head` and the record), one
//! after the other, and the server's stores to a line the client is
//! polling keep losing it to the poller. The slot is one line that the
//! server writes with three stores in a row (value, tag, then the sequence
//! number, a release store) and the client polls alone, backing off
//! between looks: one transfer each way instead of several.
//!
//! | offset | what |
//! |---|---|
//! | 0 | sequence: the number of sync calls answered so far (written last) |
//! | 4 | tag: the opcode answered, bit 16 set if bytes wait in the reply ring |
//! | 8 | value (u64, low word first) |
//!
//! Replies with bytes (strings) still push their record to the reply ring
//! first; the slot then says so. The server only ever writes the slot, so
//! a client cannot make it read anything from there.

use core::sync::atomic::{AtomicU32, Ordering};

/// Tag bit: the reply's bytes are the next record of the reply ring.
pub const RING_BYTES: u32 = 1 << 16;

/// A reply as read from the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotReply {
    pub tag: u32,
    pub value: u64,
}

pub struct ReplySlot<'a> {
    seq: &'a AtomicU32,
    tag: &'a AtomicU32,
    lo: &'a AtomicU32,
    hi: &'a AtomicU32,
}

impl<'a> ReplySlot<'a> {
    pub(crate) fn new(
        seq: &'a AtomicU32,
        tag: &'a AtomicU32,
        lo: &'a AtomicU32,
        hi: &'a AtomicU32,
    ) -> Self {
        ReplySlot { seq, tag, lo, hi }
    }

    /// The word a waiting client polls and sleeps on (the server rings it
    /// after a reply when the client sleeps).
    pub fn seq_word(&self) -> &'a AtomicU32 {
        self.seq
    }

    /// Server: publishes reply number `seq`. The sequence word is stored
    /// last, so a client that sees it sees the rest.
    pub fn post(&self, seq: u32, tag: u32, value: u64) {
        self.lo.store((value as u32).to_le(), Ordering::Relaxed);
        self.hi
            .store(((value >> 32) as u32).to_le(), Ordering::Relaxed);
        self.tag.store(tag.to_le(), Ordering::Relaxed);
        self.seq.store(seq.to_le(), Ordering::Release);
    }

    /// Client: reply number `seq` if it has arrived. The server writes the
    /// next reply only after the next sync call, which the client sends
    /// after reading this one, so the fields cannot change under it.
    pub fn take(&self, seq: u32) -> Option<SlotReply> {
        if u32::from_le(self.seq.load(Ordering::Acquire)) != seq {
            return None;
        }
        let lo = u32::from_le(self.lo.load(Ordering::Relaxed)) as u64;
        let hi = u32::from_le(self.hi.load(Ordering::Relaxed)) as u64;
        Some(SlotReply {
            tag: u32::from_le(self.tag.load(Ordering::Relaxed)),
            value: lo | hi << 32,
        })
    }

    /// The sequence number now in the slot.
    pub fn seq(&self) -> u32 {
        u32::from_le(self.seq.load(Ordering::Acquire))
    }
}
