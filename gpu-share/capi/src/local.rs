//! C entry points answered without the server.

// Names and signatures mirror the C functions they implement.
#![allow(non_snake_case, clippy::missing_safety_doc)]

use crate::{with_egl, with_gl};
use core::ffi::c_void;

pub unsafe fn glGetVertexAttribPointerv(index: u32, pname: u32, pointer: *mut c_void) {
    const GL_VERTEX_ATTRIB_ARRAY_POINTER: u32 = 0x8645;
    if pointer.is_null() {
        return;
    }
    with_gl((), |c| {
        if pname != GL_VERTEX_ATTRIB_ARRAY_POINTER {
            c.set_gl_error(gpu_frontend::gl::GL_INVALID_ENUM);
        } else if index as usize >= gpu_frontend::shadow::MAX_ATTRIBS {
            c.set_gl_error(gpu_frontend::gl::GL_INVALID_VALUE);
        } else {
            // SAFETY: the application passes room for one pointer.
            unsafe { *(pointer as *mut usize) = c.vertex_attrib_pointer_of(index) };
        }
        Ok(())
    })
}

pub unsafe fn glShaderSource(
    shader: u32,
    count: i32,
    string: *const c_void,
    length: *const c_void,
) {
    with_gl((), |c| {
        if count < 0 || string.is_null() {
            // Nothing to copy: the driver reports the error, after its
            // check of the shader name (INVALID_VALUE or _OPERATION first).
            return c.shader_source_invalid(shader, count);
        }
        let strs = string as *const *const u8;
        let lens = length as *const i32;
        let mut parts: Vec<&[u8]> = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            // SAFETY: GL's contract: `count` strings, lengths optional, a
            // negative length meaning NUL-terminated.
            unsafe {
                let s = *strs.add(i);
                let l = if lens.is_null() { -1 } else { *lens.add(i) };
                parts.push(if s.is_null() {
                    &[]
                } else if l < 0 {
                    core::ffi::CStr::from_ptr(s as *const core::ffi::c_char).to_bytes()
                } else {
                    core::slice::from_raw_parts(s, l as usize)
                });
            }
        }
        c.shader_source(shader, &parts)
    })
}

pub unsafe fn eglGetCurrentContext() -> *mut c_void {
    with_egl(core::ptr::null_mut(), |c| {
        Ok(c.shadow.current[3] as usize as *mut c_void)
    })
}

pub unsafe fn eglGetCurrentDisplay() -> *mut c_void {
    with_egl(core::ptr::null_mut(), |c| {
        Ok(c.shadow.current[0] as usize as *mut c_void)
    })
}

pub unsafe fn eglGetCurrentSurface(readdraw: i32) -> *mut c_void {
    const EGL_READ: i32 = 0x305A;
    const EGL_DRAW: i32 = 0x3059;
    with_egl(core::ptr::null_mut(), |c| {
        Ok(match readdraw {
            EGL_DRAW => c.shadow.current[1] as usize as *mut c_void,
            EGL_READ => c.shadow.current[2] as usize as *mut c_void,
            _ => {
                c.shadow.egl_error = 0x300C; // EGL_BAD_PARAMETER
                core::ptr::null_mut()
            }
        })
    })
}

pub unsafe fn eglGetProcAddress(procname: *const c_void) -> *mut c_void {
    if procname.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: EGL's contract: a NUL-terminated name.
    let name = unsafe { core::ffi::CStr::from_ptr(procname as *const core::ffi::c_char) };
    crate::proc_address(name.to_bytes())
}
