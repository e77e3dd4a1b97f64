//! Builds the EL2 image and what booting it needs, into `target/images/`:
//! `tessera.elf` (symbols, for debugging), `tessera.bin` (flat arm64 Image,
//! for QEMU `-kernel` and U-Boot `booti`), `boot.cmd` and `boot.scr`.

use crate::{images_dir, root, Result};
use object::{Object, ObjectSegment};
use std::path::PathBuf;
use std::process::Command;

pub struct Images {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub boot_scr: PathBuf,
}

impl Images {
    fn at(dir: PathBuf) -> Images {
        Images {
            bin: dir.join("tessera.bin"),
            boot_scr: dir.join("boot.scr"),
            dir,
        }
    }
    pub fn existing() -> Result<Images> {
        let i = Images::at(images_dir());
        if i.bin.exists() && i.boot_scr.exists() {
            Ok(i)
        } else {
            Err(format!(
                "no images in {}: run `cargo xtask build` first",
                i.dir.display()
            ))
        }
    }
}

/// `objcopy -O binary`: the loadable segments laid out by physical address.
pub(crate) fn flat_binary(elf: &[u8]) -> Result<Vec<u8>> {
    let file = object::File::parse(elf).map_err(|e| format!("tessera ELF: {e}"))?;
    let mut segs: Vec<(u64, &[u8])> = Vec::new();
    for seg in file.segments() {
        let data = seg.data().map_err(|e| e.to_string())?;
        if !data.is_empty() {
            segs.push((seg.address(), data));
        }
    }
    segs.sort_by_key(|s| s.0);
    let base = segs.first().ok_or("tessera ELF has no loadable data")?.0;
    let mut out = Vec::new();
    for (addr, data) in segs {
        let off = (addr - base) as usize;
        if off < out.len() {
            return Err(format!("overlapping segments at {addr:#x}"));
        }
        out.resize(off, 0);
        out.extend_from_slice(data);
    }
    if out.get(56..60) != Some(b"ARM\x64") {
        return Err("tessera.bin does not start with an arm64 Image header".into());
    }
    Ok(out)
}

/// The images each board file gets: the default board makes `tessera.*`,
/// others `tessera-<board>.*`.
pub const BOARDS: &[(&str, &str)] = &[
    ("qemu-virt", "tessera"),
    ("test-partition", "tessera-test-partition"),
    ("test-dma", "tessera-test-dma"),
    ("test-dma-contain", "tessera-test-dma-contain"),
    ("test-linux", "tessera-test-linux"),
    ("test-linux-shm", "tessera-test-linux-shm"),
    ("test-cluster-bell", "tessera-test-cluster-bell"),
];

/// The image stem for `board`: as in [`BOARDS`], else `tessera-<board>`.
pub fn stem_of(board: &str) -> String {
    BOARDS
        .iter()
        .find(|(b, _)| *b == board)
        .map_or_else(|| format!("tessera-{board}"), |(_, s)| s.to_string())
}

/// EL2 is built soft-float: the compiler then never uses the FP/SIMD
/// registers, which belong to the guests (a host test checks the image).
pub const EL2_TARGET: &str = "aarch64-unknown-none-softfloat";
/// Bare-metal guests use FP/SIMD like any program.
pub const GUEST_TARGET: &str = "aarch64-unknown-none";

/// Builds the EL2 image for one board file, with the guest images embedded.
fn hypervisor(board: &str, stem: &str, dir: &std::path::Path) -> Result<Vec<u8>> {
    let status = Command::new(env!("CARGO"))
        .current_dir(root())
        .env(
            "TESSERA_BOARD",
            root().join("boards").join(format!("{board}.toml")),
        )
        .env("TESSERA_GUEST_IMAGES", dir.join("guests"))
        .args([
            "build",
            "--package",
            "tessera-hv",
            "--bin",
            "tessera",
            "--release",
            "--target",
            EL2_TARGET,
        ])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("building the hypervisor for board {board} failed"));
    }
    let target = images_dir().parent().unwrap().to_path_buf();
    let elf_path = target.join(EL2_TARGET).join("release/tessera");
    let elf = std::fs::read(&elf_path).map_err(|e| format!("{}: {e}", elf_path.display()))?;
    let bin = flat_binary(&elf)?;
    write(&dir.join(format!("{stem}.elf")), &elf)?;
    write(&dir.join(format!("{stem}.bin")), &bin)?;
    let image_size = u64::from_le_bytes(bin[16..24].try_into().unwrap());
    println!(
        "images: {stem}.bin for board {board} ({} bytes flat; {} KiB in memory with BSS)",
        bin.len(),
        image_size >> 10
    );
    Ok(bin)
}

fn write(p: &std::path::Path, d: &[u8]) -> Result {
    std::fs::write(p, d).map_err(|e| format!("{}: {e}", p.display()))
}

/// The EL2 image for one more board (benchmarks), after [`images`].
pub fn board_image(board: &str, stem: &str) -> Result<PathBuf> {
    let dir = images_dir();
    hypervisor(board, stem, &dir)?;
    Ok(dir.join(format!("{stem}.bin")))
}

pub fn images() -> Result<Images> {
    let images = Images::at(images_dir());
    std::fs::create_dir_all(images.dir.join("guests")).map_err(|e| e.to_string())?;
    crate::guests::build_test_guest()?;
    crate::guests::build_cluster_guest()?;
    for (board, stem) in BOARDS {
        hypervisor(board, stem, &images.dir)?;
    }
    write(
        &images.dir.join("boot.cmd"),
        qemu_virt::BOOT_SCRIPT.as_bytes(),
    )?;
    write(
        &images.boot_scr,
        &qemu_virt::uboot::script_image("Tessera boot script", qemu_virt::BOOT_SCRIPT),
    )?;
    crate::linux::images()?;
    println!(
        "images: in {}: also boot.cmd, boot.scr, guests/, linux/",
        images.dir.display()
    );
    Ok(images)
}
