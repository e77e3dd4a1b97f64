//! *Portable*: a token bucket for log lines a guest can make the hypervisor
//! print as often as it likes (a bad doorbell index, a full input buffer).
//! A burst passes, then one line per period; the lines held back are
//! counted and the next line that passes reports how many.
//!
//! Time is whatever monotonic counter the caller passes (the generic
//! timer's ticks at EL2).

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Lines that may pass back to back.
    burst: u32,
    /// Counter ticks to earn one more line.
    period: u64,
    tokens: u32,
    /// When the last token was earned (or the bucket first used).
    last: u64,
    started: bool,
    suppressed: u64,
}

impl RateLimit {
    pub const fn new(burst: u32, period: u64) -> RateLimit {
        RateLimit {
            burst,
            period,
            tokens: burst,
            last: 0,
            started: false,
            suppressed: 0,
        }
    }

    /// Whether a line may be printed at `now`: `Some(n)` with the number of
    /// lines suppressed since the last one that passed, or `None` (counted).
    pub fn check(&mut self, now: u64) -> Option<u64> {
        if !self.started {
            self.started = true;
            self.last = now;
        }
        if self.period > 0 && now > self.last {
            let earned = (now - self.last) / self.period;
            if earned > 0 {
                self.tokens = (self.tokens as u64 + earned).min(self.burst as u64) as u32;
                self.last += earned * self.period;
            }
        }
        if self.tokens == 0 {
            self.suppressed += 1;
            return None;
        }
        self.tokens -= 1;
        Some(core::mem::take(&mut self.suppressed))
    }

    /// Lines held back and not yet reported.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// The suffix a line that passed carries: empty, or
/// ` [N similar lines suppressed]`.
pub struct Suppressed(pub u64);

impl core::fmt::Display for Suppressed {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " [{n} similar lines suppressed]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn a_burst_passes_then_one_per_period() {
        let mut r = RateLimit::new(3, 100);
        assert_eq!(r.check(1000), Some(0));
        assert_eq!(r.check(1000), Some(0));
        assert_eq!(r.check(1001), Some(0));
        assert_eq!(r.check(1002), None);
        assert_eq!(r.check(1050), None);
        assert_eq!(r.suppressed(), 2);
        // One period later one line passes and reports the two held back.
        assert_eq!(r.check(1100), Some(2));
        assert_eq!(r.check(1101), None);
        assert_eq!(r.check(1199), None);
        assert_eq!(r.check(1200), Some(2));
    }

    #[test]
    fn a_flood_is_bounded_by_the_rate() {
        let mut r = RateLimit::new(10, 1_000);
        let passed = (0..1_000_000u64).filter(|t| r.check(*t).is_some()).count();
        // 10 at once, then one per 1000 ticks over 1,000,000 ticks.
        assert_eq!(passed, 10 + 999);
    }

    #[test]
    fn quiet_time_refills_only_to_the_burst() {
        let mut r = RateLimit::new(2, 10);
        assert!(r.check(0).is_some());
        assert!(r.check(0).is_some());
        assert!(r.check(0).is_none());
        assert_eq!(r.check(1_000_000), Some(1));
        assert!(r.check(1_000_000).is_some());
        assert!(r.check(1_000_000).is_none());
    }

    #[test]
    fn the_suffix_names_the_count() {
        assert_eq!(format!("x{}", Suppressed(0)), "x");
        assert_eq!(
            format!("x{}", Suppressed(7)),
            "x [7 similar lines suppressed]"
        );
    }
}
