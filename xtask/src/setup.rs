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

fn sh(cmd: &str, args: &[&str]) -> Result {
    println!("setup: {cmd} {}", args.join(" "));
    let s = Command::new(cmd)
        .args(args)
        .status()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if s.success() {
        Ok(())
    } else {
        Err(format!("`{cmd} {}` failed ({s})", args.join(" ")))
    }
}

/// The guests' target (hard float) and EL2's (soft float: EL2 code must
/// never touch the guests' FP/SIMD registers).
pub fn rust_target() -> Result {
    let installed = have("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    for target in [crate::build::GUEST_TARGET, crate::build::EL2_TARGET] {
        if !installed.lines().any(|l| l.trim() == target) {
            sh("rustup", &["target", "add", target])?;
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
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = prefix.to_vec();
        all.extend_from_slice(args);
        sh(all[0], &all[1..]).map_err(|e| {
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
    run(&["apt-get", "update", "-qq"])?;
    let mut args = vec![
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "install",
        "-y",
        "-qq",
    ];
    if backports {
        args.extend(["-t", "bookworm-backports"]);
    }
    args.extend_from_slice(packages);
    run(&args)
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

pub fn all() -> Result {
    rust_target()?;
    qemu()
}
