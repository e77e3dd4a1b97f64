//! Host transport: how a client and the server share a region on one Linux
//! machine.
//!
//! * The client creates the region as a sealed memfd (it can neither shrink
//!   nor grow, so the server's mapping never loses pages under it), writes
//!   the header, and connects to the server's Unix socket (path from
//!   `TESSERA_GPU_SOCKET`, default [`DEFAULT_SOCKET`]).
//! * It sends one line `TGPU <version>\n` carrying the memfd (SCM_RIGHTS);
//!   the server checks the seals and the size, maps it, checks the header
//!   and answers `OK\n` or `ERR <reason>\n`. No path is involved, so no
//!   other process can swap, share or truncate the region.
//! * The hello is bounded: [`HELLO_MAX`] bytes within [`HELLO_TIMEOUT`].
//! * The socket stays open for the session: its end tells either side that
//!   the peer is gone. Doorbells are futexes on the ring counters.

pub mod futex;
pub mod shm;

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{ErrorKind, IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

pub use futex::FutexBell;
pub use shm::Mapping;

pub const DEFAULT_SOCKET: &str = "/tmp/tessera-gpu.sock";
/// Longest hello line the server reads.
pub const HELLO_MAX: usize = 64;
/// How long the server waits for a whole hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// Socket path clients connect to and the server listens on.
pub fn socket_path() -> String {
    std::env::var("TESSERA_GPU_SOCKET").unwrap_or_else(|_| DEFAULT_SOCKET.to_string())
}

/// Client side: creates a region with `layout` and registers it with the
/// server. Returns the mapping and the session socket.
pub fn connect(layout: gpu_wire::Layout) -> std::io::Result<(Mapping, UnixStream)> {
    connect_to(&socket_path(), layout)
}

/// [`connect`] to the server socket at `path`.
pub fn connect_to(path: &str, layout: gpu_wire::Layout) -> std::io::Result<(Mapping, UnixStream)> {
    let mut sock = UnixStream::connect(path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot reach gpu-share server at {path}: {e}"),
        )
    })?;
    let (map, fd) = Mapping::create_sealed(layout.region_size())?;
    // SAFETY: fresh mapping of region_size bytes, page aligned.
    unsafe { layout.init(map.ptr(), map.len()) }
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let hello = format!("TGPU {}\n", gpu_wire::VERSION);
    // A server that refuses at once (too many sessions) answers and closes
    // without reading the hello: the send can then fail with a broken pipe
    // while the answer that says why waits to be read.
    let early = match send_with_fd(&sock, hello.as_bytes(), &fd) {
        Ok(()) => None,
        Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => Some(e),
        Err(e) => return Err(e),
    };
    drop(fd);
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 256 {
        match sock.read(&mut b) {
            Ok(1) if b[0] != b'\n' => line.push(b[0]),
            Ok(_) => break,
            Err(e) => return Err(early.unwrap_or(e)),
        }
    }
    let line = String::from_utf8_lossy(&line);
    if let (Some(e), true) = (early, line.trim().is_empty()) {
        return Err(e);
    }
    if line.trim() == "OK" {
        Ok((map, sock))
    } else {
        Err(std::io::Error::other(format!(
            "server refused the region: {}",
            line.trim()
        )))
    }
}

/// Sends `bytes` with `fd` attached.
pub fn send_with_fd(sock: &UnixStream, bytes: &[u8], fd: &impl AsFd) -> std::io::Result<()> {
    let fds = [fd.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    anc.push(SendAncillaryMessage::ScmRights(&fds));
    let n = sendmsg(sock, &[IoSlice::new(bytes)], &mut anc, SendFlags::NOSIGNAL)?;
    if n != bytes.len() {
        return Err(std::io::Error::other("short hello"));
    }
    Ok(())
}

/// Server side: reads a client's hello (at most [`HELLO_MAX`] bytes within
/// [`HELLO_TIMEOUT`]), checks the region it carries (a memfd sealed against
/// shrinking and growing, at most `max_region` bytes) and maps it.
pub fn accept(sock: &mut UnixStream, max_region: usize) -> Result<Mapping, String> {
    let deadline = Instant::now() + HELLO_TIMEOUT;
    let mut line = Vec::new();
    let mut fd: Option<OwnedFd> = None;
    while !line.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no hello in time".into());
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; HELLO_MAX];
        let room = HELLO_MAX - line.len();
        if room == 0 {
            return Err(format!("hello longer than {HELLO_MAX} bytes"));
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let r = recvmsg(
            &*sock,
            &mut [IoSliceMut::new(&mut buf[..room])],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| match e {
            rustix::io::Errno::AGAIN => "no hello in time".to_string(),
            e => e.to_string(),
        })?;
        for msg in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = msg {
                for f in fds {
                    // The first region counts; any other descriptor is
                    // closed as it drops.
                    if fd.is_none() {
                        fd = Some(f);
                    }
                }
            }
        }
        if r.bytes == 0 {
            return Err("closed during hello".into());
        }
        line.extend_from_slice(&buf[..r.bytes]);
    }
    sock.set_read_timeout(None).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&line);
    let mut it = line.split_whitespace();
    let (Some("TGPU"), Some(ver), None) = (it.next(), it.next(), it.next()) else {
        return Err(format!("bad hello {:?}", line.trim()));
    };
    if ver != gpu_wire::VERSION.to_string() {
        return Err(format!(
            "protocol version {ver}, server speaks {}",
            gpu_wire::VERSION
        ));
    }
    let fd = fd.ok_or("hello without a region")?;
    let map = Mapping::open_sealed(fd, max_region)?;
    // SAFETY: the mapping covers map.len() readable bytes.
    unsafe { gpu_wire::Layout::check(map.ptr(), map.len()) }.map_err(|e| e.to_string())?;
    Ok(map)
}
