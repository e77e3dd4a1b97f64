//! gpu-share call codec: what a GL/EGL call looks like on the wire.
//!
//! A record is `opcode` (the ring tag) followed by one little-endian `u64`
//! slot per parameter: numbers by value, object names and EGL handles as the
//! client's values, pointers as [`gpu_wire::HeapDesc`]s into the heap. The
//! encoders, the decoder and the opcode table are generated (see `gpu-gen`);
//! this file holds what they share: size rules, errors, and the checked
//! readers the decoder uses for heap payloads.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use gpu_wire::{HeapDesc, HeapError, HeapReader};

pub mod sizes;
pub use sizes::{PixelStore, SizeCtx};

/// Object name spaces translated per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ns {
    Buffer,
    Texture,
    Framebuffer,
    Renderbuffer,
    /// Programs and shaders share one name space in GLES.
    Program,
    /// Vertex array objects (OES_vertex_array_object).
    VertexArray,
}

/// Kinds of EGL handles translated per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Display,
    Config,
    Surface,
    Context,
}

/// What the server sends back for a sync call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub ret: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The payload cannot fit in the heap or a record in the ring.
    TooLarge,
    /// The session is closed (server gone or it rejected our stream).
    Closed,
    /// A Rust-API caller passed a slice shorter than the call needs.
    BadArg,
}

/// The front-end side of a connection, as the generated encoders use it.
pub trait Wire {
    fn ctx(&self) -> &dyn SizeCtx;
    fn begin(&mut self, opcode: u32) -> Result<(), EncodeError>;
    fn slot(&mut self, v: u64);
    /// Copies `need` bytes of `data` to the heap and appends its descriptor.
    fn input(&mut self, data: Option<&[u8]>, need: usize) -> Result<(), EncodeError>;
    /// An input the application passed as NULL where the call reads `need`
    /// bytes (it expects an argument error: dEQP's negative tests pass NULL
    /// with a bad enum): zeroed bytes stand in, so that the server never
    /// sees NULL there, and the driver reports the error as it would
    /// natively (or, where it would have read through NULL, reads zeros).
    fn input_or_zeros(&mut self, data: Option<&[u8]>, need: usize) -> Result<(), EncodeError> {
        match data {
            None if need > 0 => self.input(Some(&alloc::vec![0u8; need]), need),
            _ => self.input(data, need),
        }
    }
    /// A NUL-terminated string (the slice includes the NUL).
    fn input_cstr(&mut self, s: Option<&[u8]>) -> Result<(), EncodeError> {
        match s {
            Some(b) if b.last() != Some(&0) => Err(EncodeError::BadArg),
            _ => self.input(s, s.map_or(0, |b| b.len())),
        }
    }
    /// Reserves an output chunk holding a copy of `init` (the caller's
    /// buffer), so that bytes the driver does not write (row padding, errors)
    /// come back unchanged; returns a ticket for [`Wire::read_out`].
    fn output(&mut self, init: Option<&[u8]>, len: usize) -> Result<Option<HeapDesc>, EncodeError>;
    /// An output the application passed as NULL where the call writes (it
    /// expects an error: dEQP's negative tests do this): a zeroed chunk of
    /// `len` bytes stands in, so that the server never sees NULL there and
    /// the driver checks the arguments and reports the error as it would
    /// natively; nothing comes back to the application.
    fn output_or_scratch(
        &mut self,
        init: Option<&[u8]>,
        len: usize,
    ) -> Result<Option<HeapDesc>, EncodeError> {
        match init {
            None if len > 0 => self.output(Some(&alloc::vec![0u8; len]), len),
            _ => self.output(init, len),
        }
    }
    fn read_out(&mut self, ticket: Option<HeapDesc>, dst: Option<&mut [u8]>, len: usize);
    fn alloc_names(&mut self, ns: Ns, out: &mut [u32]);
    fn alloc_name(&mut self, ns: Ns) -> u32;
    /// A name the application chose itself; the allocator must skip it.
    fn note_name(&mut self, ns: Ns, name: u32);
    fn finish_async(&mut self) -> Result<(), EncodeError>;
    fn finish_sync(&mut self) -> Result<Reply, EncodeError>;
    /// Bytes that came with the last reply (string returns).
    fn reply_bytes(&mut self) -> Vec<u8>;
}

/// Why a record was rejected; the server ends the session with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    UnknownOpcode(u32),
    BadLength {
        opcode: u32,
        slots: usize,
    },
    Heap(HeapError),
    Short {
        need: usize,
        got: usize,
    },
    /// NULL where the call reads or writes `need` bytes.
    Null {
        need: usize,
    },
    MissingNul,
    BadAttribs,
}

impl From<HeapError> for DecodeError {
    fn from(e: HeapError) -> Self {
        DecodeError::Heap(e)
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::UnknownOpcode(o) => write!(f, "unknown opcode {o}"),
            DecodeError::BadLength { opcode, slots } => {
                write!(
                    f,
                    "{} with {slots} slots, expected {}",
                    name(*opcode),
                    SLOTS[*opcode as usize]
                )
            }
            DecodeError::Heap(e) => write!(f, "{e}"),
            DecodeError::Short { need, got } => {
                write!(f, "payload of {got} bytes, call needs {need}")
            }
            DecodeError::Null { need } => {
                write!(f, "NULL where the call needs {need} bytes")
            }
            DecodeError::MissingNul => write!(f, "string without NUL"),
            DecodeError::BadAttribs => write!(f, "malformed attribute list"),
        }
    }
}

/// Command name for logs.
pub fn name(opcode: u32) -> &'static str {
    NAMES
        .get(opcode as usize)
        .copied()
        .filter(|n| !n.is_empty())
        .unwrap_or("<unknown>")
}

/// A checked heap chunk handed to the driver.
#[derive(Debug, Clone, Copy)]
pub struct Chunk {
    pub ptr: *mut u8,
    pub len: usize,
}

fn chunk(heap: &HeapReader, raw: u64, end: &mut Option<u32>) -> Result<Option<Chunk>, DecodeError> {
    let got = heap.get(raw)?;
    if got.is_some() {
        *end = HeapDesc::unpack(raw).map(HeapDesc::end);
    }
    Ok(got.map(|(ptr, len)| Chunk { ptr, len }))
}

/// An input the driver will read `need` bytes from. A zero need becomes
/// NULL so that the driver never gets a pointer to fewer bytes than the
/// size rules say it reads (the server passes a zeroed scratch instead
/// where NULL is not meaningful). NULL where bytes are needed is an error
/// unless the parameter is `nullable` (glBufferData, glTexImage2D, ...):
/// the driver would read through it.
pub fn dec_in(
    heap: &HeapReader,
    raw: u64,
    need: usize,
    nullable: bool,
    end: &mut Option<u32>,
) -> Result<Option<Chunk>, DecodeError> {
    match chunk(heap, raw, end)? {
        Some(c) if c.len < need => Err(DecodeError::Short { need, got: c.len }),
        Some(_) if need == 0 => Ok(None),
        None if need > 0 && !nullable => Err(DecodeError::Null { need }),
        c => Ok(c),
    }
}

/// An output chunk must hold what the server computes the driver writes;
/// NULL only where the parameter is `nullable`.
pub fn dec_out(
    heap: &HeapReader,
    raw: u64,
    need: usize,
    nullable: bool,
    end: &mut Option<u32>,
) -> Result<Option<Chunk>, DecodeError> {
    match chunk(heap, raw, end)? {
        Some(c) if c.len < need => Err(DecodeError::Short { need, got: c.len }),
        None if need > 0 && !nullable => Err(DecodeError::Null { need }),
        c => Ok(c),
    }
}

fn copy(c: &Chunk) -> Vec<u8> {
    let mut v = alloc::vec![0u8; c.len];
    // SAFETY: the chunk was checked to lie in the heap; copying detaches it
    // from memory the client can still write.
    unsafe { core::ptr::copy_nonoverlapping(c.ptr, v.as_mut_ptr(), c.len) };
    v
}

/// A string, copied; must contain a NUL (the copy ends at the first one).
pub fn dec_cstr(
    heap: &HeapReader,
    raw: u64,
    end: &mut Option<u32>,
) -> Result<Option<Vec<u8>>, DecodeError> {
    let Some(c) = chunk(heap, raw, end)? else {
        return Ok(None);
    };
    let mut v = copy(&c);
    let nul = v
        .iter()
        .position(|b| *b == 0)
        .ok_or(DecodeError::MissingNul)?;
    v.truncate(nul + 1);
    Ok(Some(v))
}

/// `count` object names (a negative count means none).
pub fn dec_names(
    heap: &HeapReader,
    raw: u64,
    count: i64,
    end: &mut Option<u32>,
) -> Result<Vec<u32>, DecodeError> {
    let n = count.max(0) as usize;
    let Some(c) = chunk(heap, raw, end)? else {
        return if n == 0 {
            Ok(Vec::new())
        } else {
            Err(DecodeError::Short {
                need: n * 4,
                got: 0,
            })
        };
    };
    if c.len < n.saturating_mul(4) {
        return Err(DecodeError::Short {
            need: n * 4,
            got: c.len,
        });
    }
    let b = copy(&c);
    Ok(b.chunks_exact(4)
        .take(n)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect())
}

const EGL_NONE: i64 = 0x3038;
const MAX_ATTRIBS: usize = 256;

fn attrib_list<T: Copy>(
    b: &[u8],
    width: usize,
    conv: impl Fn(&[u8]) -> T,
    to_i64: impl Fn(T) -> i64,
) -> Result<Vec<T>, DecodeError> {
    let vals: Vec<T> = b.chunks_exact(width).map(conv).collect();
    // Keep pairs up to EGL_NONE; the list must be terminated.
    let mut out = Vec::new();
    let mut i = 0;
    while i < vals.len() && i < MAX_ATTRIBS * 2 {
        if to_i64(vals[i]) == EGL_NONE {
            out.push(vals[i]);
            return Ok(out);
        }
        if i + 1 >= vals.len() {
            break;
        }
        out.push(vals[i]);
        out.push(vals[i + 1]);
        i += 2;
    }
    Err(DecodeError::BadAttribs)
}

pub fn dec_attribs(
    heap: &HeapReader,
    raw: u64,
    end: &mut Option<u32>,
) -> Result<Option<Vec<i32>>, DecodeError> {
    let Some(c) = chunk(heap, raw, end)? else {
        return Ok(None);
    };
    attrib_list(
        &copy(&c),
        4,
        |w| i32::from_le_bytes([w[0], w[1], w[2], w[3]]),
        |v| v as i64,
    )
    .map(Some)
}

pub fn dec_attribs64(
    heap: &HeapReader,
    raw: u64,
    end: &mut Option<u32>,
) -> Result<Option<Vec<isize>>, DecodeError> {
    let Some(c) = chunk(heap, raw, end)? else {
        return Ok(None);
    };
    attrib_list(
        &copy(&c),
        8,
        |w| i64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) as isize,
        |v| v as i64,
    )
    .map(Some)
}

/// Number of elements a counted array parameter holds, checked against the
/// slice the Rust API caller passed.
pub fn count(n: i64, have: usize) -> Result<usize, EncodeError> {
    let n = n.max(0) as usize;
    if n > have {
        Err(EncodeError::BadArg)
    } else {
        Ok(n)
    }
}

pub fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// EGLint attribute list up to and including EGL_NONE (at most 256 pairs).
pub fn attrib_bytes(a: &[i32]) -> Vec<u8> {
    a.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn attrib64_bytes(a: &[isize]) -> Vec<u8> {
    a.iter().flat_map(|x| (*x as i64).to_le_bytes()).collect()
}

include!(concat!(env!("OUT_DIR"), "/codec_gen.rs"));
