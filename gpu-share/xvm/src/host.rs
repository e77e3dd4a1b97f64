//! Host emulation of Tessera shared regions, so that the cross-VM protocol
//! runs between ordinary processes: a region is a file `PREFIX.shm` mapped
//! shared (its header page read-only to peers, as the hypervisor maps it),
//! and its doorbells are counters in `PREFIX.irq`, one u32 per peer, with a
//! futex on each (a ring adds one to every other peer's counter and wakes
//! it, an edge that coalesces like the virtual SPI).
//!
//! [`HostShm`] plays the hypervisor: it creates both files, writes the
//! header page and bumps a peer's boot count when that peer restarts.

use crate::shm::PAGE;
use crate::Port;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::prelude::rust_2021::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Instant;
use std::{format, vec::Vec};

struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Map {
    fn file(path: &str, len: usize, create: bool) -> io::Result<Map> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
        if create {
            f.set_len(len as u64)?;
        }
        let len = if create {
            len
        } else {
            f.metadata()?.len() as usize
        };
        if len < PAGE {
            return Err(io::Error::other(format!("{path}: {len} bytes")));
        }
        // SAFETY: mapping a file we hold open; checked below.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Map {
            ptr: p as *mut u8,
            len,
        })
    }
    fn word(&self, i: u32) -> &AtomicU32 {
        // SAFETY: i < PAGE / 4 (peers are at most MAX_PEERS); the page is
        // mapped for the Map's life.
        unsafe { &*(self.ptr.add(i as usize * 4) as *const AtomicU32) }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmapping what Map::file mapped.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

fn futex(word: &AtomicU32, op: i32, val: u32, timeout_ms: Option<u32>) {
    let ts = timeout_ms.map(|t| libc::timespec {
        tv_sec: (t / 1000) as _,
        tv_nsec: ((t % 1000) * 1_000_000) as _,
    });
    let tp = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: word is a u32 in a shared mapping; tp is null or valid.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, val, tp, 0, 0) };
}

/// One peer's view of an emulated region.
pub struct HostPort {
    shm: Map,
    irq: Map,
    peer: u32,
    peers: u32,
}

// SAFETY: shared memory and futexes, usable from any thread.
unsafe impl Send for HostPort {}
unsafe impl Sync for HostPort {}

impl HostPort {
    /// Maps region `prefix` (`PREFIX.shm`, `PREFIX.irq`) as peer `peer`.
    pub fn open(prefix: &str, peer: u32) -> io::Result<HostPort> {
        let shm = Map::file(&format!("{prefix}.shm"), 0, false)?;
        let irq = Map::file(&format!("{prefix}.irq"), 0, false)?;
        // The header page is the hypervisor's: read-only here as in a VM,
        // so a peer that writes it faults as it would there.
        // SAFETY: the first page of our own mapping.
        if unsafe { libc::mprotect(shm.ptr as *mut libc::c_void, PAGE, libc::PROT_READ) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the header page is mapped.
        let peers = unsafe { crate::shm::read32(shm.ptr, 0x0C) };
        Ok(HostPort {
            shm,
            irq,
            peer,
            peers,
        })
    }

    /// Opens the region named `name` from `TESSERA_SHM`
    /// (`name=prefix:peer,...`, set by `tessera-shm-host`).
    pub fn from_env(name: Option<&str>) -> io::Result<HostPort> {
        let spec = std::env::var("TESSERA_SHM")
            .map_err(|_| io::Error::other("TESSERA_SHM is not set (run under tessera-shm-host)"))?;
        for (n, prefix, peer) in parse_spec(&spec)? {
            if name.is_none_or(|want| want == n) {
                return HostPort::open(&prefix, peer);
            }
        }
        Err(io::Error::other(format!(
            "TESSERA_SHM={spec} has no region {}",
            name.unwrap_or("at all")
        )))
    }
}

/// Parses `name=prefix:peer,...`.
pub fn parse_spec(spec: &str) -> io::Result<Vec<(String, String, u32)>> {
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|item| {
            let bad = || io::Error::other(format!("bad region {item:?} (want name=prefix:peer)"));
            let (name, rest) = item.split_once('=').ok_or_else(bad)?;
            let (prefix, peer) = rest.rsplit_once(':').ok_or_else(bad)?;
            let peer = peer.parse().map_err(|_| bad())?;
            Ok((name.to_string(), prefix.to_string(), peer))
        })
        .collect()
}

fn epoch() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    *T.get_or_init(Instant::now)
}

// SAFETY: the data is the mapping after its first page, kept for the
// port's life.
unsafe impl Port for HostPort {
    fn header(&self) -> Result<crate::ShmHeader, crate::XvmError> {
        crate::ShmHeader::parse(
            // SAFETY: offsets inside the mapped header page.
            |off| unsafe { crate::shm::read32(self.shm.ptr, off) },
            self.peer,
            self.data_len(),
        )
    }
    fn data(&self) -> *mut u8 {
        // SAFETY: the emulated regions keep their data at 0x1000, as
        // HostShm writes it.
        unsafe { self.shm.ptr.add(PAGE) }
    }
    fn data_len(&self) -> usize {
        self.shm.len - PAGE
    }
    fn peer_index(&self) -> u32 {
        self.peer
    }
    fn ring(&self) {
        for p in (0..self.peers).filter(|p| *p != self.peer) {
            let w = self.irq.word(p);
            w.fetch_add(1, Ordering::SeqCst);
            futex(w, libc::FUTEX_WAKE, i32::MAX as u32, None);
        }
    }
    fn irq_count(&self) -> u32 {
        self.irq.word(self.peer).load(Ordering::SeqCst)
    }
    fn wait_irq(&self, seen: u32, timeout_ms: u32) {
        futex(
            self.irq.word(self.peer),
            libc::FUTEX_WAIT,
            seen,
            Some(timeout_ms),
        );
    }
    fn now_ms(&self) -> u64 {
        // Offset by one so that 0 never means "now" (liveness uses 0 as
        // "never seen").
        epoch().elapsed().as_millis() as u64 + 1
    }
    fn relax(&self) {
        std::thread::yield_now();
    }
}

/// The hypervisor's part for one emulated region.
pub struct HostShm {
    shm: Map,
    irq: Map,
    peers: u32,
}

impl HostShm {
    /// Creates (or recreates) region `prefix` of `size` bytes for `peers`.
    pub fn create(prefix: &str, size: usize, peers: u32) -> io::Result<HostShm> {
        if !(1..=crate::shm::MAX_PEERS as u32).contains(&peers) || size < 3 * PAGE {
            return Err(io::Error::other("region needs 1-8 peers and 12 KiB"));
        }
        for ext in ["shm", "irq"] {
            let _ = std::fs::remove_file(format!("{prefix}.{ext}"));
        }
        let shm = Map::file(&format!("{prefix}.shm"), size, true)?;
        let irq = Map::file(&format!("{prefix}.irq"), PAGE, true)?;
        // SAFETY: a fresh mapping no peer has opened yet.
        unsafe { crate::shm::write_header(shm.ptr, peers) };
        Ok(HostShm { shm, irq, peers })
    }

    /// Peer `peer` restarted: its boot count and the generation go up, and
    /// every other peer's doorbell rings.
    pub fn restarted(&self, peer: u32) {
        // SAFETY: our header page.
        unsafe { crate::shm::bump_boot(self.shm.ptr, peer) };
        for p in (0..self.peers).filter(|p| *p != peer) {
            let w = self.irq.word(p);
            w.fetch_add(1, Ordering::SeqCst);
            futex(w, libc::FUTEX_WAKE, i32::MAX as u32, None);
        }
    }
}

// SAFETY: as for HostPort.
unsafe impl Send for HostShm {}
unsafe impl Sync for HostShm {}
