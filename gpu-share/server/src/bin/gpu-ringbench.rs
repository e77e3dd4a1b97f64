//! gpu-ringbench: throughput of the wire alone (no GL): the real front-end
//! encodes calls into a region, a second thread pops, decodes and validates
//! them as the server does. Prints calls per second for small calls and MB
//! per second for bulk payloads through the heap.

use gpu_codec::{decode, enc, PixelStore, SizeCtx, SYNC};
use gpu_frontend::Client;
use gpu_transport::FutexBell;
use gpu_wire::{Doorbell, Layout, Region};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

struct Fixed;
impl SizeCtx for Fixed {
    fn unpack(&self) -> PixelStore {
        PixelStore::default()
    }
    fn pack(&self) -> PixelStore {
        PixelStore::default()
    }
    fn num_compressed_formats(&self) -> i64 {
        0
    }
    fn num_shader_binary_formats(&self) -> i64 {
        0
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Decode-only server: validates every record and copies heap payloads
/// once, as a driver upload would.
fn server(region: &'static Region) {
    let bell = FutexBell::in_process();
    let mut cmd = region.cmd_consumer();
    let slot = region.reply_slot();
    let mut answered = 0u32;
    let mut heap = region.heap_reader();
    let mut buf = [0u8; 128];
    let mut sink = vec![0u8; 4 << 20];
    let mut done = 0u64;
    while !STOP.load(Ordering::Relaxed) {
        let Some(rec) = cmd.pop(&mut buf).expect("ring") else {
            gpu_server::serve::notify_space(region, &cmd, &heap, &bell);
            gpu_server::serve::idle(region, &cmd, &bell, &mut Default::default());
            continue;
        };
        let slots: Vec<u64> = buf[..rec.len]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let mut end = None;
        let call = decode(rec.tag, &slots, &heap, &Fixed, &mut end).expect("decode");
        if let gpu_codec::Call::glBufferData { data: Some(c), .. } = call {
            let n = c.len.min(sink.len());
            // SAFETY: a checked heap chunk.
            unsafe { core::ptr::copy_nonoverlapping(c.ptr, sink.as_mut_ptr(), n) };
        }
        if let Some(e) = end {
            heap.release_to(e).expect("release");
        }
        done += 1;
        if done.is_multiple_of(256) {
            gpu_server::serve::notify_space(region, &cmd, &heap, &bell);
        }
        if SYNC[rec.tag as usize] {
            answered = answered.wrapping_add(1);
            slot.post(answered, rec.tag, 0);
            bell.notify(slot.seq_word());
        }
    }
    std::hint::black_box(&sink);
}

fn main() {
    let layout = Layout::DEFAULT;
    let mem: &'static mut [u64] =
        Box::leak(vec![0u64; layout.region_size() / 8].into_boxed_slice());
    let base = mem.as_mut_ptr() as *mut u8;
    // SAFETY: a fresh, leaked, 8-aligned allocation of region_size bytes.
    unsafe { layout.init(base, layout.region_size()).expect("layout") };
    // SAFETY: as above; it lives for the whole process.
    let region: &'static Region = Box::leak(Box::new(
        unsafe { Region::new(base, layout.region_size()) }.expect("region"),
    ));
    let th = std::thread::spawn(move || server(region));
    let mut c = Client::new(region, FutexBell::in_process());

    let calls = 2_000_000u64;
    let t = Instant::now();
    for i in 0..calls {
        enc::glUniform4f(&mut c, 1, i as f32, 0.0, 0.0, 1.0).expect("encode");
    }
    enc::glFinish(&mut c).expect("finish");
    let dt = t.elapsed().as_secs_f64();
    let bytes = c.sent_bytes as f64;
    println!(
        "ringbench small calls: {:.2} M calls/s ({:.0} MB/s of records)",
        calls as f64 / dt / 1e6,
        bytes / dt / 1e6
    );

    let payload = vec![7u8; 1 << 20];
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        enc::glBufferData(
            &mut c,
            0x8892,
            payload.len() as isize,
            Some(&payload),
            0x88E8,
        )
        .expect("encode");
    }
    enc::glFinish(&mut c).expect("finish");
    let dt = t.elapsed().as_secs_f64();
    println!(
        "ringbench bulk payloads: {:.0} MB/s ({} x 1 MiB through the heap)",
        n as f64 * payload.len() as f64 / dt / 1e6,
        n
    );
    STOP.store(true, Ordering::Relaxed);
    FutexBell::in_process().notify(region.cmd_producer().waiter_word());
    th.join().expect("server thread");
}
