//! Bare-metal guest images: cross-builds the test guest
//! (`guest-images/test-guest`) into `target/images/guests/test-guest.bin`
//! and the cockpit's cluster VM (`guest-images/cluster`) into
//! `target/images/guests/cluster.bin` (the names the board files use), and
//! boots the test guest natively on QEMU virt (no hypervisor) for
//! development.

use crate::{build, images_dir, root, Result};
use std::path::PathBuf;
use std::process::Command;

/// Builds the test guest; returns the path of its flat arm64 Image.
pub fn build_test_guest() -> Result<PathBuf> {
    build_guest("test-guest", "test-guest", "test-guest.bin")
}

/// Builds the cluster VM's image; returns the path of its flat arm64 Image.
pub fn build_cluster_guest() -> Result<PathBuf> {
    build_guest("cluster-guest", "cluster-guest", "cluster.bin")
}

/// Cross-builds `package`'s `bin` and writes it flat as `guests/<file>`.
fn build_guest(package: &str, bin: &str, file: &str) -> Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "build",
            "--package",
            package,
            "--bin",
            bin,
            "--release",
            "--target",
            crate::build::GUEST_TARGET,
        ])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("building the guest {package} failed"));
    }
    let target = images_dir().parent().unwrap().to_path_buf();
    let elf_path = target
        .join(crate::build::GUEST_TARGET)
        .join("release")
        .join(bin);
    let elf = std::fs::read(&elf_path).map_err(|e| format!("{}: {e}", elf_path.display()))?;
    let bin = build::flat_binary(&elf)?;
    let dir = images_dir().join("guests");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(file);
    std::fs::write(&path, &bin).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("guest image: {} ({} bytes)", path.display(), bin.len());
    Ok(path)
}

/// `cargo xtask guest [--run]`.
pub fn command(args: &[String]) -> Result {
    let image = build_test_guest()?;
    if !args.iter().any(|a| a == "--run") {
        return Ok(());
    }
    // Natively: EL1 entry, QEMU's own PSCI over HVC, 2 vCPUs.
    let mut cmd = Command::new("qemu-system-aarch64");
    cmd.args([
        "-M",
        "virt,gic-version=3",
        "-cpu",
        "max",
        "-smp",
        "2",
        "-m",
        "256M",
        "-nographic",
        "-kernel",
    ])
    .arg(&image);
    crate::qemu_interactive(cmd, "   (Ctrl-A X quits)")
}
