//! The IVI VM's GL user space, added to `ivi-initrd.cpio` beside busybox
//! (docs/cockpit.md, "The IVI image"):
//!
//! - gpu-share's C ABI library built for aarch64 Linux (dynamic, unlike the
//!   static initramfs tools) as `libEGL.so.1` and `libGLESv2.so.2`, as the
//!   host's `gpu_build` installs it;
//! - the IVI demo and gpu-share's test programs, cross-compiled with
//!   `aarch64-linux-gnu-gcc` against the Khronos headers and linked
//!   `-lEGL -lGLESv2` (against Debian's arm64 libglvnd, as on the host);
//! - piglit's GLES2 test programs that `gpu-share/ci/piglit-ivi.txt` names,
//!   with their data files, from Debian's arm64 `piglit` package (only
//!   those members: it unpacks to 2 GB, and its dependencies, Python,
//!   Vulkan and OpenCL, are not needed);
//! - the ELF closure of all that from Debian arm64 packages
//!   ([`crate::userland`]): glibc, libstdc++, waffle, glvnd's libGL ...

use crate::cpio::{Archive, Entry};
use crate::linux::{self, io};
use crate::userland::{self, Pkg};
use crate::{root, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What piglit's programs and ours link, with their dependencies (apt).
const PACKAGES: &[&str] = &[
    "libc6",
    "libstdc++6",
    "libwaffle-1-0",
    "libxkbcommon0",
    "libwayland-client0",
    // glvnd's libGL.so.1, which libpiglitutil_gles2 links (as on the host).
    "libgl1",
    // Link time only: programs link against glvnd's libEGL/libGLESv2 as
    // on the host; gpu-share's library takes those names in the image.
    "libegl1",
    "libgles2",
];

const MULTIARCH: &str = "usr/lib/aarch64-linux-gnu";
const PIGLIT: &str = "usr/lib/aarch64-linux-gnu/piglit";
/// Where the test programs go (their names would shadow busybox applets
/// in /usr/bin).
pub const PROGS_DIR: &str = "usr/libexec/gpu-share";
/// gpu-share's test programs, as `gpu-share/ci/common.sh`'s PROGS and
/// the IVI's `ivi-run measure` list them (a test below keeps the three in
/// step); the image also has `swap` and `bench`, and, when present, the
/// IVI load programs of the cluster-first check.
pub const TEST_PROGS: &[&str] = &[
    "triangle",
    "texquad",
    "fbo",
    "readpixels",
    "errors",
    "egl",
    "elements",
    "builtins",
    "indexbuf",
    "queries",
    "vao",
];
const OPTIONAL_PROGS: &[&str] = &["ivi-flood", "ivi-busy"];
pub const SUBSET: &str = "gpu-share/ci/piglit-ivi.txt";

/// One test of the subset: piglit's name and its command line.
#[derive(Debug, PartialEq)]
pub struct PiglitTest {
    pub name: String,
    pub argv: Vec<String>,
}

/// Parses `piglit-ivi.txt`: `name<TAB>command`, `#` comments.
pub fn parse_subset(text: &str) -> Result<Vec<PiglitTest>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, cmd) = line
            .split_once('\t')
            .ok_or_else(|| format!("{SUBSET} line {}: no tab between name and command", i + 1))?;
        let argv: Vec<String> = cmd.split_whitespace().map(String::from).collect();
        if name.trim().is_empty() || argv.is_empty() || !argv[0].ends_with("_gles2") {
            return Err(format!(
                "{SUBSET} line {}: want `name<TAB>program_gles2 args`",
                i + 1
            ));
        }
        out.push(PiglitTest {
            name: name.trim().to_string(),
            argv,
        });
    }
    if out.is_empty() {
        return Err(format!("{SUBSET} names no test"));
    }
    Ok(out)
}

/// piglit's members the subset needs: the programs, their data files
/// (named relative to piglit's directory or its `tests/`), the libraries.
fn piglit_members(subset: &[PiglitTest]) -> Vec<String> {
    let mut members: BTreeSet<String> = BTreeSet::new();
    for t in subset {
        members.insert(format!("{PIGLIT}/bin/{}", t.argv[0]));
        for a in &t.argv[1..] {
            if a.contains('/') {
                let p = if a.starts_with("tests/") || a.starts_with("generated_tests/") {
                    a.clone()
                } else {
                    format!("tests/{a}")
                };
                members.insert(format!("{PIGLIT}/{p}"));
            }
        }
    }
    members.into_iter().collect()
}

/// Downloads Debian's arm64 `piglit` (alone, not its dependencies) and
/// unpacks `members` and its libraries into `root`, the IVI's unpacked
/// tree (again only when they change; a new package set empties `root`).
fn piglit(root_dir: &Path, members: &[String]) -> Result<Pkg> {
    let apt_dir = crate::images_dir().parent().unwrap().join("linux-apt");
    let conf = linux::apt_config(&apt_dir)?;
    let debs = apt_dir.join("userland-debs");
    let p = linux::fetch_lists(&conf, |conf| {
        let p = userland::resolve(conf, &["piglit"])?
            .into_iter()
            .find(|p| p.name == "piglit")
            .ok_or("apt resolved piglit without piglit")?;
        userland::download(conf, &debs, std::slice::from_ref(&p))?;
        Ok(p)
    })?;
    let stamp = root_dir.join(".piglit-members");
    let want = format!("{}\n{}\n", p.deb(), members.join("\n"));
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return Ok(p);
    }
    println!("ivi: unpacking {} members of {}", members.len(), p.deb());
    // tar picks the members out of the stream; a missing one is an error.
    let sh = format!(
        "dpkg-deb --fsys-tarfile \"$0\" | tar -x -C \"$1\" --wildcards './{PIGLIT}/lib/*' {}",
        members
            .iter()
            .map(|m| format!("'./{m}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut c = Command::new("sh");
    c.arg("-c").arg(sh).arg(debs.join(p.deb())).arg(root_dir);
    linux::output(c)?;
    io(&stamp, std::fs::write(&stamp, want))?;
    Ok(p)
}

/// gpu-share's C ABI library for aarch64 Linux, dynamic, built as the
/// service VM's gpu-server is (the same flags, so they share their
/// dependencies' builds), stripped.
fn capi(target: &Path) -> Result<PathBuf> {
    linux::cargo_aarch64(
        &["-p", "gpu-capi"],
        linux::DYNAMIC,
        "gpu-share's C ABI library for aarch64 Linux",
    )?;
    let built = target
        .join(linux::TOOLS_TARGET)
        .join("release/libtessera_gles.so");
    let stripped = target.join("linux-build/libtessera_gles.so");
    let mut c = Command::new("aarch64-linux-gnu-strip");
    c.arg("-o").arg(&stripped).arg(&built);
    linux::output(c)?;
    Ok(stripped)
}

/// Cross-compiles the C programs; `libs` is the unpacked arm64 tree.
fn programs(libs: &Path, out: &Path) -> Result<Vec<(String, PathBuf)>> {
    let progs_src = root().join("gpu-share/tests/progs");
    let mut names: Vec<&str> = TEST_PROGS.to_vec();
    names.extend(["swap", "bench", "ivi"]);
    for p in OPTIONAL_PROGS {
        if progs_src.join(format!("{p}.c")).exists() {
            names.push(p);
        }
    }
    cross_build(&names, libs, out)
}

/// Cross-compiles `gpu-share/tests/progs/NAME.c` for each name into `out`
/// (again only when a source changed), linked `-lEGL -lGLESv2` against
/// glvnd in `libs` (an unpacked arm64 tree's multiarch directory).
pub fn cross_build(names: &[&str], libs: &Path, out: &Path) -> Result<Vec<(String, PathBuf)>> {
    // -lEGL -lGLESv2 find glvnd's libraries by their development names.
    let link = out.join("link");
    io(&link, std::fs::create_dir_all(&link))?;
    for (dev, so) in [
        ("libEGL.so", "libEGL.so.1"),
        ("libGLESv2.so", "libGLESv2.so.2"),
    ] {
        let l = link.join(dev);
        let _ = std::fs::remove_file(&l);
        io(&l, std::os::unix::fs::symlink(libs.join(so), &l))?;
    }
    let progs_src = root().join("gpu-share/tests/progs");
    let mut built = Vec::new();
    for &n in names {
        let src = progs_src.join(format!("{n}.c"));
        let bin = out.join(n);
        // Newer than its source and every header beside it.
        let fresh = |b: &Path| {
            let t = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            let headers = std::fs::read_dir(&progs_src)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "h"));
            let newest_src = headers.chain([src.clone()]).filter_map(|p| t(&p)).max();
            matches!((t(b), newest_src), (Some(b), Some(s)) if b > s)
        };
        if !fresh(&bin) {
            let mut c = Command::new("aarch64-linux-gnu-gcc");
            c.args(["-O2", "-Wall", "-Werror", "-o"])
                .arg(&bin)
                .arg(&src)
                .arg(format!("-I{}", root().join("gpu-share/include").display()))
                .arg(format!("-L{}", link.display()))
                .arg(format!("-Wl,-rpath-link,{}", libs.display()))
                .args(["-lEGL", "-lGLESv2", "-Wl,--no-as-needed", "-lm", "-s"]);
            linux::output(c).map_err(|e| format!("cross-compiling {n}.c: {e}"))?;
        }
        built.push((n.to_string(), bin));
    }
    Ok(built)
}

/// Adds the GL user space to the IVI's initramfs; returns the packages
/// that went in.
pub fn add_to(a: &mut Archive) -> Result<Vec<Pkg>> {
    let started = std::time::Instant::now();
    let target = crate::images_dir().parent().unwrap().to_path_buf();
    let subset_path = root().join(SUBSET);
    let subset = parse_subset(&io(&subset_path, std::fs::read_to_string(&subset_path))?)?;
    let members = piglit_members(&subset);
    let u = userland::unpack("ivi", PACKAGES)?;
    let piglit_pkg = piglit(&u.root, &members)?;
    for m in &members {
        if !u.root.join(m).exists() {
            return Err(format!(
                "{SUBSET} needs /{m}, which Debian's arm64 piglit package does not have"
            ));
        }
    }
    let lib = capi(&target)?;
    let progs = programs(
        &u.root.join(MULTIARCH),
        &target.join("linux-build/ivi-progs"),
    )?;

    // piglit's programs look for their libraries in piglit's own directory
    // first (their RUNPATH).
    let roots: Vec<&str> = members.iter().map(String::as_str).collect();
    let mut outside: Vec<&Path> = vec![&lib];
    outside.extend(progs.iter().map(|(_, p)| p.as_path()));
    let mut c = u.closure_with(&roots, &outside, &[&format!("{PIGLIT}/lib")])?;
    // glvnd's libEGL/libGLESv2 (which the programs were linked against):
    // gpu-share's library takes their names.
    c.items.retain(|path, _| {
        let name = path.rsplit('/').next().unwrap();
        !(name.starts_with("libEGL.so") || name.starts_with("libGLESv2.so"))
    });
    c.add_to(a)?;

    let file = |p: &Path, executable| -> Result<Entry> {
        Ok(Entry::File {
            data: io(p, std::fs::read(p))?,
            executable,
        })
    };
    let mut add = |path: &str, e: Entry| {
        a.parents(path);
        a.add(path, e);
    };
    add(
        &format!("{MULTIARCH}/libtessera_gles.so"),
        file(&lib, false)?,
    );
    for name in ["libEGL.so.1", "libGLESv2.so.2", "libEGL.so", "libGLESv2.so"] {
        add(
            &format!("{MULTIARCH}/{name}"),
            Entry::Symlink("libtessera_gles.so".into()),
        );
    }
    for (n, bin) in &progs {
        let at = if n == "ivi" {
            "usr/bin/ivi".to_string()
        } else {
            format!("{PROGS_DIR}/{n}")
        };
        add(&at, file(bin, true)?);
    }
    add(
        "usr/share/tessera/piglit-ivi.txt",
        file(&subset_path, false)?,
    );
    add(
        "bin/ivi-run",
        file(&root().join("guest-images/linux/ivi-run"), true)?,
    );
    println!(
        "ivi: GL user space: {} files from {} packages, {} programs, {} piglit tests ({:.1} s)",
        c.items.len(),
        u.pkgs.len() + 1,
        progs.len(),
        subset.len(),
        started.elapsed().as_secs_f64()
    );
    let mut pkgs = u.pkgs;
    pkgs.push(piglit_pkg);
    Ok(pkgs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_lines() {
        let t = parse_subset("# c\nspec@a b\tminmax_gles2 -auto -fbo\n\n").unwrap();
        assert_eq!(
            t,
            vec![PiglitTest {
                name: "spec@a b".into(),
                argv: vec!["minmax_gles2".into(), "-auto".into(), "-fbo".into()]
            }]
        );
        assert!(parse_subset("spec@a minmax_gles2\n").is_err());
        assert!(parse_subset("spec@a\tsanity\n").is_err());
        assert!(parse_subset("# only comments\n").is_err());
    }

    #[test]
    fn the_repository_subset_parses() {
        let text = std::fs::read_to_string(root().join(SUBSET)).unwrap();
        assert!(parse_subset(&text).unwrap().len() >= 20);
    }

    #[test]
    fn the_test_program_lists_agree() {
        let words = |line: &str| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let want: Vec<String> = TEST_PROGS.iter().map(|p| p.to_string()).collect();
        let common = std::fs::read_to_string(root().join("gpu-share/ci/common.sh")).unwrap();
        let progs = common
            .lines()
            .find_map(|l| l.strip_prefix("PROGS=\""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("common.sh: PROGS=\"...\"");
        assert_eq!(words(progs), want, "gpu-share/ci/common.sh");
        let run = std::fs::read_to_string(root().join("guest-images/linux/ivi-run")).unwrap();
        let measure = run
            .lines()
            .find_map(|l| l.trim().strip_prefix("for p in "))
            .and_then(|l| l.strip_suffix("; do"))
            .expect("ivi-run: the measure loop");
        assert_eq!(words(measure), want, "guest-images/linux/ivi-run");
    }
}
