//! A shared region as Linux user space sees it through the `tessera_shm`
//! module: `/dev/tessera/<name>` and `/sys/class/misc/tshm-<name>/`.

use crate::header::{self, Header, HeaderError};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

/// `_IO(0xE5, 1)`: ring the other peers of the region.
const TSHM_IOC_RING: libc::c_ulong = 0xE501;

fn sysfs(name: &str) -> PathBuf {
    PathBuf::from(format!("/sys/class/misc/tshm-{name}"))
}

fn attr(name: &str, what: &str) -> io::Result<u64> {
    let p = sysfs(name).join(what);
    let s = std::fs::read_to_string(&p)?;
    s.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a number: {s:?}", p.display()),
        )
    })
}

/// The names of the regions this VM has, sorted.
pub fn list() -> io::Result<Vec<String>> {
    let mut v = Vec::new();
    let dir = match std::fs::read_dir("/sys/class/misc") {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(v),
        Err(e) => return Err(e),
    };
    for e in dir.flatten() {
        if let Some(n) = e.file_name().to_string_lossy().strip_prefix("tshm-") {
            v.push(n.to_string());
        }
    }
    v.sort();
    Ok(v)
}

struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Map {
    fn new(file: &File, offset: usize, len: usize, writable: bool) -> io::Result<Map> {
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        // SAFETY: a fresh shared mapping of the device; checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Map {
            ptr: ptr as *mut u8,
            len,
        })
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// One shared region, mapped: the header page read-only, the data with
/// this VM's access.
pub struct Region {
    name: String,
    file: File,
    size: usize,
    writable: bool,
    index: u32,
    peer_index: u32,
    header: Map,
    data: Map,
}

// The mappings stay valid as long as the Region; access is through raw
// pointers whose use the caller coordinates.
unsafe impl Send for Region {}
unsafe impl Sync for Region {}

impl Region {
    /// Opens and maps the region the board file calls `name`.
    pub fn open(name: &str) -> io::Result<Region> {
        let dev = format!("/dev/tessera/{name}");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&dev)
            .map_err(|e| io::Error::new(e.kind(), format!("{dev}: {e}")))?;
        let size = attr(name, "size")? as usize;
        let writable = attr(name, "writable")? != 0;
        let data_offset = attr(name, "data_offset")? as usize;
        if data_offset < header::SIZE || data_offset >= size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name}: data offset {data_offset:#x} in a {size:#x}-byte region"),
            ));
        }
        let header = Map::new(&file, 0, header::SIZE, false)?;
        let data = Map::new(&file, data_offset, size - data_offset, writable)?;
        Ok(Region {
            name: name.to_string(),
            size,
            writable,
            index: attr(name, "index")? as u32,
            peer_index: attr(name, "peer_index")? as u32,
            header,
            data,
            file,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    /// Bytes of the whole region, header page included.
    pub fn size(&self) -> usize {
        self.size
    }
    pub fn writable(&self) -> bool {
        self.writable
    }
    /// The region's index in this VM (what a doorbell names).
    pub fn index(&self) -> u32 {
        self.index
    }
    /// This VM's slot in the header's boot counts.
    pub fn peer_index(&self) -> usize {
        self.peer_index as usize
    }

    /// The data, mapped shared and cacheable; writable only if
    /// [`Region::writable`].
    pub fn data(&self) -> *mut u8 {
        self.data.ptr
    }
    pub fn data_len(&self) -> usize {
        self.data.len
    }

    /// The header page as it is now.
    pub fn header(&self) -> Result<Header, HeaderError> {
        let p = self.header.ptr as *const u32;
        Header::parse(|off| {
            // SAFETY: `off` < header::SIZE (Header::parse reads only the
            // page), 4-aligned; volatile: the hypervisor changes it.
            unsafe { std::ptr::read_volatile(p.add(off / 4)) }
        })
    }

    /// Rings the doorbell of every other peer.
    pub fn ring(&self) -> io::Result<()> {
        // SAFETY: an ioctl without argument on our own descriptor.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), TSHM_IOC_RING) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for a doorbell that arrived since this Region last returned
    /// from `wait` (or was opened). Returns the total count of doorbells
    /// the VM has received, or `None` on timeout. Doorbells coalesce: one
    /// return may stand for several rings, so look at the data after each.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<u32>> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        loop {
            // SAFETY: one pollfd of ours.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Ok(None);
            }
            if pfd.revents & libc::POLLERR != 0 {
                return Err(io::Error::other(format!("{}: no doorbell", self.name)));
            }
            break;
        }
        let mut count = [0u8; 4];
        // SAFETY: reading 4 bytes into our buffer.
        let r = unsafe {
            libc::read(
                self.file.as_raw_fd(),
                count.as_mut_ptr() as *mut libc::c_void,
                4,
            )
        };
        if r != 4 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(u32::from_ne_bytes(count)))
    }

    /// Doorbells received by this VM for the region (sysfs).
    pub fn doorbells(&self) -> io::Result<u32> {
        attr(&self.name, "doorbells").map(|n| n as u32)
    }
}

/// The ping-pong protocol over a region from user space.
impl crate::pingpong::Link for Region {
    type Error = io::Error;
    fn data(&self) -> *mut u8 {
        Region::data(self)
    }
    fn data_len(&self) -> usize {
        Region::data_len(self)
    }
    fn ring(&self) -> io::Result<()> {
        Region::ring(self)
    }
    fn wait(&self, timeout: Duration) -> io::Result<bool> {
        Region::wait(self, Some(timeout)).map(|c| c.is_some())
    }
    fn generation(&self) -> io::Result<u32> {
        self.header()
            .map(|h| h.generation)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
    fn now(&self) -> Duration {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}
