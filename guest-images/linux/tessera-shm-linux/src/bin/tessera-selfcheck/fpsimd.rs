//! An FP/SIMD-heavy computation with a known result: the logistic map
//! x <- r x (1 - x) in its chaotic range, on many lanes at once (the
//! compiler keeps them in NEON registers). Chaos amplifies any corrupted
//! register bit instead of forgetting it, and IEEE arithmetic without
//! fused operations (Rust never fuses on its own) gives the same bits on
//! every machine, so the result is checked against a constant that the
//! host's unit test computes too.

pub const LANES: usize = 64;

/// The bits of every lane after `rounds`, folded.
pub fn run(seed: u32, rounds: u32) -> u64 {
    let mut x = [0f64; LANES];
    let mut y = [0f32; LANES];
    for (i, (a, b)) in x.iter_mut().zip(y.iter_mut()).enumerate() {
        let s = (seed as f64 + i as f64 * 0.618_033_988_75).fract();
        *a = 0.05 + 0.9 * s;
        *b = (0.05 + 0.9 * s) as f32;
    }
    for _ in 0..rounds {
        for a in x.iter_mut() {
            *a = 3.99 * *a * (1.0 - *a);
        }
        for b in y.iter_mut() {
            *b = 3.97f32 * *b * (1.0f32 - *b);
        }
    }
    x.iter()
        .map(|v| v.to_bits())
        .chain(y.iter().map(|v| v.to_bits() as u64))
        .fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
            (h ^ v).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// `run(SEED, ROUNDS)` as computed on the host (see the test).
pub const SEED: u32 = 7;
pub const ROUNDS: u32 = 20_000;
pub const EXPECTED: u64 = 0x755f_666a_15d4_242d;

#[cfg(test)]
mod tests {
    #[test]
    fn known_result() {
        assert_eq!(super::run(super::SEED, super::ROUNDS), super::EXPECTED);
    }
}
