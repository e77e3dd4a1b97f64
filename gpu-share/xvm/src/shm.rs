//! The hypervisor's header page of a shared region (docs/guest-abi.md,
//! "Header page"): read and checked here; [`write_header`] is for the host
//! emulation, which plays the hypervisor.

use crate::link::XvmError;
use crate::Port;

pub const MAGIC: u32 = 0x4D48_5354; // "TSHM"
pub const VERSION: u32 = 1;
pub const PAGE: usize = 0x1000;
/// Most peers whose boot counts fit this crate's snapshot.
pub const MAX_PEERS: usize = 8;

const OFF_MAGIC: usize = 0x00;
const OFF_VERSION: usize = 0x04;
const OFF_GENERATION: usize = 0x08;
const OFF_PEERS: usize = 0x0C;
const OFF_DATA: usize = 0x10;
const OFF_BOOT: usize = 0x20;

/// A word of a header page mapped at `base` (host and bare-metal ports).
///
/// # Safety
/// `base` must point to a mapped page; `off` < 0x1000, 4-aligned.
#[cfg(any(feature = "host", target_os = "none"))]
pub(crate) unsafe fn read32(base: *const u8, off: usize) -> u32 {
    // SAFETY: forwarded from the caller.
    u32::from_le(unsafe { core::ptr::read_volatile(base.add(off) as *const u32) })
}

/// What the header page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShmHeader {
    pub generation: u32,
    pub peers: u32,
    pub data_offset: u32,
    pub boot: [u32; MAX_PEERS],
}

impl ShmHeader {
    /// Reads and checks the header of `port`'s region.
    pub fn read(port: &impl Port) -> Result<ShmHeader, XvmError> {
        port.header()
    }

    /// Parses a header page from its words (`word(off)`, read magic
    /// first) for a peer `peer_index` whose data part is `data_len` bytes.
    pub fn parse(
        word: impl Fn(usize) -> u32,
        peer_index: u32,
        data_len: usize,
    ) -> Result<ShmHeader, XvmError> {
        if word(OFF_MAGIC) != MAGIC {
            return Err(XvmError::NoHeader(word(OFF_MAGIC)));
        }
        // Everything after the magic was written before it.
        core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
        if word(OFF_VERSION) != VERSION {
            return Err(XvmError::HeaderVersion(word(OFF_VERSION)));
        }
        let peers = word(OFF_PEERS);
        if peers as usize > MAX_PEERS {
            return Err(XvmError::BadPeers(peers));
        }
        let mut boot = [0; MAX_PEERS];
        for (i, c) in boot.iter_mut().enumerate().take(peers as usize) {
            *c = word(OFF_BOOT + 4 * i);
        }
        ShmHeader::new(
            word(OFF_GENERATION),
            &boot[..peers as usize],
            word(OFF_DATA),
            peer_index,
            data_len,
        )
    }

    /// Checks what a header page says (however it was read).
    pub fn new(
        generation: u32,
        boot_counts: &[u32],
        data_offset: u32,
        peer_index: u32,
        data_len: usize,
    ) -> Result<ShmHeader, XvmError> {
        let peers = boot_counts.len() as u32;
        if peers as usize > MAX_PEERS || peer_index >= peers {
            return Err(XvmError::BadPeers(peers));
        }
        if !(data_offset as usize).is_multiple_of(PAGE) || data_offset == 0 {
            return Err(XvmError::BadDataOffset(data_offset));
        }
        // The link page and at least a page of gpu-share region.
        if data_len < 2 * PAGE {
            return Err(XvmError::RegionTooSmall);
        }
        let mut boot = [0; MAX_PEERS];
        boot[..boot_counts.len()].copy_from_slice(boot_counts);
        Ok(ShmHeader {
            generation,
            peers,
            data_offset,
            boot,
        })
    }

    /// Whether a peer other than `me` restarted between `self` and `now`.
    pub fn other_restarted(&self, now: &ShmHeader, me: u32) -> bool {
        (0..self.peers as usize).any(|i| i != me as usize && self.boot[i] != now.boot[i])
    }
}

/// Writes a fresh header page as the hypervisor does at boot: every field,
/// then the magic last.
///
/// # Safety
/// `base` must point to a writable page no peer uses yet.
#[cfg(feature = "host")]
pub unsafe fn write_header(base: *mut u8, peers: u32) {
    let w = |off: usize, v: u32| {
        // SAFETY: inside the page the caller gave.
        unsafe { core::ptr::write_volatile(base.add(off) as *mut u32, v.to_le()) }
    };
    // SAFETY: as above.
    unsafe { core::ptr::write_bytes(base, 0, PAGE) };
    w(OFF_VERSION, VERSION);
    w(OFF_GENERATION, 0);
    w(OFF_PEERS, peers);
    w(OFF_DATA, PAGE as u32);
    core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
    w(OFF_MAGIC, MAGIC);
}

/// A peer restarted: its boot count and the generation go up (the caller
/// then rings the other peers), as the hypervisor does before the VM runs
/// again.
///
/// # Safety
/// `base` must point to a header page written by [`write_header`].
#[cfg(feature = "host")]
pub unsafe fn bump_boot(base: *mut u8, peer: u32) {
    let bump = |off: usize| {
        // SAFETY: inside the header page.
        unsafe {
            let p = base.add(off) as *mut u32;
            core::ptr::write_volatile(p, (u32::from_le(*p).wrapping_add(1)).to_le());
        }
    };
    bump(OFF_BOOT + 4 * peer as usize);
    core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
    bump(OFF_GENERATION);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header page as words: magic, version, generation 5, `peers`
    /// peers with boot counts 10, 11, ..., data offset `data`.
    fn page(peers: u32, data: u32) -> impl Fn(usize) -> u32 {
        move |off| match off {
            OFF_MAGIC => MAGIC,
            OFF_VERSION => VERSION,
            OFF_GENERATION => 5,
            OFF_PEERS => peers,
            OFF_DATA => data,
            o if o >= OFF_BOOT => 10 + ((o - OFF_BOOT) / 4) as u32,
            _ => 0,
        }
    }

    #[test]
    fn a_good_header_parses_and_each_bad_field_is_named() {
        let h = ShmHeader::parse(page(2, 0x1000), 1, 2 * PAGE).unwrap();
        assert_eq!(
            (h.generation, h.peers, &h.boot[..3]),
            (5, 2, &[10, 11, 0][..])
        );
        let err = |w: &dyn Fn(usize) -> u32, me, len| ShmHeader::parse(w, me, len).err();
        assert_eq!(err(&|_| 0, 0, 2 * PAGE), Some(XvmError::NoHeader(0)));
        let old = |o| {
            if o == OFF_VERSION {
                2
            } else {
                page(2, 0x1000)(o)
            }
        };
        assert_eq!(err(&old, 0, 2 * PAGE), Some(XvmError::HeaderVersion(2)));
        // (peers, data offset, this peer, data bytes) -> the error.
        let cases = [
            ((9, 0x1000, 0, 2 * PAGE), XvmError::BadPeers(9)),
            ((2, 0x1000, 2, 2 * PAGE), XvmError::BadPeers(2)),
            ((2, 0x800, 0, 2 * PAGE), XvmError::BadDataOffset(0x800)),
            ((2, 0, 0, 2 * PAGE), XvmError::BadDataOffset(0)),
            ((2, 0x1000, 0, PAGE), XvmError::RegionTooSmall),
        ];
        for ((peers, data, me, len), want) in cases {
            assert_eq!(err(&page(peers, data), me, len), Some(want));
        }
    }

    #[test]
    fn only_another_peers_restart_counts() {
        let a = ShmHeader::new(1, &[3, 4], 0x1000, 0, 2 * PAGE).unwrap();
        let mine = ShmHeader::new(2, &[4, 4], 0x1000, 0, 2 * PAGE).unwrap();
        let theirs = ShmHeader::new(2, &[3, 5], 0x1000, 0, 2 * PAGE).unwrap();
        assert!(!a.other_restarted(&mine, 0));
        assert!(a.other_restarted(&theirs, 0));
    }
}
