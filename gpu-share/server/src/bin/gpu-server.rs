//! gpu-server: serves gpu-share clients on this machine's EGL/GLES.
//!
//! Usage: gpu-server [--socket PATH] [--frames DIR] [--egl LIB] [--gles LIB]
//!                   [--cluster-socket PATH] [--limit NAME=N]...
//!
//! Listens on PATH (default `$TESSERA_GPU_SOCKET` or /tmp/tessera-gpu.sock).
//! With --frames, the newest frame of each client is written to
//! DIR/client-N.png when its session ends. --limit sets one of the limits
//! of `gpu_server::limits::Limits` (printed at start-up). Sessions that
//! connect to the --cluster-socket are the cluster's: served first (see
//! `gpu_server::sched`); give that socket to the cluster only (file mode).
//!
//! Across VMs (docs/cockpit.md): `--board FILE` reads the board's
//! `[cockpit]` layout; every shared region named in `TESSERA_SHM` (set by
//! `tessera-shm-host`), else each of this Linux guest's `tessera_shm`
//! regions the layout shows, is served as one client's, the layout's
//! cluster area first, and the compositor places each client's frames on
//! one output every `--screenshot-ms` (default 200): `--screenshots DIR`
//! writes it as `DIR/screen.png`, `--display /dev/dri/cardN` shows it on
//! that DRM/KMS device. Without `--socket` no Unix socket is opened then.

use gpu_server::frames::Frames;
use gpu_server::limits::Limits;
use gpu_server::session::Session;
use std::collections::HashSet;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counts a session (handshake included) for as long as it lives.
struct Slot(Arc<AtomicU64>);
impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Regions in use (memfd device and inode): a region serves one session.
type InUse = Arc<Mutex<HashSet<(u64, u64)>>>;

/// A region's entry in [`InUse`], removed when its session ends.
struct Registered(InUse, (u64, u64));
impl Drop for Registered {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

fn main() {
    let mut socket = None;
    let mut board: Option<std::path::PathBuf> = None;
    let mut screenshots: Option<std::path::PathBuf> = None;
    let mut screenshot_ms = 200u64;
    let mut display: Option<String> = None;
    let mut frames_dir: Option<std::path::PathBuf> = None;
    let mut egl = "libEGL.so.1".to_string();
    let mut gles = "libGLESv2.so.2".to_string();
    let mut limits = Limits::default();
    let mut cluster_socket: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--socket" => socket = Some(val()),
            "--board" => board = Some(val().into()),
            "--screenshots" => screenshots = Some(val().into()),
            "--display" => display = Some(val()),
            "--screenshot-ms" => {
                screenshot_ms = val()
                    .parse()
                    .unwrap_or_else(|_| die("--screenshot-ms takes a number"))
            }
            "--frames" => frames_dir = Some(val().into()),
            "--egl" => egl = val(),
            "--gles" => gles = val(),
            "--cluster-socket" => cluster_socket = Some(val()),
            "--limit" => limits.set(&val()).unwrap_or_else(|e| die(&e)),
            _ => die(&format!("unknown argument {a}")),
        }
    }
    // gpu-share carries OpenGL ES 2.0 only, so the driver must not offer a
    // newer context (Mesa would hand out ES 3.2 and applications would look
    // for entry points that are not remoted). Other drivers ignore this.
    if std::env::var_os("MESA_GLES_VERSION_OVERRIDE").is_none() {
        std::env::set_var("MESA_GLES_VERSION_OVERRIDE", "2.0");
    }
    let loaded = gpu_server::driver::load(&egl, &gles).unwrap_or_else(|e| die(&e));
    let drv: &'static gpu_server::driver::Driver = &Box::leak(Box::new(loaded)).drv;
    let layout = board
        .as_ref()
        .map(|b| gpu_server::compositor::Layout::from_board(b).unwrap_or_else(|e| die(&e)));
    // Across VMs the regions are the transport; a socket only if asked.
    let socket = match (socket, &layout) {
        (Some(s), _) => Some(s),
        (None, None) => Some(gpu_transport::socket_path()),
        (None, Some(_)) => None,
    };
    let listener = socket.map(|socket| {
        let _ = std::fs::remove_file(&socket);
        let l = UnixListener::bind(&socket).unwrap_or_else(|e| die(&format!("{socket}: {e}")));
        eprintln!("gpu-server: listening on {socket}");
        l
    });
    let cluster = cluster_socket.map(|path| {
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap_or_else(|e| die(&format!("{path}: {e}")));
        eprintln!("gpu-server: cluster sessions on {path}");
        l
    });
    eprintln!("gpu-server: limits {}", limits.describe());
    let server = Arc::new(Server {
        drv,
        limits,
        frames: Frames::default(),
        frames_dir,
        active: Arc::new(AtomicU64::new(0)),
        in_use: InUse::default(),
        next_id: Arc::new(AtomicU64::new(1)),
    });
    if let Some(l) = cluster {
        let srv = server.clone();
        std::thread::spawn(move || srv.listen(l, true));
    }
    if let Some(layout) = layout {
        let mut outputs: Vec<Box<dyn gpu_server::compositor::Output + Send>> = Vec::new();
        if let Some(dir) = screenshots {
            let _ = std::fs::create_dir_all(&dir);
            eprintln!(
                "gpu-server: screenshots in {}",
                dir.join("screen.png").display()
            );
            outputs.push(Box::new(gpu_server::compositor::PngSink {
                dir,
                written: 0,
            }));
        }
        if let Some(dev) = display {
            let kms = gpu_server::kms::KmsOutput::open(&dev).unwrap_or_else(|e| die(&e));
            outputs.push(Box::new(kms));
        }
        server.cockpit(layout, outputs, screenshot_ms);
    }
    match listener {
        Some(l) => server.listen(l, false),
        None => loop {
            std::thread::park();
        },
    }
}

/// What every session thread shares.
struct Server {
    drv: &'static gpu_server::driver::Driver,
    limits: Limits,
    frames: Frames,
    frames_dir: Option<std::path::PathBuf>,
    active: Arc<AtomicU64>,
    in_use: InUse,
    next_id: Arc<AtomicU64>,
}

impl Server {
    /// Serves region `name` on its own thread, the cluster's first.
    fn serve_region<P: gpu_xvm::Port + Sync + 'static>(
        &self,
        layout: &gpu_server::compositor::Layout,
        shown: &gpu_server::compositor::Shown,
        name: String,
        port: &'static P,
    ) {
        let rs = gpu_server::xvm::RegionServer {
            cluster: layout.areas.iter().any(|a| a.shared == name && a.cluster),
            name,
            port,
            drv: self.drv,
            limits: self.limits,
            frames: self.frames.clone(),
            shown: shown.clone(),
            next_id: self.next_id.clone(),
        };
        std::thread::spawn(move || rs.run());
    }

    /// Serves the regions (emulated or this guest's) and runs the
    /// compositor.
    fn cockpit(
        &self,
        layout: gpu_server::compositor::Layout,
        mut outputs: Vec<Box<dyn gpu_server::compositor::Output + Send>>,
        every_ms: u64,
    ) {
        use gpu_server::compositor::{Compositor, Showing};
        let shown = gpu_server::compositor::Shown::default();
        // The regions: emulated ones (tessera-shm-host), else this Linux
        // guest's, those the layout shows.
        if let Ok(spec) = std::env::var("TESSERA_SHM") {
            let regions = gpu_xvm::host::parse_spec(&spec).unwrap_or_else(|e| die(&e.to_string()));
            for (name, prefix, peer) in regions {
                let port = gpu_xvm::host::HostPort::open(&prefix, peer)
                    .unwrap_or_else(|e| die(&format!("region {name}: {e}")));
                self.serve_region(&layout, &shown, name, Box::leak(Box::new(port)));
            }
        } else {
            let names = gpu_xvm::linux::LinuxPort::names().unwrap_or_default();
            let shown_names: Vec<String> = layout.areas.iter().map(|a| a.shared.clone()).collect();
            let mut any = false;
            for name in names.into_iter().filter(|n| shown_names.contains(n)) {
                let port = gpu_xvm::linux::LinuxPort::open(&name)
                    .unwrap_or_else(|e| die(&format!("region {name}: {e}")));
                self.serve_region(&layout, &shown, name, Box::leak(Box::new(port)));
                any = true;
            }
            if !any {
                die("--board: no region of the layout here (no TESSERA_SHM, no /dev/tessera region)");
            }
        }
        let c = Compositor::new(layout, self.frames.clone(), shown);
        std::thread::spawn(move || {
            let mut last: Vec<Showing> = Vec::new();
            let mut errors: Vec<Option<String>> = vec![None; outputs.len()];
            loop {
                let (rgba, showing) = c.compose();
                // A change between a frame and "no signal" is worth a line.
                let kinds = |v: &[Showing]| -> Vec<bool> {
                    v.iter().map(|s| matches!(s, Showing::NoSignal)).collect()
                };
                if kinds(&showing) != kinds(&last) {
                    let areas: Vec<String> = c
                        .layout
                        .areas
                        .iter()
                        .zip(&showing)
                        .map(|(a, s)| match s {
                            Showing::NoSignal => format!("{}: no signal", a.shared),
                            Showing::Frame { session, .. } => {
                                format!("{}: client {session}", a.shared)
                            }
                        })
                        .collect();
                    eprintln!("gpu-server: compositor: {}", areas.join(", "));
                }
                last = showing;
                for (o, said) in outputs.iter_mut().zip(errors.iter_mut()) {
                    // Each new error once: the console is slow and shared.
                    match o.show(&rgba, c.layout.width, c.layout.height) {
                        Err(e) if said.as_deref() != Some(&e.to_string()) => {
                            eprintln!("gpu-server: output: {e}");
                            *said = Some(e.to_string());
                        }
                        Err(_) => {}
                        Ok(()) => *said = None,
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(every_ms.max(10)));
            }
        });
    }

    /// Accepts sessions on `listener`; `cluster` ones are served first.
    fn listen(self: &Arc<Self>, listener: UnixListener, cluster: bool) {
        for conn in listener.incoming() {
            let Ok(mut sock) = conn else { continue };
            let id = self.next_id.fetch_add(1, Ordering::SeqCst);
            let limits = self.limits;
            if self.active.fetch_add(1, Ordering::SeqCst) >= limits.sessions {
                self.active.fetch_sub(1, Ordering::SeqCst);
                use std::io::Write;
                let _ = sock.set_nonblocking(true);
                let _ = writeln!(sock, "ERR too many sessions (limit {})", limits.sessions);
                eprintln!("gpu-server: client {id}: refused: too many sessions");
                continue;
            }
            let slot = Slot(self.active.clone());
            let srv = self.clone();
            std::thread::spawn(move || {
                let _slot = slot;
                srv.session(id, sock, cluster);
            });
        }
    }

    fn session(&self, id: u64, mut sock: std::os::unix::net::UnixStream, cluster: bool) {
        let (drv, limits, frames) = (self.drv, self.limits, &self.frames);
        let in_use = &self.in_use;
        let accepted = gpu_transport::accept(&mut sock, limits.region as usize).and_then(|m| {
            if in_use
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(m.file())
            {
                Ok((Registered(in_use.clone(), m.file()), m))
            } else {
                Err("region already serves a session".into())
            }
        });
        let (_registered, map) = match accepted {
            Ok(m) => m,
            Err(e) => {
                use std::io::Write;
                let _ = writeln!(sock, "ERR {e}");
                eprintln!("gpu-server: client {id}: refused: {e}");
                return;
            }
        };
        // SAFETY: the mapping lives until the end of this thread.
        let region = match unsafe { gpu_wire::Region::new(map.ptr(), map.len()) } {
            Ok(r) => r,
            Err(e) => return eprintln!("gpu-server: client {id}: {e}"),
        };
        {
            use std::io::Write;
            if writeln!(sock, "OK").is_err() {
                return;
            }
        }
        let bell = gpu_transport::FutexBell::new(&sock);
        let mut s = Session::new(id, drv, frames.clone());
        s.limits = limits;
        s.sched.cluster = cluster;
        let r = gpu_server::serve::run(&mut s, &region, &bell);

        if let Some(dir) = &self.frames_dir {
            match frames.write_png(id, dir) {
                Ok(Some(p)) => {
                    eprintln!("gpu-server: client {id}: newest frame in {}", p.display())
                }
                Ok(None) => {}
                Err(e) => eprintln!("gpu-server: client {id}: writing frame: {e}"),
            }
        }
        // The session is over: nothing of it may stay in the server.
        frames.remove(id);
        if r.is_ok() {
            eprintln!("gpu-server: client {id}: disconnected");
        }
    }
}

fn die(msg: &str) -> ! {
    eprintln!("gpu-server: {msg}");
    std::process::exit(2)
}
