//! gpu-share across VMs: the same wire (`gpu-wire` region, rings, heap) and
//! codec as between two Linux processes, carried by one Tessera shared
//! region per client with its doorbell instead of a memfd, a Unix socket
//! and futexes.
//!
//! A region as a peer sees it (docs/guest-abi.md, docs/cockpit.md):
//!
//! | offset                    | what                                          |
//! |---------------------------|-----------------------------------------------|
//! | 0                         | hypervisor header page (`TSHM`), read-only    |
//! | `data_offset` (0x1000)    | link page: hello, answer, server instance, heartbeat |
//! | `data_offset` + 0x1000    | the gpu-share region (`TGPU` header, rings, heap) |
//!
//! Everything here is generic over [`Port`], "a mapped region plus its
//! doorbell": [`host::HostPort`] emulates one with files and futexes (host
//! tests), [`baremetal::GuestPort`] is the bare-metal guest's (hypercall
//! doorbell, DTB), and a Linux guest's comes from its kernel module's
//! library.
#![no_std]

#[cfg(feature = "host")]
extern crate std;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod baremetal;
mod bell;
#[cfg(feature = "host")]
pub mod host;
pub mod link;
pub mod shm;

pub use bell::{ClientBell, ServerBell};
pub use link::{layout_for, Attached, Hello, XvmError};
pub use shm::ShmHeader;

/// A mapped shared region and its doorbell, as one peer sees them.
///
/// # Safety
/// `base()` must point to `len()` bytes mapped for the life of the port,
/// page aligned, the first page readable, the rest readable and writable,
/// shared with the other peers.
pub unsafe trait Port {
    /// The region's first byte (the hypervisor's header page).
    fn base(&self) -> *mut u8;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// This peer's slot among the region's boot counts
    /// (`tessera,peer-index`).
    fn peer_index(&self) -> u32;
    /// Raises the doorbell of every other peer.
    fn ring(&self);
    /// Doorbells this peer has received so far (any free-running count).
    fn irq_count(&self) -> u32;
    /// Waits while `irq_count() == seen`, at most about `timeout_ms`; may
    /// return early (a port without interrupts polls).
    fn wait_irq(&self, seen: u32, timeout_ms: u32);
    /// A monotonic clock in milliseconds (liveness of the peer).
    fn now_ms(&self) -> u64;
    /// One step of a polling loop.
    fn relax(&self) {
        core::hint::spin_loop();
    }
}
