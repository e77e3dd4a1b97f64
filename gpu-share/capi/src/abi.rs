//! Turning C pointers into the slices the encoders take. Sizes come from the
//! generated size rules; the application owes GL that many bytes anyway.

use core::ffi::c_void;
use std::sync::Mutex;

/// # Safety
/// `p` is NULL or readable for `len` bytes.
pub unsafe fn bytes<'a>(p: *const c_void, len: usize) -> Option<&'a [u8]> {
    // SAFETY: per the contract.
    (!p.is_null()).then(|| unsafe { core::slice::from_raw_parts(p as *const u8, len) })
}

/// # Safety
/// `p` is NULL or writable for `len` bytes.
pub unsafe fn bytes_mut<'a>(p: *mut c_void, len: usize) -> Option<&'a mut [u8]> {
    // SAFETY: per the contract.
    (!p.is_null()).then(|| unsafe { core::slice::from_raw_parts_mut(p as *mut u8, len) })
}

/// # Safety
/// `p` is NULL or a NUL-terminated string.
pub unsafe fn cstr<'a>(p: *const c_void) -> Option<&'a [u8]> {
    // SAFETY: per the contract.
    (!p.is_null()).then(|| {
        unsafe { core::ffi::CStr::from_ptr(p as *const core::ffi::c_char) }.to_bytes_with_nul()
    })
}

fn count(n: i64) -> usize {
    n.max(0) as usize
}

/// # Safety
/// `p` is NULL or holds `n` names.
pub unsafe fn names<'a>(p: *const c_void, n: i64) -> &'a [u32] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: per the contract.
    unsafe { core::slice::from_raw_parts(p as *const u32, count(n)) }
}

/// # Safety
/// `p` is NULL or has room for `n` names.
pub unsafe fn names_mut<'a>(p: *mut c_void, n: i64) -> &'a mut [u32] {
    if p.is_null() {
        return &mut [];
    }
    // SAFETY: per the contract.
    unsafe { core::slice::from_raw_parts_mut(p as *mut u32, count(n)) }
}

const EGL_NONE: i64 = 0x3038;
const MAX_PAIRS: usize = 256;

/// An attribute list up to and including EGL_NONE (cut at 256 pairs).
///
/// # Safety
/// `p` is NULL or an attribute list ending in EGL_NONE, as EGL requires.
unsafe fn attrib_list<'a, T: Copy>(p: *const T, to_i64: fn(T) -> i64) -> Option<&'a [T]> {
    if p.is_null() {
        return None;
    }
    let mut n = 0;
    // SAFETY: reading pairs up to the terminator, as EGL does.
    while n < MAX_PAIRS * 2 && to_i64(unsafe { *p.add(n) }) != EGL_NONE {
        n += 2;
    }
    // SAFETY: n + 1 entries were read above (or the list is cut at the cap).
    Some(unsafe { core::slice::from_raw_parts(p, n + 1) })
}

/// # Safety
/// See [`attrib_list`] (EGLint entries).
pub unsafe fn attribs<'a>(p: *const c_void) -> Option<&'a [i32]> {
    // SAFETY: forwarded.
    unsafe { attrib_list(p as *const i32, |v| v as i64) }
}

/// # Safety
/// See [`attrib_list`] (EGLAttrib entries).
pub unsafe fn attribs64<'a>(p: *const c_void) -> Option<&'a [isize]> {
    // SAFETY: forwarded.
    unsafe { attrib_list(p as *const isize, |v| v as i64) }
}

static STRINGS: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

/// Returns a NUL-terminated copy of `s` that lives for the rest of the
/// process (GL and EGL strings must stay valid); equal strings share one copy.
pub fn keep_string(s: Option<Vec<u8>>) -> *const u8 {
    let Some(mut s) = s else {
        return core::ptr::null();
    };
    s.push(0);
    let mut all = STRINGS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = all.iter().find(|k| k[..] == s[..]) {
        return k.as_ptr();
    }
    all.push(s.into_boxed_slice());
    all.last().map_or(core::ptr::null(), |k| k.as_ptr())
}
