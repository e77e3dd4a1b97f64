//! Hostile cases that need a real GL session, one function per attack.
//! Each returns Err with what went wrong; the caller also checks that the
//! server still serves afterwards.

use crate::gl::{Gl, Surface};
use gpu_codec::{enc, op, EncodeError};
use gpu_wire::HeapDesc;

const GL_PACK_ROW_LENGTH: u32 = 0x0D02;
const GL_PACK_SKIP_ROWS: u32 = 0x0D03;
const GL_PACK_SKIP_PIXELS: u32 = 0x0D04;
const GL_FLOAT: u32 = 0x1406;
const GL_TRIANGLES: u32 = 0x0004;
const GL_ARRAY_BUFFER: u32 = 0x8892;

fn expect_closed(g: &mut Gl, what: &str) -> Result<(), String> {
    if g.wait_closed() {
        println!("hostile: {what}: session closed (code {})", g.closed());
        Ok(())
    } else {
        Err(format!("{what}: session NOT closed"))
    }
}

fn open_ok(g: &Gl) -> Result<(), String> {
    match g.closed() {
        0 => Ok(()),
        c => Err(format!("session closed (code {c}) for a legal stream")),
    }
}

/// Finding 1: the swap's frame capture must not use the client's pack
/// row length and skips (it wrote past its buffer), and must leave them
/// as the client set them.
pub fn pack_state_before_swap() -> Result<(), String> {
    let mut g = Gl::small(Surface::Window(64, 64))?;
    for (p, v) in [
        (GL_PACK_ROW_LENGTH, 1 << 20),
        (GL_PACK_SKIP_ROWS, 4000),
        (GL_PACK_SKIP_PIXELS, 1 << 19),
    ] {
        g.c.pixel_store(p, v).map_err(|e| format!("{e:?}"))?;
    }
    enc::glClearColor(&mut g.c, 0.25, 0.5, 0.75, 1.0).map_err(|e| format!("{e:?}"))?;
    enc::glClear(&mut g.c, 0x4000).map_err(|e| format!("{e:?}"))?;
    if g.swap()? != 1 {
        return Err("eglSwapBuffers failed".into());
    }
    // The driver's values, not the front-end's shadow: ask with a raw query.
    for (p, v) in [
        (GL_PACK_ROW_LENGTH, 1 << 20),
        (GL_PACK_SKIP_ROWS, 4000),
        (GL_PACK_SKIP_PIXELS, 1 << 19),
    ] {
        let mut b = [0u8; 4];
        enc::glGetIntegerv(&mut g.c, p, Some(&mut b)).map_err(|e| format!("{e:?}"))?;
        if i32::from_le_bytes(b) != v {
            return Err(format!(
                "pack state {p:#x} is {} after swap, set {v}",
                i32::from_le_bytes(b)
            ));
        }
    }
    open_ok(&g)
}

/// A session with a program that reads attribute 0.
fn drawing() -> Result<Gl, String> {
    let mut g = Gl::small(Surface::Pbuffer(16, 16))?;
    g.program("gl_FragColor = vec4(v, k, 1.0);")?;
    Ok(g)
}

/// Finding 2: an attribute pointer with no buffer bound is an address in
/// the server; drawing from it must end the session.
pub fn attribute_offset_into_nothing() -> Result<(), String> {
    let mut g = drawing()?;
    let c = &mut g.c;
    enc::glBindBuffer(c, GL_ARRAY_BUFFER, 0).map_err(|e| format!("{e:?}"))?;
    enc::glVertexAttribPointer(c, 0, 4, GL_FLOAT, 0, 0, 0x4141_4141_0000)
        .map_err(|e| format!("{e:?}"))?;
    enc::glEnableVertexAttribArray(c, 0).map_err(|e| format!("{e:?}"))?;
    let _ = enc::glDrawArrays(c, GL_TRIANGLES, 0, 3);
    expect_closed(&mut g, "draw from an attribute address")
}

/// Finding 2: glDrawElements with no element buffer reads indices at a
/// client-chosen address.
pub fn indices_offset_into_nothing() -> Result<(), String> {
    let mut g = drawing()?;
    let c = &mut g.c;
    let mut b = [0u32; 1];
    enc::glGenBuffers(c, 1, &mut b).map_err(|e| format!("{e:?}"))?;
    c.bind_buffer(GL_ARRAY_BUFFER, b[0])
        .map_err(|e| format!("{e:?}"))?;
    c.buffer_data(GL_ARRAY_BUFFER, 64, Some(&[0u8; 64]), 0x88E4)
        .map_err(|e| format!("{e:?}"))?;
    c.vertex_attrib_pointer(0, 4, GL_FLOAT, 0, 0, 0)
        .map_err(|e| format!("{e:?}"))?;
    c.enable_attrib(0, true).map_err(|e| format!("{e:?}"))?;
    let _ = enc::glDrawElements(c, GL_TRIANGLES, 3, 0x1403, 0x4141_4141_0000);
    expect_closed(&mut g, "indices at an address")
}

/// Finding 2: deleting the bound buffer leaves the offset as an address.
pub fn attribute_buffer_deleted() -> Result<(), String> {
    let mut g = drawing()?;
    let c = &mut g.c;
    let mut b = [0u32; 1];
    enc::glGenBuffers(c, 1, &mut b).map_err(|e| format!("{e:?}"))?;
    c.bind_buffer(GL_ARRAY_BUFFER, b[0])
        .map_err(|e| format!("{e:?}"))?;
    c.buffer_data(GL_ARRAY_BUFFER, 64, Some(&[0u8; 64]), 0x88E4)
        .map_err(|e| format!("{e:?}"))?;
    enc::glVertexAttribPointer(c, 0, 4, GL_FLOAT, 0, 0, 0x4141_4141_0000)
        .map_err(|e| format!("{e:?}"))?;
    enc::glEnableVertexAttribArray(c, 0).map_err(|e| format!("{e:?}"))?;
    enc::glDeleteBuffers(c, 1, &b).map_err(|e| format!("{e:?}"))?;
    let _ = enc::glDrawArrays(c, GL_TRIANGLES, 0, 3);
    expect_closed(&mut g, "draw after deleting the attribute's buffer")
}

/// Finding 3: a NULL output where the call writes values.
pub fn null_output() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(4, 4))?;
    let _ = g.raw(op::glGetIntegerv, &[0x0BA2, HeapDesc::NULL]);
    expect_closed(&mut g, "glGetIntegerv(GL_VIEWPORT, NULL)")
}

/// Finding 3: a NULL input where the call reads values.
pub fn null_input() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(4, 4))?;
    let _ = g.raw(op::glVertexAttrib4fv, &[0, HeapDesc::NULL]);
    expect_closed(&mut g, "glVertexAttrib4fv(0, NULL)")
}

/// Finding 3: a legal call whose data exceeds the heap gets
/// GL_OUT_OF_MEMORY from the front-end (never a NULL sent in its place),
/// and the session goes on.
pub fn data_larger_than_heap() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(4, 4))?;
    g.program("gl_FragColor = u[0] + u[3] + vec4(v, k, 1.0);")?;
    let p = g.get_int(0x8B8D)? as u32;
    let loc = enc::glGetUniformLocation(&mut g.c, p, Some(b"u\0")).map_err(|e| format!("{e:?}"))?;
    if loc < 0 {
        return Err("no uniform u".into());
    }
    // 8192 vec4 = 128 KiB, twice this session's heap.
    let big = vec![0u8; 8192 * 16];
    match enc::glUniform4fv(&mut g.c, loc, 8192, Some(&big)) {
        Err(EncodeError::TooLarge) => {}
        r => {
            return Err(format!(
                "front-end answered {r:?}, not TooLarge (GL_OUT_OF_MEMORY)"
            ))
        }
    }
    if g.error()? != 0 {
        return Err("a GL error from the server".into());
    }
    open_ok(&g)
}

/// The server's resident memory, from /proc (the tier passes its pid).
pub fn server_rss_mib() -> Result<u64, String> {
    let pid = std::env::var("GPU_SERVER_PID").map_err(|_| "GPU_SERVER_PID not set".to_string())?;
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    st.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .ok_or_else(|| "no VmRSS".into())
}

fn big_window_cycle() -> Result<(), String> {
    let mut g = Gl::small(Surface::Window(4096, 4096))?;
    enc::glClear(&mut g.c, 0x4000).map_err(|e| format!("{e:?}"))?;
    if g.swap()? != 1 {
        return Err("eglSwapBuffers failed".into());
    }
    open_ok(&g)
}

/// Finding 7: the frame a session swapped (64 MiB at 4096x4096) is freed
/// when the session ends.
pub fn frames_of_ended_sessions_freed() -> Result<(), String> {
    big_window_cycle()?;
    std::thread::sleep(std::time::Duration::from_millis(500));
    let before = server_rss_mib()?;
    for _ in 0..3 {
        big_window_cycle()?;
    }
    // An ended session's thread may still be writing its PNG (--frames):
    // wait for the memory to come back, 30 s at most.
    let t = std::time::Instant::now();
    let mut after = server_rss_mib()?;
    while after > before + 100 && t.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(200));
        after = server_rss_mib()?;
    }
    println!(
        "hostile: server RSS {before} MiB before 3 ended 4096x4096 sessions, {after} MiB {} ms after",
        t.elapsed().as_millis()
    );
    if after > before + 100 {
        return Err(format!("server grew by {} MiB", after - before));
    }
    Ok(())
}
