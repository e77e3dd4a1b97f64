//! gpu-hostile: a client that sends malformed streams, one per session, and
//! checks that the server ends each of those sessions (reason code in the
//! region header) instead of crashing or hanging. Used by ci/test.sh while
//! well-behaved clients run next to it.

use gpu_codec::op;
use gpu_wire::{HeapDesc, Region};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

mod cases;
mod gl;
mod limits;
mod random;
mod transport;

use gl::{server_alive, SMALL};

fn slots(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// One session: `send` writes the bad stream; it must be closed.
fn case(name: &str, send: impl FnOnce(&Region)) -> Result<(), String> {
    let (map, sock) = match gpu_transport::connect(SMALL) {
        Ok(c) => c,
        Err(e) => {
            return Err(format!("{name}: cannot connect: {e}"));
        }
    };
    let bell = gpu_transport::FutexBell::new(&sock);
    // SAFETY: the mapping lives until the end of this function.
    let region = unsafe { Region::new(map.ptr(), map.len()) }.expect("own region");
    send(&region);
    use gpu_wire::Doorbell;
    bell.notify(region.cmd_producer().waiter_word());
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        let st = region.state().load(Ordering::Acquire);
        if st != 0 {
            println!("hostile: {name}: session closed (code {st})");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err("session NOT closed".into())
}

/// Malformed records, each in a session of its own.
/// A malformed stream: writes its records into a fresh session's region.
type Send = fn(&Region);

fn raw_cases() -> Vec<(&'static str, Send)> {
    vec![
        ("unknown opcode", |r| {
            r.cmd_producer().push(60_000, &[]).unwrap()
        }),
        ("wrong slot count", |r| {
            r.cmd_producer()
                .push(op::glViewport, &[&slots(&[0, 0, 1])])
                .unwrap()
        }),
        ("ragged record", |r| {
            r.cmd_producer().push(op::glClear, &[&[1, 2, 3]]).unwrap()
        }),
        ("heap descriptor past head", |r| {
            let d = HeapDesc { off: 4096, len: 64 }.pack();
            r.cmd_producer()
                .push(op::glBufferData, &[&slots(&[0x8892, 64, d, 0x88E4])])
                .unwrap()
        }),
        ("payload shorter than the call reads", |r| {
            let mut w = r.heap_writer();
            let d = w.alloc(16).unwrap();
            w.publish();
            let s = slots(&[0x0DE1, 0, 0x1908, 1000, 1000, 0, 0x1908, 0x1401, d.pack()]);
            r.cmd_producer().push(op::glTexImage2D, &[&s]).unwrap()
        }),
        ("string without NUL", |r| {
            let mut w = r.heap_writer();
            let d = w.alloc(8).unwrap();
            w.write(d, b"abcdefgh");
            w.publish();
            r.cmd_producer()
                .push(op::glBindAttribLocation, &[&slots(&[1, 0, d.pack()])])
                .unwrap()
        }),
        ("shader source lengths past the blob", |r| {
            let mut w = r.heap_writer();
            let d = w.alloc(8).unwrap();
            w.write(d, &[0xff, 0xff, 0, 0, b'x', b'y', b'z', 0]);
            w.publish();
            r.cmd_producer()
                .push(op::tsShaderSource, &[&slots(&[1, 1, d.pack(), 8])])
                .unwrap()
        }),
        ("corrupt ring head", |r| {
            r.cmd_producer().head_word().store(12345, Ordering::Release);
        }),
    ]
}

type CaseResult = Result<(), String>;
type Check = fn() -> CaseResult;
type Case = (&'static str, Box<dyn Fn() -> CaseResult>);

/// Cases that need a real GL session (a context current on a surface).
fn gl_cases() -> Vec<(&'static str, Check)> {
    vec![
        ("pack state before swap", cases::pack_state_before_swap),
        (
            "attribute offset into nothing",
            cases::attribute_offset_into_nothing,
        ),
        (
            "indices offset into nothing",
            cases::indices_offset_into_nothing,
        ),
        ("attribute buffer deleted", cases::attribute_buffer_deleted),
        ("NULL output where the call writes", cases::null_output),
        ("NULL input where the call reads", cases::null_input),
        ("data larger than the heap", cases::data_larger_than_heap),
        (
            "frames of ended sessions freed",
            cases::frames_of_ended_sessions_freed,
        ),
        (
            "region truncated under the server",
            transport::region_truncated,
        ),
        ("region named by path", transport::region_by_path),
        ("region registered twice", transport::region_twice),
        ("endless hello", transport::endless_hello),
        ("silent connection", transport::silent_connection),
        (
            "random calls in hostile shapes",
            random::random_hostile_calls,
        ),
    ]
}

/// Cases for a server started with the small limits of
/// [`limits::SERVER_ARGS`] (`gpu-hostile --server-limits` prints them as
/// gpu-server arguments).
fn limit_cases() -> Vec<(&'static str, Check)> {
    vec![
        ("object names past the limit", limits::object_names),
        ("storage bytes past the limit", limits::storage_bytes),
        ("pbuffer pixels past the limit", limits::pbuffer_pixels),
        ("contexts past the limit", limits::contexts),
        ("shader source past the limit", limits::shader_source),
        ("region size past the limit", limits::region_size),
        ("too many sessions", transport::too_many_sessions),
        ("GPU watchdog", limits::watchdog),
        (
            "cheap draws, then dear ones: fenced, not ended",
            limits::cheap_then_dear,
        ),
        ("flood does not starve the cluster", limits::flood_fairness),
    ]
}

/// Usage: gpu-hostile [--limits] [NAME...]: runs the cases whose names
/// contain a NAME (all without one); with --limits the cases for a server
/// with small limits. `gpu-hostile --server-limits` prints those limits.
fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--server-limits") {
        for l in limits::SERVER_ARGS.split_whitespace() {
            print!("--limit {l} ");
        }
        println!();
        return;
    }
    let limit_group = args.first().map(String::as_str) == Some("--limits");
    if limit_group {
        args.remove(0);
    }
    let filter = args;
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let mut cases: Vec<Case> = Vec::new();
    if limit_group {
        for (name, check) in limit_cases() {
            cases.push((name, Box::new(check)));
        }
    } else {
        for (name, send) in raw_cases() {
            cases.push((name, Box::new(move || case(name, send))));
        }
        for (name, check) in gl_cases() {
            cases.push((name, Box::new(check)));
        }
    }
    let (mut run, mut failed) = (0, Vec::new());
    for (name, check) in cases.iter().filter(|(n, _)| wanted(n)) {
        run += 1;
        let t = Instant::now();
        let r = check();
        let alive = server_alive();
        let r = match (r, alive) {
            (Ok(()), true) => Ok(()),
            (Err(e), true) => Err(e),
            (Ok(()), false) => Err("the server died".into()),
            (Err(e), false) => Err(format!("{e}; the server died")),
        };
        match r {
            Ok(()) => println!("hostile: ok: {name} ({} ms)", t.elapsed().as_millis()),
            Err(e) => {
                println!("hostile: FAILED: {name}: {e}");
                failed.push(*name);
            }
        }
        if !alive {
            break;
        }
    }
    println!("hostile: {} of {run} cases held", run - failed.len());
    std::process::exit(if failed.is_empty() && run > 0 { 0 } else { 1 });
}
