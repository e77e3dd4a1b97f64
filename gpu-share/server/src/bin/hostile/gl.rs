//! A real GL session for hostile cases: the front-end's encoders over a
//! fresh connection, with an EGL display, context and surface made current.

use gpu_codec::{enc, EncodeError, Wire};
use gpu_frontend::Client;
use gpu_transport::FutexBell;
use gpu_wire::{Layout, Region};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;

pub const SMALL: Layout = Layout {
    cmd_size: 1 << 16,
    reply_size: 1 << 14,
    heap_size: 1 << 16,
};

pub struct Gl {
    pub c: Client<FutexBell>,
    pub region: &'static Region,
    pub dpy: u64,
    pub cfg: u64,
    pub surf: u64,
    pub _ctx: u64,
    /// Kept open for the session's life; dropping it ends the session.
    _sock: UnixStream,
}

fn e<T>(r: Result<T, EncodeError>, what: &str) -> Result<T, String> {
    r.map_err(|err| format!("{what}: {err:?}"))
}

/// What kind of surface a session draws to.
pub enum Surface {
    Window(u32, u32),
    Pbuffer(u32, u32),
}

impl Gl {
    /// Connects with `layout` and makes a context current on `surface`.
    pub fn open(layout: Layout, surface: Surface) -> Result<Gl, String> {
        Gl::open_at(&gpu_transport::socket_path(), layout, surface)
    }

    pub fn open_at(path: &str, layout: Layout, surface: Surface) -> Result<Gl, String> {
        let (map, sock) = gpu_transport::connect_to(path, layout).map_err(|e| e.to_string())?;
        let map: &'static gpu_transport::Mapping = Box::leak(Box::new(map));
        // SAFETY: the mapping is leaked, so it lives for the whole process.
        let region = unsafe { Region::new(map.ptr(), map.len()) }.map_err(|e| e.to_string())?;
        let region: &'static Region = Box::leak(Box::new(region));
        let mut c = Client::new(region, FutexBell::new(&sock));
        let dpy = e(
            enc::eglGetPlatformDisplayEXT(&mut c, 0x31DD, 0, None),
            "display",
        )?;
        e(enc::eglInitialize(&mut c, dpy, None, None), "eglInitialize")?;
        e(enc::eglBindAPI(&mut c, 0x30A0), "eglBindAPI")?;
        let ty = match surface {
            Surface::Window(..) => 0x4,
            Surface::Pbuffer(..) => 0x1,
        };
        let attrs = [
            0x3033, ty, 0x3024, 8, 0x3023, 8, 0x3022, 8, 0x3040, 4, 0x3038,
        ];
        let mut cfg = [0u8; 8];
        let mut n = [0u8; 4];
        e(
            enc::eglChooseConfig(&mut c, dpy, Some(&attrs), Some(&mut cfg), 1, Some(&mut n)),
            "eglChooseConfig",
        )?;
        let cfg = u64::from_le_bytes(cfg);
        let ctx = e(
            enc::eglCreateContext(&mut c, dpy, cfg, 0, Some(&[0x3098, 2, 0x3038])),
            "eglCreateContext",
        )?;
        let surf = match surface {
            Surface::Window(w, h) => c.egl_create_window_surface(dpy, cfg, w, h, None),
            Surface::Pbuffer(w, h) => enc::eglCreatePbufferSurface(
                &mut c,
                dpy,
                cfg,
                Some(&[0x3057, w as i32, 0x3056, h as i32, 0x3038]),
            ),
        };
        let surf = e(surf, "surface")?;
        if ctx == 0 || surf == 0 {
            return Err("no context or surface".into());
        }
        if e(c.egl_make_current(dpy, surf, surf, ctx), "eglMakeCurrent")? != 1 {
            return Err("eglMakeCurrent failed".into());
        }
        Ok(Gl {
            c,
            region,
            dpy,
            cfg,
            surf,
            _ctx: ctx,
            _sock: sock,
        })
    }

    pub fn small(surface: Surface) -> Result<Gl, String> {
        Gl::open(SMALL, surface)
    }

    /// The reason code the server left in the header, 0 while open.
    pub fn closed(&self) -> u32 {
        self.region.state().load(Ordering::Acquire)
    }

    /// Sends one raw record through the client (any slots, no checks).
    pub fn raw(&mut self, op: u32, slots: &[u64]) -> Result<(), EncodeError> {
        self.c.begin(op)?;
        for s in slots {
            self.c.slot(*s);
        }
        self.c.finish_async()?;
        self.c.flush();
        Ok(())
    }

    /// Waits (up to 5 s) for the server to close this session.
    pub fn wait_closed(&mut self) -> bool {
        self.c.flush();
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_secs(5) {
            if self.closed() != 0 {
                return true;
            }
            // A sync call notices a closed session or a dead server.
            if enc::glGetError(&mut self.c).is_err() {
                return self.closed() != 0;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }

    pub fn get_int(&mut self, pname: u32) -> Result<i32, String> {
        let mut v = [0i32; 4];
        e(self.c.get_integerv(pname, &mut v), "glGetIntegerv")?;
        Ok(v[0])
    }

    pub fn error(&mut self) -> Result<u32, String> {
        e(self.c.get_error(), "glGetError")
    }

    /// A linked program drawing attribute 0 (`pos`); made current.
    pub fn program(&mut self, fs_body: &str) -> Result<u32, String> {
        let vs =
            b"attribute vec4 pos; varying vec2 v; void main() { v = pos.xy; gl_Position = pos; }";
        let fs = format!("precision highp float; varying vec2 v; uniform float k; uniform vec4 u[4]; void main() {{ {fs_body} }}");
        let c = &mut self.c;
        let p = e(enc::glCreateProgram(c), "glCreateProgram")?;
        for (ty, src) in [(0x8B31, &vs[..]), (0x8B30, fs.as_bytes())] {
            let s = e(enc::glCreateShader(c, ty), "glCreateShader")?;
            e(c.shader_source(s, &[src]), "glShaderSource")?;
            e(enc::glCompileShader(c, s), "glCompileShader")?;
            e(enc::glAttachShader(c, p, s), "glAttachShader")?;
        }
        e(
            enc::glBindAttribLocation(c, p, 0, Some(b"pos\0")),
            "glBindAttribLocation",
        )?;
        e(enc::glLinkProgram(c, p), "glLinkProgram")?;
        let mut ok = [0u8; 4];
        e(
            enc::glGetProgramiv(c, p, 0x8B82, Some(&mut ok)),
            "glGetProgramiv",
        )?;
        if ok != [1, 0, 0, 0] {
            return Err("program did not link".into());
        }
        e(enc::glUseProgram(c, p), "glUseProgram")?;
        Ok(p)
    }

    /// eglCreatePbufferSurface of `w`x`h` (the surface is not used).
    pub fn raw_sync_pbuffer(&mut self, w: i32, h: i32) -> Result<u64, EncodeError> {
        let (d, c) = (self.dpy, self.cfg);
        enc::eglCreatePbufferSurface(&mut self.c, d, c, Some(&[0x3057, w, 0x3056, h, 0x3038]))
    }

    pub fn swap(&mut self) -> Result<u32, String> {
        let (d, s) = (self.dpy, self.surf);
        e(enc::eglSwapBuffers(&mut self.c, d, s), "eglSwapBuffers")
    }
}

/// Whether the server still serves: a new session answers a sync call
/// (waiting, 5 s at most, while it is full of sessions that are ending).
pub fn server_alive() -> bool {
    let t = std::time::Instant::now();
    loop {
        match Gl::open(SMALL, Surface::Pbuffer(4, 4)) {
            Ok(mut g) => return g.error().is_ok() && g.closed() == 0,
            Err(e) if e.contains("too many sessions") && t.elapsed().as_secs() < 5 => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            Err(e) => {
                eprintln!("hostile: server check: {e}");
                return false;
            }
        }
    }
}

/// A session on the cluster's socket (`TESSERA_GPU_CLUSTER_SOCKET`), served
/// first; the ordinary socket where the server has none.
pub fn cluster(surface: Surface) -> Result<Gl, String> {
    let path = std::env::var("TESSERA_GPU_CLUSTER_SOCKET")
        .unwrap_or_else(|_| gpu_transport::socket_path());
    Gl::open_at(&path, SMALL, surface)
}
