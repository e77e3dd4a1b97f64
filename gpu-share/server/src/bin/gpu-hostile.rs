//! gpu-hostile: a client that sends malformed streams, one per session, and
//! checks that the server ends each of those sessions (reason code in the
//! region header) instead of crashing or hanging. Used by ci/test.sh while
//! well-behaved clients run next to it.

use gpu_codec::op;
use gpu_wire::{HeapDesc, Layout, Region};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const SMALL: Layout = Layout {
    cmd_size: 1 << 16,
    reply_size: 1 << 14,
    heap_size: 1 << 16,
};

fn slots(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// One session: `send` writes the bad stream; returns whether it was closed.
fn case(name: &str, send: impl FnOnce(&Region)) -> bool {
    let (map, sock) = match gpu_transport::connect(SMALL) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hostile: {name}: cannot connect: {e}");
            return false;
        }
    };
    let bell = gpu_transport::FutexBell::new(&sock);
    // SAFETY: the mapping lives until the end of this function.
    let region = unsafe { Region::new(map.ptr(), map.len()) }.expect("own region");
    send(&region);
    use gpu_wire::Doorbell;
    bell.notify(region.cmd_producer().head_word());
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        let st = region.state().load(Ordering::Acquire);
        if st != 0 {
            println!("hostile: {name}: session closed (code {st})");
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("hostile: {name}: NOT closed");
    false
}

fn main() {
    let mut results = Vec::new();
    results.push(case("unknown opcode", |r| {
        r.cmd_producer().push(60_000, &[]).unwrap()
    }));
    results.push(case("wrong slot count", |r| {
        r.cmd_producer()
            .push(op::glViewport, &[&slots(&[0, 0, 1])])
            .unwrap()
    }));
    results.push(case("ragged record", |r| {
        r.cmd_producer().push(op::glClear, &[&[1, 2, 3]]).unwrap()
    }));
    results.push(case("heap descriptor past head", |r| {
        let d = HeapDesc { off: 4096, len: 64 }.pack();
        r.cmd_producer()
            .push(op::glBufferData, &[&slots(&[0x8892, 64, d, 0x88E4])])
            .unwrap()
    }));
    results.push(case("payload shorter than the call reads", |r| {
        let mut w = r.heap_writer();
        let d = w.alloc(16).unwrap();
        w.publish();
        let s = slots(&[0x0DE1, 0, 0x1908, 1000, 1000, 0, 0x1908, 0x1401, d.pack()]);
        r.cmd_producer().push(op::glTexImage2D, &[&s]).unwrap()
    }));
    results.push(case("string without NUL", |r| {
        let mut w = r.heap_writer();
        let d = w.alloc(8).unwrap();
        w.write(d, b"abcdefgh");
        w.publish();
        r.cmd_producer()
            .push(op::glBindAttribLocation, &[&slots(&[1, 0, d.pack()])])
            .unwrap()
    }));
    results.push(case("shader source lengths past the blob", |r| {
        let mut w = r.heap_writer();
        let d = w.alloc(8).unwrap();
        w.write(d, &[0xff, 0xff, 0, 0, b'x', b'y', b'z', 0]);
        w.publish();
        r.cmd_producer()
            .push(op::tsShaderSource, &[&slots(&[1, 1, d.pack(), 8])])
            .unwrap()
    }));
    results.push(case("corrupt ring head", |r| {
        r.cmd_producer().head_word().store(12345, Ordering::Release);
    }));
    let ok = results.iter().filter(|x| **x).count();
    println!(
        "hostile: {ok} of {} malformed sessions were closed by the server",
        results.len()
    );
    std::process::exit(if ok == results.len() { 0 } else { 1 });
}
