//! gpu-server: serves gpu-share clients on this machine's EGL/GLES.
//!
//! Usage: gpu-server [--socket PATH] [--frames DIR] [--egl LIB] [--gles LIB]
//!
//! Listens on PATH (default `$TESSERA_GPU_SOCKET` or /tmp/tessera-gpu.sock).
//! With --frames, the newest frame of each client is written to
//! DIR/client-N.png when its session ends.

use gpu_server::frames::Frames;
use gpu_server::session::Session;
use std::os::unix::net::UnixListener;

fn main() {
    let mut socket = gpu_transport::socket_path();
    let mut frames_dir: Option<std::path::PathBuf> = None;
    let mut egl = "libEGL.so.1".to_string();
    let mut gles = "libGLESv2.so.2".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--socket" => socket = val(),
            "--frames" => frames_dir = Some(val().into()),
            "--egl" => egl = val(),
            "--gles" => gles = val(),
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
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).unwrap_or_else(|e| die(&format!("{socket}: {e}")));
    eprintln!("gpu-server: listening on {socket}");
    let frames = Frames::default();
    for (id, conn) in (1u64..).zip(listener.incoming()) {
        let Ok(mut sock) = conn else { continue };
        let frames = frames.clone();
        let dir = frames_dir.clone();
        std::thread::spawn(move || {
            let map = match gpu_transport::accept(&mut sock) {
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
            let r = gpu_server::serve::run(&mut s, &region, &bell);
            if let Some(dir) = dir {
                match frames.write_png(id, &dir) {
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
        });
    }
}

fn die(msg: &str) -> ! {
    eprintln!("gpu-server: {msg}");
    std::process::exit(2)
}
