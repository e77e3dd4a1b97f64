//! Random calls in the shapes hostile clients used, against a live session
//! on the real driver: attribute pointers and element offsets that are
//! addresses or past their buffers, buffers deleted while in use, NULL
//! descriptors, extreme pack and unpack state before swaps and reads. A
//! session may end (that is what some shapes are for); the server must
//! survive every one, and the next session must work.

use crate::gl::{Gl, Surface};
use gpu_codec::{enc, op};
use gpu_wire::HeapDesc;

/// xorshift64*, seeded: a failure replays.
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
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

fn session() -> Result<Gl, String> {
    let mut g = Gl::small(Surface::Window(64, 64))?;
    g.program("gl_FragColor = vec4(v, k, 1.0);")?;
    Ok(g)
}

/// One random call; errors from the front-end (closed session, bad
/// argument) are part of the game.
fn call(g: &mut Gl, r: &mut Rng, bufs: &[u32]) {
    let c = &mut g.c;
    let small = |r: &mut Rng| r.pick(&[0i32, 1, 2, 3, 4, 7, 16, 100, -1]);
    let offset = |r: &mut Rng| {
        r.pick(&[
            0u64,
            4,
            12,
            60,
            64,
            4096,
            0x4141_4141_0000,
            u64::MAX - 3,
            1 << 40,
        ])
    };
    let _ = match r.below(15) {
        0 => c.bind_buffer(r.pick(&[0x8892, 0x8893]), r.pick(bufs)),
        1 => {
            let n = 256 + r.below(256) as usize;
            let data: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
            let t = r.pick(&[0x8892, 0x8893]);
            c.buffer_data(t, n as isize, Some(&data), 0x88E4)
        }
        2 => enc::glVertexAttribPointer(
            c,
            r.below(18) as u32,
            r.pick(&[1, 2, 3, 4, 5]),
            r.pick(&[0x1400, 0x1401, 0x1402, 0x1403, 0x1406, 0x140C, 0x1405]),
            r.below(2) as u8,
            r.pick(&[0, 4, 16, 255, 256, -4]),
            offset(r),
        ),
        3 => c.enable_attrib(r.below(18) as u32, r.below(3) != 0),
        // SAFETY: no client arrays are set through the front-end here.
        4 | 5 => unsafe { c.draw_arrays(r.pick(&[0, 1, 4, 5, 6, 9]), small(r), small(r)) },
        6 | 7 => {
            if r.below(4) != 0 {
                // Mostly from a real element buffer, at offsets in or past it.
                let _ = c.bind_buffer(0x8893, bufs[r.below(3) as usize]);
            }
            enc::glDrawElements(
                c,
                r.pick(&[0, 4, 5, 9]),
                r.below(17) as i32 - 1,
                r.pick(&[0x1401, 0x1403, 0x1405, 0x1406]),
                if r.below(4) == 0 {
                    offset(r)
                } else {
                    r.below(64)
                },
            )
        }
        8 => {
            let b = [r.pick(bufs)];
            c.delete_buffers(1, &b)
        }
        9 => c.pixel_store(
            r.pick(&[
                0x0D05, 0x0D02, 0x0D03, 0x0D04, 0x0CF5, 0x0CF2, 0x0CF3, 0x0CF4,
            ]),
            r.pick(&[0, 1, 2, 3, 4, 8, 200, 1 << 20, -1, i32::MAX]),
        ),
        10 => {
            let (d, s) = (g.dpy, g.surf);
            enc::eglSwapBuffers(c, d, s).map(|_| ())
        }
        11 => {
            let (w, h) = (r.below(70) as i32 - 2, r.below(70) as i32 - 2);
            let ty = r.pick(&[0x1401, 0x8033, 0x1406]);
            let need =
                gpu_codec::sizes::image_size(w as i64, h as i64, 0x1908, ty as i64, c.shadow.pack);
            // At most a quarter of the heap: the front-end can wait forever
            // for a chunk near the heap's size (see the report of issue 12).
            if need > 16 << 10 {
                return;
            }
            let mut out = vec![0u8; need.max(0) as usize];
            enc::glReadPixels(c, small(r), small(r), w, h, 0x1908, ty, Some(&mut out))
        }
        12 => {
            let (w, h) = (r.below(40) as i32, r.below(40) as i32);
            let need =
                gpu_codec::sizes::image_size(w as i64, h as i64, 0x1908, 0x1401, c.shadow.unpack);
            if need > 16 << 10 {
                return;
            }
            let data = vec![0x5au8; need.max(0) as usize];
            enc::glTexImage2D(c, 0x0DE1, 0, 0x1908, w, h, 0, 0x1908, 0x1401, Some(&data))
        }
        13 => {
            // A NULL descriptor where a call reads or writes (rare: ends
            // the session).
            if r.below(20) == 0 {
                let o = r.pick(&[op::glVertexAttrib4fv, op::glUniform4fv, op::glGetIntegerv]);
                let slots: &[u64] = match o {
                    op::glVertexAttrib4fv => &[0, HeapDesc::NULL],
                    op::glUniform4fv => &[0, 1, HeapDesc::NULL],
                    _ => &[0x0BA2, HeapDesc::NULL],
                };
                g.raw(o, slots)
            } else {
                Ok(())
            }
        }
        _ => enc::glGetError(c).map(|_| ()),
    };
}

/// Findings 1, 2 and 3 together: 2000 random calls in hostile shapes.
pub fn random_hostile_calls() -> Result<(), String> {
    let mut r = Rng(0x7E55_E7A0_0001_2345);
    let mut g = session()?;
    let mut bufs = vec![0u32; 3];
    enc::glGenBuffers(&mut g.c, 3, &mut bufs).map_err(|e| format!("{e:?}"))?;
    bufs.push(0);
    bufs.push(999);
    let (mut sessions, mut calls) = (1u32, 0u32);
    while calls < 2_000 {
        call(&mut g, &mut r, &bufs);
        calls += 1;

        if g.closed() != 0 || g.c.closed().is_some() {
            if !crate::gl::server_alive() {
                return Err(format!(
                    "the server died after {calls} calls (seed replays it)"
                ));
            }
            g = session()?;
            enc::glGenBuffers(&mut g.c, 3, &mut bufs[..3]).map_err(|e| format!("{e:?}"))?;
            sessions += 1;
        }
    }
    // The last session may yet be ended by a call still queued: the
    // caller checks that the server serves the next one.
    drop(g);
    println!("hostile: {calls} random calls in {sessions} sessions");
    Ok(())
}
