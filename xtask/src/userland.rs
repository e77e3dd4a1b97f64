//! Debian bookworm arm64 user land for the Linux guests' initramfs: a C
//! library, Mesa, anything else from the archive, without running arm64
//! code on the host.
//!
//! Three steps, each cached under `target/`:
//!
//! 1. [`unpack`]`(set, packages)`: apt resolves `packages` and everything
//!    they depend on (no recommends) against an empty status, through the
//!    same own apt configuration as the kernel (`target/linux-apt/`, lists
//!    fetched at most every 12 h); the `.deb`s are downloaded once into
//!    `target/linux-apt/userland-debs/` and unpacked with `dpkg-deb -x`
//!    into `target/userland/<set>/` (again only when the resolved set
//!    changes). Nothing is installed: no maintainer scripts run.
//! 2. [`Userland::closure`]`(roots, outside)`: only the files needed: the
//!    `roots` (paths in the unpacked tree: files, or directories taken
//!    whole) and every shared library they need, by the ELF `DT_NEEDED`
//!    and `PT_INTERP` entries, searched in the Debian multiarch directories
//!    and followed through symbolic links (which go in as links). Anything
//!    loaded by `dlopen` or named in a data file is not seen there: name it
//!    as a root (Mesa: `usr/lib/aarch64-linux-gnu/dri/swrast_dri.so`;
//!    glvnd: `usr/share/glvnd/egl_vendor.d/50_mesa.json` and the
//!    `libEGL_mesa.so.0` it names). `outside` are ELF files of ours (a
//!    dynamically linked aarch64 program): their libraries are added, they
//!    are not. Files that are hard links of one another go in once, the
//!    others as symbolic links to it (Mesa's DRI drivers are one file).
//! 3. [`Closure::add_to`] puts the files in a [`crate::cpio::Archive`];
//!    [`compress`] compresses the finished archive (zstd, which the Debian
//!    kernel unpacks: `CONFIG_RD_ZSTD=y`).
//!
//! Example (the GPU service VM's Mesa, in `linux.rs`):
//!
//! ```ignore
//! let u = userland::unpack("mesa", &["libegl1", "libgles2", "libegl-mesa0", "libgl1-mesa-dri"])?;
//! let c = u.closure(&["usr/lib/aarch64-linux-gnu/dri/swrast_dri.so", ...], &[&gpu_server])?;
//! c.add_to(&mut archive)?;
//! ```

use crate::cpio::{Archive, Entry};
use crate::linux::{apt, apt_config, fetch_lists, io, output};
use crate::{images_dir, setup, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the dynamic loader and Debian's multiarch libraries live; the
/// order the loader searches them in without an `ld.so.cache`.
pub const LIB_DIRS: &[&str] = &[
    "lib/aarch64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "lib",
    "usr/lib",
];

/// One package as apt resolved it.
#[derive(Clone, Debug, PartialEq)]
pub struct Pkg {
    pub name: String,
    pub version: String,
    /// `arm64` or `all`.
    pub arch: String,
}

impl Pkg {
    /// The file name `apt-get download` gives it.
    pub fn deb(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }
}

/// The `Inst` lines of `apt-get -s install` against an empty status:
/// `Inst libc6 (2.36-9+deb12u10 Debian:12.12/stable [arm64])`.
fn parse_simulation(out: &str) -> Result<Vec<Pkg>> {
    let mut pkgs = Vec::new();
    for l in out.lines() {
        let Some(rest) = l.strip_prefix("Inst ") else {
            continue;
        };
        let bad = || format!("unexpected apt-get -s line: {l}");
        let (name, rest) = rest.split_once(" (").ok_or_else(bad)?;
        // Some lines end in " []" after the parenthesis.
        let (rest, _) = rest.split_once(')').ok_or_else(bad)?;
        let version = rest.split_whitespace().next().ok_or_else(bad)?;
        let arch = rest
            .rsplit_once('[')
            .and_then(|(_, a)| a.split_once(']'))
            .map(|(a, _)| a)
            .ok_or_else(bad)?;
        // apt names other-architecture packages name:arch.
        let name = name.split(':').next().unwrap();
        pkgs.push(Pkg {
            name: name.to_string(),
            version: version.to_string(),
            arch: arch.to_string(),
        });
    }
    if pkgs.is_empty() {
        return Err(format!("apt-get -s install resolved nothing:\n{out}"));
    }
    pkgs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(pkgs)
}

/// `packages` and their dependency closure, as the lists say today.
pub(crate) fn resolve(conf: &Path, packages: &[&str]) -> Result<Vec<Pkg>> {
    // The empty status (`target/linux-apt/status`) makes every dependency
    // count as missing, so apt lists the whole closure.
    let mut c = apt(conf, "apt-get");
    c.args(["-s", "-q", "install", "--no-install-recommends"])
        .args(packages);
    parse_simulation(&output(c)?)
}

pub(crate) fn download(conf: &Path, debs: &Path, pkgs: &[Pkg]) -> Result {
    io(debs, std::fs::create_dir_all(debs))?;
    let missing: Vec<String> = pkgs
        .iter()
        .filter(|p| !debs.join(p.deb()).exists())
        .map(|p| format!("{}={}", p.name, p.version))
        .collect();
    if !missing.is_empty() {
        let mut c = apt(conf, "apt-get");
        c.current_dir(debs).arg("download").args(&missing);
        setup::quiet_cmd(
            &format!("downloading {} Debian arm64 packages", missing.len()),
            c,
        )?;
    }
    for p in pkgs {
        if !debs.join(p.deb()).exists() {
            return Err(format!("apt-get download did not leave {}", p.deb()));
        }
    }
    Ok(())
}

/// A package set unpacked.
pub struct Userland {
    /// The unpacked tree (`target/userland/<set>/root`).
    pub root: PathBuf,
    pub pkgs: Vec<Pkg>,
}

/// Resolves, downloads and unpacks `packages` with their dependencies
/// under `target/userland/<set>/` (see the module's doc).
pub fn unpack(set: &str, packages: &[&str]) -> Result<Userland> {
    let target = images_dir().parent().unwrap().to_path_buf();
    let apt_dir = target.join("linux-apt");
    let conf = apt_config(&apt_dir)?;
    let debs = apt_dir.join("userland-debs");
    // Old lists name files the archive dropped: fetch them again once.
    let pkgs = fetch_lists(&conf, |conf| {
        let p = resolve(conf, packages)?;
        download(conf, &debs, &p)?;
        Ok(p)
    })?;
    let dir = target.join("userland").join(set);
    let root = dir.join("root");
    let stamp = dir.join("packages.txt");
    let want = manifest(&pkgs);
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        if root.exists() {
            io(&root, std::fs::remove_dir_all(&root))?;
        }
        io(&root, std::fs::create_dir_all(&root))?;
        println!("userland: unpacking {} packages ({set})", pkgs.len());
        for p in &pkgs {
            let mut c = Command::new("dpkg-deb");
            c.arg("-x").arg(debs.join(p.deb())).arg(&root);
            output(c)?;
        }
        io(&stamp, std::fs::write(&stamp, &want))?;
    }
    Ok(Userland { root, pkgs })
}

/// `package:arch=version`, one a line.
pub fn manifest(pkgs: &[Pkg]) -> String {
    pkgs.iter()
        .map(|p| format!("{}:{}={}\n", p.name, p.arch, p.version))
        .collect()
}

/// What goes in the archive at one path.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A file, read from the host path.
    File {
        from: PathBuf,
        executable: bool,
    },
    Symlink(String),
}

/// The files chosen by [`Userland::closure`], by path in the image (no
/// leading slash).
#[derive(Default, Debug)]
pub struct Closure {
    pub items: BTreeMap<String, Item>,
}

/// `DT_NEEDED` names and the `PT_INTERP` path of an ELF file; `None` for
/// anything that is not ELF (scripts, data).
pub fn elf_needs(data: &[u8]) -> Result<Option<(Vec<String>, Option<String>)>> {
    use object::elf;
    use object::read::elf::{Dyn, FileHeader, ProgramHeader};
    if !data.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let h = elf::FileHeader64::<object::Endianness>::parse(data).map_err(|e| e.to_string())?;
    let endian = h.endian().map_err(|e| e.to_string())?;
    let mut interp = None;
    for ph in h.program_headers(endian, data).map_err(|e| e.to_string())? {
        if ph.p_type(endian) == elf::PT_INTERP {
            let bytes = ph
                .data(endian, data)
                .map_err(|_| "bad PT_INTERP".to_string())?;
            let s = bytes.split(|&b| b == 0).next().unwrap_or_default();
            interp = Some(String::from_utf8_lossy(s).into_owned());
        }
    }
    let sections = h.sections(endian, data).map_err(|e| e.to_string())?;
    let mut needed = Vec::new();
    if let Some((dyns, link)) = sections.dynamic(endian, data).map_err(|e| e.to_string())? {
        let strings = sections
            .strings(endian, data, link)
            .map_err(|e| e.to_string())?;
        for d in dyns {
            if d.tag32(endian) == Some(elf::DT_NEEDED) {
                let s = d.string(endian, strings).map_err(|e| e.to_string())?;
                needed.push(String::from_utf8_lossy(s).into_owned());
            }
        }
    }
    Ok(Some((needed, interp)))
}

impl Userland {
    /// The files for `roots` and the libraries they and `outside` need (see
    /// the module's doc). A library nobody has is an error that names who
    /// needed it.
    pub fn closure(&self, roots: &[&str], outside: &[&Path]) -> Result<Closure> {
        self.closure_with(roots, outside, &[])
    }

    /// [`Self::closure`], with libraries looked for in `lib_dirs` first (a
    /// program's own library directory, its `RUNPATH`: piglit's).
    pub fn closure_with(
        &self,
        roots: &[&str],
        outside: &[&Path],
        lib_dirs: &[&str],
    ) -> Result<Closure> {
        let mut c = Walk {
            root: &self.root,
            lib_dirs: lib_dirs.iter().chain(LIB_DIRS).copied().collect(),
            out: Closure::default(),
            seen_inodes: HashMap::new(),
            done: BTreeSet::new(),
            queue: Vec::new(),
        };
        for r in roots {
            let p = self.root.join(r);
            if p.is_dir() {
                c.dir(r)?;
            } else {
                c.path(r, "a root")?;
            }
        }
        for o in outside {
            let data = io(o, std::fs::read(o))?;
            c.needs(&data, &o.display().to_string())?;
        }
        while let Some((name, who)) = c.queue.pop() {
            c.library(&name, &who)?;
        }
        Ok(c.out)
    }
}

struct Walk<'a> {
    root: &'a Path,
    /// Where libraries are looked for, in order.
    lib_dirs: Vec<&'a str>,
    out: Closure,
    /// (device, inode) of each file put in, by its path in the image.
    seen_inodes: HashMap<(u64, u64), String>,
    /// Library names already looked for.
    done: BTreeSet<String>,
    /// Library names still to find, with who needed them.
    queue: Vec<(String, String)>,
}

impl Walk<'_> {
    /// A directory taken whole.
    fn dir(&mut self, rel: &str) -> Result {
        let p = self.root.join(rel);
        let mut entries: Vec<_> = io(&p, std::fs::read_dir(&p))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = format!("{rel}/{}", e.file_name().to_string_lossy());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                self.dir(&name)?;
            } else {
                self.path(&name, "a root")?;
            }
        }
        Ok(())
    }

    /// One path in the tree: symbolic links followed (each link goes in),
    /// then the file and what it needs.
    fn path(&mut self, rel: &str, who: &str) -> Result {
        let mut rel = rel.trim_start_matches('/').to_string();
        for _ in 0..16 {
            if self.out.items.contains_key(&rel) {
                if let Some(Item::Symlink(t)) = self.out.items.get(&rel) {
                    rel = resolve_link(&rel, t);
                    continue;
                }
                return Ok(());
            }
            let p = self.root.join(&rel);
            let meta = std::fs::symlink_metadata(&p)
                .map_err(|e| format!("{} (needed by {who}): {e}", p.display()))?;
            if meta.file_type().is_symlink() {
                let t = io(&p, std::fs::read_link(&p))?
                    .to_string_lossy()
                    .into_owned();
                self.out.items.insert(rel.clone(), Item::Symlink(t.clone()));
                rel = resolve_link(&rel, &t);
                continue;
            }
            use std::os::unix::fs::MetadataExt;
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.seen_inodes.get(&key) {
                let link = format!("/{first}");
                self.out.items.insert(rel, Item::Symlink(link));
                return Ok(());
            }
            self.seen_inodes.insert(key, rel.clone());
            let data = io(&p, std::fs::read(&p))?;
            self.out.items.insert(
                rel.clone(),
                Item::File {
                    from: p,
                    executable: meta.mode() & 0o111 != 0,
                },
            );
            return self.needs(&data, &rel);
        }
        Err(format!("{rel}: too many levels of symbolic links"))
    }

    /// Queues the libraries an ELF file needs.
    fn needs(&mut self, data: &[u8], who: &str) -> Result {
        let Some((needed, interp)) = elf_needs(data).map_err(|e| format!("{who}: {e}"))? else {
            return Ok(());
        };
        if let Some(i) = interp {
            self.path(&i, who)?;
        }
        for n in needed {
            if self.done.insert(n.clone()) {
                self.queue.push((n, who.to_string()));
            }
        }
        Ok(())
    }

    fn library(&mut self, name: &str, who: &str) -> Result {
        for d in &self.lib_dirs {
            let rel = format!("{d}/{name}");
            if std::fs::symlink_metadata(self.root.join(&rel)).is_ok() {
                return self.path(&rel, who);
            }
        }
        Err(format!(
            "{name} (needed by {who}) is in none of {:?} of {}: add its package",
            self.lib_dirs,
            self.root.display()
        ))
    }
}

/// Where a link at `at` pointing to `target` leads, as a path in the image.
fn resolve_link(at: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut p: Vec<&str> = at.split('/').collect();
        p.pop();
        p
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

impl Closure {
    /// Adds every file, with its parent directories.
    pub fn add_to(&self, a: &mut Archive) -> Result {
        for (path, item) in &self.items {
            a.parents(path);
            let e = match item {
                Item::File { from, executable } => Entry::File {
                    data: io(from, std::fs::read(from))?,
                    executable: *executable,
                },
                Item::Symlink(t) => Entry::Symlink(t.clone()),
            };
            a.add(path, e);
        }
        Ok(())
    }
}

/// A finished initramfs compressed with zstd (multi-threaded; the kernel
/// unpacks it at boot).
pub fn compress(cpio: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut c = Command::new("zstd");
    c.args(["-q", "-c", "-T0", "-9", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c
        .spawn()
        .map_err(|e| format!("zstd: {e} (install it: `cargo xtask setup`)"))?;
    let mut stdin = child.stdin.take().unwrap();
    let data = cpio.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "zstd writer panicked".to_string())?
        .map_err(|e| format!("zstd: {e}"))?;
    if !out.status.success() {
        return Err("zstd failed".into());
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulation_lines() {
        let out = "Reading package lists...\n\
                   Inst libc6 (2.36-9+deb12u10 Debian:12.12/stable [arm64]) []\n\
                   Inst libx11-data (2:1.8.4-2+deb12u2 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [all])\n\
                   Conf libc6 (2.36-9+deb12u10 Debian:12.12/stable [arm64])\n";
        let p = parse_simulation(out).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].name.as_str(),
                p[0].version.as_str(),
                p[0].arch.as_str()
            ),
            ("libc6", "2.36-9+deb12u10", "arm64")
        );
        assert_eq!(p[1].deb(), "libx11-data_2%3a1.8.4-2+deb12u2_all.deb");
        assert!(parse_simulation("Reading package lists...\n").is_err());
        assert!(parse_simulation("Inst broken\n").is_err());
    }

    #[test]
    fn links_resolve_in_the_image() {
        assert_eq!(
            resolve_link("usr/lib/aarch64-linux-gnu/libEGL.so.1", "libEGL.so.1.1.0"),
            "usr/lib/aarch64-linux-gnu/libEGL.so.1.1.0"
        );
        assert_eq!(
            resolve_link(
                "lib/ld-linux-aarch64.so.1",
                "/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"
            ),
            "lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"
        );
        assert_eq!(resolve_link("a/b/c", "../d/./e"), "a/d/e");
    }

    /// A fake tree: a program needing libfoo (a link to the real file),
    /// libfoo needing libbar, a hard link, a missing library.
    #[test]
    fn closure_follows_needed_links_and_hard_links() {
        let dir = std::env::temp_dir().join(format!("userland-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let lib = dir.join("usr/lib/aarch64-linux-gnu");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        // The host's own ELF files stand in: what matters is DT_NEEDED.
        let host = std::env::current_exe().unwrap();
        let data = std::fs::read(&host).unwrap();
        let (needs, interp) = elf_needs(&data).unwrap().expect("the test binary is ELF");
        if let Some(i) = &interp {
            let at = dir.join(i.trim_start_matches('/'));
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::write(at, b"loader").unwrap();
        }
        for n in &needs {
            std::fs::write(lib.join(format!("{n}.real")), b"not elf").unwrap();
            std::os::unix::fs::symlink(format!("{n}.real"), lib.join(n)).unwrap();
        }
        std::fs::write(lib.join("data.json"), b"{}").unwrap();
        std::fs::hard_link(lib.join("data.json"), lib.join("same.json")).unwrap();
        let u = Userland {
            root: dir.clone(),
            pkgs: Vec::new(),
        };
        let c = u
            .closure(
                &[
                    "usr/lib/aarch64-linux-gnu/data.json",
                    "usr/lib/aarch64-linux-gnu/same.json",
                ],
                &[&host],
            )
            .unwrap();
        for n in &needs {
            let at = format!("usr/lib/aarch64-linux-gnu/{n}");
            assert_eq!(c.items[&at], Item::Symlink(format!("{n}.real")));
            assert!(matches!(c.items[&format!("{at}.real")], Item::File { .. }));
        }
        assert_eq!(
            c.items["usr/lib/aarch64-linux-gnu/same.json"],
            Item::Symlink("/usr/lib/aarch64-linux-gnu/data.json".into())
        );
        // Without the libraries the closure names what is missing.
        if let Some(n) = needs.first() {
            std::fs::remove_file(lib.join(n)).unwrap();
            let e = u.closure(&[], &[&host]).unwrap_err();
            assert!(e.contains(n.as_str()) && e.contains("needed by"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn not_elf_needs_nothing() {
        assert_eq!(elf_needs(b"#!/bin/sh\n").unwrap(), None);
        assert!(elf_needs(b"\x7fELF garbage").is_err());
    }
}
