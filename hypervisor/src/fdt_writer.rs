//! A flattened-device-tree (version 17) writer into a caller's buffer, with
//! no allocation: what the hypervisor uses to build each guest's DTB.
//!
//! Layout of the finished blob: the 40-byte header, an empty memory
//! reservation block (one zero entry), the structure block, then the strings
//! block. While the tree is being written the structure block grows forward
//! from its final place and the strings block grows at the end of the buffer;
//! [`FdtWriter::finish`] moves the strings down behind the structure and fills
//! in the header. Property names are stored once (a linear search over the
//! strings written so far).
//!
//! Every call checks before it writes: a failed call (buffer too small, a bad
//! name, ...) leaves the writer as it was, and nothing is ever written
//! outside the buffer. No input makes it panic.

use core::fmt;

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_END: u32 = 9;

const HEADER_LEN: usize = 40;
/// The memory reservation block: only its terminating zero entry.
const RSV_LEN: usize = 16;
const OFF_RSV: usize = HEADER_LEN;
const OFF_STRUCT: usize = OFF_RSV + RSV_LEN;

/// The version written, and the oldest version it is compatible with.
pub const FDT_VERSION: u32 = 17;
pub const FDT_LAST_COMP_VERSION: u32 = 16;
/// The smallest buffer [`FdtWriter::new`] accepts (header, reservation block,
/// `FDT_END`); a useful tree needs more.
pub const MIN_BUFFER: usize = OFF_STRUCT + 4;
/// Longest property name (Devicetree Specification, 2.2.4).
pub const MAX_PROPERTY_NAME_LEN: usize = 31;
/// Longest node name, unit address included (node-name 31 + `@` + a
/// unit address of up to 32 characters).
pub const MAX_NODE_NAME_LEN: usize = 64;

/// Why a tree could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdtWriteError {
    /// The buffer cannot hold the tree.
    BufferTooSmall,
    /// `end_node` without an open node, a second root node, or `finish` with
    /// nodes still open (or without any node).
    Unbalanced,
    /// A property written before the root node was begun or after it ended.
    PropertyOutsideNode,
    /// A node or property name longer than the specification allows.
    NameTooLong,
    /// A name containing NUL (or `/` for nodes), an empty name below the
    /// root, or a non-empty name for the root.
    InvalidName,
    /// A string value containing NUL.
    InvalidString,
    /// What the caller asked for cannot be described (guest DTB input).
    InvalidInput(&'static str),
}

impl fmt::Display for FdtWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdtWriteError::BufferTooSmall => write!(f, "device tree buffer too small"),
            FdtWriteError::Unbalanced => write!(f, "device tree nodes not balanced"),
            FdtWriteError::PropertyOutsideNode => write!(f, "device tree property outside a node"),
            FdtWriteError::NameTooLong => write!(f, "device tree name too long"),
            FdtWriteError::InvalidName => write!(f, "invalid device tree name"),
            FdtWriteError::InvalidString => write!(f, "device tree string contains NUL"),
            FdtWriteError::InvalidInput(what) => write!(f, "cannot describe: {what}"),
        }
    }
}

const fn align4(x: usize) -> usize {
    (x + 3) & !3
}

/// Writes a device tree into a borrowed buffer. See the module docs.
pub struct FdtWriter<'a> {
    buf: &'a mut [u8],
    /// End of the structure block written so far.
    struct_end: usize,
    /// Start of the strings block, which ends at `buf.len()`.
    strings_start: usize,
    /// Nodes open.
    depth: usize,
    /// The root node has been begun (there can be only one).
    root_seen: bool,
}

impl<'a> FdtWriter<'a> {
    /// Starts a tree in `buf` (at least [`MIN_BUFFER`] bytes). Only the first
    /// 4 GiB of a larger buffer are used, as offsets in a DTB are 32-bit.
    pub fn new(buf: &'a mut [u8]) -> Result<Self, FdtWriteError> {
        let cap = buf.len().min(u32::MAX as usize);
        let buf = buf.get_mut(..cap).ok_or(FdtWriteError::BufferTooSmall)?;
        if buf.len() < MIN_BUFFER {
            return Err(FdtWriteError::BufferTooSmall);
        }
        buf[..OFF_STRUCT].fill(0);
        let strings_start = buf.len();
        Ok(Self {
            buf,
            struct_end: OFF_STRUCT,
            strings_start,
            depth: 0,
            root_seen: false,
        })
    }

    /// Room between the structure block and the strings block, keeping 4
    /// bytes for the final `FDT_END`.
    fn free(&self) -> usize {
        self.strings_start.saturating_sub(self.struct_end + 4)
    }

    fn put_u32(&mut self, v: u32) {
        // Callers reserve the room first; `get_mut` keeps this panic-free.
        if let Some(dst) = self.buf.get_mut(self.struct_end..self.struct_end + 4) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
        self.struct_end += 4;
    }

    /// Opens a node. The first node is the root and must be named `""`; the
    /// others need a non-empty name without NUL or `/`, e.g. `memory@40000000`.
    pub fn begin_node(&mut self, name: &str) -> Result<(), FdtWriteError> {
        let bytes = name.as_bytes();
        if self.depth == 0 {
            if self.root_seen {
                return Err(FdtWriteError::Unbalanced);
            }
            if !bytes.is_empty() {
                return Err(FdtWriteError::InvalidName);
            }
        } else {
            if bytes.is_empty() || bytes.iter().any(|&b| b == 0 || b == b'/') {
                return Err(FdtWriteError::InvalidName);
            }
            if bytes.len() > MAX_NODE_NAME_LEN {
                return Err(FdtWriteError::NameTooLong);
            }
        }
        let padded = align4(bytes.len() + 1);
        if 4 + padded > self.free() {
            return Err(FdtWriteError::BufferTooSmall);
        }
        self.put_u32(FDT_BEGIN_NODE);
        let at = self.struct_end;
        let dst = &mut self.buf[at..at + padded];
        dst.fill(0);
        dst[..bytes.len()].copy_from_slice(bytes);
        self.struct_end += padded;
        self.depth += 1;
        self.root_seen = true;
        Ok(())
    }

    /// Closes the innermost open node.
    pub fn end_node(&mut self) -> Result<(), FdtWriteError> {
        if self.depth == 0 {
            return Err(FdtWriteError::Unbalanced);
        }
        if 4 > self.free() {
            return Err(FdtWriteError::BufferTooSmall);
        }
        self.put_u32(FDT_END_NODE);
        self.depth -= 1;
        Ok(())
    }

    /// The offset of `name` in the strings block, if it is there already
    /// (possibly as the tail of a longer name).
    fn find_string(&self, name: &[u8]) -> Option<usize> {
        let block = &self.buf[self.strings_start..];
        let n = name.len();
        (0..block.len().checked_sub(n)?).find(|&i| block[i + n] == 0 && &block[i..i + n] == name)
    }

    /// Writes a property of `len` bytes, which `fill` writes into a zeroed
    /// slice of exactly that length.
    fn property_with(
        &mut self,
        name: &str,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), FdtWriteError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.contains(&0) {
            return Err(FdtWriteError::InvalidName);
        }
        if bytes.len() > MAX_PROPERTY_NAME_LEN {
            return Err(FdtWriteError::NameTooLong);
        }
        if self.depth == 0 {
            return Err(FdtWriteError::PropertyOutsideNode);
        }
        // `free` is below 4 GiB, so after this the sums below cannot overflow
        // and `len` fits the 32-bit length field.
        if len > self.free() {
            return Err(FdtWriteError::BufferTooSmall);
        }
        let existing = self.find_string(bytes);
        let new_string = if existing.is_some() {
            0
        } else {
            bytes.len() + 1
        };
        if 12 + align4(len) + new_string > self.free() {
            return Err(FdtWriteError::BufferTooSmall);
        }
        let nameoff = match existing {
            Some(off) => off,
            None => {
                // Grow the strings block downwards by one name: what is there
                // moves down with its start, so earlier offsets stay valid.
                let old = self.strings_start;
                let start = old - new_string;
                let end = self.buf.len();
                self.buf.copy_within(old..end, start);
                let at = end - new_string;
                self.buf[at..end - 1].copy_from_slice(bytes);
                self.buf[end - 1] = 0;
                self.strings_start = start;
                at - start
            }
        };
        self.put_u32(FDT_PROP);
        self.put_u32(len as u32);
        self.put_u32(nameoff as u32);
        let at = self.struct_end;
        let padded = align4(len);
        let dst = &mut self.buf[at..at + padded];
        dst.fill(0);
        fill(&mut dst[..len]);
        self.struct_end += padded;
        Ok(())
    }

    /// A property with a raw value.
    pub fn property(&mut self, name: &str, value: &[u8]) -> Result<(), FdtWriteError> {
        self.property_with(name, value.len(), |d| d.copy_from_slice(value))
    }

    /// A property whose value is the concatenation of `parts` (e.g. a string
    /// put together from pieces; add the terminating NUL as the last part).
    pub fn property_concat(&mut self, name: &str, parts: &[&[u8]]) -> Result<(), FdtWriteError> {
        let len = parts
            .iter()
            .try_fold(0usize, |n, p| n.checked_add(p.len()))
            .ok_or(FdtWriteError::BufferTooSmall)?;
        self.property_with(name, len, |d| {
            let mut at = 0;
            for p in parts {
                d[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
        })
    }

    /// A property without a value (a flag such as `interrupt-controller`).
    pub fn property_null(&mut self, name: &str) -> Result<(), FdtWriteError> {
        self.property(name, &[])
    }

    /// One cell, big-endian.
    pub fn property_u32(&mut self, name: &str, value: u32) -> Result<(), FdtWriteError> {
        self.property(name, &value.to_be_bytes())
    }

    /// Two cells, big-endian, most significant first.
    pub fn property_u64(&mut self, name: &str, value: u64) -> Result<(), FdtWriteError> {
        self.property(name, &value.to_be_bytes())
    }

    /// A list of cells, e.g. `reg` or `interrupts`.
    pub fn property_cells(&mut self, name: &str, cells: &[u32]) -> Result<(), FdtWriteError> {
        let len = cells
            .len()
            .checked_mul(4)
            .ok_or(FdtWriteError::BufferTooSmall)?;
        self.property_with(name, len, |d| {
            for (dst, c) in d.chunks_exact_mut(4).zip(cells) {
                dst.copy_from_slice(&c.to_be_bytes());
            }
        })
    }

    /// A NUL-terminated string; `value` itself must not contain NUL.
    pub fn property_string(&mut self, name: &str, value: &str) -> Result<(), FdtWriteError> {
        self.property_string_list(name, &[value])
    }

    /// NUL-terminated strings one after the other (`compatible`).
    pub fn property_string_list(
        &mut self,
        name: &str,
        values: &[&str],
    ) -> Result<(), FdtWriteError> {
        if values.iter().any(|s| s.as_bytes().contains(&0)) {
            return Err(FdtWriteError::InvalidString);
        }
        let len = values
            .iter()
            .try_fold(0usize, |n, s| n.checked_add(s.len())?.checked_add(1))
            .ok_or(FdtWriteError::BufferTooSmall)?;
        self.property_with(name, len, |d| {
            let mut at = 0;
            for s in values {
                d[at..at + s.len()].copy_from_slice(s.as_bytes());
                at += s.len() + 1; // the NUL: `d` starts zeroed
            }
        })
    }

    /// Ends the tree: `FDT_END`, the strings block moved behind the
    /// structure block, the header. Returns the blob's total size; the blob
    /// is `buf[..size]`.
    pub fn finish(self) -> Result<usize, FdtWriteError> {
        if self.depth != 0 || !self.root_seen {
            return Err(FdtWriteError::Unbalanced);
        }
        let Self {
            buf,
            mut struct_end,
            strings_start,
            ..
        } = self;
        let end_token = buf
            .get_mut(struct_end..struct_end + 4)
            .filter(|_| struct_end + 4 <= strings_start)
            .ok_or(FdtWriteError::BufferTooSmall)?;
        end_token.copy_from_slice(&FDT_END.to_be_bytes());
        struct_end += 4;
        let size_strings = buf.len() - strings_start;
        buf.copy_within(strings_start.., struct_end);
        let total = struct_end + size_strings;
        let header = [
            FDT_MAGIC,
            total as u32,
            OFF_STRUCT as u32,
            struct_end as u32,
            OFF_RSV as u32,
            FDT_VERSION,
            FDT_LAST_COMP_VERSION,
            0, // boot_cpuid_phys
            size_strings as u32,
            (struct_end - OFF_STRUCT) as u32,
        ];
        for (dst, v) in buf.chunks_exact_mut(4).zip(header) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
        Ok(total)
    }
}
