//! A shared file mapping (MAP_SHARED) that unmaps itself on drop.

use std::os::fd::AsRawFd;

pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; synchronisation is the
// business of the ring code that uses it.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    fn map(file: &std::fs::File, len: usize) -> std::io::Result<Mapping> {
        // SAFETY: mapping a file we hold open; the result is checked.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: p as *mut u8,
            len,
        })
    }

    /// Creates (exclusively) and maps a file of `len` bytes.
    pub fn create(path: &str, len: usize) -> std::io::Result<Mapping> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.set_len(len as u64)?;
        Self::map(&f, len)
    }

    /// Maps an existing file with its current length.
    pub fn open(path: &str) -> std::io::Result<Mapping> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let len = f.metadata()?.len() as usize;
        if len == 0 || len > 1 << 31 {
            return Err(std::io::Error::other(format!("region of {len} bytes")));
        }
        Self::map(&f, len)
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what map() mapped.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}
