//! gpu-callbench: what one remoted call costs, apart from any driver. The
//! real front-end encodes calls into a region; the real server loop
//! (`serve::serve`, every check of the hostile-client hardening on) decodes,
//! checks and dispatches them to a no-op driver. Prints, per call:
//!
//! * client encode: the front-end building and pushing records (behind a
//!   mutex, as the C ABI takes one per call), with no server running;
//! * server decode + dispatch: the server loop draining those records, with
//!   no client running (the two phases are timed apart, so neither hides
//!   the other and a busy machine does not blur them much);
//! * a synchronous call (1x1 `glReadPixels`) with both sides running: the
//!   round trip through the rings and futex doorbells.
//!
//! On a real GPU the driver's own cost comes on top of the dispatch figure;
//! llvmpipe's rendering hides all of these, which is why they are printed
//! beside the frame-rate ratios.

use core::ffi::c_void;
use gpu_codec::enc;
use gpu_frontend::Client;
use gpu_server::driver::Driver;
use gpu_server::frames::Frames;
use gpu_server::session::Session;
use gpu_transport::FutexBell;
use gpu_wire::{Doorbell, Layout, Region, Wait};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// The no-op driver: just enough state for the server's checks.
unsafe extern "C" fn uniform4f(_: i32, _: f32, _: f32, _: f32, _: f32) {}
unsafe extern "C" fn draw_arrays(_: u32, _: i32, _: i32) {}
unsafe extern "C" fn finish() {}
unsafe extern "C" fn check_framebuffer_status(_: u32) -> u32 {
    0x8CD5 // GL_FRAMEBUFFER_COMPLETE
}
unsafe extern "C" fn get_error() -> u32 {
    0
}
unsafe extern "C" fn get_string(_: u32) -> *const u8 {
    c"OpenGL ES 2.0 no-op".as_ptr() as *const u8
}
unsafe extern "C" fn get_integerv(pname: u32, out: *mut c_void) {
    let v = match pname {
        0x8869 => 16, // GL_MAX_VERTEX_ATTRIBS
        0x0D05 | 0x0CF5 => 4,
        0x8B8D => 1, // GL_CURRENT_PROGRAM
        _ => 0,
    };
    // SAFETY: the server passes room for at least one value.
    unsafe { *(out as *mut i32) = v };
}
/// Attributes 0 and 1 enabled, each from buffer 1 (as bench.c draws).
unsafe extern "C" fn get_attribiv(i: u32, pname: u32, out: *mut c_void) {
    let v = match pname {
        0x8622 | 0x889F => (i < 2) as i32, // ENABLED, BUFFER_BINDING
        _ => 0,
    };
    // SAFETY: as above.
    unsafe { *(out as *mut i32) = v };
}
unsafe extern "C" fn read_pixels(_: i32, _: i32, w: i32, h: i32, _: u32, _: u32, p: *mut c_void) {
    // SAFETY: the server sized the buffer for w x h RGBA bytes.
    unsafe { core::ptr::write_bytes(p as *mut u8, 0x55, (w * h * 4) as usize) };
}

fn noop_driver() -> &'static Driver {
    let table: &[(&str, *mut c_void)] = &[
        ("glUniform4f", uniform4f as *mut c_void),
        ("glDrawArrays", draw_arrays as *mut c_void),
        ("glFinish", finish as *mut c_void),
        ("glGetError", get_error as *mut c_void),
        ("glGetString", get_string as *mut c_void),
        ("glGetIntegerv", get_integerv as *mut c_void),
        ("glGetVertexAttribiv", get_attribiv as *mut c_void),
        ("glReadPixels", read_pixels as *mut c_void),
        (
            "glCheckFramebufferStatus",
            check_framebuffer_status as *mut c_void,
        ),
    ];
    gpu_server::driver::from_table(table)
}

/// The server's doorbell here: futexes as in gpu-server, plus a way to end
/// the session, and the moment the server first found the ring empty.
struct Bell {
    futex: FutexBell,
    /// While set, the server waits here once its ring is empty (so that
    /// the client can queue records without the server taking them).
    hold: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    drained: Arc<Mutex<Option<Instant>>>,
}

impl Doorbell for Bell {
    fn notify(&self, w: &AtomicU32) {
        self.futex.notify(w)
    }
    fn wait(&self, w: &AtomicU32, seen: u32, ms: u32) -> Wait {
        if self.stop.load(Ordering::SeqCst) {
            return Wait::TimedOut;
        }
        self.futex.wait(w, seen, ms.min(5))
    }
    fn peer_alive(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }
    fn poll(&self, w: &AtomicU32, seen: u32) -> bool {
        if self.hold.load(Ordering::SeqCst) {
            while self.hold.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            return true;
        }
        // Only the idle loop polls: the ring is empty.
        let mut d = self.drained.lock().unwrap();
        if d.is_none() {
            *d = Some(Instant::now());
        }
        drop(d);
        self.futex.poll(w, seen)
    }
}

struct Rig {
    region: &'static Region,
    hold: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    drained: Arc<Mutex<Option<Instant>>>,
}

fn rig(mem: &'static mut [u64]) -> Rig {
    let layout = Layout::DEFAULT;
    let base = mem.as_mut_ptr() as *mut u8;
    mem.fill(0);
    // SAFETY: an 8-aligned allocation of region_size bytes that lives for
    // the whole process; nothing else uses it now.
    unsafe { layout.init(base, layout.region_size()).expect("layout") };
    // SAFETY: as above.
    let region = unsafe { Region::new(base, layout.region_size()) }.expect("region");
    Rig {
        region: Box::leak(Box::new(region)),
        hold: Arc::new(AtomicBool::new(false)),
        stop: Arc::new(AtomicBool::new(false)),
        drained: Arc::new(Mutex::new(None)),
    }
}

/// Starts the real server loop on `r`; returns when it has started and the
/// instant it was told to go.
fn serve(r: &Rig, drv: &'static Driver) -> (std::thread::JoinHandle<()>, Instant) {
    let region = r.region;
    let bell = Bell {
        futex: FutexBell::in_process(),
        hold: r.hold.clone(),
        stop: r.stop.clone(),
        drained: r.drained.clone(),
    };
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    let th = std::thread::spawn(move || {
        let mut s = Session::new(1, drv, Frames::default());
        while !g.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
        let r = gpu_server::serve::serve(&mut s, region, &bell);
        assert!(
            r.is_ok(),
            "session ended: {:?}",
            r.err().map(|e| e.to_string())
        );
    });
    // Let the thread come up before the clock starts.
    std::thread::sleep(Duration::from_millis(2));
    let t = Instant::now();
    go.store(true, Ordering::Release);
    (th, t)
}

fn end(r: &Rig, th: std::thread::JoinHandle<()>) {
    r.stop.store(true, Ordering::SeqCst);
    FutexBell::in_process().notify(r.region.cmd_producer().waiter_word());
    th.join().expect("server thread");
}

/// `gpu-callbench --driver`: draws through the real server loop and the
/// machine's real EGL/GLES (surfaceless), per call: with the client
/// encoding while the server runs (as an application does), and the
/// server alone draining records queued while it was held. Tells whether
/// the driver is slower in the server because of the client running
/// beside it.
fn real_driver(frames: u32) {
    let loaded = gpu_server::driver::load("libEGL.so.1", "libGLESv2.so.2")
        .unwrap_or_else(|e| panic!("driver: {e}"));
    let drv: &'static Driver = &Box::leak(Box::new(loaded)).drv;
    let mem: &'static mut [u64] =
        Box::leak(vec![0u64; Layout::DEFAULT.region_size() / 8].into_boxed_slice());
    let r = rig(mem);
    let (th, _) = serve(&r, drv);
    let mut c = Client::new(r.region, FutexBell::in_process());
    let c = &mut c;
    let dpy = enc::eglGetPlatformDisplay(c, 0x31DD, 0, None).expect("display");
    enc::eglInitialize(c, dpy, None, None).expect("init");
    enc::eglBindAPI(c, 0x30A0).expect("bind");
    let mut cfg = [0u8; 8];
    let mut n = [0u8; 4];
    let attrs = [0x3033, 1, 0x3040, 4, 0x3038];
    enc::eglChooseConfig(c, dpy, Some(&attrs), Some(&mut cfg), 1, Some(&mut n)).expect("config");
    assert_eq!(u32::from_le_bytes(n), 1, "no pbuffer ES2 config");
    let cfg = u64::from_le_bytes(cfg);
    let ctx = enc::eglCreateContext(c, dpy, cfg, 0, Some(&[0x3098, 2, 0x3038])).expect("ctx");
    let surf = enc::eglCreatePbufferSurface(c, dpy, cfg, Some(&[0x3057, 256, 0x3056, 256, 0x3038]))
        .expect("pbuffer");
    assert_eq!(
        c.egl_make_current(dpy, surf, surf, ctx).expect("current"),
        1
    );
    let shader = |c: &mut Client<FutexBell>, ty: u32, src: &[u8]| {
        let s = enc::glCreateShader(c, ty).expect("shader");
        c.shader_source(s, &[src]).expect("source");
        enc::glCompileShader(c, s).expect("compile");
        s
    };
    let vs = shader(
        c,
        0x8B31,
        b"uniform vec4 off; void main() { gl_Position = off; }",
    );
    let fs = shader(
        c,
        0x8B30,
        b"precision mediump float; void main() { gl_FragColor = vec4(1.0); }",
    );
    let p = enc::glCreateProgram(c).expect("program");
    enc::glAttachShader(c, p, vs).expect("attach");
    enc::glAttachShader(c, p, fs).expect("attach");
    enc::glLinkProgram(c, p).expect("link");
    enc::glUseProgram(c, p).expect("use");
    let off = enc::glGetUniformLocation(c, p, Some(b"off\0")).expect("location");
    let frame = |c: &mut Client<FutexBell>| {
        for i in 0..2000 {
            enc::glUniform4f(c, off, (i % 40) as f32 / 20.0 - 1.0, 0.0, 0.0, 1.0).expect("uniform");
            // SAFETY: no client arrays are enabled.
            unsafe { c.draw_arrays(5, 0, 4) }.expect("draw");
        }
    };
    let calls = 4000.0 * frames as f64;
    for _ in 0..3 {
        frame(c);
        enc::glFinish(c).expect("finish");
    }
    // Both running, each frame closed by glFinish as bench.c does.
    let mut best_both = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..frames {
            frame(c);
            enc::glFinish(c).expect("finish");
        }
        best_both = best_both.min(t.elapsed().as_secs_f64() * 1e9 / calls);
    }
    // The server alone: records queued while it is held, then drained.
    let mut best_alone = f64::MAX;
    for _ in 0..5 {
        r.hold.store(true, Ordering::SeqCst);
        enc::glFinish(c).expect("finish");
        for _ in 0..frames {
            frame(c);
        }
        *r.drained.lock().unwrap() = None;
        let t = Instant::now();
        r.hold.store(false, Ordering::SeqCst);
        let done = loop {
            if let Some(d) = *r.drained.lock().unwrap() {
                break d;
            }
            std::thread::yield_now();
        };
        best_alone = best_alone.min((done - t).as_secs_f64() * 1e9 / calls);
        enc::glFinish(c).expect("finish");
    }
    end(&r, th);
    println!(
        "callbench real driver, glUniform4f+glDrawArrays: {best_both:.0} ns/call with the client running, \
         {best_alone:.0} ns/call server alone (best of 5 rounds of {frames} frames of 4000 calls)"
    );
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--driver") {
        let frames = std::env::args()
            .nth(2)
            .and_then(|a| a.parse().ok())
            .unwrap_or(3);
        return real_driver(frames);
    }
    let drv = noop_driver();
    let pairs: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4000);
    let rounds: u32 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let mem: &'static mut [u64] =
        Box::leak(vec![0u64; Layout::DEFAULT.region_size() / 8].into_boxed_slice());
    let mem_ptr = mem.as_mut_ptr();
    let mem_len = mem.len();
    let fresh = || {
        // SAFETY: the one leaked allocation, used by one rig at a time (the
        // previous rig's server has been joined).
        rig(unsafe { core::slice::from_raw_parts_mut(mem_ptr, mem_len) })
    };
    let _ = mem;

    // glUniform4f + glDrawArrays pairs, as bench.c's draws workload.
    let (mut best_enc, mut best_srv) = (f64::MAX, f64::MAX);
    let calls = 2.0 * pairs as f64;
    for _ in 0..rounds {
        let r = fresh();
        let c = Mutex::new(Client::new(r.region, FutexBell::in_process()));
        let t = Instant::now();
        for i in 0..pairs {
            let mut g = c.lock().unwrap();
            enc::glUniform4f(&mut *g, 1, (i % 40) as f32, 0.0, 0.0, 1.0).expect("encode");
            drop(g);
            let mut g = c.lock().unwrap();
            // SAFETY: no client arrays are enabled.
            unsafe { g.draw_arrays(5, 0, 4) }.expect("encode");
        }
        best_enc = best_enc.min(t.elapsed().as_secs_f64() * 1e9 / calls);
        let (th, t) = serve(&r, drv);
        let done = loop {
            if let Some(d) = *r.drained.lock().unwrap() {
                break d;
            }
            std::thread::yield_now();
        };
        best_srv = best_srv.min((done - t).as_secs_f64() * 1e9 / calls);
        end(&r, th);
    }
    println!(
        "callbench glUniform4f+glDrawArrays: client encode {best_enc:.0} ns/call, \
         server decode+dispatch {best_srv:.0} ns/call \
         (no-op driver, all checks on; best of {rounds} rounds of {} calls)",
        2 * pairs
    );

    // A synchronous call that must reach the server.
    let r = fresh();
    let (th, _) = serve(&r, drv);
    let mut c = Client::new(r.region, FutexBell::in_process());
    let mut px = [0u8; 4];
    let n = 20_000;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n / 5 {
            enc::glReadPixels(&mut c, 0, 0, 1, 1, 0x1908, 0x1401, Some(&mut px)).expect("read");
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / (n / 5) as f64);
    }
    assert_eq!(px, [0x55; 4]);
    let mut best_q = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n / 5 {
            let st = enc::glCheckFramebufferStatus(&mut c, 0x8D40).expect("query");
            assert_eq!(st, 0x8CD5);
        }
        best_q = best_q.min(t.elapsed().as_secs_f64() * 1e6 / (n / 5) as f64);
    }
    end(&r, th);
    println!("callbench 1x1 glReadPixels round trip: {best:.2} us/call (no-op driver, best of 5)");
    println!(
        "callbench glCheckFramebufferStatus round trip: {best_q:.2} us/call (no heap; no-op driver, best of 5)"
    );

    // The floor under any round trip between two cores: one cache line
    // handed back and forth (a record and a counter each way cost about
    // two of these per direction).
    static WORD: AtomicU32 = AtomicU32::new(0);
    let n = 100_000u32;
    let th = std::thread::spawn(move || {
        for i in 0..n {
            while WORD.load(Ordering::Acquire) != 2 * i + 1 {}
            WORD.store(2 * i + 2, Ordering::Release);
        }
    });
    let t = Instant::now();
    for i in 0..n {
        WORD.store(2 * i + 1, Ordering::Release);
        while WORD.load(Ordering::Acquire) != 2 * i + 2 {}
    }
    let rt = t.elapsed().as_secs_f64() * 1e9 / n as f64;
    th.join().expect("ping-pong thread");
    println!("callbench cache line ping-pong between two threads: {rt:.0} ns per round trip");
}
