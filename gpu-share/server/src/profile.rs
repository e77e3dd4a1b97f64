//! Where a session's server time goes, for benchmarks on a real driver
//! (`GPU_SERVER_PROFILE=1`): the time spent running records, the part of it
//! inside the driver (and hooks), and the idle time with its futex sleeps.
//! Off, it costs one branch per record.

use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Profile {
    pub on: bool,
    records: u64,
    /// Time from a record's pop to the end of its execution, summed.
    busy: Duration,
    /// Time inside `execute` (the driver call and its hook), summed.
    driver: Duration,
    /// Times the ring was found empty, and of those, futex sleeps.
    idles: u64,
    pub sleeps: u64,
    idle: Duration,
    t: Option<Instant>,
}

impl Profile {
    pub fn from_env() -> Profile {
        Profile {
            on: std::env::var_os("GPU_SERVER_PROFILE").is_some_and(|v| v == "1"),
            ..Profile::default()
        }
    }
    #[inline]
    pub fn now(&self) -> Option<Instant> {
        self.on.then(Instant::now)
    }
    #[inline]
    pub fn record(&mut self, start: Option<Instant>, exec: Option<Instant>, end: Option<Instant>) {
        if let (Some(s), Some(x), Some(e)) = (start, exec, end) {
            self.records += 1;
            self.busy += e - s;
            self.driver += e - x;
        }
    }
    pub fn idle_start(&mut self) {
        if self.on {
            self.idles += 1;
            self.t = Some(Instant::now());
        }
    }
    pub fn idle_end(&mut self) {
        if let Some(t) = self.t.take() {
            self.idle += t.elapsed();
        }
    }
    pub fn report(&self, id: u64) {
        if !self.on || self.records == 0 {
            return;
        }
        let per = |d: Duration| d.as_nanos() as f64 / self.records as f64;
        eprintln!(
            "gpu-server: client {id}: profile: {} records; per record {:.0} ns busy, of which {:.0} ns in the driver (execute); idle {:.1} ms over {} empty-ring waits, {} futex sleeps",
            self.records,
            per(self.busy),
            per(self.driver),
            self.idle.as_secs_f64() * 1e3,
            self.idles,
            self.sleeps
        );
    }
}
