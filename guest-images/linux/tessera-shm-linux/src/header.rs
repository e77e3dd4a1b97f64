//! The hypervisor's header page at the start of every shared region
//! (docs/guest-abi.md, "Header page"), and restart detection from it.

/// "TSHM", little-endian.
pub const MAGIC: u32 = 0x4D48_5354;
pub const VERSION: u32 = 1;
/// Bytes of the header page.
pub const SIZE: usize = 0x1000;
const BOOT_COUNTS: usize = 0x20;
/// As many boot counts as the page holds.
pub const MAX_PEERS: usize = (SIZE - BOOT_COUNTS) / 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    /// +1 each time any peer restarts.
    pub generation: u32,
    pub data_offset: u32,
    /// Boot count of each peer, in the region's peer order.
    pub boot_counts: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The magic is not (yet) there: the hypervisor writes it last.
    NoMagic(u32),
    Version(u32),
    Peers(u32),
    DataOffset(u32),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            HeaderError::NoMagic(m) => write!(f, "no TSHM magic (read {m:#010x})"),
            HeaderError::Version(v) => {
                write!(f, "header version {v}, this library knows {VERSION}")
            }
            HeaderError::Peers(n) => write!(f, "{n} peers do not fit the header page"),
            HeaderError::DataOffset(o) => write!(f, "data offset {o:#x} is inside the header page"),
        }
    }
}

impl std::error::Error for HeaderError {}

impl Header {
    /// Parses a header from its 32-bit words, read magic first (`word(0)`
    /// is called before any other, so a caller reading live memory can
    /// order it with an acquire fence).
    pub fn parse(word: impl Fn(usize) -> u32) -> Result<Header, HeaderError> {
        let magic = word(0);
        if magic != MAGIC {
            return Err(HeaderError::NoMagic(magic));
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        let version = word(0x04);
        if version != VERSION {
            return Err(HeaderError::Version(version));
        }
        let peers = word(0x0C);
        if peers as usize > MAX_PEERS {
            return Err(HeaderError::Peers(peers));
        }
        let data_offset = word(0x10);
        if (data_offset as usize) < SIZE {
            return Err(HeaderError::DataOffset(data_offset));
        }
        Ok(Header {
            version,
            generation: word(0x08),
            data_offset,
            boot_counts: (0..peers as usize)
                .map(|i| word(BOOT_COUNTS + 4 * i))
                .collect(),
        })
    }

    /// Parses a copy of the page (or its start).
    pub fn from_bytes(page: &[u8]) -> Result<Header, HeaderError> {
        Header::parse(|off| {
            page.get(off..off + 4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
                .unwrap_or(0)
        })
    }
}

/// What changed since the last look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restart {
    pub generation: u32,
    /// Peers (by peer index, other than ourselves) whose boot count changed.
    pub peers: Vec<usize>,
}

/// Remembers the header as last seen and says when a peer restarted.
#[derive(Clone, Debug)]
pub struct RestartWatch {
    me: usize,
    seen: Header,
}

impl RestartWatch {
    /// `me`: this VM's peer index (`tessera,peer-index`).
    pub fn new(me: usize, now: Header) -> RestartWatch {
        RestartWatch { me, seen: now }
    }

    pub fn generation(&self) -> u32 {
        self.seen.generation
    }

    /// `Some` when the generation moved since the last call (or `new`).
    /// A generation change with no other peer's boot count changed is
    /// still reported (it is our own restart seen by a stale watch).
    pub fn check(&mut self, now: Header) -> Option<Restart> {
        if now.generation == self.seen.generation {
            return None;
        }
        let peers = (0..now.boot_counts.len())
            .filter(|&i| i != self.me && self.seen.boot_counts.get(i) != Some(&now.boot_counts[i]))
            .collect();
        let r = Restart {
            generation: now.generation,
            peers,
        };
        self.seen = now;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(gen: u32, counts: &[u32]) -> Vec<u8> {
        let mut p = vec![0u8; SIZE];
        let mut put = |off: usize, v: u32| p[off..off + 4].copy_from_slice(&v.to_le_bytes());
        put(0, MAGIC);
        put(4, 1);
        put(8, gen);
        put(0xC, counts.len() as u32);
        put(0x10, 0x1000);
        for (i, c) in counts.iter().enumerate() {
            put(0x20 + 4 * i, *c);
        }
        p
    }

    #[test]
    fn parses_the_hypervisors_layout() {
        let h = Header::from_bytes(&page(3, &[1, 0, 7])).unwrap();
        assert_eq!(
            h,
            Header {
                version: 1,
                generation: 3,
                data_offset: 0x1000,
                boot_counts: vec![1, 0, 7]
            }
        );
    }

    #[test]
    fn refuses_what_it_cannot_trust() {
        let mut p = page(0, &[0, 0]);
        p[0] = 0;
        assert!(matches!(
            Header::from_bytes(&p),
            Err(HeaderError::NoMagic(_))
        ));
        let mut p = page(0, &[0, 0]);
        p[4] = 2;
        assert_eq!(Header::from_bytes(&p), Err(HeaderError::Version(2)));
        let mut p = page(0, &[0, 0]);
        p[0xC..0x10].copy_from_slice(&2000u32.to_le_bytes());
        assert_eq!(Header::from_bytes(&p), Err(HeaderError::Peers(2000)));
        let mut p = page(0, &[0, 0]);
        p[0x10..0x14].copy_from_slice(&0x800u32.to_le_bytes());
        assert_eq!(Header::from_bytes(&p), Err(HeaderError::DataOffset(0x800)));
        assert!(Header::from_bytes(&[]).is_err());
    }

    #[test]
    fn sees_which_peer_restarted() {
        let h = |g, c: &[u32]| Header::from_bytes(&page(g, c)).unwrap();
        let mut w = RestartWatch::new(0, h(0, &[0, 0]));
        assert_eq!(w.check(h(0, &[0, 0])), None);
        assert_eq!(
            w.check(h(1, &[0, 1])),
            Some(Restart {
                generation: 1,
                peers: vec![1]
            })
        );
        assert_eq!(w.check(h(1, &[0, 1])), None);
        // Our own restart (slot 0) is not another peer's.
        assert_eq!(
            w.check(h(2, &[1, 1])),
            Some(Restart {
                generation: 2,
                peers: vec![]
            })
        );
        assert_eq!(w.generation(), 2);
    }
}
