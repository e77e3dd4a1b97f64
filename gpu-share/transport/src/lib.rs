//! Host transport: how a client and the server share a region on one Linux
//! machine.
//!
//! * The client creates the region as a file in `/dev/shm`, writes the
//!   header, and connects to the server's Unix socket (path from
//!   `TESSERA_GPU_SOCKET`, default [`DEFAULT_SOCKET`]).
//! * It sends one line `TGPU <version> <path>\n`; the server maps the file,
//!   checks the header and answers `OK\n` or `ERR <reason>\n`. The client then
//!   unlinks the file, so nothing is left behind.
//! * The socket stays open for the session: its end tells either side that
//!   the peer is gone. Doorbells are futexes on the ring counters.

pub mod futex;
pub mod shm;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

pub use futex::FutexBell;
pub use shm::Mapping;

pub const DEFAULT_SOCKET: &str = "/tmp/tessera-gpu.sock";

/// Socket path clients connect to and the server listens on.
pub fn socket_path() -> String {
    std::env::var("TESSERA_GPU_SOCKET").unwrap_or_else(|_| DEFAULT_SOCKET.to_string())
}

/// Client side: creates a region with `layout` and registers it with the
/// server. Returns the mapping and the session socket.
pub fn connect(layout: gpu_wire::Layout) -> std::io::Result<(Mapping, UnixStream)> {
    let path = socket_path();
    let mut sock = UnixStream::connect(&path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot reach gpu-share server at {path}: {e}"),
        )
    })?;
    let name = format!(
        "/dev/shm/tessera-gpu-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let map = Mapping::create(&name, layout.region_size())?;
    // SAFETY: fresh private mapping of region_size bytes, page aligned.
    unsafe { layout.init(map.ptr(), map.len()) }
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let res = (|| {
        writeln!(sock, "TGPU {} {}", gpu_wire::VERSION, name)?;
        let mut line = String::new();
        BufReader::new(&sock).read_line(&mut line)?;
        if line.trim() == "OK" {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "server refused the region: {}",
                line.trim()
            )))
        }
    })();
    let _ = std::fs::remove_file(&name);
    res.map(|()| (map, sock))
}

/// Server side: reads a client's hello and maps its region.
pub fn accept(sock: &mut UnixStream) -> Result<Mapping, String> {
    let mut line = String::new();
    BufReader::new(&*sock)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let mut it = line.split_whitespace();
    let (Some("TGPU"), Some(ver), Some(path), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(format!("bad hello {:?}", line.trim()));
    };
    if ver != gpu_wire::VERSION.to_string() {
        return Err(format!(
            "protocol version {ver}, server speaks {}",
            gpu_wire::VERSION
        ));
    }
    if !path.starts_with("/dev/shm/tessera-gpu-") || path.contains("..") {
        return Err(format!(
            "region path {path} not under /dev/shm/tessera-gpu-"
        ));
    }
    let map = Mapping::open(path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: the mapping covers map.len() readable bytes.
    unsafe { gpu_wire::Layout::check(map.ptr(), map.len()) }.map_err(|e| e.to_string())?;
    Ok(map)
}
