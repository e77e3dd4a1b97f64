//! A single-producer single-consumer ring of length-prefixed messages in
//! shared memory, for two VMs (or two threads in the host tests).
//!
//! Layout at the ring's base (little-endian):
//!
//! | offset | writer | what |
//! | --- | --- | --- |
//! | 0x00 | producer | `head`: bytes ever written (wraps at 2^32) |
//! | 0x40 | consumer | `tail`: bytes ever consumed |
//! | 0x80 | producer | `cap` bytes of data (a power of two) |
//!
//! A message is its length (u32) then its bytes, packed with no padding,
//! so lengths and bodies sit at any offset and wrap at the end of the data.
//! The producer copies, then publishes `head` (release); the consumer reads
//! `head` (acquire), copies out, then publishes `tail` (release). Each word
//! has one writer and its own cache line.

use core::sync::atomic::{AtomicU32, Ordering};

const HEAD: usize = 0x00;
const TAIL: usize = 0x40;
/// Bytes before the data.
pub const HEADER: usize = 0x80;
const LEN: usize = 4;

#[derive(Debug, PartialEq, Eq)]
pub enum RingError {
    /// The message can never fit.
    TooBig { len: usize, cap: u32 },
    /// The peer's words are inconsistent (a bug, a restart, or memory
    /// written by someone else).
    Corrupt { head: u32, tail: u32, len: u32 },
    /// A message longer than the receiver's buffer.
    TooLong { len: u32, room: usize },
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            RingError::TooBig { len, cap } => {
                write!(f, "a {len}-byte message cannot fit a {cap}-byte ring")
            }
            RingError::Corrupt { head, tail, len } => {
                write!(f, "ring corrupt: head {head}, tail {tail}, length {len}")
            }
            RingError::TooLong { len, room } => {
                write!(f, "a {len}-byte message for a {room}-byte buffer")
            }
        }
    }
}

impl core::error::Error for RingError {}

/// Bytes waiting in the ring.
pub fn used(head: u32, tail: u32) -> u32 {
    head.wrapping_sub(tail)
}

/// Where `len` bytes starting at stream position `pos` lie in the data:
/// (offset, bytes before the end, bytes from the start after wrapping).
pub fn segments(pos: u32, len: usize, cap: u32) -> (usize, usize, usize) {
    let off = (pos & (cap - 1)) as usize;
    let first = len.min(cap as usize - off);
    (off, first, len - first)
}

/// Largest ring capacity (a power of two) that fits `bytes` with its
/// header, at most `max`.
pub fn capacity_for(bytes: usize, max: u32) -> Option<u32> {
    let room = bytes.checked_sub(HEADER)?;
    if room < 16 {
        return None;
    }
    let cap = 1u32 << (usize::BITS - 1 - room.leading_zeros()).min(31);
    Some(cap.min(max))
}

/// One end of a ring at `base`.
struct Ring {
    base: *mut u8,
    cap: u32,
}

// The ring is shared memory by design; each end touches only its words.
unsafe impl Send for Ring {}

impl Ring {
    /// # Safety
    /// `base` must point to `HEADER + cap` bytes that stay mapped for the
    /// ring's life, 64-byte aligned; `cap` a power of two.
    unsafe fn new(base: *mut u8, cap: u32) -> Ring {
        assert!(cap.is_power_of_two() && cap >= 16 && (base as usize).is_multiple_of(64));
        Ring { base, cap }
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: in the ring's header (see `new`), 4-aligned.
        unsafe { &*(self.base.add(off) as *const AtomicU32) }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the data follows the header (see `new`).
        unsafe { self.base.add(HEADER) }
    }

    /// Copies `src` into the data at stream position `pos` (a plain
    /// memcpy: the region is cacheable Normal memory on both sides).
    fn put(&self, pos: u32, src: &[u8]) {
        let (off, first, rest) = segments(pos, src.len(), self.cap);
        // SAFETY: `segments` keeps both pieces inside the data.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), self.data().add(off), first);
            core::ptr::copy_nonoverlapping(src.as_ptr().add(first), self.data(), rest);
        }
    }

    fn get(&self, pos: u32, dst: &mut [u8]) {
        let (off, first, rest) = segments(pos, dst.len(), self.cap);
        // SAFETY: as in `put`.
        unsafe {
            core::ptr::copy_nonoverlapping(self.data().add(off), dst.as_mut_ptr(), first);
            core::ptr::copy_nonoverlapping(self.data(), dst.as_mut_ptr().add(first), rest);
        }
    }
}

pub struct Producer(Ring);
pub struct Consumer(Ring);

impl Producer {
    /// # Safety
    /// As for the ring's memory: `base` 64-byte aligned with `HEADER +
    /// cap` bytes mapped writable; one producer per ring.
    pub unsafe fn new(base: *mut u8, cap: u32) -> Producer {
        Producer(Ring::new(base, cap))
    }

    /// Starts the ring over: only while the consumer is not using it.
    pub fn reset(&self) {
        self.0.word(HEAD).store(0, Ordering::Release);
    }

    /// Sends one message; `Ok(false)` when there is no room yet.
    pub fn try_send(&self, msg: &[u8]) -> Result<bool, RingError> {
        let need = LEN + msg.len();
        if need > self.0.cap as usize {
            return Err(RingError::TooBig {
                len: msg.len(),
                cap: self.0.cap,
            });
        }
        let head = self.0.word(HEAD).load(Ordering::Relaxed);
        let tail = self.0.word(TAIL).load(Ordering::Acquire);
        let waiting = used(head, tail);
        if waiting > self.0.cap {
            return Err(RingError::Corrupt { head, tail, len: 0 });
        }
        if (self.0.cap - waiting) < need as u32 {
            return Ok(false);
        }
        self.0.put(head, &(msg.len() as u32).to_le_bytes());
        self.0.put(head.wrapping_add(LEN as u32), msg);
        self.0
            .word(HEAD)
            .store(head.wrapping_add(need as u32), Ordering::Release);
        Ok(true)
    }
}

impl Consumer {
    /// # Safety
    /// As for [`Producer::new`]; one consumer per ring.
    pub unsafe fn new(base: *mut u8, cap: u32) -> Consumer {
        Consumer(Ring::new(base, cap))
    }

    pub fn reset(&self) {
        self.0.word(TAIL).store(0, Ordering::Release);
    }

    /// Takes one message into the front of `buf`; its length, or `None`
    /// when the ring is empty.
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<Option<usize>, RingError> {
        let tail = self.0.word(TAIL).load(Ordering::Relaxed);
        let head = self.0.word(HEAD).load(Ordering::Acquire);
        let waiting = used(head, tail);
        if waiting == 0 {
            return Ok(None);
        }
        let mut len = [0u8; LEN];
        if waiting < LEN as u32 || waiting > self.0.cap {
            return Err(RingError::Corrupt { head, tail, len: 0 });
        }
        self.0.get(tail, &mut len);
        let len = u32::from_le_bytes(len);
        if len > waiting - LEN as u32 {
            return Err(RingError::Corrupt { head, tail, len });
        }
        let room = buf.len();
        let buf = buf
            .get_mut(..len as usize)
            .ok_or(RingError::TooLong { len, room })?;
        self.0.get(tail.wrapping_add(LEN as u32), buf);
        self.0
            .word(TAIL)
            .store(tail.wrapping_add(LEN as u32 + len), Ordering::Release);
        Ok(Some(len as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2021::*;
    use std::vec;

    /// A cache line, for 64-byte aligned test memory.
    #[derive(Clone, Copy)]
    #[repr(C, align(64))]
    pub struct Line([u8; 64]);

    /// 64-byte aligned memory for a ring.
    fn memory(cap: u32) -> Vec<Line> {
        vec![Line([0; 64]); (HEADER + cap as usize) / 64]
    }

    #[test]
    fn index_maths() {
        assert_eq!(used(5, 3), 2);
        assert_eq!(used(2, u32::MAX - 1), 4);
        assert_eq!(segments(3, 5, 16), (3, 5, 0));
        assert_eq!(segments(13, 5, 16), (13, 3, 2));
        assert_eq!(segments(16 + 13, 5, 16), (13, 3, 2));
        assert_eq!(segments(u32::MAX, 3, 16), (15, 1, 2));
        assert_eq!(capacity_for(0x80 + 4096, u32::MAX), Some(4096));
        assert_eq!(capacity_for(0x80 + 5000, u32::MAX), Some(4096));
        assert_eq!(capacity_for(0x80 + 5000, 1024), Some(1024));
        assert_eq!(capacity_for(0x80 + 8, u32::MAX), None);
        assert_eq!(capacity_for(10, u32::MAX), None);
    }

    #[test]
    fn odd_messages_wrap_in_order() {
        let mut m = memory(64);
        let base = m.as_mut_ptr() as *mut u8;
        let (p, c) = unsafe { (Producer::new(base, 64), Consumer::new(base, 64)) };
        let mut buf = [0u8; 64];
        for i in 0..1000u32 {
            let msg: Vec<u8> = (0..(i % 37) as u8).map(|b| b ^ i as u8).collect();
            assert!(p.try_send(&msg).unwrap());
            let n = c.try_recv(&mut buf).unwrap().unwrap();
            assert_eq!(buf[..n], msg, "message {i}");
            assert_eq!(c.try_recv(&mut buf), Ok(None));
        }
        // A buffer too short is an error, not a truncation.
        assert!(p.try_send(&[7; 9]).unwrap());
        assert_eq!(
            c.try_recv(&mut buf[..8]),
            Err(RingError::TooLong { len: 9, room: 8 })
        );
        assert_eq!(c.try_recv(&mut buf), Ok(Some(9)));
        assert_eq!(
            p.try_send(&[0; 61]),
            Err(RingError::TooBig { len: 61, cap: 64 })
        );
        // Full: 60 + 4 fills it exactly.
        assert!(p.try_send(&[1; 60]).unwrap());
        assert!(!p.try_send(&[]).unwrap());
    }

    #[test]
    fn a_bad_length_is_reported_not_followed() {
        let mut m = memory(64);
        let base = m.as_mut_ptr() as *mut u8;
        let (p, c) = unsafe { (Producer::new(base, 64), Consumer::new(base, 64)) };
        assert!(p.try_send(&[9; 8]).unwrap());
        unsafe { *base.add(HEADER) = 200 };
        let mut buf = [0u8; 64];
        assert!(matches!(
            c.try_recv(&mut buf),
            Err(RingError::Corrupt { len: 200, .. })
        ));
    }

    fn message(i: u32) -> Vec<u8> {
        (0..1 + i % 51)
            .map(|k| (i.wrapping_mul(7) ^ k) as u8)
            .collect()
    }

    #[test]
    fn two_threads_100k_messages() {
        let mut m = memory(256);
        let base = m.as_mut_ptr() as usize;
        let sender = std::thread::spawn(move || {
            let p = unsafe { Producer::new(base as *mut u8, 256) };
            for i in 0..100_000u32 {
                let msg = message(i);
                while !p.try_send(&msg).unwrap() {
                    std::hint::spin_loop();
                }
            }
        });
        let c = unsafe { Consumer::new(base as *mut u8, 256) };
        let mut buf = [0u8; 64];
        for i in 0..100_000u32 {
            let n = loop {
                match c.try_recv(&mut buf).unwrap() {
                    Some(n) => break n,
                    None => std::hint::spin_loop(),
                }
            };
            assert_eq!(buf[..n], message(i), "message {i}");
        }
        sender.join().unwrap();
        drop(m);
    }
}
