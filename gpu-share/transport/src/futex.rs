//! Futex doorbell: waits on a ring counter in the shared mapping itself.
//! Shared (not process-private) futexes, since the peer is another process.

use gpu_wire::doorbell::{Doorbell, Wait};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How a waiter polls before it sleeps: spinning in place (`spin`), then
/// yielding its core between looks, until `total` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    pub spin: Duration,
    pub total: Duration,
    /// At most this many yields (a yield on a busy machine of few cores
    /// can last a time slice, so a count bounds the wait better there).
    pub yields: u32,
    /// Steps of a local delay loop between two looks while spinning: the
    /// peer writes the polled line several times in a row, and each look
    /// in between takes the line back from it.
    pub backoff: u32,
}

/// Delay steps between looks unless `TESSERA_GPU_POLL` says otherwise.
pub const BACKOFF: u32 = 32;

impl PollPolicy {
    /// With cores to spare, a waiter spins long enough to cover a driver
    /// call that waits for the GPU (a 1x1 readback takes about 11 us on an
    /// H200), then keeps looking between yields for up to 2 ms, about a
    /// frame of draws: a sleeping thread's wake-up cost up to a few hundred
    /// microseconds on the (virtual) GPU machine, once per frame per side.
    /// On a machine of few cores the peer (or the driver's threads) may
    /// need this core, so the waiter yields it at once, 50 times at most
    /// (as before issue 13: measured no worse on the 2-core development
    /// machine than any time-bounded variant).
    /// `TESSERA_GPU_POLL=SPIN_US,TOTAL_US[,BACKOFF]` overrides them
    /// (benchmarks).
    pub fn from_env(cores: usize, env: Option<&str>) -> PollPolicy {
        let us = Duration::from_micros;
        if let Some(v) = env {
            let f: Vec<Option<u64>> = v.split(',').map(|x| x.trim().parse().ok()).collect();
            if let [Some(a), Some(b), ref rest @ ..] = f[..] {
                let backoff = match rest {
                    [Some(c)] => (*c).min(1 << 20) as u32,
                    _ => BACKOFF,
                };
                return PollPolicy {
                    spin: us(a),
                    total: us(b),
                    yields: u32::MAX,
                    backoff,
                };
            }
        }
        if cores >= 4 {
            PollPolicy {
                spin: us(50),
                total: us(2000),
                yields: u32::MAX,
                backoff: BACKOFF,
            }
        } else {
            PollPolicy {
                spin: Duration::ZERO,
                total: Duration::from_secs(1),
                yields: gpu_wire::doorbell::POLLS,
                backoff: BACKOFF,
            }
        }
    }

    fn get() -> PollPolicy {
        static P: OnceLock<PollPolicy> = OnceLock::new();
        *P.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            PollPolicy::from_env(cores, std::env::var("TESSERA_GPU_POLL").ok().as_deref())
        })
    }
}

pub struct FutexBell {
    /// The session socket; hang-up means the peer is gone. None when both
    /// ends live in one process (benchmarks), where the peer cannot vanish.
    sock: Option<RawFd>,
}

impl FutexBell {
    pub fn new(sock: &impl AsRawFd) -> FutexBell {
        FutexBell {
            sock: Some(sock.as_raw_fd()),
        }
    }
    pub fn in_process() -> FutexBell {
        FutexBell { sock: None }
    }
}

impl Doorbell for FutexBell {
    fn notify(&self, word: &AtomicU32) {
        // SAFETY: word is a valid u32 in shared memory.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE,
                i32::MAX,
                0,
                0,
                0,
            )
        };
    }

    fn wait(&self, word: &AtomicU32, seen: u32, timeout_ms: u32) -> Wait {
        let ts = libc::timespec {
            tv_sec: (timeout_ms / 1000) as _,
            tv_nsec: ((timeout_ms % 1000) * 1_000_000) as _,
        };
        // SAFETY: word is a valid u32; ts outlives the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                seen,
                &ts as *const _,
                0,
                0,
            )
        };
        if r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT) {
            Wait::TimedOut
        } else {
            Wait::Changed
        }
    }

    fn poll(&self, word: &AtomicU32, seen: u32) -> bool {
        let p = PollPolicy::get();
        // The clock is read only once a first round of looks found nothing:
        // most waits end sooner, and a clock read costs more than a look.
        let mut t: Option<Instant> = None;
        let mut i = 0u32;
        let mut yields = 0u32;
        let mut spinning = !p.spin.is_zero();
        loop {
            if word.load(Ordering::Acquire) != seen {
                return true;
            }
            i = i.wrapping_add(1);
            if spinning {
                // A plain load loop, no `pause`: under KVM a loop of pause
                // instructions makes the hypervisor take the CPU away
                // (pause-loop exiting), which costs more than the spin.
                // The back-off is a loop over a local instead.
                let mut d = 0u32;
                while d < p.backoff {
                    d = core::hint::black_box(d) + 1;
                }
                if i.is_multiple_of(64) {
                    spinning = t.get_or_insert_with(Instant::now).elapsed() < p.spin;
                }
            } else {
                if yields >= p.yields || t.get_or_insert_with(Instant::now).elapsed() >= p.total {
                    return false;
                }
                yields += 1;
                self.relax();
            }
        }
    }

    fn relax(&self) {
        // The peer (or the driver's threads) may need this core to make the
        // progress we poll for.
        // SAFETY: no arguments, no memory involved.
        unsafe { libc::sched_yield() };
    }

    fn peer_alive(&self) -> bool {
        let Some(fd) = self.sock else { return true };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if n <= 0 {
            return n == 0;
        }
        if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return false;
        }
        // Readable: either a message (none are defined mid-session) or EOF.
        let mut b = [0u8; 1];
        // SAFETY: reading at most one byte into b, without blocking.
        let r = unsafe {
            libc::recv(
                fd,
                b.as_mut_ptr() as *mut libc::c_void,
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        r != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_policy_from_the_environment() {
        let us = Duration::from_micros;
        let p = PollPolicy::from_env(16, Some("10,300"));
        assert_eq!((p.spin, p.total, p.backoff), (us(10), us(300), BACKOFF));
        let p = PollPolicy::from_env(16, Some("10, 300, 0"));
        assert_eq!((p.spin, p.total, p.backoff), (us(10), us(300), 0));
        // Malformed: the defaults for the core count.
        let p = PollPolicy::from_env(16, Some("10"));
        assert_eq!((p.spin, p.total), (us(50), us(2000)));
        let p = PollPolicy::from_env(2, Some("x,y"));
        assert_eq!(
            (p.spin, p.yields),
            (Duration::ZERO, gpu_wire::doorbell::POLLS)
        );
    }
}
