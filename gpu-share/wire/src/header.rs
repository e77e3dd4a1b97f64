//! The region header: what both sides check before they trust the layout.
//!
//! Layout of a region (all offsets from its base, little-endian, 64-byte
//! aligned so that the two sides do not share cache lines needlessly):
//!
//! | offset | what                                                        |
//! |--------|-------------------------------------------------------------|
//! | 0      | magic `TGPU`, version, region size, section offsets/sizes   |
//! | 64     | session state word (0 = open, else a close reason code)     |
//! | 68     | "server sleeping" flag: set while it waits for commands     |
//! | 72     | "client waiting for space" flag (command ring or heap)      |
//! | 76     | "client sleeping" flag: set while it sleeps on a reply      |
//! | 128    | command ring head, 192 command ring tail                    |
//! | 256    | reply ring head, 320 reply ring tail                        |
//! | 384    | heap head, 448 heap tail                                    |
//! | 512    | reply slot: sequence, tag, value of the last sync reply     |
//! | 576    | command ring bytes, then reply ring bytes, then heap bytes  |

use core::sync::atomic::AtomicU32;

pub const MAGIC: u32 = u32::from_le_bytes(*b"TGPU");
/// Bumped whenever the layout or the record encoding changes.
pub const VERSION: u32 = 4;
pub const HEADER_SIZE: u32 = 576;
/// Smallest ring or heap; also keeps every section 64-byte aligned.
pub const MIN_SECTION: u32 = 4096;

pub(crate) const OFF_STATE: usize = 64;
pub(crate) const OFF_SERVER_SLEEPING: usize = 68;
pub(crate) const OFF_CLIENT_WAITING: usize = 72;
pub(crate) const OFF_CLIENT_SLEEPING: usize = 76;
pub(crate) const OFF_CMD_HEAD: usize = 128;
pub(crate) const OFF_CMD_TAIL: usize = 192;
pub(crate) const OFF_REPLY_HEAD: usize = 256;
pub(crate) const OFF_REPLY_TAIL: usize = 320;
pub(crate) const OFF_HEAP_HEAD: usize = 384;
pub(crate) const OFF_HEAP_TAIL: usize = 448;
pub(crate) const OFF_REPLY_SLOT: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionError {
    TooSmall,
    BadMagic(u32),
    BadVersion(u32),
    BadSize,
    SizeMismatch { header: u32, mapped: usize },
}

impl core::fmt::Display for RegionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RegionError::TooSmall => write!(f, "region smaller than its header"),
            RegionError::BadMagic(m) => write!(f, "bad magic {m:#x}"),
            RegionError::BadVersion(v) => write!(f, "protocol version {v}, expected {VERSION}"),
            RegionError::BadSize => write!(f, "section sizes are not powers of two or overlap"),
            RegionError::SizeMismatch { header, mapped } => {
                write!(f, "header says {header} bytes but {mapped} are mapped")
            }
        }
    }
}

/// Sizes of the three sections; offsets follow from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub cmd_size: u32,
    pub reply_size: u32,
    pub heap_size: u32,
}

impl Layout {
    /// Default sizes used by the host transport: 1 MiB of commands, 256 KiB
    /// of replies, 64 MiB of heap (a 4096x4096 RGBA texture fits).
    pub const DEFAULT: Layout = Layout {
        cmd_size: 1 << 20,
        reply_size: 1 << 18,
        heap_size: 1 << 26,
    };

    pub fn valid(&self) -> bool {
        [self.cmd_size, self.reply_size, self.heap_size]
            .iter()
            .all(|s| s.is_power_of_two() && *s >= MIN_SECTION && *s <= 1 << 30)
    }
    pub fn cmd_off(&self) -> u32 {
        HEADER_SIZE
    }
    pub fn reply_off(&self) -> u32 {
        HEADER_SIZE + self.cmd_size
    }
    pub fn heap_off(&self) -> u32 {
        HEADER_SIZE + self.cmd_size + self.reply_size
    }
    pub fn region_size(&self) -> usize {
        HEADER_SIZE as usize
            + self.cmd_size as usize
            + self.reply_size as usize
            + self.heap_size as usize
    }

    /// Writes a fresh header and clears both rings (the creator of the
    /// region does this for each session): a region used again, as a
    /// cross-VM one is after a restart, must not hold the last session's
    /// record stamps where the new session's first records go.
    ///
    /// # Safety
    /// `base` must point to `len` writable bytes, 64-byte aligned, not yet
    /// shared with a peer that reads them.
    pub unsafe fn init(&self, base: *mut u8, len: usize) -> Result<(), RegionError> {
        if !self.valid() {
            return Err(RegionError::BadSize);
        }
        if len < self.region_size() {
            return Err(RegionError::TooSmall);
        }
        let words = [
            MAGIC,
            VERSION,
            self.region_size() as u32,
            HEADER_SIZE,
            self.cmd_off(),
            self.cmd_size,
            self.reply_off(),
            self.reply_size,
            self.heap_off(),
            self.heap_size,
        ];
        // SAFETY: caller guarantees HEADER_SIZE writable bytes at base.
        unsafe {
            core::ptr::write_bytes(base, 0, HEADER_SIZE as usize);
            core::ptr::write_bytes(
                base.add(self.cmd_off() as usize),
                0,
                (self.cmd_size + self.reply_size) as usize,
            );
            for (i, w) in words.iter().enumerate() {
                core::ptr::write_volatile(base.add(i * 4) as *mut u32, w.to_le());
            }
        }
        Ok(())
    }

    /// Reads and checks the header of a region mapped at `base`.
    ///
    /// # Safety
    /// `base` must point to `len` readable bytes, 4-byte aligned.
    pub unsafe fn check(base: *const u8, len: usize) -> Result<Layout, RegionError> {
        if len < HEADER_SIZE as usize {
            return Err(RegionError::TooSmall);
        }
        // SAFETY: at least HEADER_SIZE bytes are readable.
        let w = |i: usize| unsafe {
            u32::from_le(core::ptr::read_volatile(base.add(i * 4) as *const u32))
        };
        if w(0) != MAGIC {
            return Err(RegionError::BadMagic(w(0)));
        }
        if w(1) != VERSION {
            return Err(RegionError::BadVersion(w(1)));
        }
        let l = Layout {
            cmd_size: w(5),
            reply_size: w(7),
            heap_size: w(9),
        };
        if !l.valid()
            || w(3) != HEADER_SIZE
            || w(4) != l.cmd_off()
            || w(6) != l.reply_off()
            || w(8) != l.heap_off()
            || w(2) as usize != l.region_size()
        {
            return Err(RegionError::BadSize);
        }
        if l.region_size() > len {
            return Err(RegionError::SizeMismatch {
                header: w(2),
                mapped: len,
            });
        }
        Ok(l)
    }
}

/// A checked view of a mapped region; hands out the ring and heap ends.
pub struct Region {
    base: *mut u8,
    layout: Layout,
}

// SAFETY: the region is shared memory designed for concurrent access; all
// shared words are atomics and byte areas are only copied.
unsafe impl Send for Region {}
unsafe impl Sync for Region {}

impl Region {
    /// # Safety
    /// `base..base+len` must stay mapped for the life of the Region and of
    /// every ring end taken from it; `base` must be 64-byte aligned.
    pub unsafe fn new(base: *mut u8, len: usize) -> Result<Region, RegionError> {
        // SAFETY: forwarded from the caller.
        let layout = unsafe { Layout::check(base, len)? };
        Ok(Region { base, layout })
    }
    pub fn layout(&self) -> Layout {
        self.layout
    }
    pub(crate) fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: off is one of the fixed header offsets, inside the header,
        // 4-aligned; AtomicU32 has the layout of u32.
        unsafe { &*(self.base.add(off) as *const AtomicU32) }
    }
    pub(crate) fn section(&self, off: u32) -> *mut u8 {
        // SAFETY: offsets come from a checked layout.
        unsafe { self.base.add(off as usize) }
    }
    /// Session state: 0 while open, else the reason code of whoever closed it.
    pub fn state(&self) -> &AtomicU32 {
        self.word(OFF_STATE)
    }
    /// Non-zero while the server sleeps on the command ring: only then does
    /// the client need to ring (saves a system call per batch).
    pub fn server_sleeping(&self) -> &AtomicU32 {
        self.word(OFF_SERVER_SLEEPING)
    }
    /// Non-zero while the client waits for ring or heap space.
    pub fn client_waiting(&self) -> &AtomicU32 {
        self.word(OFF_CLIENT_WAITING)
    }
    /// Non-zero while the client sleeps on the reply ring: only then does
    /// the server ring after a reply (a system call saved per sync call).
    pub fn client_sleeping(&self) -> &AtomicU32 {
        self.word(OFF_CLIENT_SLEEPING)
    }
    /// The reply slot: every synchronous call's answer (see [`crate::slot`]).
    pub fn reply_slot(&self) -> crate::ReplySlot<'_> {
        crate::ReplySlot::new(
            self.word(OFF_REPLY_SLOT),
            self.word(OFF_REPLY_SLOT + 4),
            self.word(OFF_REPLY_SLOT + 8),
            self.word(OFF_REPLY_SLOT + 12),
        )
    }
    pub fn cmd_producer(&self) -> crate::Producer<'_> {
        crate::Producer::new(
            self.word(OFF_CMD_HEAD),
            self.word(OFF_CMD_TAIL),
            self.section(self.layout.cmd_off()),
            self.layout.cmd_size,
        )
    }
    pub fn cmd_consumer(&self) -> crate::Consumer<'_> {
        crate::Consumer::new(
            self.word(OFF_CMD_HEAD),
            self.word(OFF_CMD_TAIL),
            self.section(self.layout.cmd_off()),
            self.layout.cmd_size,
        )
    }
    pub fn reply_producer(&self) -> crate::Producer<'_> {
        crate::Producer::new(
            self.word(OFF_REPLY_HEAD),
            self.word(OFF_REPLY_TAIL),
            self.section(self.layout.reply_off()),
            self.layout.reply_size,
        )
    }
    pub fn reply_consumer(&self) -> crate::Consumer<'_> {
        crate::Consumer::new(
            self.word(OFF_REPLY_HEAD),
            self.word(OFF_REPLY_TAIL),
            self.section(self.layout.reply_off()),
            self.layout.reply_size,
        )
    }
    pub fn heap_writer(&self) -> crate::HeapWriter<'_> {
        crate::HeapWriter::new(
            self.word(OFF_HEAP_HEAD),
            self.word(OFF_HEAP_TAIL),
            self.section(self.layout.heap_off()),
            self.layout.heap_size,
        )
    }
    pub fn heap_reader(&self) -> crate::HeapReader<'_> {
        crate::HeapReader::new(
            self.word(OFF_HEAP_HEAD),
            self.word(OFF_HEAP_TAIL),
            self.section(self.layout.heap_off()),
            self.layout.heap_size,
        )
    }
}
