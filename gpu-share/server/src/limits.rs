//! What one client may take from the server, and the checks that hold it
//! to that. A client that exceeds a limit has its session ended (reason
//! code [`crate::session::CLOSED_LIMIT`], one log line); the others never
//! notice.

use crate::session::{Session, SessionError};
use gpu_codec::{Call, Kind, Ns};
use std::collections::HashMap;

/// Calls of numbers only that [`Session::within_limits`] counts (they
/// allocate storage): they never take the fast path that skips it.
pub const COUNTED_SCALAR_CALLS: &[u32] = &[
    gpu_codec::op::glCopyTexImage2D,
    gpu_codec::op::glRenderbufferStorage,
];

/// Limits, per session unless said otherwise. `gpu-server --limit NAME=N`
/// sets one (see [`Limits::set`]); [`Limits::describe`] lists them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sessions served at once (server-wide), handshakes included.
    pub sessions: u64,
    /// Size of a client's shared region in bytes (rings and heap).
    pub region: u64,
    /// GL object names (buffers, textures, framebuffers, renderbuffers,
    /// programs and shaders together).
    pub objects: u64,
    pub contexts: u64,
    pub surfaces: u64,
    /// Pixels of one pbuffer (window surfaces are capped at 4096x4096).
    pub surface_pixels: u64,
    /// Bytes of buffer, texture and renderbuffer storage.
    pub bytes: u64,
    /// Bytes of one glShaderSource.
    pub shader: u64,
    /// GPU watchdog: a session whose fenced batch of draws runs longer than
    /// this is ended, in ms (see [`crate::sched`]).
    pub watchdog_ms: u64,
    /// Work in flight: a session's draws are fenced so that one batch
    /// takes about this long, in ms (its budget adapts between 1 and 4096
    /// draws); the ring is not read while its batch runs.
    pub batch_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            sessions: 32,
            region: 256 << 20,
            objects: 1 << 16,
            contexts: 8,
            surfaces: 32,
            surface_pixels: 4096 * 4096,
            bytes: 1 << 30,
            shader: 1 << 20,
            watchdog_ms: 2000,
            batch_ms: 4,
        }
    }
}

impl Limits {
    const NAMES: &'static [&'static str] = &[
        "sessions",
        "region",
        "objects",
        "contexts",
        "surfaces",
        "surface_pixels",
        "bytes",
        "shader",
        "watchdog_ms",
        "batch_ms",
    ];

    fn field(&mut self, name: &str) -> Option<&mut u64> {
        Some(match name {
            "sessions" => &mut self.sessions,
            "region" => &mut self.region,
            "objects" => &mut self.objects,
            "contexts" => &mut self.contexts,
            "surfaces" => &mut self.surfaces,
            "surface_pixels" => &mut self.surface_pixels,
            "bytes" => &mut self.bytes,
            "shader" => &mut self.shader,
            "watchdog_ms" => &mut self.watchdog_ms,
            "batch_ms" => &mut self.batch_ms,
            _ => return None,
        })
    }

    /// Applies `NAME=N` (N may end in K, M or G for powers of 1024).
    pub fn set(&mut self, spec: &str) -> Result<(), String> {
        let (name, v) = spec
            .split_once('=')
            .ok_or_else(|| format!("limit `{spec}`: expected NAME=N"))?;
        let (digits, mul) = match v.as_bytes().last() {
            Some(b'K') => (&v[..v.len() - 1], 1 << 10),
            Some(b'M') => (&v[..v.len() - 1], 1 << 20),
            Some(b'G') => (&v[..v.len() - 1], 1 << 30),
            _ => (v, 1),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("limit `{spec}`: `{v}` is not a number"))?;
        let f = self
            .field(name)
            .ok_or_else(|| format!("unknown limit `{name}` (known: {})", Self::NAMES.join(", ")))?;
        *f = n.saturating_mul(mul);
        Ok(())
    }

    pub fn describe(&self) -> String {
        let mut me = *self;
        Self::NAMES
            .iter()
            .map(|n| format!("{n}={}", me.field(n).map_or(0, |v| *v)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Storage a session holds, by what holds it.
#[derive(Default)]
pub struct Usage {
    /// (name space, driver name, target/face, level) -> bytes.
    held: HashMap<(Ns, u32, u32, i32), u64>,
    pub total: u64,
}

fn over(what: &str, n: u64, limit: u64) -> SessionError {
    SessionError::Limit(format!("{what}: {n}, limit {limit}"))
}

fn attrib(list: &Option<Vec<i32>>, key: i32) -> i64 {
    list.as_ref()
        .and_then(|a| a.chunks_exact(2).find(|p| p[0] == key).map(|p| p[1] as i64))
        .unwrap_or(0)
}

/// The driver's binding for a target, or None for targets it rejects.
fn bound(s: &Session, target: u32) -> Option<(Ns, u32)> {
    let (ns, pname) = match target {
        0x8892 => (Ns::Buffer, 0x8894),
        0x8893 => (Ns::Buffer, 0x8895),
        0x0DE1 => (Ns::Texture, 0x8069),
        0x8515..=0x851A => (Ns::Texture, 0x8514),
        0x8D41 => (Ns::Renderbuffer, 0x8CA7),
        _ => return None,
    };
    let f = s.drv.glGetIntegerv?;
    let mut v = [0i32; 4];
    // SAFETY: room for the one value a binding query returns.
    unsafe { f(pname, v.as_mut_ptr() as *mut core::ffi::c_void) };
    Some((ns, v[0] as u32))
}

impl Session {
    /// Storage `bytes` for (target, level) of the bound object, replacing
    /// what that slot held.
    fn hold(&mut self, target: u32, level: i32, bytes: i64) -> Result<(), SessionError> {
        let Some((ns, name)) = bound(self, target) else {
            return Ok(());
        };
        if name == 0 || bytes < 0 {
            return Ok(());
        }
        let key = (ns, name, target, level);
        let old = self.usage.held.get(&key).copied().unwrap_or(0);
        let total = self.usage.total - old + bytes as u64;
        if total > self.limits.bytes {
            return Err(over("bytes of storage", total, self.limits.bytes));
        }
        self.usage.held.insert(key, bytes as u64);
        self.usage.total = total;
        Ok(())
    }

    fn release(&mut self, ns: Ns, client: &[u32]) {
        for c in client {
            let real = self.lookup(ns, *c);
            let u = &mut self.usage;
            u.held.retain(|k, b| {
                let gone = k.0 == ns && k.1 == real;
                if gone {
                    u.total -= *b;
                }
                !gone
            });
        }
    }

    fn driver_max(&mut self, pname: u32) -> i64 {
        if let Some(v) = self.max_sizes.get(&pname) {
            return *v;
        }
        let mut v = [0i32; 4];
        if let Some(f) = self.drv.glGetIntegerv {
            // SAFETY: room for one value.
            unsafe { f(pname, v.as_mut_ptr() as *mut core::ffi::c_void) };
        }
        self.max_sizes.insert(pname, v[0] as i64);
        v[0] as i64
    }

    /// An image the driver will accept the size of (larger ones get the
    /// GL error natively, so they count nothing).
    fn image(&mut self, max_pname: u32, w: i32, h: i32) -> i64 {
        let max = self.driver_max(max_pname);
        if w < 0 || h < 0 || w as i64 > max || h as i64 > max {
            0
        } else {
            w as i64 * h as i64 * 4
        }
    }

    /// Checks a call against the session's limits before it runs. Calls
    /// of numbers only skip this on the fast path, except those in
    /// [`COUNTED_SCALAR_CALLS`]: a scalar arm added below must be listed there.
    pub fn within_limits(&mut self, call: &Call) -> Result<(), SessionError> {
        let l = self.limits;
        let names = |s: &Session, n: usize| {
            let have = s.names.len() as u64 + n as u64;
            if have > l.objects {
                Err(over("GL object names", have, l.objects))
            } else {
                Ok(())
            }
        };
        match call {
            Call::glGenBuffers { buffers: v, .. }
            | Call::glGenTextures { textures: v, .. }
            | Call::glGenFramebuffers {
                framebuffers: v, ..
            }
            | Call::glGenRenderbuffers {
                renderbuffers: v, ..
            } => names(self, v.len())?,
            Call::glCreateProgram { .. } | Call::glCreateShader { .. } => names(self, 1)?,
            // Binding a name never generated creates it.
            Call::glBindBuffer { buffer: n, .. } if self.names.get(Ns::Buffer, *n).is_none() => {
                names(self, 1)?
            }
            Call::glBindTexture { texture: n, .. } if self.names.get(Ns::Texture, *n).is_none() => {
                names(self, 1)?
            }
            Call::glBindFramebuffer { framebuffer: n, .. }
                if self.names.get(Ns::Framebuffer, *n).is_none() =>
            {
                names(self, 1)?
            }
            Call::glBindRenderbuffer {
                renderbuffer: n, ..
            } if self.names.get(Ns::Renderbuffer, *n).is_none() => names(self, 1)?,
            Call::eglCreateContext { .. } => {
                let n = self.handles.count(Kind::Context) as u64 + 1;
                if n > l.contexts {
                    return Err(over("EGL contexts", n, l.contexts));
                }
            }
            Call::eglCreatePbufferSurface { attrib_list, .. } => {
                self.surface_count()?;
                let px = attrib(attrib_list, 0x3057).max(0) as u64
                    * attrib(attrib_list, 0x3056).max(0) as u64;
                if px > l.surface_pixels {
                    return Err(over("pixels of a pbuffer", px, l.surface_pixels));
                }
            }
            Call::eglCreateWindowSurface { .. }
            | Call::eglCreatePlatformWindowSurfaceEXT { .. } => self.surface_count()?,
            Call::tsShaderSource { len, .. } if *len as i64 > l.shader as i64 => {
                return Err(over("bytes of shader source", *len as u64, l.shader));
            }
            Call::glBufferData { target, size, .. } => self.hold(*target, 0, *size as i64)?,
            Call::glTexImage2D {
                target,
                level,
                width,
                height,
                ..
            }
            | Call::glCopyTexImage2D {
                target,
                level,
                width,
                height,
                ..
            } => {
                let b = self.image(0x0D33, *width, *height);
                self.hold(*target, *level, b)?
            }
            Call::glCompressedTexImage2D {
                target,
                level,
                imageSize,
                ..
            } => self.hold(*target, *level, *imageSize as i64)?,
            Call::glRenderbufferStorage {
                target,
                width,
                height,
                ..
            } => {
                let b = self.image(0x84E8, *width, *height);
                self.hold(*target, 0, b)?
            }
            Call::glDeleteBuffers { buffers, .. } => self.release(Ns::Buffer, buffers),
            Call::glDeleteTextures { textures, .. } => self.release(Ns::Texture, textures),
            Call::glDeleteRenderbuffers { renderbuffers, .. } => {
                self.release(Ns::Renderbuffer, renderbuffers)
            }
            _ => {}
        }
        Ok(())
    }

    fn surface_count(&self) -> Result<(), SessionError> {
        let n = self.handles.count(Kind::Surface) as u64 + 1;
        if n > self.limits.surfaces {
            return Err(over("EGL surfaces", n, self.limits.surfaces));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::COUNTED_SCALAR_CALLS;
    use crate::exec::gen::FAST_OPS;

    /// Every call `within_limits` looks at either never takes the fast
    /// path or is listed as counted, so that none skips its limit.
    #[test]
    fn fast_calls_skip_no_limit() {
        let src = include_str!("limits.rs");
        let body = &src[src.find("fn within_limits").unwrap()..];
        let body = &body[..body.find("\n    }\n").unwrap()];
        let mut seen = 0;
        for part in body.split("Call::").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let op = (1..gpu_codec::OPCODES as u32)
                .find(|o| gpu_codec::name(*o) == name)
                .unwrap_or_else(|| panic!("{name} is no opcode"));
            seen += 1;
            assert!(
                !FAST_OPS.contains(&op) || COUNTED_SCALAR_CALLS.contains(&op),
                "{name} is limited but runs on the fast path"
            );
        }
        assert!(seen > 10, "within_limits not found");
        for op in COUNTED_SCALAR_CALLS {
            assert!(FAST_OPS.contains(op));
        }
    }
}
