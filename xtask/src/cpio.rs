//! A writer for the "newc" cpio format, the one Linux unpacks as an
//! initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
//! Written here so that building an initramfs needs no cpio tool and no
//! root: device nodes and owners are whatever the archive says.

/// One archive member. Owners are root; times are 0, so the archive only
/// changes when its contents do.
pub enum Entry {
    Dir,
    File { data: Vec<u8>, executable: bool },
    Symlink(String),
    CharDev { major: u32, minor: u32 },
}

#[derive(Default)]
pub struct Archive {
    out: Vec<u8>,
    ino: u32,
    /// Directories added, so that [`Archive::parents`] adds each once.
    dirs: std::collections::BTreeSet<String>,
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

impl Archive {
    /// Adds `path` (no leading slash; parents first, as the kernel creates
    /// nothing implicitly).
    pub fn add(&mut self, path: &str, entry: Entry) {
        if matches!(entry, Entry::Dir) && !self.dirs.insert(path.to_string()) {
            return;
        }
        let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match &entry {
            Entry::Dir => (0o040755, &[], (0, 0)),
            Entry::File { data, executable } => {
                (if *executable { 0o100755 } else { 0o100644 }, data, (0, 0))
            }
            Entry::Symlink(target) => (0o120777, target.as_bytes(), (0, 0)),
            Entry::CharDev { major, minor } => (0o020600, &[], (*major, *minor)),
        };
        self.ino += 1;
        self.header(path, mode, data.len() as u32, rdev, self.ino);
        self.out.extend_from_slice(data);
        pad4(&mut self.out);
    }

    /// Adds the directories above `path` that are not in yet.
    pub fn parents(&mut self, path: &str) {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            self.add(&path[..at + i], Entry::Dir);
            at += i + 1;
        }
    }

    fn header(&mut self, name: &str, mode: u32, size: u32, rdev: (u32, u32), ino: u32) {
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            size,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check (only the "070702" format uses it)
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.header("TRAILER!!!", 0, 0, (0, 0), 0);
        // The kernel reads initramfs in 512-byte blocks' worth happily
        // either way; padding keeps `cpio -t` from warning.
        while !self.out.len().is_multiple_of(512) {
            self.out.push(0);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Name, mode, data, device numbers.
    type Member = (String, u32, Vec<u8>, (u32, u32));

    /// Parses a newc archive back (as the kernel's unpacker does).
    fn parse(mut a: &[u8]) -> Vec<Member> {
        let total = a.len();
        let mut out = Vec::new();
        loop {
            assert_eq!(&a[..6], b"070701");
            let field = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&a[6 + 8 * i..14 + 8 * i]).unwrap(), 16)
                    .unwrap()
            };
            let (mode, size, namesize) = (field(1), field(6) as usize, field(11) as usize);
            let rdev = (field(9), field(10));
            let name = std::str::from_utf8(&a[110..110 + namesize - 1])
                .unwrap()
                .to_string();
            assert_eq!(a[110 + namesize - 1], 0);
            let data_at = (110 + namesize).div_ceil(4) * 4;
            assert_eq!((total - a.len() + data_at) % 4, 0);
            let data = a[data_at..data_at + size].to_vec();
            a = &a[(data_at + size).div_ceil(4) * 4..];
            if name == "TRAILER!!!" {
                assert!(a.iter().all(|&b| b == 0));
                return out;
            }
            out.push((name, mode, data, rdev));
        }
    }

    #[test]
    fn round_trip() {
        let mut a = Archive::default();
        a.add("dev", Entry::Dir);
        a.add("dev/console", Entry::CharDev { major: 5, minor: 1 });
        a.add(
            "init",
            Entry::File {
                data: b"#!/bin/sh\n".to_vec(),
                executable: true,
            },
        );
        a.add(
            "odd",
            Entry::File {
                data: vec![7; 5],
                executable: false,
            },
        );
        a.add("bin/sh", Entry::Symlink("busybox".into()));
        // Parents that are in already are not added again.
        a.parents("dev/x/y");
        a.add("dev", Entry::Dir);
        let bytes = a.finish();
        assert_eq!(bytes.len() % 512, 0);
        let e = parse(&bytes);
        assert_eq!(e.len(), 6);
        assert_eq!((e[5].0.as_str(), e[5].1), ("dev/x", 0o040755));
        assert_eq!(e[0].0, "dev");
        assert_eq!(e[0].1, 0o040755);
        assert_eq!((e[1].1, e[1].3), (0o020600, (5, 1)));
        assert_eq!((e[2].1, &e[2].2[..]), (0o100755, &b"#!/bin/sh\n"[..]));
        assert_eq!((e[3].1, &e[3].2[..]), (0o100644, &[7u8; 5][..]));
        assert_eq!((e[4].1, &e[4].2[..]), (0o120777, &b"busybox"[..]));
    }
}
