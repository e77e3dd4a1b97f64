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
//! A port gives the header page (parsed) and the data apart, since a Linux
//! guest maps them apart.
//!
//! Everything here is generic over [`Port`], "a mapped region plus its
//! doorbell": [`host::HostPort`] emulates one with files and futexes (host
//! tests), [`baremetal::GuestPort`] is the bare-metal guest's (hypercall
//! doorbell, DTB), and [`linux::LinuxPort`] a Linux guest's (the
//! `tessera_shm` module through `tessera-shm-linux`).
#![no_std]

#[cfg(any(feature = "host", feature = "linux"))]
extern crate std;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod baremetal;
mod bell;
#[cfg(feature = "host")]
pub mod host;
pub mod link;
#[cfg(all(feature = "linux", target_os = "linux"))]
pub mod linux;
pub mod shm;

pub use bell::{ClientBell, ServerBell};
pub use link::{layout_for, Attached, Hello, XvmError};
pub use shm::ShmHeader;

/// A mapped shared region and its doorbell, as one peer sees them.
///
/// # Safety
/// `data()` must point to `data_len()` bytes, page aligned, readable and
/// writable, shared with the other peers and mapped for the life of the
/// port.
pub unsafe trait Port {
    /// The hypervisor's header page as it is now (`ShmHeader::parse` reads
    /// one from its words).
    fn header(&self) -> Result<ShmHeader, XvmError>;
    /// The region's data, from its data offset on: the link page first.
    fn data(&self) -> *mut u8;
    fn data_len(&self) -> usize;
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
