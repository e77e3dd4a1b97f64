//! C entry points marked `custom` in the annotations: they go through the
//! front-end's shadow state before (or instead of) the generated encoder.

// Names and signatures mirror the C functions they implement.
#![allow(non_snake_case, clippy::missing_safety_doc)]

use crate::{abi, with_egl, with_gl};
use core::ffi::c_void;
use gpu_codec::{enc, Wire};

pub unsafe fn glBindBuffer(target: u32, buffer: u32) {
    with_gl((), |c| c.bind_buffer(target, buffer))
}

pub unsafe fn glDeleteBuffers(n: i32, buffers: *const c_void) {
    // SAFETY: the application passes n names.
    let names = unsafe { abi::names(buffers, n as i64) };
    with_gl((), |c| c.delete_buffers(n, names))
}

pub unsafe fn glGenVertexArraysOES(n: i32, arrays: *mut c_void) {
    // SAFETY: the application passes room for n names.
    let names = unsafe { abi::names_mut(arrays, n as i64) };
    with_gl((), |c| c.gen_vertex_arrays(n, names))
}

pub unsafe fn glBindVertexArrayOES(array: u32) {
    with_gl((), |c| c.bind_vertex_array(array))
}

pub unsafe fn glDeleteVertexArraysOES(n: i32, arrays: *const c_void) {
    // SAFETY: the application passes n names.
    let names = unsafe { abi::names(arrays, n as i64) };
    with_gl((), |c| c.delete_vertex_arrays(n, names))
}

pub unsafe fn glEnableVertexAttribArray(index: u32) {
    with_gl((), |c| c.enable_attrib(index, true))
}

pub unsafe fn glDisableVertexAttribArray(index: u32) {
    with_gl((), |c| c.enable_attrib(index, false))
}

pub unsafe fn glDrawArrays(mode: u32, first: i32, count: i32) {
    // SAFETY: client arrays are readable as GL requires.
    with_gl((), |c| unsafe { c.draw_arrays(mode, first, count) })
}

pub unsafe fn glDrawElements(mode: u32, count: i32, ty: u32, indices: *const c_void) {
    // SAFETY: as for glDrawArrays; indices too.
    with_gl((), |c| unsafe {
        c.draw_elements(mode, count, ty, indices as usize)
    })
}

pub unsafe fn glVertexAttribPointer(
    index: u32,
    size: i32,
    ty: u32,
    normalized: u8,
    stride: i32,
    pointer: *const c_void,
) {
    with_gl((), |c| {
        c.vertex_attrib_pointer(index, size, ty, normalized, stride, pointer as usize)
    })
}

pub unsafe fn glFlush() {
    with_gl((), |c| {
        enc::glFlush(c)?;
        c.flush();
        Ok(())
    })
}

pub unsafe fn glPixelStorei(pname: u32, param: i32) {
    with_gl((), |c| c.pixel_store(pname, param))
}

#[allow(clippy::too_many_arguments)]
pub unsafe fn glReadPixels(
    x: i32,
    y: i32,
    width: i32,
    height: i32,
    format: u32,
    type_: u32,
    pixels: *mut c_void,
) {
    with_gl((), |c| {
        let need = gpu_codec::size_glReadPixels_pixels(c.ctx(), x, y, width, height, format, type_);
        // SAFETY: the caller passes a buffer of the size GL defines.
        let pixels = unsafe { crate::abi::bytes_mut(pixels, need) };
        c.read_pixels(x, y, width, height, format, type_, pixels)
    })
}

pub unsafe fn glGetError() -> u32 {
    with_gl(0, |c| c.get_error())
}

pub unsafe fn glGetIntegerv(pname: u32, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    with_gl((), |c| {
        let n = c.get_count(pname)?;
        // SAFETY: the application provides room for pname's values.
        let out = unsafe { core::slice::from_raw_parts_mut(data as *mut i32, n) };
        c.get_integerv(pname, out)
    })
}

pub unsafe fn glGetFloatv(pname: u32, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    with_gl((), |c| {
        let n = c.get_count(pname)?;
        // SAFETY: as for glGetIntegerv.
        let out = unsafe { core::slice::from_raw_parts_mut(data as *mut u8, n * 4) };
        c.get_floatv(pname, out)
    })
}

pub unsafe fn glGetBooleanv(pname: u32, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    with_gl((), |c| {
        let n = c.get_count(pname)?;
        // SAFETY: as for glGetIntegerv.
        let out = unsafe { core::slice::from_raw_parts_mut(data as *mut u8, n) };
        c.get_booleanv(pname, out)
    })
}

pub unsafe fn glGetString(name: u32) -> *const u8 {
    with_gl(core::ptr::null(), |c| {
        c.get_string(name).map(abi::keep_string)
    })
}

pub unsafe fn eglQueryString(dpy: *mut c_void, name: i32) -> *const u8 {
    with_egl(core::ptr::null(), |c| {
        c.egl_query_string(dpy as u64, name).map(abi::keep_string)
    })
}

pub unsafe fn eglGetError() -> i32 {
    with_egl(0x3000, |c| c.egl_get_error())
}

pub unsafe fn eglMakeCurrent(
    dpy: *mut c_void,
    draw: *mut c_void,
    read: *mut c_void,
    ctx: *mut c_void,
) -> u32 {
    with_egl(0, |c| {
        c.egl_make_current(dpy as u64, draw as u64, read as u64, ctx as u64)
    })
}

pub unsafe fn eglReleaseThread() -> u32 {
    with_egl(0, |c| c.egl_release_thread())
}

/// The native window of the gpu-share platform (see `tessera_gpu.h`).
#[repr(C)]
struct Window {
    width: u32,
    height: u32,
}

const EGL_BAD_NATIVE_WINDOW: i32 = 0x300B;

unsafe fn window_surface(
    dpy: *mut c_void,
    config: *mut c_void,
    win: *const Window,
    attrib_list: *const c_void,
) -> *mut c_void {
    // SAFETY: the attribute list follows EGL's rules.
    let attrs = unsafe { abi::attribs(attrib_list) };
    with_egl(core::ptr::null_mut(), |c| {
        if win.is_null() {
            c.shadow.egl_error = EGL_BAD_NATIVE_WINDOW;
            return Ok(core::ptr::null_mut());
        }
        // SAFETY: a non-NULL native window points to a tessera window.
        let w = unsafe { &*win };
        c.egl_create_window_surface(dpy as u64, config as u64, w.width, w.height, attrs)
            .map(|h| h as usize as *mut c_void)
    })
}

pub unsafe fn eglCreateWindowSurface(
    dpy: *mut c_void,
    config: *mut c_void,
    win: *mut c_void,
    attrib_list: *const c_void,
) -> *mut c_void {
    // SAFETY: forwarded.
    unsafe { window_surface(dpy, config, win as *const Window, attrib_list) }
}

pub unsafe fn eglCreatePlatformWindowSurfaceEXT(
    dpy: *mut c_void,
    config: *mut c_void,
    native_window: *mut c_void,
    attrib_list: *const c_void,
) -> *mut c_void {
    // SAFETY: forwarded; for this platform the native window is the struct.
    unsafe { window_surface(dpy, config, native_window as *const Window, attrib_list) }
}

pub unsafe fn glBufferData(target: u32, size: isize, data: *const c_void, usage: u32) {
    // SAFETY: the application passes `size` readable bytes (or NULL).
    let bytes = unsafe { abi::bytes(data, size.max(0) as usize) };
    with_gl((), |c| c.buffer_data(target, size, bytes, usage))
}

pub unsafe fn glBufferSubData(target: u32, offset: isize, size: isize, data: *const c_void) {
    // SAFETY: as for glBufferData.
    let bytes = unsafe { abi::bytes(data, size.max(0) as usize) };
    with_gl((), |c| c.buffer_sub_data(target, offset, size, bytes))
}
