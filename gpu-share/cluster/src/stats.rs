//! The cluster's frame statistics, printed every [`WINDOW`] frames in one
//! fixed line a test greps (docs/cockpit.md, "Frame statistics"):
//!
//! ```text
//! frames 300 period mean 34.1 p95 36.0 max 41.2 ms missed 3
//! ```
//!
//! `frames`: frames presented so far (a multiple of [`WINDOW`]); `period`:
//! the time between one present and the next, over the periods that ended
//! in the last [`WINDOW`] frames (mean, 95th percentile by nearest rank,
//! longest; the first frame of a session has none); `missed`: frames of
//! that window presented after the end of their slot. Pure arithmetic on
//! times the caller reads (the virtual counter in the VM, a monotonic clock
//! on the host), so it is tested on the host.

use core::fmt;

/// Frames per line.
pub const WINDOW: usize = 30;

/// Collects one window of frame periods.
pub struct FrameStats {
    periods_us: [u32; WINDOW],
    len: usize,
    frames: u64,
    missed: u32,
    last_present_us: Option<u64>,
}

/// One window's figures (microseconds), shown as the line above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub frames: u64,
    pub mean_us: u32,
    pub p95_us: u32,
    pub max_us: u32,
    pub missed: u32,
}

impl Default for FrameStats {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameStats {
    pub const fn new() -> Self {
        FrameStats {
            periods_us: [0; WINDOW],
            len: 0,
            frames: 0,
            missed: 0,
            last_present_us: None,
        }
    }

    /// A new session: the time since the last present is no frame period.
    pub fn restart(&mut self) {
        self.last_present_us = None;
    }

    /// Frame presented at `present_us` whose slot ended at `deadline_us`
    /// (same clock, any origin). Every [`WINDOW`] frames, the window's
    /// summary (`None` if no period ended in it).
    pub fn record(&mut self, present_us: u64, deadline_us: u64) -> Option<Summary> {
        if let Some(last) = self.last_present_us {
            let period = present_us.saturating_sub(last).min(u32::MAX as u64) as u32;
            self.periods_us[self.len] = period;
            self.len += 1;
        }
        self.last_present_us = Some(present_us);
        self.frames += 1;
        if present_us > deadline_us {
            self.missed += 1;
        }
        if !self.frames.is_multiple_of(WINDOW as u64) {
            return None;
        }
        let (len, missed) = (self.len, self.missed);
        self.len = 0;
        self.missed = 0;
        let window = &mut self.periods_us[..len];
        if window.is_empty() {
            return None;
        }
        window.sort_unstable();
        let sum: u64 = window.iter().map(|&p| p as u64).sum();
        Some(Summary {
            frames: self.frames,
            mean_us: ((sum + len as u64 / 2) / len as u64) as u32,
            // Nearest rank: the smallest period that 95 % are not above.
            p95_us: window[(len * 95).div_ceil(100) - 1],
            max_us: window[len - 1],
            missed,
        })
    }
}

/// Microseconds as milliseconds with one decimal, rounded.
struct Ms(u32);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let tenths = (self.0 as u64 + 50) / 100;
        write!(f, "{}.{}", tenths / 10, tenths % 10)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "frames {} period mean {} p95 {} max {} ms missed {}",
            self.frames,
            Ms(self.mean_us),
            Ms(self.p95_us),
            Ms(self.max_us),
            self.missed
        )
    }
}

/// Where the cluster's frame time goes, one window at a time: the time
/// spent encoding a frame's calls (they are queued, none waits) and the
/// time `eglSwapBuffers` (the frame's one synchronous call) waits for the
/// server to run them, render and read the frame back.
#[derive(Default)]
pub struct Split {
    frames: u32,
    encode_us: u64,
    swap_us: u64,
    swap_max_us: u64,
}

/// One window of [`Split`], shown as `split encode mean 0.4 swap mean
/// 120.3 max 180.0 ms (30 frames)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitSummary {
    pub frames: u32,
    pub encode_mean_us: u32,
    pub swap_mean_us: u32,
    pub swap_max_us: u32,
}

impl Split {
    pub fn add(&mut self, encode_us: u64, swap_us: u64) {
        self.frames += 1;
        self.encode_us += encode_us;
        self.swap_us += swap_us;
        self.swap_max_us = self.swap_max_us.max(swap_us);
    }

    /// The frames added since the last call (`None` if none), and a new
    /// window.
    pub fn take(&mut self) -> Option<SplitSummary> {
        let s = core::mem::take(self);
        let n = s.frames as u64;
        let mean = |t: u64| ((t + n / 2) / n).min(u32::MAX as u64) as u32;
        (n > 0).then(|| SplitSummary {
            frames: s.frames,
            encode_mean_us: mean(s.encode_us),
            swap_mean_us: mean(s.swap_us),
            swap_max_us: s.swap_max_us.min(u32::MAX as u64) as u32,
        })
    }
}

impl fmt::Display for SplitSummary {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "split encode mean {} swap mean {} max {} ms ({} frames)",
            Ms(self.encode_mean_us),
            Ms(self.swap_mean_us),
            Ms(self.swap_max_us),
            self.frames
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec::Vec;

    /// Feeds frames presented at `presents` (µs) with 33 ms slots from 0.
    fn feed(s: &mut FrameStats, presents: &[u64]) -> Vec<Summary> {
        let mut out = Vec::new();
        for (k, &p) in presents.iter().enumerate() {
            out.extend(s.record(p, (k as u64 + 1) * 33_000));
        }
        out
    }

    #[test]
    fn steady_frames_on_time() {
        let mut s = FrameStats::new();
        let presents: Vec<u64> = (0..90).map(|k| k * 33_000 + 5_000).collect();
        let lines = feed(&mut s, &presents);
        assert_eq!(lines.len(), 3);
        // The first window has 29 periods (the first frame has none).
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(l.frames, 30 * (i as u64 + 1));
            assert_eq!(
                (l.mean_us, l.p95_us, l.max_us, l.missed),
                (33_000, 33_000, 33_000, 0)
            );
        }
        assert_eq!(
            format!("{}", lines[2]),
            "frames 90 period mean 33.0 p95 33.0 max 33.0 ms missed 0"
        );
    }

    #[test]
    fn mean_p95_max_of_a_known_window() {
        // 30 frames at once, then periods of 1 ms to 30 ms: the second
        // window holds exactly those.
        let mut presents = alloc::vec![0u64; 30];
        let mut t = 0;
        for d in 1..=30 {
            t += d * 1000;
            presents.push(t);
        }
        let lines = feed(&mut FrameStats::new(), &presents);
        let l = lines[1];
        assert_eq!(l.frames, 60);
        assert_eq!(l.mean_us, 15_500);
        assert_eq!(l.p95_us, 29_000, "nearest rank: the 29th of 30");
        assert_eq!(l.max_us, 30_000);
        assert_eq!(
            format!("{l}"),
            "frames 60 period mean 15.5 p95 29.0 max 30.0 ms missed 0"
        );
    }

    #[test]
    fn missed_counts_presents_after_the_slot_per_window() {
        let mut s = FrameStats::new();
        let mut lines = Vec::new();
        for k in 0..60u64 {
            let deadline = (k + 1) * 33_000;
            // Frames 3, 4 and 40 late by 1 µs; frame 7 exactly on its deadline.
            let p = match k {
                3 | 4 | 40 => deadline + 1,
                7 => deadline,
                _ => deadline - 10_000,
            };
            lines.extend(s.record(p, deadline));
        }
        assert_eq!(lines[0].missed, 2);
        assert_eq!(lines[1].missed, 1);
    }

    #[test]
    fn a_new_session_is_no_period() {
        let mut s = FrameStats::new();
        let mut lines = Vec::new();
        for k in 0..30u64 {
            if k == 10 {
                s.restart(); // 5 s reconnecting: not a frame period
            }
            let p = k * 33_000 + if k >= 10 { 5_000_000 } else { 0 };
            lines.extend(s.record(p, p));
        }
        assert_eq!(lines[0].max_us, 33_000);
        // Periods: 9 before and 19 after the restart.
        assert_eq!(lines[0].mean_us, 33_000);
    }

    #[test]
    fn rounding_and_empty_windows() {
        assert_eq!(format!("{}", Ms(34_049)), "34.0");
        assert_eq!(format!("{}", Ms(34_050)), "34.1");
        assert_eq!(format!("{}", Ms(999_999)), "1000.0");
        let mut s = FrameStats::new();
        for k in 0..30u64 {
            s.restart();
            assert_eq!(s.record(k, k), None);
        }
    }

    #[test]
    fn split_means_per_window_and_starts_again() {
        let mut s = Split::default();
        assert_eq!(s.take(), None);
        s.add(400, 120_000);
        s.add(600, 180_000);
        let w = s.take().unwrap();
        assert_eq!(
            w,
            SplitSummary {
                frames: 2,
                encode_mean_us: 500,
                swap_mean_us: 150_000,
                swap_max_us: 180_000
            }
        );
        assert_eq!(
            format!("{w}"),
            "split encode mean 0.5 swap mean 150.0 max 180.0 ms (2 frames)"
        );
        assert_eq!(s.take(), None);
        s.add(1, 2);
        assert_eq!(s.take().unwrap().swap_max_us, 2);
    }
}
