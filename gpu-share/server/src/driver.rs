//! Loading the real EGL/GLES at run time.

use core::ffi::c_void;

pub use crate::exec::gen::Driver;

/// A driver made of the given entry points (fakes for tests and
/// benchmarks); every other entry point is missing. Lives for the process.
pub fn from_table(table: &[(&str, *mut c_void)]) -> &'static Driver {
    let d = Driver::load(&mut |name: &str| {
        table
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(core::ptr::null_mut(), |(_, p)| *p)
    });
    Box::leak(Box::new(d))
}

/// Keeps the libraries loaded for as long as the driver table is used.
pub struct Loaded {
    pub drv: Driver,
    _egl: libloading::Library,
    _gles: libloading::Library,
}

/// The C maths library, in the process's global symbol scope.
///
/// llvmpipe's JIT (LLVM) lowers some shader built-ins (`sin`, `exp`, `pow`,
/// ...) to calls of libm functions (`sinf`, `expf`, ...) and resolves them
/// by name in the global scope, as `dlsym(RTLD_DEFAULT)` does. A GL program
/// links libm, so they are found; gpu-server does not need libm itself,
/// and the driver's own libm is loaded with it `RTLD_LOCAL` (through glvnd),
/// where the JIT cannot see it: the calls went to address 0 and the server
/// died on legal shaders. Loading libm `RTLD_GLOBAL` first gives the driver
/// the process a native program would be.
#[cfg(target_os = "linux")]
fn libm_global() -> Result<(), String> {
    const LIBM: &core::ffi::CStr = c"libm.so.6";
    // SAFETY: dlopen of the system's libm; the handle is kept for the life
    // of the process (never closed).
    let h = unsafe { libc::dlopen(LIBM.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if h.is_null() {
        return Err("libm.so.6: cannot load it for the driver's JIT".into());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn libm_global() -> Result<(), String> {
    Ok(())
}

/// Loads `egl` and `gles` (sonames or paths) and resolves every entry point:
/// exported symbols first, then eglGetProcAddress for extensions.
pub fn load(egl: &str, gles: &str) -> Result<Loaded, String> {
    libm_global()?;
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
