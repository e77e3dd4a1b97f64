//! The Linux guest images (`cargo xtask linux-images`, also part of `cargo
//! xtask build`), from Debian bookworm's arm64 packages, without running
//! arm64 code on the host:
//!
//! - `target/images/linux/Image`: the kernel (`linux-image-6.1.0-*-arm64`,
//!   the version `linux-image-arm64` names in the lists today);
//! - `ivi-initrd.cpio`, `gpu-initrd.cpio`: uncompressed newc initramfs
//!   archives (busybox-static, `/init`, Tessera's `tessera_shm` module with
//!   `modules.dep`, `tessera-selfcheck` and `tshm`);
//! - `manifest.txt`: `package=version` of every package that went in.
//!
//! Packages come through an apt configuration of our own (arm64 lists,
//! status and cache under `target/linux-apt/`), so the host's apt is never
//! touched and `dpkg --add-architecture` is not needed.

use crate::{images_dir, root, setup, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the kernel module and the tools go by in the initramfs.
const MODULE: &str = "tessera_shm";
const TOOLS: &[&str] = &["tessera-selfcheck", "tshm"];
pub const TOOLS_TARGET: &str = "aarch64-unknown-linux-gnu";
/// Package lists older than this are fetched again (the archive drops
/// superseded kernels, so old lists name files that are gone).
const LISTS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

pub struct LinuxImages {
    pub dir: PathBuf,
    pub image: PathBuf,
    pub ivi_initrd: PathBuf,
    pub gpu_initrd: PathBuf,
    /// The cockpit's GPU service VM: gpu-server on Mesa (see [`svm_initrd`]).
    pub svm_initrd: PathBuf,
    pub manifest: PathBuf,
}

fn target_dir() -> PathBuf {
    images_dir().parent().unwrap().to_path_buf()
}

pub(crate) fn io<T>(what: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| format!("{}: {e}", what.display()))
}

/// One package as resolved from the lists.
#[derive(Clone, Debug, PartialEq)]
struct Pkg {
    name: String,
    arch: &'static str,
    version: String,
}

impl Pkg {
    /// The file name `apt-get download` gives it.
    fn deb(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }
}

/// The apt configuration: arm64 by default, amd64 too for the kbuild
/// tools (host binaries); the host's keyring checks the archive.
pub(crate) fn apt_config(dir: &Path) -> Result<PathBuf> {
    for d in [
        "lists/partial",
        "cache/archives/partial",
        "debs",
        "etc/parts",
    ] {
        io(&dir.join(d), std::fs::create_dir_all(dir.join(d)))?;
    }
    let status = dir.join("status");
    if !status.exists() {
        io(&status, std::fs::write(&status, ""))?;
    }
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let sources = format!(
        "deb [signed-by={keyring}] http://deb.debian.org/debian bookworm main\n\
         deb [signed-by={keyring}] http://deb.debian.org/debian bookworm-updates main\n\
         deb [signed-by={keyring}] http://deb.debian.org/debian-security bookworm-security main\n"
    );
    io(
        &dir.join("etc/sources.list"),
        std::fs::write(dir.join("etc/sources.list"), sources),
    )?;
    let d = dir.display();
    let conf = format!(
        "APT::Architecture \"arm64\";\n\
         APT::Architectures {{ \"arm64\"; \"amd64\"; }};\n\
         Dir::State \"{d}\";\n\
         Dir::State::lists \"{d}/lists\";\n\
         Dir::State::status \"{d}/status\";\n\
         Dir::Cache \"{d}/cache\";\n\
         Dir::Etc::SourceList \"{d}/etc/sources.list\";\n\
         Dir::Etc::SourceParts \"{d}/etc/parts\";\n\
         Dir::Etc::Preferences \"{d}/etc/preferences\";\n\
         Dir::Etc::PreferencesParts \"{d}/etc/parts\";\n\
         Acquire::Languages \"none\";\n\
         APT::Sandbox::User \"root\";\n"
    );
    let path = dir.join("apt.conf");
    io(&path, std::fs::write(&path, conf))?;
    Ok(path)
}

pub(crate) fn apt(conf: &Path, cmd: &str) -> Command {
    let mut c = Command::new(cmd);
    c.env("APT_CONFIG", conf);
    // Keep the binary package cache (hosts' apt.conf.d, e.g. Docker's,
    // may turn it off): without it every query parses all lists (~4 s).
    c.args([
        "-o",
        "Dir::Cache::pkgcache=pkgcache.bin",
        "-o",
        "Dir::Cache::srcpkgcache=srcpkgcache.bin",
    ]);
    c
}

pub(crate) fn output(mut c: Command) -> Result<String> {
    let out = c
        .output()
        .map_err(|e| format!("{}: {e}", crate::test::show(&c)))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}",
            crate::test::show(&c),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `Version` and `Depends` of the candidate version, from `apt-cache show
/// --no-all-versions`.
fn field<'a>(show: &'a str, name: &str) -> Option<&'a str> {
    show.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .map(str::trim)
}

/// The kernel package `linux-image-arm64` depends on today: its name
/// (`linux-image-6.1.0-57-arm64`) and version.
fn kernel_of(meta_show: &str) -> Result<(String, String)> {
    let deps = field(meta_show, "Depends").ok_or("linux-image-arm64 has no Depends")?;
    for dep in deps.split(',') {
        let dep = dep.trim();
        let Some((name, rest)) = dep.split_once(' ') else {
            continue;
        };
        if name.starts_with("linux-image-") && name.ends_with("-arm64") {
            let version = rest
                .trim_start_matches("(=")
                .trim_end_matches(')')
                .trim()
                .to_string();
            return Ok((name.to_string(), version));
        }
    }
    Err(format!(
        "no linux-image-*-arm64 in linux-image-arm64's Depends: {deps}"
    ))
}

fn candidate(conf: &Path, pkg: &str) -> Result<String> {
    let mut c = apt(conf, "apt-cache");
    c.args(["show", "--no-all-versions", pkg]);
    let show = output(c)?;
    field(&show, "Version")
        .map(String::from)
        .ok_or_else(|| format!("{pkg}: no version in the lists"))
}

/// Resolves what goes in from the current lists.
fn resolve(conf: &Path) -> Result<Vec<Pkg>> {
    let mut c = apt(conf, "apt-cache");
    c.args(["show", "--no-all-versions", "linux-image-arm64"]);
    let (kernel, version) = kernel_of(&output(c)?)?;
    // linux-image-6.1.0-57-arm64 -> ABI 6.1.0-57, series 6.1
    let abi = kernel
        .strip_prefix("linux-image-")
        .and_then(|k| k.strip_suffix("-arm64"))
        .ok_or_else(|| format!("unexpected kernel package name {kernel}"))?;
    let series: String = abi.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
    let same = |name: String, arch| Pkg {
        name,
        arch,
        version: version.clone(),
    };
    let mut pkgs = vec![
        same(kernel.clone(), "arm64"),
        same(format!("linux-headers-{abi}-arm64"), "arm64"),
        same(format!("linux-headers-{abi}-common"), "all"),
        // Host binaries (fixdep, modpost) for building against the headers.
        same(format!("linux-kbuild-{series}"), "amd64"),
    ];
    pkgs.push(Pkg {
        name: "busybox-static".into(),
        arch: "arm64",
        version: candidate(conf, "busybox-static")?,
    });
    for p in &pkgs[1..4] {
        let spec = if p.arch == "amd64" {
            format!("{}:amd64", p.name)
        } else {
            p.name.clone()
        };
        let v = candidate(conf, &spec)?;
        if v != version {
            return Err(format!(
                "{} is at {v} in the lists, the kernel at {version}: the archive is mid-update, try again later",
                p.name
            ));
        }
    }
    Ok(pkgs)
}

/// Downloads what is not cached yet; drops cached packages no longer used.
fn download(conf: &Path, debs: &Path, pkgs: &[Pkg]) -> Result {
    let missing: Vec<String> = pkgs
        .iter()
        .filter(|p| !debs.join(p.deb()).exists())
        .map(|p| {
            let arch = if p.arch == "amd64" { ":amd64" } else { "" };
            format!("{}{arch}={}", p.name, p.version)
        })
        .collect();
    if !missing.is_empty() {
        let mut args = vec!["download".to_string()];
        args.extend(missing.iter().cloned());
        let mut c = apt(conf, "apt-get");
        c.current_dir(debs).args(&args);
        setup::quiet_cmd(&format!("downloading {}", missing.join(" ")), c)?;
    }
    let wanted: Vec<String> = pkgs.iter().map(Pkg::deb).collect();
    for f in io(debs, std::fs::read_dir(debs))?.flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if !wanted.contains(&name) {
            let _ = std::fs::remove_file(f.path());
        }
    }
    for p in pkgs {
        if !debs.join(p.deb()).exists() {
            return Err(format!("apt-get download did not leave {}", p.deb()));
        }
    }
    Ok(())
}

fn update(conf: &Path) -> Result {
    let mut c = apt(conf, "apt-get");
    c.arg("update");
    setup::quiet_cmd(
        "apt-get update (Debian bookworm arm64 lists, in target/linux-apt)",
        c,
    )?;
    let dir = conf.parent().unwrap();
    io(&stamp(dir), std::fs::write(stamp(dir), ""))
}

/// When the lists were last fetched (apt dates the files themselves by
/// the archive's clock, so they cannot tell).
fn stamp(dir: &Path) -> PathBuf {
    dir.join("lists-updated")
}

fn lists_fresh(dir: &Path) -> bool {
    std::fs::metadata(stamp(dir))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < LISTS_MAX_AGE)
}

/// Runs `f` (resolve and download) on the lists, fetching them first when
/// old, and again once when `f` fails (the archive no longer has what the
/// old lists named).
pub(crate) fn fetch_lists<T>(conf: &Path, f: impl Fn(&Path) -> Result<T>) -> Result<T> {
    let dir = conf.parent().unwrap();
    if !lists_fresh(dir) {
        update(conf)?;
    }
    match f(conf) {
        Ok(p) => Ok(p),
        Err(e) => {
            println!("linux: {e}; fetching the lists again");
            update(conf)?;
            f(conf)
        }
    }
}

fn fetch(dir: &Path) -> Result<Vec<Pkg>> {
    let conf = apt_config(dir)?;
    let debs = dir.join("debs");
    fetch_lists(&conf, |conf| {
        let p = resolve(conf)?;
        download(conf, &debs, &p)?;
        Ok(p)
    })
}

fn manifest(pkgs: &[Pkg]) -> String {
    let mut s =
        String::from("# Debian bookworm packages in target/images/linux (package:arch=version)\n");
    for p in pkgs {
        s.push_str(&format!("{}:{}={}\n", p.name, p.arch, p.version));
    }
    s
}

/// Unpacks every package into `root` (again only when the set changed).
fn extract(debs: &Path, root: &Path, pkgs: &[Pkg]) -> Result {
    let stamp = root.join(".manifest");
    let want = manifest(pkgs);
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    if root.exists() {
        io(root, std::fs::remove_dir_all(root))?;
    }
    io(root, std::fs::create_dir_all(root))?;
    println!("linux: unpacking {} packages", pkgs.len());
    for p in pkgs {
        let mut c = Command::new("dpkg-deb");
        c.arg("-x").arg(debs.join(p.deb())).arg(root);
        output(c)?;
    }
    io(&stamp, std::fs::write(&stamp, want))
}

/// `KERNELRELEASE` (`6.1.0-57-arm64`) from the kernel package's name.
fn release(pkgs: &[Pkg]) -> &str {
    pkgs[0].name.strip_prefix("linux-image-").unwrap()
}

/// Builds `tessera_shm.ko` out of tree against the unpacked headers, in a
/// copy of its sources under target/ (kbuild writes beside them).
fn module(root_dir: &Path, rel: &str, build: &Path) -> Result<PathBuf> {
    let headers = root_dir.join(format!("usr/src/linux-headers-{rel}"));
    // Its Makefile includes the common headers by absolute path.
    let makefile = headers.join("Makefile");
    let text = io(&makefile, std::fs::read_to_string(&makefile))?;
    let fixed = text.replace(
        "include /usr/src/",
        &format!("include {}/usr/src/", root_dir.display()),
    );
    if fixed != text {
        io(&makefile, std::fs::write(&makefile, fixed))?;
    }
    let src = root().join("guest-images/linux/tessera-shm");
    io(build, std::fs::create_dir_all(build))?;
    // Copied only when changed, so that make sees nothing new otherwise.
    for f in ["Kbuild", "tessera_shm.c"] {
        write_if_changed(
            &build.join(f),
            &io(&src.join(f), std::fs::read(src.join(f)))?,
        )?;
    }
    let m = format!("M={}", build.display());
    let h = headers.display().to_string();
    setup::quiet(
        &format!("building {MODULE}.ko for {rel}"),
        "make",
        &[
            "-C",
            &h,
            &m,
            "ARCH=arm64",
            "CROSS_COMPILE=aarch64-linux-gnu-",
            "modules",
        ],
    )?;
    Ok(build.join(format!("{MODULE}.ko")))
}

/// `cargo build --release --target aarch64-unknown-linux-gnu ARGS` with
/// `env`; `what` names it in the error.
pub(crate) fn cargo_aarch64(args: &[&str], env: &[(&str, &str)], what: &str) -> Result {
    let status = Command::new(env!("CARGO"))
        .current_dir(root())
        .envs(env.iter().copied())
        .args(["build", "--release", "--target", TOOLS_TARGET])
        .args(args)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("building {what} failed"));
    }
    Ok(())
}

/// Cross-builds the static user-space tools.
fn tools() -> Result<PathBuf> {
    cargo_aarch64(
        &["--package", "tessera-shm-linux", "--bins"],
        &[],
        "the Linux tools (tessera-shm-linux)",
    )?;
    // The IVI's hostile client (static, like the tools).
    cargo_aarch64(
        &[
            "-p",
            "cockpit-cluster",
            "--bin",
            "cluster-host",
            "--features",
            "host,linux",
        ],
        &[],
        "cluster-host for the IVI",
    )?;
    Ok(target_dir().join(TOOLS_TARGET).join("release"))
}

/// The kernel as an uncompressed arm64 Image: the signed package's
/// `vmlinuz` already is one (with an EFI stub); a gzip one is unpacked.
fn kernel_image(vmlinuz: &Path) -> Result<Vec<u8>> {
    let data = io(vmlinuz, std::fs::read(vmlinuz))?;
    let data = if data.starts_with(&[0x1f, 0x8b]) {
        let mut c = Command::new("gzip");
        c.arg("-dc").arg(vmlinuz);
        let out = c.output().map_err(|e| format!("gzip: {e}"))?;
        if !out.status.success() {
            return Err(format!("gzip -dc {} failed", vmlinuz.display()));
        }
        out.stdout
    } else {
        data
    };
    if data.get(56..60) != Some(b"ARM\x64") {
        return Err(format!("{} is not an arm64 Image", vmlinuz.display()));
    }
    Ok(data)
}

const INIT: &str = include_str!("../../guest-images/linux/init");

/// One VM's initramfs; `role` picks the self-check's defaults.
fn initramfs(
    role: &str,
    busybox: &[u8],
    rel: &str,
    modules_dir: &Path,
    tools: &Path,
) -> Result<Vec<u8>> {
    Ok(base_archive(role, busybox, rel, modules_dir, tools)?.finish())
}

/// The busybox initramfs, to be finished or added to.
fn base_archive(
    role: &str,
    busybox: &[u8],
    rel: &str,
    modules_dir: &Path,
    tools: &Path,
) -> Result<crate::cpio::Archive> {
    use crate::cpio::{Archive, Entry};
    let mut a = Archive::default();
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "etc",
        "lib",
        "lib/modules",
    ] {
        a.add(d, Entry::Dir);
    }
    // The kernel opens /dev/console for init before anything mounts devtmpfs.
    a.add("dev/console", Entry::CharDev { major: 5, minor: 1 });
    let file = |data: Vec<u8>, executable| Entry::File { data, executable };
    a.add("bin/busybox", file(busybox.to_vec(), true));
    a.add("bin/sh", Entry::Symlink("busybox".into()));
    a.add("init", file(INIT.as_bytes().to_vec(), true));
    a.add(
        "etc/tessera-role",
        file(format!("{role}\n").into_bytes(), false),
    );
    for t in TOOLS {
        let p = tools.join(t);
        a.add(&format!("bin/{t}"), file(io(&p, std::fs::read(&p))?, true));
    }
    // cluster-host with `--hostile-after`: the cockpit tier's hostile IVI
    // stream on the IVI's region (docs/cockpit.md).
    if role == "ivi" {
        let p = tools.join("cluster-host");
        a.add(
            "usr/bin/cluster-host",
            file(io(&p, std::fs::read(&p))?, true),
        );
    }
    // lib/modules/<rel>/ as depmod left it, files and directories.
    // modules_dir is <stage>/lib/modules/<rel>: names are relative to <stage>.
    let base = modules_dir.ancestors().nth(3).unwrap();
    let mut stack = vec![modules_dir.to_path_buf()];
    a.add(&format!("lib/modules/{rel}"), Entry::Dir);
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = io(&d, std::fs::read_dir(&d))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let name = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                a.add(&name, Entry::Dir);
                stack.push(p);
            } else {
                a.add(&name, file(io(&p, std::fs::read(&p))?, false));
            }
        }
    }
    Ok(a)
}

/// Writes `path` only when its contents change (the Image is 30 MiB).
fn write_if_changed(path: &Path, data: &[u8]) -> Result {
    if std::fs::read(path).ok().as_deref() == Some(data) {
        return Ok(());
    }
    io(path, std::fs::write(path, data))
}

pub fn images() -> Result<LinuxImages> {
    let started = std::time::Instant::now();
    let t = target_dir();
    let apt_dir = t.join("linux-apt");
    let pkgs = fetch(&apt_dir)?;
    let root_dir = t.join("linux-root");
    extract(&apt_dir.join("debs"), &root_dir, &pkgs)?;
    let rel = release(&pkgs).to_string();
    let ko = module(&root_dir, &rel, &t.join("linux-build/tessera-shm"))?;
    let tools = tools()?;

    let depmod_bin = ["/usr/sbin/depmod", "/sbin/depmod"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("depmod not found: install kmod (`cargo xtask setup` does)")?;
    let mods = stage_modules(&t, &root_dir, &rel, &ko, "modules", &[], depmod_bin)?;
    let drm = kernel_modules(&root_dir, &rel, SVM_MODULES, depmod_bin)?;
    let svm_mods = stage_modules(&t, &root_dir, &rel, &ko, "modules-svm", &drm, depmod_bin)?;

    let out = images_dir().join("linux");
    io(&out, std::fs::create_dir_all(&out))?;
    let imgs = LinuxImages {
        image: out.join("Image"),
        ivi_initrd: out.join("ivi-initrd.cpio"),
        gpu_initrd: out.join("gpu-initrd.cpio"),
        svm_initrd: out.join(SVM_INITRD),
        manifest: out.join("manifest.txt"),
        dir: out,
    };
    let image = kernel_image(&root_dir.join(format!("boot/vmlinuz-{rel}")))?;
    write_if_changed(&imgs.image, &image)?;
    let bb = root_dir.join("bin/busybox");
    let busybox = io(&bb, std::fs::read(&bb))?;
    write_if_changed(
        &imgs.gpu_initrd,
        &initramfs("gpu", &busybox, &rel, &mods, &tools)?,
    )?;
    // The IVI's: the GL user space too (docs/cockpit.md, "The IVI image").
    let mut ivi = base_archive("ivi", &busybox, &rel, &mods, &tools)?;
    let ivi_pkgs = crate::ivi::add_to(&mut ivi)?;
    write_if_changed(&imgs.ivi_initrd, &ivi.finish())?;
    let (svm, svm_raw, svm_pkgs) = svm_initrd(&busybox, &rel, &svm_mods, &tools)?;
    write_if_changed(&imgs.svm_initrd, &svm)?;
    let mut m = manifest(&pkgs);
    m.push_str("# ivi-initrd.cpio also has\n");
    m.push_str(&crate::userland::manifest(&ivi_pkgs));
    m.push_str(&format!("# {SVM_INITRD} also has\n"));
    m.push_str(&crate::userland::manifest(&svm_pkgs));
    write_if_changed(&imgs.manifest, m.as_bytes())?;
    println!(
        "images: linux/{SVM_INITRD}: {} KiB ({} KiB uncompressed)",
        svm.len() >> 10,
        svm_raw >> 10
    );
    println!(
        "images: linux/ Image ({} KiB, {rel}), ivi-initrd.cpio ({} KiB), gpu-initrd.cpio, manifest.txt ({:.1} s)",
        image.len() >> 10,
        std::fs::metadata(&imgs.ivi_initrd).map(|m| m.len() >> 10).unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
    Ok(imgs)
}

/// lib/modules/<rel> for one initramfs in `target/linux-build/<name>`: our
/// module, the kernel's `extra` modules (paths as in `modules.dep`), the
/// kernel's lists of built-in modules (so modprobe knows them), then
/// depmod on the host.
fn stage_modules(
    t: &Path,
    root_dir: &Path,
    rel: &str,
    ko: &Path,
    name: &str,
    extra: &[String],
    depmod_bin: &str,
) -> Result<PathBuf> {
    let stage = t.join("linux-build").join(name);
    if stage.exists() {
        io(&stage, std::fs::remove_dir_all(&stage))?;
    }
    let mods = stage.join("lib/modules").join(rel);
    io(&mods, std::fs::create_dir_all(mods.join("extra")))?;
    io(
        ko,
        std::fs::copy(ko, mods.join(format!("extra/{MODULE}.ko"))),
    )?;
    let kernel_mods = root_dir.join("lib/modules").join(rel);
    for f in extra {
        let to = mods.join(f);
        io(&to, std::fs::create_dir_all(to.parent().unwrap()))?;
        io(&to, std::fs::copy(kernel_mods.join(f), &to))?;
    }
    for f in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        let src = kernel_mods.join(f);
        io(&src, std::fs::copy(&src, mods.join(f)))?;
    }
    let sysmap = root_dir.join(format!("boot/System.map-{rel}"));
    let st = stage.display().to_string();
    let mut depmod = vec!["-a", "-b", &st];
    let sm;
    if std::fs::metadata(&sysmap).is_ok_and(|m| m.len() > 1000) {
        sm = sysmap.display().to_string();
        depmod.extend(["-F", &sm]);
    }
    depmod.push(rel);
    setup::quiet(
        &format!("depmod (kmod, on the host) for {name}"),
        depmod_bin,
        &depmod,
    )?;
    Ok(mods)
}

/// The kernel modules the service VM loads for its display: virtio over
/// PCI and the virtio-gpu DRM driver.
const SVM_MODULES: &[&str] = &["virtio_pci", "virtio_gpu"];

/// `names` and the modules they depend on, as paths in the kernel
/// package's `lib/modules/<rel>` (from its `modules.dep`, made by depmod
/// the first time: the package ships none).
fn kernel_modules(
    root_dir: &Path,
    rel: &str,
    names: &[&str],
    depmod_bin: &str,
) -> Result<Vec<String>> {
    let dir = root_dir.join("lib/modules").join(rel);
    let dep = dir.join("modules.dep");
    if !dep.exists() {
        let base = root_dir.display().to_string();
        setup::quiet(
            "depmod (kmod, on the host) for the kernel package's modules",
            depmod_bin,
            &["-a", "-b", &base, rel],
        )?;
    }
    let text = io(&dep, std::fs::read_to_string(&dep))?;
    modules_closure(&text, names)
}

/// A module's name from its path (`kernel/.../virtio-gpu.ko` is
/// `virtio_gpu`).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// The paths of `names` and of every module they need, by `modules.dep`.
fn modules_closure(dep: &str, names: &[&str]) -> Result<Vec<String>> {
    let mut deps = std::collections::HashMap::new();
    for l in dep.lines() {
        if let Some((m, d)) = l.split_once(':') {
            deps.insert(
                module_name(m),
                (
                    m.to_string(),
                    d.split_whitespace().map(String::from).collect::<Vec<_>>(),
                ),
            );
        }
    }
    let mut out = std::collections::BTreeSet::new();
    let mut todo: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    while let Some(n) = todo.pop() {
        let (path, d) = deps
            .get(&n)
            .ok_or_else(|| format!("kernel module {n} is not in modules.dep"))?;
        if out.insert(path.clone()) {
            todo.extend(d.iter().map(|p| module_name(p)));
        }
    }
    Ok(out.into_iter().collect())
}

/// What the service VM's initramfs is called on the medium.
pub const SVM_INITRD: &str = "svm-initrd.cpio.zst";

/// Debian packages of the service VM's user land: Mesa's EGL and GLES
/// through glvnd, with llvmpipe.
const SVM_PACKAGES: &[&str] = &[
    "libc6",
    "libegl1",
    "libgles2",
    "libegl-mesa0",
    "libgl1-mesa-dri",
    "libglapi-mesa",
];

/// What gpu-server loads at run time that no `DT_NEEDED` names: glvnd's
/// front ends, Mesa's vendor file and library, the DRI driver (surfaceless
/// EGL picks `kms_swrast` on a render node, else `swrast`; one file), and
/// libm (loaded global for llvmpipe's JIT).
const SVM_ROOTS: &[&str] = &[
    "usr/lib/aarch64-linux-gnu/libEGL.so.1",
    "usr/lib/aarch64-linux-gnu/libGLESv2.so.2",
    "usr/share/glvnd/egl_vendor.d/50_mesa.json",
    "usr/lib/aarch64-linux-gnu/libEGL_mesa.so.0",
    "usr/lib/aarch64-linux-gnu/dri/swrast_dri.so",
    "usr/lib/aarch64-linux-gnu/dri/kms_swrast_dri.so",
    "lib/aarch64-linux-gnu/libm.so.6",
];

const SVM_SERVICE: &str = include_str!("../../guest-images/linux/svm-service");
const SVM_BENCH: &str = include_str!("../../guest-images/linux/svm-bench");

/// gpu-server for aarch64 Linux, linked against glibc (the GL libraries
/// are shared objects): `RUSTFLAGS` replaces .cargo/config.toml's static
/// linking, as the gpu tier builds it.
/// The environment of an aarch64 Linux build linked against glibc
/// (`.cargo/config.toml` links the tools statically; RUSTFLAGS replaces
/// its flags).
pub(crate) const DYNAMIC: &[(&str, &str)] = &[
    ("RUSTFLAGS", "-C target-feature=-crt-static"),
    (
        "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
        "aarch64-linux-gnu-gcc",
    ),
];

fn gpu_server() -> Result<PathBuf> {
    cargo_aarch64(
        &["-p", "gpu-server", "--bin", "gpu-server"],
        DYNAMIC,
        "gpu-server for aarch64 Linux",
    )?;
    // Without its debug information (10 MB of 13).
    let built = target_dir().join(TOOLS_TARGET).join("release/gpu-server");
    let stripped = target_dir().join("linux-build/gpu-server");
    let mut c = Command::new("aarch64-linux-gnu-strip");
    c.arg("-o").arg(&stripped).arg(&built);
    output(c)?;
    Ok(stripped)
}

/// The cockpit's GPU service VM: the GPU VM's initramfs (self-checks
/// first) plus gpu-server, the board file it composites by, glibc and Mesa
/// (only the files needed: [`crate::userland`]), the virtio-gpu DRM
/// modules and `/etc/tessera/service`, which `/init` starts: it loads them
/// and keeps gpu-server running on the display. zstd-compressed.
/// Returns (compressed, uncompressed size, packages).
fn svm_initrd(
    busybox: &[u8],
    rel: &str,
    modules_dir: &Path,
    tools: &Path,
) -> Result<(Vec<u8>, usize, Vec<crate::userland::Pkg>)> {
    use crate::cpio::Entry;
    let server = gpu_server()?;
    let u = crate::userland::unpack("svm", SVM_PACKAGES)?;
    // The cluster's frame as a GLES2 program, for `bench cockpit`.
    let native = crate::ivi::cross_build(
        &["cluster-native"],
        &u.root.join("usr/lib/aarch64-linux-gnu"),
        &target_dir().join("linux-build/svm-progs"),
    )?;
    let native = &native[0].1;
    let c = u.closure(SVM_ROOTS, &[&server, native])?;
    let mut a = base_archive("gpu", busybox, rel, modules_dir, tools)?;
    c.add_to(&mut a)?;
    let file = |data: Vec<u8>, executable| Entry::File { data, executable };
    a.add(
        "usr/bin/gpu-server",
        file(io(&server, std::fs::read(&server))?, true),
    );
    a.add(
        "usr/bin/cluster-native",
        file(io(native, std::fs::read(native))?, true),
    );
    a.add(
        "usr/bin/svm-bench",
        file(SVM_BENCH.as_bytes().to_vec(), true),
    );
    a.parents("etc/tessera/board.toml");
    let board = root().join("boards/qemu-virt.toml");
    a.add(
        "etc/tessera/board.toml",
        file(io(&board, std::fs::read(&board))?, false),
    );
    a.add(
        "etc/tessera/service",
        file(SVM_SERVICE.as_bytes().to_vec(), true),
    );
    let raw = a.finish();
    Ok((crate::userland::compress(&raw)?, raw.len(), u.pkgs))
}

/// The QEMU run of the GPU VM's initramfs natively (no hypervisor): EL1
/// entry, QEMU's own PSCI, 2 CPUs. The shared regions are absent there.
pub fn native_run(imgs: &LinuxImages, bootargs: &str) -> qemu_virt::Run {
    let mut r = qemu_virt::Run::new(
        qemu_virt::Boot::Direct,
        &imgs.image,
        &imgs.dir.join("native-run"),
    );
    r.virtualization = false;
    r.smp = 2;
    r.memory = "512M".into();
    r.bootargs = format!("console=ttyAMA0 {bootargs}").trim().to_string();
    let initrd = imgs.gpu_initrd.display().to_string();
    // No default devices; the console on this terminal with QEMU's
    // monitor (Ctrl-A C) as usual.
    r.extra_args = ["-nodefaults", "-serial", "mon:stdio", "-initrd", &initrd]
        .map(String::from)
        .to_vec();
    r
}

/// `cargo xtask linux-images [--run [BOOTARGS...]]`.
pub fn command(args: &[String]) -> Result {
    let imgs = images()?;
    if args.first().map(String::as_str) != Some("--run") {
        return Ok(());
    }
    let r = native_run(&imgs, &args[1..].join(" "));
    crate::qemu_interactive(r.command()?, "   (Ctrl-A X quits)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_from_metapackage() {
        let show = "Package: linux-image-arm64\nVersion: 6.1.192-3\n\
                    Depends: linux-image-6.1.0-57-arm64 (= 6.1.192-3)\nDescription: x\n";
        assert_eq!(
            kernel_of(show).unwrap(),
            ("linux-image-6.1.0-57-arm64".into(), "6.1.192-3".into())
        );
        assert!(kernel_of("Package: x\nDepends: foo (>= 1)\n").is_err());
        assert!(kernel_of("Package: x\n").is_err());
    }

    #[test]
    fn module_closure_follows_modules_dep() {
        let dep = "kernel/drivers/gpu/drm/virtio/virtio-gpu.ko: kernel/drivers/gpu/drm/drm_kms_helper.ko kernel/drivers/gpu/drm/drm.ko\n\
                   kernel/drivers/gpu/drm/drm_kms_helper.ko: kernel/drivers/gpu/drm/drm.ko\n\
                   kernel/drivers/gpu/drm/drm.ko:\n\
                   kernel/other.ko:\n";
        assert_eq!(
            modules_closure(dep, &["virtio_gpu"]).unwrap(),
            [
                "kernel/drivers/gpu/drm/drm.ko",
                "kernel/drivers/gpu/drm/drm_kms_helper.ko",
                "kernel/drivers/gpu/drm/virtio/virtio-gpu.ko"
            ]
        );
        let e = modules_closure(dep, &["nope"]).unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn deb_names_escape_epochs() {
        let p = Pkg {
            name: "busybox-static".into(),
            arch: "arm64",
            version: "1:1.35.0-4+deb12u1+b1".into(),
        };
        assert_eq!(p.deb(), "busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb");
    }
}
