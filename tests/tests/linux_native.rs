//! The Linux guest images booted natively on QEMU virt (EL1 entry, no
//! hypervisor): the kernel reaches `/init`, the self-check's checks that
//! need no hypervisor pass, and the `tessera_shm` module binds regions
//! described the way Tessera's guest DTB does. Natively there is no
//! Tessera, so the regions are stand-ins: QEMU's own DTB with two
//! `tessera,shm` nodes over reserved RAM, and header pages put there by
//! `-device loader`.
//!
//! Needs `cargo xtask linux-images` (or `cargo xtask build`) first.

use qemu_virt::{Boot, Run};
use std::path::{Path, PathBuf};
use std::process::Command;
use tessera_tests::{boot_until, expect_all, images};

fn linux() -> PathBuf {
    let dir = images().join("linux");
    assert!(
        dir.join("Image").exists() && dir.join("gpu-initrd.cpio").exists(),
        "no Linux images in {}: run `cargo xtask linux-images`",
        dir.display()
    );
    dir
}

fn run(initrd: &str, smp: u32, test_name: &str) -> Run {
    let dir = linux();
    let mut r = Run::new(
        Boot::Direct,
        &dir.join("Image"),
        &images().join("test-runs").join(test_name),
    );
    r.virtualization = false;
    r.smp = smp;
    r.memory = "512M".into();
    r.nodefaults = true;
    r.extra_args = vec!["-initrd".into(), dir.join(initrd).display().to_string()];
    r
}

/// A stand-in for a region node of Tessera's guest DTB (docs/guest-abi.md).
fn region(at: u32, index: u32, name: &str, writable: bool) -> String {
    format!(
        "\ttessera-shm@{at:x} {{\n\
         \t\tcompatible = \"tessera,shm\", \"generic-uio\";\n\
         \t\treg = <0 {at:#x} 0 0x100000>;\n\
         \t\tinterrupts = <0 {} 1>;\n\
         \t\ttessera,index = <{index}>;\n\
         \t\ttessera,name = \"{name}\";\n\
         \t\ttessera,data-offset = <0x1000>;\n\
         \t\ttessera,peer-index = <{index}>;\n\
         {}\t}};\n",
        40 + index,
        if writable {
            "\t\ttessera,writable;\n"
        } else {
            ""
        }
    )
}

/// The two stand-in regions, 1 MiB each at the top of the 512 MiB of RAM
/// (reserved, so Linux leaves them alone).
fn regions() -> String {
    "\treserved-memory {\n\
     \t\t#address-cells = <2>;\n\
     \t\t#size-cells = <2>;\n\
     \t\tranges;\n\
     \t\ttshm@5fe00000 { reg = <0 0x5fe00000 0 0x200000>; no-map; };\n\
     \t};\n"
        .to_string()
        + &region(0x5fe0_0000, 0, "native-ro", false)
        + &region(0x5ff0_0000, 1, "native-rw", true)
}

fn tool(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("runs (cargo xtask setup installs dtc)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// QEMU's DTB for this machine with the regions added, and a header page.
fn with_regions(r: &mut Run) {
    let work = &r.work_dir;
    std::fs::create_dir_all(work).unwrap();
    let plain = work.join("virt.dtb");
    // dumpdtb: QEMU writes the DTB it would give the kernel, then exits.
    let dump = r.command().unwrap();
    let args: Vec<String> = dump
        .get_args()
        .map(|a| {
            let a = a.to_string_lossy();
            match a.strip_prefix("virt,") {
                Some(rest) => format!("virt,dumpdtb={},{rest}", path(&plain)),
                None => a.into_owned(),
            }
        })
        .collect();
    tool(Command::new("qemu-system-aarch64").args(&args));
    let dts = tool(
        Command::new("dtc")
            .args(["-q", "-I", "dtb", "-O", "dts"])
            .arg(&plain),
    );
    let dts = String::from_utf8(dts).unwrap();
    let end = dts.rfind("};").unwrap();
    let dts = format!("{}{}{}", &dts[..end], regions(), &dts[end..]);
    let src = work.join("regions.dts");
    std::fs::write(&src, dts).unwrap();
    let dtb = work.join("regions.dtb");
    tool(
        Command::new("dtc")
            .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
            .arg(&dtb)
            .arg(&src),
    );
    // The header page as the hypervisor writes it (docs/guest-abi.md):
    // magic, version 1, generation 0, 2 peers, data at 0x1000, boot counts.
    let mut header = Vec::new();
    for w in [0x4D48_5354u32, 1, 0, 2, 0x1000, 0, 0, 0, 3, 5] {
        header.extend_from_slice(&w.to_le_bytes());
    }
    let hdr = work.join("header.bin");
    std::fs::write(&hdr, header).unwrap();
    r.extra_args
        .extend(["-dtb".to_string(), dtb.display().to_string()]);
    for at in ["0x5fe00000", "0x5ff00000"] {
        r.extra_args.extend([
            "-device".to_string(),
            format!("loader,file={},addr={at},force-raw=on", path(&hdr)),
        ]);
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn gpu_vm_self_check_passes_natively() {
    let mut r = run("gpu-initrd.cpio", 2, "linux-native-gpu");
    with_regions(&mut r);
    r.bootargs = "console=ttyAMA0 quiet tessera.after=poweroff \
                  tessera.checks=cpus,hotplug,sleep,fpsimd,devices,rofault \
                  tessera.cpus=2 tessera.shm=native-ro:0x100000:ro,native-rw:0x100000:rw \
                  tessera.rofault=native-ro"
        .into();
    let out = boot_until(&r, "reboot: Power down");
    expect_all(
        &out,
        &[
            "tessera-linux: init at ",
            "role gpu",
            "tessera-linux: PASS cpus 2 online",
            "tessera-linux: PASS hotplug cpu1 off and on again",
            "tessera-linux: PASS sleep ",
            "tessera-linux: PASS fpsimd ",
            r#"tessera-linux: PASS devices regions ["native-ro", "native-rw"]"#,
            "tessera-linux: PASS rofault native-ro: a write faulted (SIGSEGV)",
            "tessera-linux: DONE 6 passed, 0 failed",
        ],
    );
    assert!(!out.output.contains("FAIL"), "{}", out.output);
}

#[test]
fn ivi_vm_defaults_on_one_cpu() {
    let mut r = run("ivi-initrd.cpio", 1, "linux-native-ivi");
    r.bootargs = "console=ttyAMA0 quiet tessera.after=poweroff".into();
    let out = boot_until(&r, "reboot: Power down");
    expect_all(
        &out,
        &[
            "role ivi",
            "tessera-linux: PASS cpus 1 online",
            "tessera-linux: PASS sleep ",
            "tessera-linux: PASS fpsimd ",
            "tessera-linux: PASS devices regions []",
            "tessera-linux: DONE 4 passed, 0 failed",
        ],
    );
    assert!(!out.output.contains("FAIL"), "{}", out.output);
}
