//! Sharing the one GPU between sessions.
//!
//! * Work in flight: a session's draws are fenced (glFinish) every
//!   `budget` draws, and its ring is not read while the fence waits, so a
//!   session never has more than one batch queued in the driver. The
//!   budget adapts so that a batch takes about `batch_ms`: it halves after
//!   a batch that took longer (down to 1 draw) and doubles after one that
//!   took less than half (up to [`MAX_BUDGET`]).
//! * Watchdog: a single draw that ran longer than `watchdog_ms` ends its
//!   session, and so does a second over-long batch. The first batch of
//!   several draws that runs over only brings the budget down to one draw:
//!   legal programs do switch from cheap draws to dear ones (dEQP's
//!   flush_finish cases calibrate exactly so), and the budget grown on the
//!   cheap ones then makes one long batch. Since a batch normally takes
//!   about `batch_ms`, this bounds what any other session waits for this
//!   one: one batch at most `watchdog_ms`, and once per session one batch
//!   of at most [`MAX_BUDGET`] draws each shorter than that.
//! * Priority: sessions of the cluster (accepted on the server's cluster
//!   socket) go first. Their contexts get EGL_IMG_context_priority HIGH
//!   where the driver has it; and in the server's own ordering, while a
//!   cluster session has work, other sessions wait at their next fence
//!   (up to [`YIELD_MAX`] each time, so they still progress).

use crate::session::{need, Session, SessionError};
use gpu_codec::op;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Calls that queue rendering work.
pub const DRAWS: &[u32] = &[
    op::glDrawArrays,
    op::glDrawElements,
    op::tsDrawElementsData,
    op::glClear,
];

static DRAWS_SET: [bool; gpu_codec::OPCODES] = crate::serve::op_set(DRAWS);

pub const MAX_BUDGET: u32 = 4096;
/// Longest a non-cluster session waits at one fence for the cluster.
pub const YIELD_MAX: Duration = Duration::from_millis(100);

/// Cluster sessions that have work right now (server-wide).
static CLUSTER_BUSY: AtomicUsize = AtomicUsize::new(0);

/// A session's share of the GPU.
#[derive(Debug)]
pub struct Sched {
    /// A cluster session (served first).
    pub cluster: bool,
    /// Draws since the last fence, and how many a batch may hold.
    pub draws: u32,
    pub budget: u32,
    /// Whether this cluster session counts in CLUSTER_BUSY.
    busy: bool,
    /// Batches of several draws that ran longer than the watchdog allows
    /// (the first is forgiven).
    pub strikes: u32,
    /// Statistics: fences, and the longest batch.
    pub fences: u64,
    pub longest: Duration,
}

impl Default for Sched {
    fn default() -> Self {
        Sched {
            cluster: false,
            draws: 0,
            budget: 1,
            busy: false,
            strikes: 0,
            fences: 0,
            longest: Duration::ZERO,
        }
    }
}

impl Sched {
    /// A cluster session has records to run (`true`) or is idle.
    pub fn set_busy(&mut self, busy: bool) {
        if self.cluster && busy != self.busy {
            self.busy = busy;
            if busy {
                CLUSTER_BUSY.fetch_add(1, Ordering::SeqCst);
            } else {
                CLUSTER_BUSY.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

impl Drop for Sched {
    fn drop(&mut self) {
        self.set_busy(false);
    }
}

/// Counts a call; at the end of a batch waits for its work (fence),
/// applies the watchdog and adapts the budget.
pub fn after_call(s: &mut Session, opcode: u32) -> Result<(), SessionError> {
    if DRAWS_SET.get(opcode as usize) != Some(&true) {
        return Ok(());
    }
    s.sched.draws += 1;
    if s.sched.draws < s.sched.budget {
        return Ok(());
    }
    let finish = need(s.drv.glFinish, "glFinish")?;
    let t = Instant::now();
    // SAFETY: no arguments.
    unsafe { finish() };
    let dt = t.elapsed();
    let n = s.sched.draws;
    s.sched.draws = 0;
    s.sched.fences += 1;
    s.sched.longest = s.sched.longest.max(dt);
    if dt > Duration::from_millis(s.limits.watchdog_ms) {
        if n > 1 && s.sched.strikes == 0 {
            s.sched.strikes += 1;
            s.sched.budget = 1;
            eprintln!(
                "gpu-server: client {}: GPU watchdog: a batch of {n} draws ran {} ms, limit {} ms; fencing every draw",
                s.id,
                dt.as_millis(),
                s.limits.watchdog_ms
            );
            return Ok(());
        }
        return Err(SessionError::Limit(format!(
            "GPU watchdog: a batch of {n} draws ran {} ms, limit {} ms",
            dt.as_millis(),
            s.limits.watchdog_ms
        )));
    }
    let target = Duration::from_millis(s.limits.batch_ms.max(1));
    if dt > target {
        s.sched.budget = (s.sched.budget / 2).max(1);
    } else if dt < target / 2 {
        s.sched.budget = (s.sched.budget * 2).min(MAX_BUDGET);
    }
    if !s.sched.cluster {
        let t = Instant::now();
        while CLUSTER_BUSY.load(Ordering::SeqCst) > 0 && t.elapsed() < YIELD_MAX {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    Ok(())
}
