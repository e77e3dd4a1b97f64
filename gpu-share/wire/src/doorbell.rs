//! How one side wakes the other.
//!
//! Rings publish progress through free-running `u32` counters. A waiter
//! sleeps until such a counter differs from the value it last saw; the peer
//! rings after it published. On Linux this is a futex on the counter itself, in
//! a VM it is an interrupt; a bare-metal guest may simply spin.

use core::sync::atomic::{AtomicU32, Ordering};

/// Result of a bounded wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The word changed (or may have: spurious wake-ups are allowed).
    Changed,
    /// The timeout passed with the word unchanged.
    TimedOut,
}

pub trait Doorbell {
    /// Wakes a peer waiting on `word`.
    fn notify(&self, word: &AtomicU32);
    /// Sleeps while `word == seen`, at most about `timeout_ms`.
    fn wait(&self, word: &AtomicU32, seen: u32, timeout_ms: u32) -> Wait;
    /// Whether the peer still exists; asked after a wait timed out so that a
    /// dead peer ends a wait instead of hanging it.
    fn peer_alive(&self) -> bool {
        true
    }
    /// One step of a polling loop before a wait. Spinning in place suits a
    /// peer on its own core; an OS with more threads than cores does better
    /// to let the peer run.
    fn relax(&self) {
        core::hint::spin_loop();
    }
    /// Polls `word` for a short while before a wait: true as soon as it
    /// differs from `seen`. Most waits are short (the peer is working on
    /// the next record), and a sleep costs two context switches.
    fn poll(&self, word: &AtomicU32, seen: u32) -> bool {
        for _ in 0..POLLS {
            if word.load(Ordering::Acquire) != seen {
                return true;
            }
            self.relax();
        }
        word.load(Ordering::Acquire) != seen
    }
}

/// Polls of the default [`Doorbell::poll`].
pub const POLLS: u32 = 50;

/// Busy-waiting doorbell for guests without an interrupt path; the timeout
/// is counted in spin iterations, so it only bounds, not measures, time.
pub struct SpinDoorbell;

impl Doorbell for SpinDoorbell {
    fn notify(&self, _word: &AtomicU32) {}
    fn wait(&self, word: &AtomicU32, seen: u32, timeout_ms: u32) -> Wait {
        let spins = (timeout_ms as u64 + 1) * 10_000;
        for _ in 0..spins {
            if word.load(Ordering::Acquire) != seen {
                return Wait::Changed;
            }
            core::hint::spin_loop();
        }
        Wait::TimedOut
    }
}
