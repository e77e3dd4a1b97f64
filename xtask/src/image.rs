//! `cargo xtask image`: the boot medium a user flashes. An MBR disk image
//! with one FAT partition (bootable) holding `tessera.bin` built for the
//! board, every file the board stages for its Linux VMs, and `boot.scr`
//! (with its source, `boot.cmd`), which U-Boot's distro boot finds and runs.

use crate::{build, images_dir, root, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const SECTOR: u64 = 512;
/// The partition starts 1 MiB in, as partitioning tools align it.
const PART_START: u64 = 1 << 20;
/// FAT32 with 4 KiB clusters needs at least about 260 MiB; smaller volumes
/// get FAT16 from `fatfs`, which U-Boot reads as well.
const MIN_PART: u64 = 64 << 20;
/// FAT32 with LBA addressing.
const PART_TYPE_FAT32_LBA: u8 = 0x0c;

/// Where the Linux guest images come from: `TESSERA_LINUX_IMAGES`, else
/// `target/images/linux/` (built by `cargo xtask build`'s Linux step).
pub fn linux_dir() -> PathBuf {
    std::env::var_os("TESSERA_LINUX_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| images_dir().join("linux"))
}

/// The files `board` stages (name, physical address), each once.
fn staged_files(board: &Path) -> Result<Vec<(String, u64)>> {
    let b = tessera_boards::load(board).map_err(|e| e.to_string())?;
    let plan = b.plan();
    let mut files: Vec<(String, u64)> = Vec::new();
    for vm in plan.vms {
        let Some(l) = vm.linux else { continue };
        for f in [Some(l.kernel), l.initrd].into_iter().flatten() {
            if !files.iter().any(|(n, _)| n == f.file) {
                files.push((f.file.to_string(), f.pa));
            }
        }
    }
    Ok(files)
}

fn io<T>(what: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| format!("{}: {e}", what.display()))
}

/// Writes the disk image `out` holding `files` (name on the medium, source).
pub fn write_disk(out: &Path, files: &[(String, PathBuf)]) -> Result<u64> {
    let mut total = 0;
    for (_, src) in files {
        total += io(src, std::fs::metadata(src))?.len();
    }
    // Room for FAT tables, directory and cluster slack, in whole MiB.
    let part_size = (total + total / 8 + (8 << 20))
        .max(MIN_PART)
        .next_multiple_of(1 << 20);
    let part_path = out.with_extension("part");
    {
        let mut part = io(
            &part_path,
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&part_path),
        )?;
        io(&part_path, part.set_len(part_size))?;
        let opts = fatfs::FormatVolumeOptions::new().volume_label(*b"TESSERA    ");
        io(&part_path, fatfs::format_volume(&mut part, opts))?;
        io(&part_path, part.seek(SeekFrom::Start(0)))?;
        let fs = io(
            &part_path,
            fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new()),
        )?;
        for (name, src) in files {
            let data = io(src, std::fs::read(src))?;
            let mut f = io(&part_path, fs.root_dir().create_file(name))?;
            io(&part_path, f.truncate())?;
            io(&part_path, f.write_all(&data))?;
        }
        io(&part_path, fs.unmount())?;
    }
    let disk_size = PART_START + part_size;
    let mut disk = io(
        out,
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(out),
    )?;
    io(out, disk.set_len(disk_size))?;
    // A fixed disk signature keeps the image reproducible.
    let mut mbr = mbrman::MBR::new_from(&mut disk, SECTOR as u32, *b"TSRA")
        .map_err(|e| format!("{}: partition table: {e}", out.display()))?;
    mbr[1] = mbrman::MBRPartitionEntry {
        boot: mbrman::BOOT_ACTIVE,
        first_chs: mbrman::CHS::empty(),
        sys: PART_TYPE_FAT32_LBA,
        last_chs: mbrman::CHS::empty(),
        starting_lba: (PART_START / SECTOR) as u32,
        sectors: (part_size / SECTOR) as u32,
    };
    mbr.write_into(&mut disk)
        .map_err(|e| format!("{}: partition table: {e}", out.display()))?;
    io(out, disk.seek(SeekFrom::Start(PART_START)))?;
    let mut part = io(&part_path, std::fs::File::open(&part_path))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = io(&part_path, part.read(&mut buf))?;
        if n == 0 {
            break;
        }
        io(out, disk.write_all(&buf[..n]))?;
    }
    io(&part_path, std::fs::remove_file(&part_path))?;
    Ok(disk_size)
}

/// Builds the images, then writes `board`'s boot medium; returns its path.
pub fn build(board: &str) -> Result<PathBuf> {
    // The test guest and the Linux guests first: a board's bare-metal VMs
    // embed their images, its Linux VMs stage theirs.
    let dir = build::images()?.dir;
    write_medium(&dir, board)
}

/// Writes `board`'s boot medium into `dir`, the images being built.
pub fn write_medium(dir: &Path, board: &str) -> Result<PathBuf> {
    let board_file = root().join("boards").join(format!("{board}.toml"));
    let stem = build::stem_of(board);
    let bin = if build::BOARDS.iter().any(|(b, _)| *b == board) {
        dir.join(format!("{stem}.bin"))
    } else {
        build::board_image(board, &stem)?
    };
    let staged = staged_files(&board_file)?;
    let linux = linux_dir();
    let mut files = vec![("tessera.bin".to_string(), bin)];
    for (name, _) in &staged {
        let src = linux.join(name);
        if !src.exists() {
            return Err(format!(
                "board {board} stages {name}, which is not in {} (build the Linux images first, or set TESSERA_LINUX_IMAGES)",
                linux.display()
            ));
        }
        files.push((name.clone(), src));
    }
    let list: Vec<(&str, u64)> = staged.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    let script = qemu_virt::uboot::medium_script(&format!("boards/{board}.toml"), &list);
    let cmd = dir.join(format!("{stem}-boot.cmd"));
    let scr = dir.join(format!("{stem}-boot.scr"));
    io(&cmd, std::fs::write(&cmd, &script))?;
    io(
        &scr,
        std::fs::write(
            &scr,
            qemu_virt::uboot::script_image("Tessera boot medium", &script),
        ),
    )?;
    files.push(("boot.cmd".into(), cmd));
    files.push(("boot.scr".into(), scr));
    let out = dir.join(format!("{stem}-disk.img"));
    let size = write_disk(&out, &files)?;
    if board == "test-linux" {
        broken_medium(dir, &stem, &files)?;
    }
    println!(
        "images: {} for board {board} ({} MiB: MBR, FAT partition with {})",
        out.display(),
        size >> 20,
        files
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(out)
}

/// For the `linux` tier: the same medium with the kernel cut to its first
/// 4 MiB and `gpu-initrd.cpio` left out, so U-Boot's real `load` and
/// `filesize` feed Tessera's check (`<stem>-broken-disk.img`).
fn broken_medium(dir: &Path, stem: &str, files: &[(String, PathBuf)]) -> Result {
    let cut = dir.join(format!("{stem}-Image-cut"));
    let kernel = files
        .iter()
        .find(|(n, _)| n == "Image")
        .ok_or("test-linux stages no Image")?;
    let mut data = io(&kernel.1, std::fs::read(&kernel.1))?;
    data.truncate(4 << 20);
    io(&cut, std::fs::write(&cut, &data))?;
    let broken: Vec<(String, PathBuf)> = files
        .iter()
        .filter(|(n, _)| n != "gpu-initrd.cpio")
        .map(|(n, p)| {
            (
                n.clone(),
                if n == "Image" { cut.clone() } else { p.clone() },
            )
        })
        .collect();
    write_disk(&dir.join(format!("{stem}-broken-disk.img")), &broken)?;
    Ok(())
}

pub fn command(args: &[String]) -> Result {
    let board = match args {
        [] => "qemu-virt",
        [b] if !b.starts_with('-') => b.as_str(),
        _ => {
            return Err(
                "usage: cargo xtask image [BOARD] (a name in boards/, default qemu-virt)".into(),
            )
        }
    };
    build(board).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_has_a_bootable_fat_partition_with_the_files() {
        let dir = std::env::temp_dir().join(format!("xtask-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a");
        std::fs::write(&a, vec![0x5a; 300_000]).unwrap();
        let out = dir.join("disk.img");
        let size = write_disk(&out, &[("Image".into(), a.clone())]).unwrap();
        assert_eq!(size, PART_START + MIN_PART);
        let mut disk = std::fs::File::open(&out).unwrap();
        let mbr = mbrman::MBR::read_from(&mut disk, 512).unwrap();
        let p = &mbr[1];
        assert!(p.is_active());
        assert_eq!((p.sys, p.starting_lba), (0x0c, 2048));
        let mut bytes = std::fs::read(&out).unwrap();
        let part = std::io::Cursor::new(bytes.split_off(PART_START as usize));
        let fs = fatfs::FileSystem::new(part, fatfs::FsOptions::new()).unwrap();
        let mut data = Vec::new();
        fs.root_dir()
            .open_file("Image")
            .unwrap()
            .read_to_end(&mut data)
            .unwrap();
        assert_eq!(data, std::fs::read(&a).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
