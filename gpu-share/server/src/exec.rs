//! Glue the generated dispatcher uses: pointers for the driver, output
//! buffers, return values.

use core::ffi::c_void;
use gpu_codec::Chunk;

/// What a call returns to the client.
#[derive(Debug)]
pub enum Ret {
    Void,
    Value(u64),
    /// A string return: None for a NULL pointer.
    Str(Option<Vec<u8>>),
}

/// Zeroed bytes handed to the driver for an input the size rules count as
/// empty: a driver that knows a parameter the rules do not (an extension
/// pname) reads zeros instead of dereferencing NULL.
static ZEROS: [u64; 32] = [0; 32];

pub fn ptr_in(c: &Option<Chunk>) -> *const c_void {
    c.map_or(ZEROS.as_ptr() as *const c_void, |c| c.ptr as *const c_void)
}

/// For inputs where NULL means something (glBufferData, glTexImage2D).
pub fn ptr_in_or_null(c: &Option<Chunk>) -> *const c_void {
    c.map_or(core::ptr::null(), |c| c.ptr as *const c_void)
}

pub fn ptr_opt<T>(v: &Option<Vec<T>>) -> *const c_void {
    v.as_ref()
        .map_or(core::ptr::null(), |v| v.as_ptr() as *const c_void)
}

/// Copies a driver string.
pub fn c_string(p: *const u8) -> Ret {
    if p.is_null() {
        return Ret::Str(None);
    }
    // SAFETY: the driver returns a NUL-terminated string or NULL.
    Ret::Str(Some(
        unsafe { core::ffi::CStr::from_ptr(p as *const core::ffi::c_char) }
            .to_bytes()
            .to_vec(),
    ))
}

/// Small outputs go through a zeroed scratch buffer with slack, so a driver
/// that writes more values than the size rules expect (an extension pname)
/// cannot write past the client's chunk; large ones (pixels, sized exactly by
/// the rules) are written in place.
pub struct OutBuf {
    chunk: Option<Chunk>,
    scratch: Vec<u8>,
}

const DIRECT: usize = 64 * 1024;
const SLACK: usize = 256;

impl OutBuf {
    /// Without a chunk (the size rules count nothing) the driver still
    /// gets a scratch buffer: one that knows more than the rules writes
    /// there, not through NULL.
    pub fn new(chunk: Option<Chunk>) -> OutBuf {
        let len = chunk.map_or(0, |c| c.len);
        let mut scratch = if len >= DIRECT {
            Vec::new()
        } else {
            vec![0u8; len + SLACK]
        };
        if let (Some(c), false) = (chunk, scratch.is_empty()) {
            // Start from the client's bytes: what the driver leaves alone
            // must come back unchanged.
            // SAFETY: c is a checked heap chunk of c.len bytes.
            unsafe { core::ptr::copy_nonoverlapping(c.ptr, scratch.as_mut_ptr(), c.len) };
        }
        OutBuf { chunk, scratch }
    }
    /// For outputs where NULL means something (optional EGL and length
    /// outputs): NULL stays NULL.
    pub fn new_or_null(chunk: Option<Chunk>) -> OutBuf {
        match chunk {
            Some(_) => OutBuf::new(chunk),
            None => OutBuf {
                chunk,
                scratch: Vec::new(),
            },
        }
    }
    pub fn ptr(&mut self) -> *mut c_void {
        match self.chunk {
            Some(c) if self.scratch.is_empty() => c.ptr as *mut c_void,
            None if self.scratch.is_empty() => core::ptr::null_mut(),
            _ => self.scratch.as_mut_ptr() as *mut c_void,
        }
    }
    /// The bytes the driver wrote (before `finish`).
    pub fn bytes(&mut self) -> &mut [u8] {
        match self.chunk {
            None => &mut [],
            // SAFETY: a checked heap chunk.
            Some(c) if self.scratch.is_empty() => unsafe {
                core::slice::from_raw_parts_mut(c.ptr, c.len)
            },
            Some(c) => &mut self.scratch[..c.len],
        }
    }
    pub fn finish(&mut self) {
        if let Some(c) = self.chunk {
            if !self.scratch.is_empty() {
                // SAFETY: c is a checked heap chunk of c.len bytes.
                unsafe { core::ptr::copy_nonoverlapping(self.scratch.as_ptr(), c.ptr, c.len) };
            }
        }
    }
}

/// Generated: the driver table and `execute`.
pub mod gen {
    use crate::exec::Ret;
    use crate::session::{Session, SessionError};
    use core::ffi::c_void;
    use gpu_codec::{Call, Kind, Ns};
    include!(concat!(env!("OUT_DIR"), "/server_gen.rs"));
}
