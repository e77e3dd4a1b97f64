//! Loading the real EGL/GLES at run time.

use core::ffi::c_void;

pub use crate::exec::gen::Driver;

/// Keeps the libraries loaded for as long as the driver table is used.
pub struct Loaded {
    pub drv: Driver,
    _egl: libloading::Library,
    _gles: libloading::Library,
}

/// Loads `egl` and `gles` (sonames or paths) and resolves every entry point:
/// exported symbols first, then eglGetProcAddress for extensions.
pub fn load(egl: &str, gles: &str) -> Result<Loaded, String> {
    // SAFETY: loading the system's EGL/GLES libraries; their initialisers
    // are trusted like any linked library's.
    let egl_lib = unsafe { libloading::Library::new(egl) }.map_err(|e| format!("{egl}: {e}"))?;
    // SAFETY: as above.
    let gles_lib = unsafe { libloading::Library::new(gles) }.map_err(|e| format!("{gles}: {e}"))?;
    type GetProc = unsafe extern "C" fn(*const core::ffi::c_char) -> *mut c_void;
    // SAFETY: eglGetProcAddress has this prototype.
    let gpa: GetProc = unsafe {
        *egl_lib
            .get::<GetProc>(b"eglGetProcAddress\0")
            .map_err(|e| e.to_string())?
    };
    let mut get = |name: &str| -> *mut c_void {
        let mut z = name.as_bytes().to_vec();
        z.push(0);
        for lib in [&gles_lib, &egl_lib] {
            // SAFETY: only the address is taken; it is typed by the caller.
            if let Ok(s) = unsafe { lib.get::<*mut c_void>(z.as_slice()) } {
                return *s;
            }
        }
        // SAFETY: z is NUL-terminated.
        unsafe { gpa(z.as_ptr() as *const core::ffi::c_char) }
    };
    let drv = Driver::load(&mut get);
    Ok(Loaded {
        drv,
        _egl: egl_lib,
        _gles: gles_lib,
    })
}
