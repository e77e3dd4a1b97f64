//! The doorbell self-check: given a region named [`REGION`] (the partition
//! tier's `boards/test-cluster-bell.toml`) instead of gpu-share's
//! `gpu-cluster`, the cluster answers the test guest's strict ping-pong
//! (`tessera-shm-proto`, side B, one message in flight) with the waits its
//! gpu-share session uses, then says how many of them the doorbell ended.
//! Without the doorbell interrupt each would sleep to its timeout.

use crate::sleep::{self, Sleepy};
use core::cell::Cell;
use core::time::Duration;
use gpu_xvm::{Port, XvmError};
use tessera_shm_proto::pingpong::{self, Link, Side};

pub const REGION: &str = "cluster-bell";
/// Messages each way; the test guest (VM `bell`) sends as many.
const MESSAGES: u32 = 2000;

struct Bell<'a> {
    port: &'a Sleepy,
    /// Doorbells taken as seen by `wait`.
    seen: Cell<u32>,
}

impl Link for Bell<'_> {
    type Error = XvmError;
    fn data(&self) -> *mut u8 {
        self.port.data()
    }
    fn data_len(&self) -> usize {
        self.port.data_len()
    }
    fn ring(&self) -> Result<(), XvmError> {
        self.port.ring();
        Ok(())
    }
    fn wait(&self, timeout: Duration) -> Result<bool, XvmError> {
        let got = sleep::wait_doorbell(self.seen.get(), timeout.as_millis() as u64);
        self.seen.set(sleep::doorbells());
        Ok(got)
    }
    fn generation(&self) -> Result<u32, XvmError> {
        Ok(self.port.header()?.generation)
    }
    fn now(&self) -> Duration {
        Duration::from_micros(sleep::now_us())
    }
}

/// Runs the exchange and says how it went, in one line.
pub fn check(port: &Sleepy, say: impl Fn(core::fmt::Arguments)) {
    let link = Bell {
        port,
        seen: Cell::new(sleep::doorbells()),
    };
    let t0 = sleep::now_us();
    match pingpong::run(&link, Side::B, MESSAGES) {
        Ok(s) => say(format_args!(
            "cluster: doorbell check: {} messages each way in {} us; waits ended by the doorbell {}, by their timeout {}",
            s.messages,
            sleep::now_us() - t0,
            sleep::WAKES_BY_DOORBELL.load(core::sync::atomic::Ordering::Relaxed),
            sleep::WAKES_BY_TIMEOUT.load(core::sync::atomic::Ordering::Relaxed),
        )),
        Err(e) => say(format_args!("cluster: doorbell check failed: {e}")),
    }
}
