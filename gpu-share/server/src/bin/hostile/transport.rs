//! Hostile cases against the rendezvous: the region and the hello.

use crate::gl::{Gl, Surface};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The file behind the mapping that holds `addr`, opened read-write
/// through /proc/self/map_files (what a client can always do with its own
/// region).
fn region_file(addr: usize) -> Result<std::fs::File, String> {
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| e.to_string())?;
    for l in maps.lines() {
        let range = l.split_whitespace().next().unwrap_or("");
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (a, b) = (
            usize::from_str_radix(a, 16).unwrap_or(0),
            usize::from_str_radix(b, 16).unwrap_or(0),
        );
        if (a..b).contains(&addr) {
            return std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(format!("/proc/self/map_files/{range}"))
                .map_err(|e| format!("map_files: {e}"));
        }
    }
    Err("region not found in /proc/self/maps".into())
}

/// Finding 4: the client truncates the region the server has mapped; the
/// server's next access must not fault (SIGBUS).
pub fn region_truncated() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(4, 4))?;
    g.error()?;
    let f = region_file(g.region.state() as *const _ as usize)?;
    match f.set_len(0) {
        Err(e) => {
            println!("hostile: truncating the region refused: {e}");
            // The session goes on.
            g.error()?;
            Ok(())
        }
        Ok(()) => {
            // Touching the region now would fault this process too: only
            // wait for the server's next look at it.
            std::thread::sleep(Duration::from_millis(600));
            std::mem::forget(g);
            Err("the region could be truncated under the server".into())
        }
    }
}

/// Reads the server's answer to a hello (a line, or EOF) within `t`.
fn answer(sock: &mut UnixStream, t: Duration) -> Result<String, String> {
    sock.set_read_timeout(Some(t)).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut b = [0u8; 256];
    loop {
        match sock.read(&mut b) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&b[..n]);
                if out.contains(&b'\n') {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no answer within {} s", t.as_secs()))
            }
            Err(_) => break,
        }
    }
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

fn dial() -> Result<UnixStream, String> {
    UnixStream::connect(gpu_transport::socket_path()).map_err(|e| e.to_string())
}

/// Finding 4: a hello naming a region by path (another client's, still
/// linked) must not be mapped: only a region passed as a descriptor is.
pub fn region_by_path() -> Result<(), String> {
    let path = format!("/dev/shm/tessera-gpu-hostile-{}", std::process::id());
    let layout = crate::gl::SMALL;
    {
        let f = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        f.set_len(layout.region_size() as u64)
            .map_err(|e| e.to_string())?;
    }
    // A valid header, as a victim's region would have.
    let mut bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
    // SAFETY: a buffer of region_size bytes.
    unsafe { layout.init(bytes.as_mut_ptr(), bytes.len()) }.map_err(|e| e.to_string())?;
    std::fs::write(&path, &bytes).map_err(|e| e.to_string())?;
    let mut s = dial()?;
    let r = writeln!(s, "TGPU {} {path}", gpu_wire::VERSION)
        .map_err(|e| e.to_string())
        .and_then(|()| answer(&mut s, Duration::from_secs(5)));
    let _ = std::fs::remove_file(&path);
    match r? {
        a if a == "OK" => Err("the server mapped a region named by path".into()),
        a => {
            println!("hostile: hello with a path: {a:?}");
            Ok(())
        }
    }
}

/// Finding 4: one region registered for two sessions (two readers of a
/// single-consumer ring) is refused.
pub fn region_twice() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(4, 4))?;
    let f = region_file(g.region.state() as *const _ as usize)?;
    let mut s = dial()?;
    gpu_transport::send_with_fd(&s, format!("TGPU {}\n", gpu_wire::VERSION).as_bytes(), &f)
        .map_err(|e| e.to_string())?;
    let a = answer(&mut s, Duration::from_secs(5))?;
    g.error()?;
    if a == "OK" {
        return Err("the server accepted a region already in use".into());
    }
    println!("hostile: second hello for a region in use: {a:?}");
    Ok(())
}

/// Finding 8: a hello without a newline is cut off at a small cap: the
/// server answers or hangs up instead of reading (and keeping) it all.
pub fn endless_hello() -> Result<(), String> {
    let mut s = dial()?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    w.set_write_timeout(Some(Duration::from_secs(8)))
        .map_err(|e| e.to_string())?;
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'A'; 1 << 20];
        let mut sent = 0usize;
        while sent < 256 << 20 {
            match w.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let t = Instant::now();
    let a = answer(&mut s, Duration::from_secs(8));
    let _ = s.shutdown(std::net::Shutdown::Both);
    let sent = writer.join().unwrap_or(0);
    let a = a?;
    println!(
        "hostile: endless hello: {a:?} after {} ms, {} MiB sent",
        t.elapsed().as_millis(),
        sent >> 20
    );
    if sent >= 256 << 20 {
        return Err("the server read 256 MiB of hello".into());
    }
    Ok(())
}

/// Finding 8: a connection that never says hello is dropped.
pub fn silent_connection() -> Result<(), String> {
    let mut s = dial()?;
    let t = Instant::now();
    let a = answer(&mut s, Duration::from_secs(8))?;
    println!(
        "hostile: silent connection dropped after {} ms ({a:?})",
        t.elapsed().as_millis()
    );
    Ok(())
}

/// Finding 8: sessions beyond the server's limit are refused with a
/// reason, and the server serves again once they end.
pub fn too_many_sessions() -> Result<(), String> {
    let mut held = Vec::new();
    for _ in 0..200 {
        match gpu_transport::connect(crate::gl::SMALL) {
            Ok(c) => held.push(c),
            Err(e) => {
                println!("hostile: session {} refused: {e}", held.len() + 1);
                if !e.to_string().contains("too many sessions") {
                    return Err(format!("refused for another reason: {e}"));
                }
                // Once they end (the server notices within its idle
                // check), it serves again.
                drop(held);
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(5) {
                    if gpu_transport::connect(crate::gl::SMALL).is_ok() {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                return Err("no session served after the others ended".into());
            }
        }
    }
    Err("200 sessions at once were all accepted".into())
}
