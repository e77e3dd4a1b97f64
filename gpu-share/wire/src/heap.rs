//! Bulk heap: a byte ring for payloads too big or too variable for records.
//!
//! The client allocates contiguous chunks in order (never straddling the end),
//! writes them, publishes `head`, then sends the record that names them by
//! [`HeapDesc`]. The server checks each descriptor against what was published
//! and, once a record is done, releases everything up to the record's last
//! chunk by moving `tail`. Output buffers work the same way: the client
//! reserves a chunk, the server fills it before replying, and the client
//! copies it out before it allocates again.

use core::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapError {
    Full,
    TooLarge,
    /// A descriptor names bytes that were not published or already freed.
    BadDesc(u64),
    Corrupt(&'static str),
}

impl core::fmt::Display for HeapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HeapError::Full => write!(f, "heap full"),
            HeapError::TooLarge => write!(f, "payload larger than the heap"),
            HeapError::BadDesc(d) => write!(f, "heap descriptor {d:#x} outside the published heap"),
            HeapError::Corrupt(w) => write!(f, "corrupt heap: {w}"),
        }
    }
}

/// Where a payload lives: free-running offset and length, packed in a u64
/// slot as `off | len << 32`. `u64::MAX` stands for a NULL pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapDesc {
    pub off: u32,
    pub len: u32,
}

impl HeapDesc {
    pub const NULL: u64 = u64::MAX;
    pub fn pack(self) -> u64 {
        self.off as u64 | (self.len as u64) << 32
    }
    pub fn unpack(v: u64) -> Option<HeapDesc> {
        if v == Self::NULL {
            None
        } else {
            Some(HeapDesc {
                off: v as u32,
                len: (v >> 32) as u32,
            })
        }
    }
    pub fn end(self) -> u32 {
        self.off.wrapping_add(self.len)
    }
}

pub struct HeapWriter<'a> {
    head: &'a AtomicU32,
    tail: &'a AtomicU32,
    buf: *mut u8,
    size: u32,
    /// Allocated but not yet published.
    pending: u32,
}

impl<'a> HeapWriter<'a> {
    pub(crate) fn new(head: &'a AtomicU32, tail: &'a AtomicU32, buf: *mut u8, size: u32) -> Self {
        let pending = head.load(Ordering::Relaxed);
        HeapWriter {
            head,
            tail,
            buf,
            size,
            pending,
        }
    }
    pub fn size(&self) -> usize {
        self.size as usize
    }
    pub fn tail_word(&self) -> &'a AtomicU32 {
        self.tail
    }

    /// Reserves `len` contiguous bytes (rounded up to 8) for the client to
    /// write.
    pub fn alloc(&mut self, len: usize) -> Result<HeapDesc, HeapError> {
        self.alloc_in(len, true)
    }

    /// Reserves `len` bytes for the server to write (an output buffer).
    /// These go round the heap instead of starting again at 0 when it is
    /// idle: the driver then writes lines that the client's core did not
    /// just read (on the H200 a 256 KiB `glReadPixels` per frame ran
    /// 10-15% faster so).
    pub fn alloc_output(&mut self, len: usize) -> Result<HeapDesc, HeapError> {
        self.alloc_in(len, false)
    }

    fn alloc_in(&mut self, len: usize, reuse: bool) -> Result<HeapDesc, HeapError> {
        if len > self.size as usize {
            return Err(HeapError::TooLarge);
        }
        let rounded = ((len + 7) & !7) as u32;
        let tail = self.tail.load(Ordering::Acquire);
        let mut pos = self.pending;
        let off = pos & (self.size - 1);
        // Skip to offset 0 of the next lap when the chunk would straddle the
        // end, and also when the reader has released everything: a steady
        // stream of uploads then reuses the same, cache-warm bytes instead of
        // sweeping the whole heap. (The idle restart only if the skipped
        // bytes and the chunk fit in one lap, as the reader's tail cannot
        // move over the gap by itself.)
        let straddles = off + rounded > self.size;
        let idle_restart = reuse && tail == pos && off != 0 && len > 0 && rounded <= off;
        if straddles || idle_restart {
            pos = pos.wrapping_add(self.size - off);
        }
        let used = pos.wrapping_add(rounded).wrapping_sub(tail);
        if used > self.size {
            if self.pending.wrapping_sub(tail) > self.size {
                return Err(HeapError::Corrupt("tail ahead of head"));
            }
            return Err(HeapError::Full);
        }
        self.pending = pos.wrapping_add(rounded);
        Ok(HeapDesc {
            off: pos,
            len: len as u32,
        })
    }

    /// Pointer to an allocated chunk, valid for `d.len` bytes.
    pub fn ptr(&self, d: HeapDesc) -> *mut u8 {
        // SAFETY: d came from alloc, so it is inside the heap.
        unsafe { self.buf.add((d.off & (self.size - 1)) as usize) }
    }

    pub fn write(&mut self, d: HeapDesc, data: &[u8]) {
        let n = data.len().min(d.len as usize);
        // SAFETY: chunk is owned by the producer until published and consumed.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr(d), n) };
    }

    pub fn read(&self, d: HeapDesc, out: &mut [u8]) {
        let n = out.len().min(d.len as usize);
        // SAFETY: as for write; the server is done with the chunk.
        unsafe { core::ptr::copy_nonoverlapping(self.ptr(d), out.as_mut_ptr(), n) };
    }

    /// Makes all allocated chunks visible to the reader.
    pub fn publish(&mut self) {
        // Only when it moved: the server reads this word, and a store
        // would take its cache line back from the server's core for
        // nothing (every call publishes, few allocate).
        if self.head.load(Ordering::Relaxed) != self.pending {
            self.head.store(self.pending, Ordering::Release);
        }
    }

    /// True when the reader released everything.
    pub fn is_idle(&self) -> bool {
        self.tail.load(Ordering::Acquire) == self.pending
    }
}

pub struct HeapReader<'a> {
    head: &'a AtomicU32,
    tail: &'a AtomicU32,
    buf: *mut u8,
    size: u32,
}

impl<'a> HeapReader<'a> {
    pub(crate) fn new(head: &'a AtomicU32, tail: &'a AtomicU32, buf: *mut u8, size: u32) -> Self {
        HeapReader {
            head,
            tail,
            buf,
            size,
        }
    }

    /// The word a writer waiting for space sleeps on.
    pub fn tail_word(&self) -> &'a AtomicU32 {
        self.tail
    }

    /// Checks a descriptor and returns where its bytes are.
    pub fn get(&self, raw: u64) -> Result<Option<(*mut u8, usize)>, HeapError> {
        let Some(d) = HeapDesc::unpack(raw) else {
            return Ok(None);
        };
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        let published = head.wrapping_sub(tail);
        if published > self.size {
            return Err(HeapError::Corrupt("head outside the heap"));
        }
        let rel = d.off.wrapping_sub(tail);
        let off = d.off & (self.size - 1);
        if rel > published
            || d.len > published - rel
            || off as u64 + d.len as u64 > self.size as u64
        {
            return Err(HeapError::BadDesc(raw));
        }
        // SAFETY: the chunk lies inside the heap section.
        Ok(Some((
            unsafe { self.buf.add(off as usize) },
            d.len as usize,
        )))
    }

    /// Frees everything before `end` (the end of the last chunk a finished
    /// record used). Ends must not go backwards.
    pub fn release_to(&mut self, end: u32) -> Result<(), HeapError> {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        if end.wrapping_sub(tail) > head.wrapping_sub(tail) {
            return Err(HeapError::Corrupt("release beyond head"));
        }
        self.tail.store(end, Ordering::Release);
        Ok(())
    }
}

// SAFETY: as for the ring ends: one owner at a time, atomics for sharing.
unsafe impl Send for HeapWriter<'_> {}
unsafe impl Send for HeapReader<'_> {}
