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

use crate::fdt::firmware::FDT_MAGIC;
use core::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt::firmware as dtb;
    use fdt::Fdt;

    fn be32(b: &[u8], off: usize) -> usize {
        u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]) as usize
    }

    /// The strings block of a finished blob.
    fn strings(blob: &[u8]) -> &[u8] {
        let (off, size) = (be32(blob, 12), be32(blob, 32));
        &blob[off..off + size]
    }

    /// A small tree with every kind of property.
    fn sample(w: &mut FdtWriter) -> Result<(), FdtWriteError> {
        w.begin_node("")?;
        w.property_u32("#address-cells", 2)?;
        w.property_u32("#size-cells", 2)?;
        w.property_string("model", "sample")?;
        w.begin_node("dev@1000")?;
        w.property_string_list("compatible", &["a,b", "", "c"])?;
        w.property_cells("reg", &[0, 0x1000, 0, 0x100])?;
        w.property_u64("big", 0x0123_4567_89ab_cdef)?;
        w.property_null("flag")?;
        w.property_concat("joined", &[b"ab", b"", b"c\0"])?;
        w.property("raw", &[1, 2, 3, 4, 5])?;
        w.end_node()?;
        w.begin_node("other")?;
        w.property_u32("#size-cells", 0)?;
        w.property_string("model", "x")?;
        w.end_node()?;
        w.end_node()
    }

    fn sample_blob() -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let mut w = FdtWriter::new(&mut buf).unwrap();
        sample(&mut w).unwrap();
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn header_and_layout() {
        let blob = sample_blob();
        dtb::validate(&blob).unwrap();
        assert_eq!(be32(&blob, 0), FDT_MAGIC as usize);
        assert_eq!(be32(&blob, 4), blob.len());
        assert_eq!(be32(&blob, 8), OFF_STRUCT);
        assert_eq!(be32(&blob, 16), OFF_RSV);
        assert_eq!(be32(&blob, 20), 17);
        assert_eq!(be32(&blob, 24), 16);
        assert_eq!(be32(&blob, 28), 0);
        // Reservation block: just the zero entry. Strings last, no padding.
        assert!(blob[OFF_RSV..OFF_STRUCT].iter().all(|&b| b == 0));
        assert_eq!(be32(&blob, 12), OFF_STRUCT + be32(&blob, 36));
        assert_eq!(be32(&blob, 12) + be32(&blob, 32), blob.len());
        assert_eq!(be32(&blob, be32(&blob, 12) - 4), FDT_END as usize);
    }

    #[test]
    fn values_read_back() {
        let blob = sample_blob();
        let fdt = Fdt::new(&blob).unwrap();
        let dev = fdt.find_node("/dev@1000").unwrap();
        let p = |n: &str| dev.property(n).unwrap().value;
        assert_eq!(p("compatible"), b"a,b\0\0c\0");
        assert_eq!(
            p("reg"),
            [0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0]
        );
        assert_eq!(p("big"), [1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        assert_eq!(p("flag"), b"");
        assert_eq!(p("joined"), b"abc\0");
        assert_eq!(p("raw"), [1, 2, 3, 4, 5]);
        let r = dev.reg().unwrap().next().unwrap();
        assert_eq!((r.starting_address as usize, r.size), (0x1000, Some(0x100)));
        assert_eq!(fdt.root().model(), "sample");
        let other = fdt.find_node("/other").unwrap();
        assert_eq!(other.property("model").unwrap().as_str(), Some("x"));
        assert_eq!(other.property("#size-cells").unwrap().as_usize(), Some(0));
    }

    #[test]
    fn property_names_are_stored_once() {
        let blob = sample_blob();
        let s = strings(&blob);
        // "size-cells" is the tail of "#size-cells" and shares its bytes.
        let want = b"#address-cells\0#size-cells\0model\0compatible\0reg\0big\0flag\0joined\0raw\0";
        assert_eq!(s, want);
        // Names that only occur inside a longer one reuse its tail.
        let mut buf = [0u8; 256];
        let mut w = FdtWriter::new(&mut buf).unwrap();
        w.begin_node("").unwrap();
        w.property_null("#size-cells").unwrap();
        w.property_null("size-cells").unwrap();
        w.property_null("cells").unwrap();
        w.property_null("#size-cells").unwrap();
        w.end_node().unwrap();
        let n = w.finish().unwrap();
        assert_eq!(strings(&buf[..n]), b"#size-cells\0");
        let fdt = Fdt::new(&buf[..n]).unwrap();
        let names: Vec<&str> = fdt.root().properties().map(|p| p.name).collect();
        assert_eq!(names, ["#size-cells", "size-cells", "cells", "#size-cells"]);
    }

    #[test]
    fn minimal_tree() {
        let mut buf = [0xeeu8; MIN_BUFFER + 12];
        let mut w = FdtWriter::new(&mut buf).unwrap();
        w.begin_node("").unwrap();
        w.end_node().unwrap();
        assert_eq!(w.finish(), Ok(MIN_BUFFER + 12));
        dtb::validate(&buf).unwrap();
        assert!(Fdt::new(&buf).is_ok());
    }

    #[test]
    fn unbalanced_nodes() {
        let mut buf = [0u8; 512];
        let no_root = FdtWriter::new(&mut buf).unwrap();
        assert_eq!(no_root.finish(), Err(FdtWriteError::Unbalanced));

        let mut open = FdtWriter::new(&mut buf).unwrap();
        assert_eq!(open.end_node(), Err(FdtWriteError::Unbalanced));
        open.begin_node("").unwrap();
        open.begin_node("a").unwrap();
        open.end_node().unwrap();
        assert_eq!(open.finish(), Err(FdtWriteError::Unbalanced), "root open");

        let mut w = FdtWriter::new(&mut buf).unwrap();
        w.begin_node("").unwrap();
        w.end_node().unwrap();
        assert_eq!(w.end_node(), Err(FdtWriteError::Unbalanced));
        assert_eq!(
            w.begin_node(""),
            Err(FdtWriteError::Unbalanced),
            "second root"
        );
        assert!(w.finish().is_ok());
        dtb::validate(&buf).unwrap();
    }

    #[test]
    fn property_outside_node() {
        let mut buf = [0u8; 512];
        let mut w = FdtWriter::new(&mut buf).unwrap();
        assert_eq!(
            w.property_u32("x", 1),
            Err(FdtWriteError::PropertyOutsideNode)
        );
        w.begin_node("").unwrap();
        w.end_node().unwrap();
        assert_eq!(
            w.property_null("x"),
            Err(FdtWriteError::PropertyOutsideNode)
        );
        let n = w.finish().unwrap();
        assert_eq!(strings(&buf[..n]), b"", "a refused name is not stored");
    }

    #[test]
    fn bad_names_and_strings() {
        let mut buf = [0u8; 512];
        let mut w = FdtWriter::new(&mut buf).unwrap();
        assert_eq!(w.begin_node("root"), Err(FdtWriteError::InvalidName));
        w.begin_node("").unwrap();
        for bad in ["", "a\0b", "a/b"] {
            assert_eq!(
                w.begin_node(bad),
                Err(FdtWriteError::InvalidName),
                "{bad:?}"
            );
        }
        let long = "n".repeat(MAX_NODE_NAME_LEN + 1);
        assert_eq!(w.begin_node(&long), Err(FdtWriteError::NameTooLong));
        w.begin_node(&long[1..]).unwrap();
        w.end_node().unwrap();
        for bad in ["", "a\0b"] {
            assert_eq!(
                w.property_null(bad),
                Err(FdtWriteError::InvalidName),
                "{bad:?}"
            );
        }
        let long = "p".repeat(MAX_PROPERTY_NAME_LEN + 1);
        assert_eq!(w.property_null(&long), Err(FdtWriteError::NameTooLong));
        w.property_null(&long[1..]).unwrap();
        assert_eq!(
            w.property_string("s", "a\0"),
            Err(FdtWriteError::InvalidString)
        );
        assert_eq!(
            w.property_string_list("s", &["ok", "\0"]),
            Err(FdtWriteError::InvalidString)
        );
        w.end_node().unwrap();
        let n = w.finish().unwrap();
        dtb::validate(&buf[..n]).unwrap();
        assert_eq!(strings(&buf[..n]), format!("{}\0", &long[1..]).as_bytes());
    }

    #[test]
    fn every_short_buffer_fails_cleanly() {
        let need = sample_blob().len();
        for len in 0..need {
            let mut buf = vec![0x5au8; len + 64];
            let r = FdtWriter::new(&mut buf[..len]).and_then(|mut w| {
                sample(&mut w)?;
                w.finish()
            });
            assert_eq!(r, Err(FdtWriteError::BufferTooSmall), "len {len}");
            assert!(buf[len..].iter().all(|&b| b == 0x5a), "len {len}");
        }
        // Dirty buffer, exact size: the same bytes as from a clean one.
        let mut buf = vec![0xa5u8; need];
        let mut w = FdtWriter::new(&mut buf).unwrap();
        sample(&mut w).unwrap();
        assert_eq!(w.finish(), Ok(need));
        assert_eq!(buf, sample_blob());
    }

    #[test]
    fn a_refused_call_leaves_the_writer_usable() {
        // Room for the root and a little more, not for a big property.
        let mut buf = [0u8; MIN_BUFFER + 40];
        let mut w = FdtWriter::new(&mut buf).unwrap();
        w.begin_node("").unwrap();
        assert_eq!(
            w.property("blob", &[7; 64]),
            Err(FdtWriteError::BufferTooSmall)
        );
        assert_eq!(
            w.property_cells("x", &[0; 1 << 20]),
            Err(FdtWriteError::BufferTooSmall)
        );
        w.property_u32("small", 1).unwrap();
        w.end_node().unwrap();
        let n = w.finish().unwrap();
        dtb::validate(&buf[..n]).unwrap();
        let fdt = Fdt::new(&buf[..n]).unwrap();
        let names: Vec<&str> = fdt.root().properties().map(|p| p.name).collect();
        assert_eq!(names, ["small"]);
        assert_eq!(strings(&buf[..n]), b"small\0");
    }

    #[test]
    fn random_sequences_never_panic() {
        // Deterministic xorshift, random calls into small buffers: every
        // sequence that finishes gives a blob the validator accepts.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // (No `#...-cells`: the validator rightly refuses odd values there.)
        let names = ["", "a", "#size", "size", "n@1", "x\0", "a/b"];
        let mut finished = 0;
        for _ in 0..2000 {
            let mut buf = vec![0u8; (next() % 300) as usize];
            let Ok(mut w) = FdtWriter::new(&mut buf) else {
                continue;
            };
            for _ in 0..next() % 24 {
                let name = names[(next() % names.len() as u64) as usize];
                let _ = match next() % 6 {
                    0 | 1 => w.begin_node(name),
                    2 => w.end_node(),
                    3 => w.property_u64(name, next()),
                    4 => w.property_string_list(name, &[name, "v"]),
                    _ => w.property(name, &[0xab; 9][..(next() % 10) as usize]),
                };
            }
            while w.end_node().is_ok() {}
            if let Ok(n) = w.finish() {
                dtb::validate(&buf[..n]).unwrap();
                Fdt::new(&buf[..n]).unwrap().all_nodes().for_each(|n| {
                    n.properties().for_each(drop);
                });
                finished += 1;
            }
        }
        assert!(finished > 100, "{finished}");
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            FdtWriteError::InvalidInput("vCPU count").to_string(),
            "cannot describe: vCPU count"
        );
        assert_eq!(
            FdtWriteError::BufferTooSmall.to_string(),
            "device tree buffer too small"
        );
    }
}
