//! One client's server-side state.

use crate::driver::Driver;
use crate::frames::Frames;
use crate::names::{Handles, NameMap, INVALID_HANDLE, INVALID_NAME};
use core::ffi::c_void;
use gpu_codec::{DecodeError, Kind, Ns};
use gpu_wire::{HeapError, RingError};
use std::collections::HashMap;

#[derive(Debug)]
pub enum SessionError {
    Decode {
        opcode: u32,
        err: DecodeError,
    },
    Ring(RingError),
    Heap(HeapError),
    /// The driver lacks an entry point the client called.
    Missing(&'static str),
    Protocol(String),
    /// The client went past one of its limits.
    Limit(String),
}

impl core::fmt::Display for SessionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SessionError::Decode { opcode, err } => {
                write!(f, "bad {} record: {err}", gpu_codec::name(*opcode))
            }
            SessionError::Ring(e) => write!(f, "{e}"),
            SessionError::Heap(e) => write!(f, "{e}"),
            SessionError::Missing(n) => write!(f, "driver has no {n}"),
            SessionError::Protocol(m) => write!(f, "{m}"),
            SessionError::Limit(m) => write!(f, "over a limit: {m}"),
        }
    }
}

impl From<RingError> for SessionError {
    fn from(e: RingError) -> Self {
        SessionError::Ring(e)
    }
}
impl From<HeapError> for SessionError {
    fn from(e: HeapError) -> Self {
        SessionError::Heap(e)
    }
}

/// Reason codes left in the region's state word when a session ends.
pub const CLOSED_PROTOCOL: u32 = 1;
pub const CLOSED_SERVER: u32 = 2;
/// The client went past a limit (objects, bytes, surfaces, GPU time...).
pub const CLOSED_LIMIT: u32 = 3;

pub struct Session {
    pub id: u64,
    pub drv: &'static Driver,
    pub names: NameMap,
    pub handles: Handles,
    /// Window surfaces (driver pbuffers) by driver handle: width, height.
    pub windows: HashMap<usize, (u32, u32)>,
    /// The first context; later ones share with it so that translated names
    /// stay valid across the client's contexts.
    pub first_context: usize,
    /// An EGL error produced by a hook, reported by the next eglGetError.
    pub egl_error: i32,
    /// Buffers that hold client-side vertex arrays, per attribute.
    pub array_vbos: [u32; 16],
    pub frames: Frames,
    pub display: usize,
    /// Whether the driver accepts unpack / pack row length and skips,
    /// probed once a context was current.
    pub subimage: Option<[bool; 2]>,
    /// GL errors the server's own probing took from the driver (each code
    /// once, as GL keeps one flag per code), reported by the client's next
    /// glGetError calls.
    pub gl_errors: Vec<u32>,
    /// Every enabled vertex attribute the current program reads is backed
    /// by a buffer (checked at a draw, forgotten when that can change).
    pub arrays_ok: bool,
    /// GL_MAX_VERTEX_ATTRIBS, once asked.
    pub max_attribs: Option<u32>,
    pub limits: crate::limits::Limits,
    pub usage: crate::limits::Usage,
    /// Driver size limits (GL_MAX_TEXTURE_SIZE, ...), once asked.
    pub max_sizes: HashMap<u32, i64>,
    pub sched: crate::sched::Sched,
}

/// The driver entry point or a session error naming it.
pub fn need<T>(f: Option<T>, name: &'static str) -> Result<T, SessionError> {
    f.ok_or(SessionError::Missing(name))
}

impl Session {
    pub fn new(id: u64, drv: &'static Driver, frames: Frames) -> Session {
        Session {
            id,
            drv,
            names: NameMap::default(),
            handles: Handles::default(),
            windows: HashMap::new(),
            first_context: 0,
            egl_error: 0,
            array_vbos: [0; 16],
            frames,
            display: 0,
            subimage: None,
            gl_errors: Vec::new(),
            arrays_ok: false,
            max_attribs: None,
            limits: crate::limits::Limits::default(),
            usage: crate::limits::Usage::default(),
            max_sizes: HashMap::new(),
            sched: crate::sched::Sched::default(),
        }
    }

    /// Keeps a GL error taken from the driver for the client's glGetError.
    pub fn keep_gl_error(&mut self, e: u32) {
        if e != 0 && !self.gl_errors.contains(&e) {
            self.gl_errors.push(e);
        }
    }

    /// Takes every error the driver has recorded into `gl_errors` (GL has
    /// at most one flag per error code; the bound stops a driver that
    /// never answers GL_NO_ERROR).
    pub fn drain_gl_errors(&mut self) {
        let Some(ge) = self.drv.glGetError else {
            return;
        };
        for _ in 0..16 {
            // SAFETY: no arguments.
            let e = unsafe { ge() };
            if e == 0 {
                break;
            }
            self.keep_gl_error(e);
        }
    }

    /// Client name to driver name, creating the object name on first use
    /// (GLES 2 lets applications bind names they never generated).
    pub fn name(&mut self, ns: Ns, client: u32) -> Result<u32, SessionError> {
        if let Some(r) = self.names.get(ns, client) {
            return Ok(r);
        }
        let gen = match ns {
            Ns::Buffer => need(self.drv.glGenBuffers, "glGenBuffers")?,
            Ns::Texture => need(self.drv.glGenTextures, "glGenTextures")?,
            Ns::Framebuffer => need(self.drv.glGenFramebuffers, "glGenFramebuffers")?,
            Ns::Renderbuffer => need(self.drv.glGenRenderbuffers, "glGenRenderbuffers")?,
            // Programs and shaders only come from glCreate*, vertex arrays
            // from glGenVertexArraysOES.
            Ns::Program | Ns::VertexArray => return Ok(INVALID_NAME),
        };
        let mut real = 0u32;
        // SAFETY: one name into a valid u32.
        unsafe { gen(1, &mut real as *mut u32 as *mut c_void) };
        self.names.insert(ns, client, real);
        Ok(if real == 0 { INVALID_NAME } else { real })
    }

    /// Client name to driver name without creating anything.
    pub fn lookup(&self, ns: Ns, client: u32) -> u32 {
        self.names.get(ns, client).unwrap_or(INVALID_NAME)
    }

    pub fn map_name(&mut self, ns: Ns, client: u32, real: u32) {
        self.names.insert(ns, client, real);
    }

    pub fn map_names(&mut self, ns: Ns, client: &[u32], real: &[u32]) {
        for (c, r) in client.iter().zip(real) {
            self.names.insert(ns, *c, *r);
        }
    }

    /// Names to delete: forgotten here, unknown ones become 0 (ignored).
    pub fn unmap_names(&mut self, ns: Ns, client: &[u32]) -> Vec<u32> {
        client
            .iter()
            .map(|c| self.names.remove(ns, *c).unwrap_or(0))
            .collect()
    }

    /// For a handle the client was never given (or one of another kind):
    /// the EGL error to report and the call's failure value. Unknown
    /// handles never reach the driver.
    pub fn unknown_handle(&mut self, k: Kind, id: u64) -> Option<crate::exec::Ret> {
        if self.handles.get(k, id).is_some() {
            return None;
        }
        self.egl_error = match k {
            Kind::Display => 0x3008,
            Kind::Config => 0x3005,
            Kind::Context => 0x3006,
            Kind::Surface => 0x300D,
        };
        Some(crate::exec::Ret::Value(0))
    }

    pub fn handle(&self, k: Kind, id: u64) -> *mut c_void {
        self.handles.get(k, id).unwrap_or(INVALID_HANDLE) as *mut c_void
    }

    pub fn new_handle(&mut self, k: Kind, real: *mut c_void) -> u64 {
        self.handles.id(k, real as usize)
    }

    /// Releases everything the client left behind, so that nothing it
    /// created outlives its session.
    pub fn cleanup(&mut self) {
        let d = self.drv;
        let dpy = self.display as *mut c_void;
        if dpy.is_null() {
            return;
        }
        // SAFETY: driver calls with handles this session created.
        unsafe {
            if let Some(mc) = d.eglMakeCurrent {
                mc(
                    dpy,
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                );
            }
            if let Some(ds) = d.eglDestroySurface {
                for (_, s) in self.handles.all(Kind::Surface) {
                    ds(dpy, s as *mut c_void);
                }
            }
            if let Some(dc) = d.eglDestroyContext {
                for (_, c) in self.handles.all(Kind::Context) {
                    dc(dpy, c as *mut c_void);
                }
            }
            if let Some(rt) = d.eglReleaseThread {
                rt();
            }
        }
    }
}
