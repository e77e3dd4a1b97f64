//! Installs what building and testing need on a fresh Debian bookworm
//! machine: the Rust target, QEMU 10 (bookworm-backports) and U-Boot.

use crate::Result;
use std::process::Command;

fn have(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The log that set-up steps write their chatter to.
fn log_path() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"));
    target.join("setup.log")
}

/// Runs one set-up step quietly: one line says what it does, its output
/// goes to target/setup.log and is shown (the end of it) only on failure.
pub(crate) fn quiet(what: &str, cmd: &str, args: &[&str]) -> Result {
    let mut c = Command::new(cmd);
    c.args(args);
    quiet_cmd(what, c)
}

/// [`quiet`] for a command already set up (environment, directory).
pub(crate) fn quiet_cmd(what: &str, mut c: Command) -> Result {
    use std::io::Write;
    println!("setup: {what}");
    let shown = crate::test::show(&c);
    let path = log_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = writeln!(log, "$ {shown}");
    let start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let s = c
        .stdout(log)
        .stderr(err)
        .status()
        .map_err(|e| format!("{shown}: {e}"))?;
    if s.success() {
        return Ok(());
    }
    let text = std::fs::read(&path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[(start as usize).min(text.len())..]).into_owned();
    let tail: Vec<&str> = text.lines().rev().take(30).collect();
    for l in tail.iter().rev() {
        eprintln!("  | {l}");
    }
    Err(format!(
        "`{shown}` failed ({s}); its output is in {}",
        path.display()
    ))
}

/// The guests' target (hard float) and EL2's (soft float: EL2 code must
/// never touch the guests' FP/SIMD registers).
pub fn rust_target() -> Result {
    let installed = have("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    for target in [
        crate::build::GUEST_TARGET,
        crate::build::EL2_TARGET,
        crate::linux::TOOLS_TARGET,
    ] {
        if !installed.lines().any(|l| l.trim() == target) {
            quiet(
                &format!("adding the Rust target {target}"),
                "rustup",
                &["target", "add", target],
            )?;
        }
    }
    Ok(())
}

fn qemu_major() -> Option<u32> {
    let v = have("qemu-system-aarch64", &["--version"])?;
    let ver = v.split_whitespace().nth(3)?;
    ver.split('.').next()?.parse().ok()
}

fn apt_install(packages: &[&str], backports: bool) -> Result {
    let root = have("id", &["-u"]).is_some_and(|u| u.trim() == "0");
    let prefix: &[&str] = if root { &[] } else { &["sudo", "-n"] };
    let run = |what: &str, args: &[&str]| {
        let mut all: Vec<&str> = prefix.to_vec();
        all.extend_from_slice(args);
        quiet(what, all[0], &all[1..]).map_err(|e| {
            format!(
                "{e}\n  (installing needs root; run as root or: sudo apt-get install {})",
                packages.join(" ")
            )
        })
    };
    if backports {
        let listed = std::fs::read_dir("/etc/apt/sources.list.d")
            .map(|d| {
                d.flatten().any(|f| {
                    std::fs::read_to_string(f.path())
                        .unwrap_or_default()
                        .contains("bookworm-backports")
                })
            })
            .unwrap_or(false)
            || std::fs::read_to_string("/etc/apt/sources.list")
                .unwrap_or_default()
                .contains("bookworm-backports");
        if !listed {
            let line = "deb http://deb.debian.org/debian bookworm-backports main\n";
            if root {
                std::fs::write("/etc/apt/sources.list.d/bookworm-backports.list", line)
                    .map_err(|e| e.to_string())?;
            } else {
                return Err(format!(
                    "add `{}` to /etc/apt/sources.list.d/ first (needs root)",
                    line.trim()
                ));
            }
        }
    }
    run("apt-get update", &["apt-get", "update"])?;
    let mut args = vec![
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "install",
        "-y",
    ];
    if backports {
        args.extend(["-t", "bookworm-backports"]);
    }
    args.extend_from_slice(packages);
    let what = format!(
        "installing {}{}",
        packages.join(" "),
        if backports {
            " (bookworm-backports)"
        } else {
            ""
        }
    );
    run(&what, &args)
}

/// QEMU (10 or newer, for the machine features the tests use), U-Boot, dtc.
pub fn qemu() -> Result {
    if qemu_major().is_none_or(|m| m < 10) {
        apt_install(&["qemu-system-arm"], true)?;
        match qemu_major() {
            Some(m) if m >= 10 => {}
            other => return Err(format!("QEMU 10 or newer is needed, found {other:?}")),
        }
    }
    // U-Boot for the second boot path; dtc for tests that edit a DTB.
    let mut missing = Vec::new();
    if !std::path::Path::new(qemu_virt::UBOOT_BIN).exists() {
        missing.push("u-boot-qemu");
    }
    if have("dtc", &["--version"]).is_none() {
        missing.push("device-tree-compiler");
    }
    if !missing.is_empty() {
        apt_install(&missing, false)?;
    }
    Ok(())
}

/// What building the Linux guest images needs on the host: the arm64 C
/// cross compiler (the kernel module; the linker and static C library of
/// the Rust tools), make (kbuild) and depmod.
pub fn linux() -> Result {
    let mut missing = Vec::new();
    if have("aarch64-linux-gnu-gcc", &["--version"]).is_none() {
        missing.push("gcc-aarch64-linux-gnu");
    }
    if !installed("libc6-dev-arm64-cross", false) {
        missing.push("libc6-dev-arm64-cross");
    }
    if have("make", &["--version"]).is_none() {
        missing.push("make");
    }
    if !["/usr/sbin/depmod", "/sbin/depmod"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
    {
        missing.push("kmod");
    }
    // The GPU service VM's initramfs is zstd-compressed (userland.rs).
    if have("zstd", &["--version"]).is_none() {
        missing.push("zstd");
    }
    if !missing.is_empty() {
        apt_install(&missing, false)?;
    }
    Ok(())
}

pub fn all() -> Result {
    rust_target()?;
    linux()?;
    qemu()
}

/// Whether a Debian package is installed; with `backports`, whether its
/// installed version comes from bookworm-backports.
fn installed(package: &str, backports: bool) -> bool {
    have("dpkg-query", &["-W", "-f=${Status} ${Version}", package]).is_some_and(|v| {
        v.starts_with("install ok installed") && (!backports || v.contains("bpo12"))
    })
}

/// What dEQP-GLES2 (the conformance tier) needs to run, natively and
/// through gpu-share: its own run-time libraries, Mesa from
/// bookworm-backports (the Mesa of the other tiers), python3 for the runner.
pub fn conformance() -> Result {
    let mesa = ["libegl-mesa0", "libgl1-mesa-dri", "libgbm1"];
    if mesa.iter().any(|p| !installed(p, true)) {
        apt_install(&mesa, true)?;
    }
    let runtime = [
        "libegl1",
        "libgles2",
        "libjsoncpp25",
        "libpng16-16",
        "zlib1g",
        "python3",
    ];
    let missing: Vec<&str> = runtime
        .iter()
        .copied()
        .filter(|p| !installed(p, false))
        .collect();
    if !missing.is_empty() {
        apt_install(&missing, false)?;
    }
    Ok(())
}
