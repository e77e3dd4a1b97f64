//! Bounded fuzzing of the decoder: random and mutated records against a
//! random heap must give a value or an error, never a panic, an out-of-heap
//! chunk or a hang. The budget is `GPU_FUZZ_ITERS` records (default 20000;
//! gpu-share/ci/test.sh runs a larger fixed budget).
//!
//! Besides random slots it generates the shapes hostile clients used
//! (issue 12): addresses in `offset` slots (glVertexAttribPointer,
//! glDrawElements), NULL descriptors where the call reads or writes bytes
//! (which must be rejected, not handed on), and extreme pack and unpack
//! state (row length and skips up to i32::MAX, as set before a swap).

use gpu_codec::{decode, op, DecodeError, PixelStore, SizeCtx, NAMES, OPCODES, SLOTS};
use gpu_wire::{HeapDesc, Layout, Region};

/// xorshift64*: deterministic, so a failure can be replayed by its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Ctx(PixelStore, i64);
impl SizeCtx for Ctx {
    fn unpack(&self) -> PixelStore {
        self.0
    }
    fn pack(&self) -> PixelStore {
        self.0
    }
    fn num_compressed_formats(&self) -> i64 {
        self.1
    }
    fn num_shader_binary_formats(&self) -> i64 {
        self.1
    }
}

const HEAP: u32 = 1 << 16;

/// Calls whose pointer is an offset into a bound buffer, and its slot.
const OFFSET_OPS_SLOT: &[(u32, usize)] = &[(op::glVertexAttribPointer, 5), (op::glDrawElements, 3)];
const OFFSET_OPS: &[u32] = &[op::glVertexAttribPointer, op::glDrawElements];

fn interesting(r: &mut Rng, heap_head: u32, recent: &[HeapDesc]) -> u64 {
    match r.below(10) {
        0 => HeapDesc::NULL,
        1 => r.next(),
        2 => r.below(16),
        3 => (r.below(4096) as i64 - 2048) as u64,
        4 => [
            0x1401, 0x1403, 0x1405, 0x1406, 0x1908, 0x1907, 0x3038, 0x86A3,
        ][r.below(8) as usize],
        5 => i32::MAX as u64,
        6 => i32::MIN as i64 as u64,
        // A recent chunk, whole or cut short, or shifted a little.
        7 | 8 if !recent.is_empty() => {
            let d = recent[r.below(recent.len() as u64) as usize];
            let len = if r.below(2) == 0 {
                d.len
            } else {
                r.below(d.len as u64 + 1) as u32
            };
            let off = d.off.wrapping_add(if r.below(4) == 0 {
                r.below(64) as u32
            } else {
                0
            });
            HeapDesc { off, len }.pack()
        }
        // Descriptors near the published heap, some valid, some not.
        _ => {
            let off = heap_head.wrapping_sub(r.below(HEAP as u64 + 64) as u32);
            let len = r.below(HEAP as u64 / 2) as u32;
            HeapDesc { off, len }.pack()
        }
    }
}

#[test]
fn decoder_never_panics_or_escapes_the_heap() {
    let iters: u64 = std::env::var("GPU_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let layout = Layout {
        cmd_size: 4096,
        reply_size: 4096,
        heap_size: HEAP,
    };
    let mut mem = vec![0u64; layout.region_size() / 8];
    let base = mem.as_mut_ptr() as *mut u8;
    unsafe { layout.init(base, mem.len() * 8).unwrap() };
    let region = unsafe { Region::new(base, mem.len() * 8).unwrap() };
    let heap_lo = base as usize + layout.heap_off() as usize;
    let heap_hi = heap_lo + HEAP as usize;
    let mut w = region.heap_writer();
    let reader = region.heap_reader();
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut recent: Vec<HeapDesc> = Vec::new();
    let (mut ok, mut rejected, mut chunks) = (0u64, 0u64, 0u64);
    let (mut offsets, mut nulls, mut null_rejected) = (0u64, 0u64, 0u64);
    let start = std::time::Instant::now();
    for i in 0..iters {
        // Move the heap: allocate and publish random amounts, fill with noise.
        if r.below(4) == 0 {
            if let Ok(d) = w.alloc(r.below(HEAP as u64 / 4) as usize) {
                let noise: Vec<u8> = (0..d.len).map(|_| r.next() as u8).collect();
                w.write(d, &noise);
                w.publish();
                recent.push(d);
                if recent.len() > 8 {
                    recent.remove(0);
                }
            } else {
                let head = w.alloc(0).map(|d| d.off).unwrap_or(0);
                let mut rd = region.heap_reader();
                let _ = rd.release_to(head);
            }
        }
        let head = w.alloc(0).map(|d| d.off).unwrap_or(0);
        let op = r.below(OPCODES as u64 + 4) as u32;
        let want = SLOTS.get(op as usize).copied().unwrap_or(3) as usize;
        let n = if r.below(8) == 0 {
            r.below(17) as usize
        } else {
            want
        };
        let mut slots: Vec<u64> = (0..n).map(|_| interesting(&mut r, head, &recent)).collect();
        match r.below(16) {
            // An address where a buffer offset belongs.
            0 if OFFSET_OPS.contains(&op) && n == want => {
                let (i, addr) = OFFSET_OPS_SLOT
                    .iter()
                    .find(|(o, _)| *o == op)
                    .map(|(_, i)| {
                        (
                            *i,
                            [0x4141_4141_0000, u64::MAX - 7, 1 << 47][r.below(3) as usize],
                        )
                    })
                    .unwrap_or((0, 0));
                slots[i] = addr;
                offsets += 1;
            }
            // NULL in every slot that could be a descriptor.
            1 => {
                for s in slots.iter_mut().filter(|s| **s > u32::MAX as u64) {
                    *s = HeapDesc::NULL;
                }
                nulls += 1;
            }
            _ => {}
        }
        let huge = r.below(8) == 0;
        let big = |r: &mut Rng, small: u64| {
            if huge {
                [i32::MAX as i64, 1 << 20, 1 << 30, -1][r.below(4) as usize]
            } else {
                r.below(small) as i64
            }
        };
        let ctx = Ctx(
            PixelStore {
                alignment: [1, 2, 4, 8, 3][r.below(5) as usize],
                row_length: big(&mut r, 300) - 10,
                skip_rows: big(&mut r, 40),
                skip_pixels: big(&mut r, 40),
            },
            r.below(64) as i64 - 5,
        );
        let mut end = None;
        match decode(op, &slots, &reader, &ctx, &mut end) {
            Ok(call) => {
                ok += 1;
                // Every chunk handed out must lie inside the heap.
                let dbg = format!("{call:?}");
                for part in dbg.split("Chunk { ptr: ").skip(1) {
                    let hex = part.trim_start_matches("0x");
                    let ptr = usize::from_str_radix(hex.split(',').next().unwrap_or("0"), 16)
                        .unwrap_or(0);
                    let len: usize = part
                        .split("len: ")
                        .nth(1)
                        .and_then(|l| l.split(' ').next())
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0);
                    assert!(
                        ptr >= heap_lo && ptr + len <= heap_hi,
                        "iteration {i}: chunk outside heap in {dbg}"
                    );
                    chunks += 1;
                }
            }
            Err(e) => {
                rejected += 1;
                if matches!(e, DecodeError::Null { .. }) {
                    null_rejected += 1;
                }
            }
        }
        assert!(start.elapsed().as_secs() < 300, "decoder too slow: hang?");
        assert!(op as usize >= NAMES.len() || op == 0 || !NAMES[op as usize].is_empty());
    }
    eprintln!(
        "fuzz: {iters} records, {ok} decoded ({chunks} heap chunks checked), {rejected} rejected; \
         {offsets} with addresses as offsets, {nulls} with NULL descriptors ({null_rejected} rejected as NULL)"
    );
    assert!(
        ok > 0 && rejected > 0 && chunks > 0 && offsets > 0 && null_rejected > 0,
        "fuzzer explored too little"
    );
}
