//! A shared mapping of a sealed memfd that unmaps itself on drop.

use rustix::fs::{
    fcntl_add_seals, fcntl_get_seals, fstat, ftruncate, memfd_create, MemfdFlags, SealFlags,
};
use std::os::fd::{AsRawFd, OwnedFd};

pub struct Mapping {
    ptr: *mut u8,
    len: usize,
    /// Device and inode of the memfd (server side): one region, one session.
    file: (u64, u64),
}

// SAFETY: the mapping is plain shared memory; synchronisation is the
// business of the ring code that uses it.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

/// Seals a region must carry: with them its size is fixed for good, so no
/// access to the mapping can fault (SIGBUS) because the file shrank.
const REQUIRED: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

impl Mapping {
    /// Maps the region at a 2 MiB-aligned address and asks for huge pages
    /// (used where the host allows them for shared memory, i.e.
    /// `/sys/kernel/mm/transparent_hugepage/shmem_enabled` is `advise`,
    /// `within_size` or `always`; elsewhere the advice changes nothing).
    /// The driver reads and writes the heap: on the H200 a 256 KiB
    /// `glReadPixels` per frame into a heap of huge pages ran 6-12% faster.
    /// Both ends map so, since a huge page needs the address and the file
    /// offset to agree modulo 2 MiB in each mapping.
    fn map(fd: &OwnedFd, len: usize) -> std::io::Result<Mapping> {
        let map_at = |at: *mut libc::c_void, flags: i32| {
            // SAFETY: mapping a file we hold open, at a hint or where
            // nothing is mapped (MAP_FIXED_NOREPLACE refuses otherwise);
            // the result is checked.
            unsafe {
                libc::mmap(
                    at,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | flags,
                    fd.as_raw_fd(),
                    0,
                )
            }
        };
        let at = huge_aligned(len);
        let mut p = libc::MAP_FAILED;
        if !at.is_null() {
            p = map_at(at, libc::MAP_FIXED_NOREPLACE);
        }
        if p == libc::MAP_FAILED {
            p = map_at(core::ptr::null_mut(), 0);
        }
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: advice on our own mapping; a refusal changes nothing.
        unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) };
        Ok(Mapping {
            ptr: p as *mut u8,
            len,
            file: (0, 0),
        })
    }

    /// Client side: a memfd of `len` bytes, sealed so that its size can
    /// never change (and the seals themselves neither), mapped.
    pub fn create_sealed(len: usize) -> std::io::Result<(Mapping, OwnedFd)> {
        let fd = memfd_create(
            "tessera-gpu",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        ftruncate(&fd, len as u64)?;
        fcntl_add_seals(&fd, REQUIRED | SealFlags::SEAL)?;
        let m = Self::map(&fd, len)?;
        Ok((m, fd))
    }

    /// Server side: maps a client's region if it is sealed against
    /// shrinking and growing and at most `max` bytes long.
    pub fn open_sealed(fd: OwnedFd, max: usize) -> Result<Mapping, String> {
        let seals = fcntl_get_seals(&fd).map_err(|e| format!("region is not a memfd: {e}"))?;
        if !seals.contains(REQUIRED) {
            return Err("region not sealed against shrinking and growing".into());
        }
        let st = fstat(&fd).map_err(|e| e.to_string())?;
        let len = st.st_size as usize;
        if len == 0 || len > max {
            return Err(format!("region of {len} bytes (limit {max})"));
        }
        let mut m = Self::map(&fd, len).map_err(|e| e.to_string())?;
        m.file = (st.st_dev, st.st_ino);
        Ok(m)
    }

    /// Which file is mapped (device, inode), to refuse one region twice.
    pub fn file(&self) -> (u64, u64) {
        self.file
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

const HUGE: usize = 2 << 20;

/// A free, 2 MiB-aligned address with room for `len` bytes, or NULL: found
/// by reserving `len` + 2 MiB of address space and giving it back.
fn huge_aligned(len: usize) -> *mut libc::c_void {
    // SAFETY: reserves address space only; the result is checked.
    let r = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len + HUGE,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if r == libc::MAP_FAILED {
        return core::ptr::null_mut();
    }
    // SAFETY: unmapping exactly the reservation.
    unsafe { libc::munmap(r, len + HUGE) };
    ((r as usize + HUGE - 1) & !(HUGE - 1)) as *mut libc::c_void
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what map() mapped.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_map_at_huge_page_boundaries() {
        let (m, fd) = Mapping::create_sealed(3 << 20).unwrap();
        assert_eq!(m.ptr() as usize % HUGE, 0);
        let s = Mapping::open_sealed(fd, 4 << 20).unwrap();
        assert_eq!(s.ptr() as usize % HUGE, 0);
        assert_eq!(s.len(), 3 << 20);
        // SAFETY: both map the same 3 MiB file.
        unsafe {
            *m.ptr().add((2 << 20) + 5) = 7;
            assert_eq!(*s.ptr().add((2 << 20) + 5), 7);
        }
    }
}
