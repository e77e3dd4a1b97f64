//! Hostile cases against the limits, run against a server started with
//! small ones (ci/test.sh: `--limit objects=4096 ...`, see LIMITS there),
//! so that going past each costs little.

use crate::gl::{Gl, Surface, SMALL};
use gpu_codec::enc;
use gpu_wire::Layout;
use std::time::{Duration, Instant};

/// The limits ci/test.sh gives the server these cases run against.
pub const SERVER_ARGS: &str = "objects=4096 bytes=64M surface_pixels=1M contexts=4 shader=16K region=8M sessions=8 watchdog_ms=250";

fn e<T, E: core::fmt::Debug>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("{e:?}"))
}

/// The session must end with the limit's reason code (3).
fn expect_limit(g: &mut Gl, what: &str) -> Result<(), String> {
    if !g.wait_closed() {
        return Err(format!("{what}: session NOT closed"));
    }
    match g.closed() {
        3 => {
            println!("hostile: {what}: session closed for a limit");
            Ok(())
        }
        c => Err(format!("{what}: closed with code {c}, not 3 (limit)")),
    }
}

/// Finding 6: object names past the limit (glGenTextures(5000) > 4096).
pub fn object_names() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(4, 4))?;
    let mut names = vec![0u32; 5000];
    let _ = enc::glGenTextures(&mut g.c, 5000, &mut names);
    expect_limit(&mut g, "glGenTextures(5000)")
}

/// Finding 6: buffer storage past the byte limit (128 MiB > 64 MiB).
pub fn storage_bytes() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(4, 4))?;
    let mut b = [0u32; 1];
    e(enc::glGenBuffers(&mut g.c, 1, &mut b))?;
    e(g.c.bind_buffer(0x8892, b[0]))?;
    let _ = g.c.buffer_data(0x8892, 128 << 20, None, 0x88E4);
    expect_limit(&mut g, "glBufferData(128 MiB)")
}

/// Finding 6: a pbuffer past the pixel limit (2048x2048 > 1M pixels).
pub fn pbuffer_pixels() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(4, 4))?;
    let _ = g.raw_sync_pbuffer(2048, 2048);
    expect_limit(&mut g, "eglCreatePbufferSurface(2048x2048)")
}

/// Finding 6: contexts past the limit (a fifth one).
pub fn contexts() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(4, 4))?;
    for _ in 0..4 {
        let (d, c) = (g.dpy, g.cfg);
        let _ = enc::eglCreateContext(&mut g.c, d, c, 0, Some(&[0x3098, 2, 0x3038]));
        if g.closed() != 0 {
            break;
        }
    }
    expect_limit(&mut g, "a fifth context")
}

/// Finding 6: shader source past the limit (32 KiB > 16 KiB).
pub fn shader_source() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(4, 4))?;
    let s = e(enc::glCreateShader(&mut g.c, 0x8B30))?;
    let src = vec![b' '; 32 << 10];
    let _ = g.c.shader_source(s, &[&src]);
    expect_limit(&mut g, "32 KiB of shader source")
}

/// Finding 6: a region past the size limit (16 MiB heap > 8 MiB) is
/// refused at the hello.
pub fn region_size() -> Result<(), String> {
    let big = Layout {
        heap_size: 16 << 20,
        ..SMALL
    };
    match gpu_transport::connect(big) {
        Ok(_) => Err("a 16 MiB region was accepted".into()),
        Err(e) => {
            println!("hostile: 16 MiB region refused: {e}");
            Ok(())
        }
    }
}

/// The heavy-shader program and a full-surface quad in a buffer.
fn flood_setup(g: &mut Gl, iterations: u32) -> Result<(), String> {
    g.program(&format!(
        "vec4 c = vec4(v, k, 1.0); for (int i = 0; i < {iterations}; i++) {{ c = sin(c * 1.7 + c.yzwx); }} gl_FragColor = c;"
    ))?;
    let quad: [f32; 16] = [
        -1., -1., 0., 1., 1., -1., 0., 1., -1., 1., 0., 1., 1., 1., 0., 1.,
    ];
    let bytes: Vec<u8> = quad.iter().flat_map(|f| f.to_le_bytes()).collect();
    let mut b = [0u32; 1];
    let c = &mut g.c;
    e(enc::glGenBuffers(c, 1, &mut b))?;
    e(c.bind_buffer(0x8892, b[0]))?;
    e(c.buffer_data(0x8892, 64, Some(&bytes), 0x88E4))?;
    e(c.vertex_attrib_pointer(0, 4, 0x1406, 0, 0, 0))?;
    e(c.enable_attrib(0, true))?;
    Ok(())
}

fn draw_quad(g: &mut Gl) -> Result<(), String> {
    // SAFETY: no client arrays are enabled.
    e(unsafe { g.c.draw_arrays(0x0005, 0, 4) })
}

/// Finding 5: the watchdog ends a session whose draws each run longer
/// than watchdog_ms (250 ms here; these draws take 0.6 s each on a quiet machine).
pub fn watchdog() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(1024, 1024))?;
    flood_setup(&mut g, 250)?;
    let t = Instant::now();
    for _ in 0..3 {
        if draw_quad(&mut g).is_err() {
            break;
        }
    }
    let _ = enc::glFinish(&mut g.c);
    println!("hostile: heavy draws ran {} ms", t.elapsed().as_millis());
    expect_limit(&mut g, "draws longer than the watchdog")
}

/// A legal program that turns from cheap draws to dear ones (dEQP's
/// flush_finish calibration): the budget grown on the cheap ones makes one
/// batch run past the watchdog (250 ms here) though each draw stays well
/// under it; the session must go on, fenced draw by draw.
pub fn cheap_then_dear() -> Result<(), String> {
    let mut g = Gl::small(Surface::Pbuffer(64, 64))?;
    flood_setup(&mut g, 3000)?;
    for _ in 0..1000 {
        e(enc::glClear(&mut g.c, 0x4000))?;
    }
    let t = Instant::now();
    for _ in 0..64 {
        draw_quad(&mut g)?;
    }
    let _ = enc::glFinish(&mut g.c);
    let ms = t.elapsed().as_millis();
    println!("hostile: 64 dear draws after 1000 clears ran {ms} ms");
    if g.closed() != 0 || enc::glGetError(&mut g.c).is_err() {
        return Err(format!(
            "session ended (code {}) for a batch of legal draws",
            g.closed()
        ));
    }
    Ok(())
}

/// Finding 5: a flood of heavy draws from one client; the cluster's small
/// frame (a clear and a one-pixel read) waits at most for the flood's work
/// already in flight (one batch, one draw once the budget has adapted),
/// never for the queue behind it. Bound: 3 flood draws plus 100 ms.
pub fn flood_fairness() -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel::<Result<Duration, String>>();
    let flooder = std::thread::spawn(move || {
        let r = (|| {
            let mut flood = Gl::small(Surface::Pbuffer(512, 512))?;
            flood_setup(&mut flood, 30)?;
            // One draw's GPU time, measured alone (the second is warm).
            let mut one = Duration::ZERO;
            for _ in 0..2 {
                let t = Instant::now();
                draw_quad(&mut flood)?;
                e(enc::glFinish(&mut flood.c))?;
                one = t.elapsed();
            }
            let _ = tx.send(Ok(one));
            // The flood: 40 draws and a glFlush, then wait for all of it.
            for _ in 0..40 {
                draw_quad(&mut flood)?;
            }
            e(enc::glFlush(&mut flood.c))?;
            e(enc::glFinish(&mut flood.c))?;
            Ok::<(), String>(())
        })();
        if let Err(m) = &r {
            let _ = tx.send(Err(m.clone()));
        }
        r
    });
    let mut small = crate::gl::cluster(Surface::Pbuffer(16, 16))?;
    let frame = |g: &mut Gl| -> Result<Duration, String> {
        let t = Instant::now();
        e(enc::glClear(&mut g.c, 0x4000))?;
        let mut px = [0u8; 4];
        e(enc::glReadPixels(
            &mut g.c,
            0,
            0,
            1,
            1,
            0x1908,
            0x1401,
            Some(&mut px),
        ))?;
        Ok(t.elapsed())
    };
    let alone = frame(&mut small)?;
    let one = rx
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "the flood did not start".to_string())??;
    // Frames all through the flood.
    let (mut worst, mut frames) = (Duration::ZERO, 0);
    let t = Instant::now();
    while !flooder.is_finished() && t.elapsed() < Duration::from_secs(60) {
        worst = worst.max(frame(&mut small)?);
        frames += 1;
    }
    let flood = t.elapsed();
    flooder
        .join()
        .map_err(|_| "flood thread panicked".to_string())??;
    let bound = one * 3 + Duration::from_millis(100);
    println!(
        "hostile: one flood draw {} ms, flood of 40 {} ms; small frame alone {:.2} ms, worst of {frames} during the flood {} ms (bound {} ms)",
        one.as_millis(),
        flood.as_millis(),
        alone.as_secs_f64() * 1e3,
        worst.as_millis(),
        bound.as_millis()
    );
    if worst > bound {
        return Err(format!(
            "the small frame took {} ms, over {} ms",
            worst.as_millis(),
            bound.as_millis()
        ));
    }
    Ok(())
}
