//! A Linux guest's port: the region through the `tessera_shm` module
//! (`tessera-shm-linux`: data mapped shared and cacheable, rung by its
//! ioctl, doorbells waited for with poll and counted by read).

use crate::{Port, ShmHeader, XvmError};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tessera_shm_linux::header::HeaderError;
use tessera_shm_linux::Region;

pub struct LinuxPort {
    region: Region,
    /// Doorbells received, as the module last counted them.
    seen: AtomicU32,
}

impl LinuxPort {
    /// The region the board file calls `name` (`/dev/tessera/<name>`).
    pub fn open(name: &str) -> io::Result<LinuxPort> {
        Ok(LinuxPort {
            region: Region::open(name)?,
            seen: AtomicU32::new(0),
        })
    }

    /// The names of this VM's regions.
    pub fn names() -> io::Result<std::vec::Vec<std::string::String>> {
        tessera_shm_linux::list()
    }
}

fn epoch() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    *T.get_or_init(Instant::now)
}

// SAFETY: the library maps the data for the Region's life.
unsafe impl Port for LinuxPort {
    fn header(&self) -> Result<ShmHeader, XvmError> {
        let h = self.region.header().map_err(|e| match e {
            HeaderError::NoMagic(m) => XvmError::NoHeader(m),
            HeaderError::Version(v) => XvmError::HeaderVersion(v),
            HeaderError::Peers(n) => XvmError::BadPeers(n),
            HeaderError::DataOffset(o) => XvmError::BadDataOffset(o),
        })?;
        ShmHeader::new(
            h.generation,
            &h.boot_counts,
            h.data_offset,
            self.peer_index(),
            self.data_len(),
        )
    }
    fn data(&self) -> *mut u8 {
        self.region.data()
    }
    fn data_len(&self) -> usize {
        self.region.data_len()
    }
    fn peer_index(&self) -> u32 {
        self.region.peer_index() as u32
    }
    fn ring(&self) {
        // A region without a doorbell: the peer's bounded waits still see
        // the counters move.
        let _ = self.region.ring();
    }
    fn irq_count(&self) -> u32 {
        self.seen.load(Ordering::Acquire)
    }
    fn wait_irq(&self, seen: u32, timeout_ms: u32) {
        if self.seen.load(Ordering::Acquire) != seen {
            return;
        }
        // The module reports a doorbell that came after the last wait
        // returned, so one between irq_count() and here is not lost.
        match self
            .region
            .wait(Some(Duration::from_millis(timeout_ms as u64)))
        {
            Ok(Some(n)) => self.seen.store(n, Ordering::Release),
            Ok(None) => {}
            // No doorbell interrupt: poll gently.
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    fn now_ms(&self) -> u64 {
        epoch().elapsed().as_millis() as u64 + 1
    }
    fn relax(&self) {
        std::thread::yield_now();
    }
}
