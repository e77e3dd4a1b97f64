//! gpu-share's doorbell trait over a region's doorbell: one interrupt per
//! region, whatever counter the ring code waits on, so a waiter re-checks
//! its counter after each interrupt.

use crate::link::{self, Attached, ServerLink};
use crate::Port;
use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};
use gpu_wire::{Doorbell, Wait};

/// Longest single sleep inside a wait: a port that polls returns early
/// anyway, one with interrupts wakes on the ring.
const SLICE_MS: u64 = 50;

fn wait_on<P: Port>(port: &P, word: &AtomicU32, seen: u32, timeout_ms: u32) -> Wait {
    let deadline = port.now_ms() + timeout_ms as u64;
    loop {
        // The count first: a ring after this load ends the wait below.
        let irq = port.irq_count();
        if word.load(Ordering::Acquire) != seen {
            return Wait::Changed;
        }
        let now = port.now_ms();
        if now >= deadline {
            return Wait::TimedOut;
        }
        port.wait_irq(irq, (deadline - now).min(SLICE_MS) as u32);
    }
}

/// The client's doorbell: rings the region, and counts the server gone
/// when it restarted or its heartbeat stopped.
pub struct ClientBell<P: Port + 'static> {
    port: &'static P,
    attached: Attached,
    beat: Cell<(u32, u64)>,
}

// SAFETY: the port is shared memory plus a doorbell, usable from any
// thread; the Cell is only touched by the one thread that owns the bell
// (gpu-share clients serialise their calls).
unsafe impl<P: Port + Sync + 'static> Send for ClientBell<P> {}

impl<P: Port + 'static> ClientBell<P> {
    pub fn new(port: &'static P, attached: Attached) -> Self {
        ClientBell {
            port,
            attached,
            beat: Cell::new((0, 0)),
        }
    }
}

impl<P: Port + 'static> Doorbell for ClientBell<P> {
    fn notify(&self, _word: &AtomicU32) {
        self.port.ring();
    }
    fn wait(&self, word: &AtomicU32, seen: u32, timeout_ms: u32) -> Wait {
        wait_on(self.port, word, seen, timeout_ms)
    }
    fn peer_alive(&self) -> bool {
        let mut b = self.beat.get();
        let alive = link::server_alive(self.port, &self.attached, &mut b);
        self.beat.set(b);
        alive
    }
    fn relax(&self) {
        self.port.relax();
    }
}

/// The server's doorbell for one session: the client is gone once it said
/// a new hello (it restarted) or its VM restarted.
pub struct ServerBell<'l, 'p, P: Port> {
    pub link: &'l ServerLink<'p, P>,
    pub attached: Attached,
}

impl<P: Port> Doorbell for ServerBell<'_, '_, P> {
    fn notify(&self, _word: &AtomicU32) {
        self.link.port.ring();
    }
    fn wait(&self, word: &AtomicU32, seen: u32, timeout_ms: u32) -> Wait {
        wait_on(self.link.port, word, seen, timeout_ms)
    }
    fn peer_alive(&self) -> bool {
        self.link.client_alive(&self.attached)
    }
    fn relax(&self) {
        self.link.port.relax();
    }
}
