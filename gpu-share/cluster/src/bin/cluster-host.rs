//! The cluster program on the host: over the emulated cross-VM transport
//! (region `gpu-cluster` from `TESSERA_SHM`, as `tessera-shm-host` sets it),
//! or with `--socket PATH` over the host transport (reference renderings).
//!
//! Usage: cluster-host [--socket PATH] [--region NAME] [--start N]
//!                     [--count N] [--period-ms MS] [--hostile-after N]
//!        cluster-host --socket PATH --ref N OUT
//!
//! Draws frames N, N+1, ... every MS (default 33), `--count` of them
//! (default: forever). Across VMs a lost session (server restarted or
//! gone) is reported and the program connects again, as the bare-metal
//! cluster does; the frame number keeps counting. `--hostile-after N`
//! sends one malformed record after N frames of each session (the server
//! must end only that session, and this program connects again).
//! `--region` picks another region of `TESSERA_SHM` than `gpu-cluster`.
//! Built with the `linux` feature for a Linux guest, without `TESSERA_SHM`
//! it opens `/dev/tessera/NAME` (the IVI image's hostile client).
//! `--ref N OUT` draws frame N and writes it, read back, to OUT (raw RGBA,
//! bottom row first): the reference rendering of that frame.
//! Every 30 frames it prints the frame statistics line of
//! `cockpit_cluster::stats` (as the cluster VM does), e.g.
//! `cluster: frames 300 period mean 33.1 p95 34.0 max 41.2 ms missed 0`.
//! `--stats` prints the longest, 95th percentile and mean frame time
//! (drawing to the end of eglSwapBuffers) when done. `--flood` draws no cluster but floods the
//! GPU instead (the cluster-first check): it prints one heavy draw's time,
//! then draws 40 of them per glFinish until killed.

use cockpit_cluster::stats::FrameStats;
use cockpit_cluster::Cluster;
use gpu_frontend::Client;
use gpu_wire::{Doorbell, Region};
use gpu_xvm::host::HostPort;
use gpu_xvm::ClientBell;
use std::time::{Duration, Instant};

struct Args {
    socket: Option<String>,
    start: u32,
    count: Option<u32>,
    period: Duration,
    hostile_after: Option<u32>,
    region: String,
    reference: Option<String>,
    stats: bool,
    flood: bool,
}

/// One line to stderr in one write: the cockpit test's VMs share a log,
/// and `eprintln!` writes a line in pieces that another process's output
/// can split.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        let line = format!("{}\n", format_args!($($t)*));
        let _ = std::io::stderr().write_all(line.as_bytes());
    }};
}

fn die(msg: &str) -> ! {
    say!("cluster: {msg}");
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        socket: None,
        start: 0,
        count: None,
        period: Duration::from_millis(33),
        hostile_after: None,
        region: "gpu-cluster".into(),
        reference: None,
        stats: false,
        flood: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .unwrap_or_else(|| die(&format!("{k} needs a value")))
        };
        let mut num = || {
            v().parse::<u32>()
                .unwrap_or_else(|_| die("expected a number"))
        };
        match k.as_str() {
            "--socket" => {
                a.socket = Some(it.next().unwrap_or_else(|| die("--socket needs a path")))
            }
            "--start" => a.start = num(),
            "--count" => a.count = Some(num()),
            "--period-ms" => a.period = Duration::from_millis(num() as u64),
            "--hostile-after" => a.hostile_after = Some(num()),
            "--region" => a.region = v(),
            "--stats" => a.stats = true,
            "--flood" => a.flood = true,
            "--ref" => {
                a.start = num();
                a.reference = Some(v());
            }
            _ => die(&format!("unknown argument {k}")),
        }
    }
    a
}

/// Draws until the count is done (Ok) or the session fails (Err).
fn frames<D: Doorbell>(
    c: Client<D>,
    a: &Args,
    n: &mut u32,
    hostile_sent: &mut bool,
    stats: &mut FrameStats,
) -> Result<(), String> {
    let mut cl = Cluster::new(c).map_err(|e| format!("set-up: {e:?}"))?;
    if let Some(out) = &a.reference {
        let mut px = vec![0u8; (cockpit_cluster::WIDTH * cockpit_cluster::HEIGHT * 4) as usize];
        cl.render(*n).map_err(|e| format!("{e:?}"))?;
        cl.read_back(&mut px).map_err(|e| format!("{e:?}"))?;
        return std::fs::write(out, px).map_err(|e| format!("{out}: {e}"));
    }
    if a.flood {
        return flood(&mut cl.c);
    }
    let mut times: Vec<Duration> = Vec::new();
    let mut drawn = 0;
    let mut next = Instant::now();
    stats.restart();
    loop {
        if a.count.is_some_and(|c| *n >= a.start + c) {
            // Make sure the last frame reached the server.
            cl.c.get_error().map_err(|e| format!("{e:?}"))?;
            if a.stats && !times.is_empty() {
                times.sort();
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                let mean = times.iter().sum::<Duration>() / times.len() as u32;
                say!(
                    "cluster: {} frames: longest {:.1} ms, 95th percentile {:.1} ms, mean {:.1} ms",
                    times.len(),
                    ms(times[times.len() - 1]),
                    ms(times[times.len() * 95 / 100]),
                    ms(mean)
                );
            }
            return Ok(());
        }
        if a.hostile_after == Some(drawn) && !*hostile_sent {
            *hostile_sent = true;
            use gpu_codec::Wire;
            say!("cluster: sending a malformed record");
            // An opcode no call has (0xFFFF is the ring's pad tag).
            let _ = cl.c.begin(0xFFFE);
            let _ = cl.c.finish_async();
            cl.c.flush();
        }
        let t = Instant::now();
        cl.draw(*n).map_err(|e| format!("frame {}: {e:?}", *n))?;
        let dt = t.elapsed();
        let us = |i: Instant| i.duration_since(epoch()).as_micros() as u64;
        if let Some(line) = stats.record(us(t + dt), us(next + a.period)) {
            say!("cluster: {line}");
        }
        // The first frames compile and warm up.
        if drawn >= 3 {
            times.push(dt);
        }
        *n += 1;
        drawn += 1;
        next += a.period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

/// The origin of the statistics' clock.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The flood (see the module comment).
fn flood<D: Doorbell>(c: &mut Client<D>) -> Result<(), String> {
    let e = |r: Result<(), gpu_codec::EncodeError>| r.map_err(|e| format!("flood: {e:?}"));
    cockpit_cluster::program(
        c,
        b"precision highp float; varying vec2 v;
        void main() { vec4 c = vec4(v, 0.5, 1.0);
          for (int i = 0; i < 30; i++) { c = sin(c * 1.7 + c.yzwx); } gl_FragColor = c; }",
    )
    .map_err(|e| format!("flood program: {e:?}"))?;
    let mut one = Duration::ZERO;
    for _ in 0..3 {
        let t = Instant::now();
        e(cockpit_cluster::quad(c))?;
        e(gpu_codec::enc::glFinish(c))?;
        one = t.elapsed();
    }
    say!("flood: one draw {:.1} ms", one.as_secs_f64() * 1e3);
    loop {
        for _ in 0..40 {
            e(cockpit_cluster::quad(c))?;
        }
        e(gpu_codec::enc::glFinish(c))?;
    }
}

fn main() {
    epoch();
    let a = args();
    let mut n = a.start;
    if let Some(path) = &a.socket {
        let (map, sock) = gpu_transport::connect_to(path, gpu_wire::Layout::DEFAULT)
            .unwrap_or_else(|e| die(&e.to_string()));
        let map: &'static gpu_transport::Mapping = Box::leak(Box::new(map));
        // SAFETY: the mapping is leaked: it lives as long as the process.
        let region =
            unsafe { Region::new(map.ptr(), map.len()) }.unwrap_or_else(|e| die(&e.to_string()));
        let bell = gpu_transport::FutexBell::new(&sock);
        let c = Client::new(Box::leak(Box::new(region)), bell);
        frames(c, &a, &mut n, &mut false, &mut FrameStats::new()).unwrap_or_else(|e| die(&e));
        return;
    }
    // In a Linux guest (built with `linux`, no TESSERA_SHM): the region
    // through the tessera_shm module, as the IVI's hostile client runs.
    #[cfg(feature = "linux")]
    if std::env::var_os("TESSERA_SHM").is_none() {
        let port =
            gpu_xvm::linux::LinuxPort::open(&a.region).unwrap_or_else(|e| die(&e.to_string()));
        return serve(Box::leak(Box::new(port)), &a, n);
    }
    let port: &'static HostPort = Box::leak(Box::new(
        HostPort::from_env(Some(&a.region)).unwrap_or_else(|e| die(&e.to_string())),
    ));
    serve(port, &a, n)
}

/// Draws over the cross-VM `port`, connecting again after a lost session.
fn serve<P: gpu_xvm::Port + Sync>(port: &'static P, a: &Args, mut n: u32) {
    let mut hostile_sent = false;
    let mut stats = FrameStats::new();
    loop {
        let (att, gpu, len) = match gpu_xvm::link::connect(port, 2000) {
            Ok(c) => c,
            Err(e) => {
                say!("cluster: {e}; trying again");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // SAFETY: the port's mapping lives as long as the process; one small
        // Region is leaked per connection.
        let region = match unsafe { Region::new(gpu, len) } {
            Ok(r) => &*Box::leak(Box::new(r)),
            Err(e) => die(&e.to_string()),
        };
        say!("cluster: connected (hello {}), from frame {n}", att.hello);
        let c = Client::new(region, ClientBell::new(port, att));
        match frames(c, a, &mut n, &mut hostile_sent, &mut stats) {
            Ok(()) => return,
            Err(e) => say!("cluster: session lost ({e}); connecting again"),
        }
    }
}
