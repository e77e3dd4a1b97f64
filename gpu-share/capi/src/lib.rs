//! `libGLESv2.so.2` and `libEGL.so.1` for Linux: the real C ABI on top of the
//! gpu-share front-end. One shared object carries both APIs (they share one
//! connection); the install step links both names to it, and the dynamic
//! loader maps it once since both names resolve to the same file.
//!
//! The connection is made on the first call, over a shared region with
//! `gpu-xvm` where `TESSERA_SHM` names emulated ones (`tessera-shm-host`;
//! the one named by `TESSERA_GPU_REGION`, default the first); else to the
//! server socket named by `TESSERA_GPU_SOCKET`; else, in a Linux guest of
//! Tessera, over the `tessera_shm` region named by `TESSERA_GPU_REGION`
//! (default: the first whose name starts with `gpu-`); else to the default
//! socket. All calls of the process go through one connection
//! under a lock, so a multi-threaded application works but its threads share
//! one current context.

use core::ffi::c_void;
use gpu_codec::{EncodeError, Wire};
use gpu_frontend::Client;
use gpu_transport::FutexBell;
use std::sync::Mutex;

mod abi;
mod custom;
mod local;

type Conn = Client<Bell>;

/// The doorbell of either transport.
pub(crate) enum Bell {
    Socket(FutexBell),
    Region(gpu_xvm::ClientBell<gpu_xvm::host::HostPort>),
    Guest(gpu_xvm::ClientBell<gpu_xvm::linux::LinuxPort>),
}

/// Calls `$f` on whichever bell `$b` is.
macro_rules! each_bell {
    ($b:expr, $x:ident => $e:expr) => {
        match $b {
            Bell::Socket($x) => $e,
            Bell::Region($x) => $e,
            Bell::Guest($x) => $e,
        }
    };
}

impl gpu_wire::Doorbell for Bell {
    fn notify(&self, w: &core::sync::atomic::AtomicU32) {
        each_bell!(self, b => b.notify(w))
    }
    fn wait(&self, w: &core::sync::atomic::AtomicU32, seen: u32, ms: u32) -> gpu_wire::Wait {
        each_bell!(self, b => b.wait(w, seen, ms))
    }
    fn peer_alive(&self) -> bool {
        each_bell!(self, b => b.peer_alive())
    }
    fn relax(&self) {
        each_bell!(self, b => b.relax())
    }
}

/// Connects over a shared region: the gpu-share region and its bell.
fn connect_over<P: gpu_xvm::Port + Sync + 'static>(
    port: P,
    bell: fn(gpu_xvm::ClientBell<P>) -> Bell,
) -> Result<(&'static gpu_wire::Region, Bell), String> {
    let port: &'static P = Box::leak(Box::new(port));
    let (att, gpu, len) = gpu_xvm::link::connect(port, 5000).map_err(|e| e.to_string())?;
    // SAFETY: the port (and its mapping) is leaked: it lives as long as
    // the process.
    let region = unsafe { gpu_wire::Region::new(gpu, len) }.map_err(|e| e.to_string())?;
    Ok((
        Box::leak(Box::new(region)),
        bell(gpu_xvm::ClientBell::new(port, att)),
    ))
}

/// The transport the environment asks for: None for the socket.
fn connect_region() -> Option<Result<(&'static gpu_wire::Region, Bell), String>> {
    let name = std::env::var("TESSERA_GPU_REGION").ok();
    if std::env::var_os("TESSERA_SHM").is_some() {
        let port = gpu_xvm::host::HostPort::from_env(name.as_deref());
        return Some(
            port.map_err(|e| e.to_string())
                .and_then(|p| connect_over(p, Bell::Region)),
        );
    }
    if std::env::var_os("TESSERA_GPU_SOCKET").is_some() {
        return None;
    }
    let names = gpu_xvm::linux::LinuxPort::names().unwrap_or_default();
    let name = name.or_else(|| names.into_iter().find(|n| n.starts_with("gpu-")))?;
    let port = gpu_xvm::linux::LinuxPort::open(&name);
    Some(
        port.map_err(|e| e.to_string())
            .and_then(|p| connect_over(p, Bell::Guest)),
    )
}

enum State {
    Unconnected,
    Connected(Box<Conn>),
    Failed,
}

static STATE: Mutex<State> = Mutex::new(State::Unconnected);

fn connect() -> Option<Box<Conn>> {
    if let Some(r) = connect_region() {
        return match r {
            Ok((region, bell)) => Some(Box::new(Client::new(region, bell))),
            Err(e) => {
                eprintln!("gpu-share: {e}");
                None
            }
        };
    }
    match gpu_transport::connect(gpu_wire::Layout::DEFAULT) {
        Ok((map, sock)) => {
            let bell = Bell::Socket(FutexBell::new(&sock));
            // The mapping and socket live as long as the process: GL has no
            // "unload" and the region must outlive every queued call.
            let map: &'static gpu_transport::Mapping = Box::leak(Box::new(map));
            Box::leak(Box::new(sock));
            // SAFETY: the mapping stays for the life of the process.
            let region = unsafe { gpu_wire::Region::new(map.ptr(), map.len()) }.ok()?;
            let region: &'static gpu_wire::Region = Box::leak(Box::new(region));
            Some(Box::new(Client::new(region, bell)))
        }
        Err(e) => {
            eprintln!("gpu-share: {e}");
            None
        }
    }
}

/// Runs `f` on the connection; on failure returns `default` after recording
/// the error as GL (`egl == false`) or EGL would.
fn with<T>(default: T, egl: bool, f: impl FnOnce(&mut Conn) -> Result<T, EncodeError>) -> T {
    let mut st = STATE.lock().unwrap_or_else(|p| p.into_inner());
    if matches!(*st, State::Unconnected) {
        *st = connect().map_or(State::Failed, State::Connected);
    }
    let State::Connected(c) = &mut *st else {
        return default;
    };
    let was_open = c.closed().is_none();
    match f(c) {
        Ok(v) => v,
        Err(e) => {
            match (e, egl) {
                (EncodeError::TooLarge, false) => {
                    c.set_gl_error(gpu_frontend::gl::GL_OUT_OF_MEMORY)
                }
                (EncodeError::BadArg, false) => c.set_gl_error(gpu_frontend::gl::GL_INVALID_VALUE),
                (EncodeError::TooLarge, true) => c.shadow.egl_error = 0x3003, // EGL_BAD_ALLOC
                (EncodeError::BadArg, true) => c.shadow.egl_error = 0x300C,   // EGL_BAD_PARAMETER
                (EncodeError::Closed, _) => {
                    if was_open {
                        eprintln!(
                            "gpu-share: session closed ({:?}); further calls do nothing",
                            c.closed()
                        );
                    }
                    if egl {
                        c.shadow.egl_error = 0x3001; // EGL_NOT_INITIALIZED
                    }
                }
            }
            default
        }
    }
}

pub(crate) fn with_gl<T>(default: T, f: impl FnOnce(&mut Conn) -> Result<T, EncodeError>) -> T {
    with(default, false, f)
}

pub(crate) fn with_egl<T>(default: T, f: impl FnOnce(&mut Conn) -> Result<T, EncodeError>) -> T {
    with(default, true, f)
}

// Generated entry points and `proc_address`.
include!(concat!(env!("OUT_DIR"), "/capi_gen.rs"));
