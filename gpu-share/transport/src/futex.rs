//! Futex doorbell: waits on a ring counter in the shared mapping itself.
//! Shared (not process-private) futexes, since the peer is another process.

use gpu_wire::doorbell::{Doorbell, Wait};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::AtomicU32;

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
