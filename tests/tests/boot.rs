//! The boot tier: Tessera booted on QEMU virt by both paths, and refusing bad
//! starts with a clear message.

use qemu_virt::{layout, Boot};
use std::process::Command;
use tessera_tests::{boot_until, expect_all, fixture, run};

const COMPLETE_4: &str = "tessera: boot complete: 4/4 cores online";

fn boots_fully(boot: Boot, name: &str) -> qemu_virt::Outcome {
    let mut r = run(boot, name);
    r.bootargs = "tessera.exit=poweroff".into();
    let out = boot_until(&r, "\u{0}never");
    expect_all(
        &out,
        &[
            "Tessera 0.1.0",
            "EL2 MMU on",
            "CPUs    4: 0x0 0x1 0x2 0x3",
            "GICv3   GICD 0x8000000, GICR 0x80a0000",
            "PSCI    method smc",
            "SMMUv3  0x9050000",
            "core 0 online: MPIDR 0x0",
            "core 1 online: MPIDR 0x1",
            "core 2 online: MPIDR 0x2",
            "core 3 online: MPIDR 0x3",
            COMPLETE_4,
            "powering off",
        ],
    );
    assert!(
        out.exited_cleanly(),
        "QEMU should exit by itself through SYSTEM_OFF:\n{}",
        out.output
    );
    assert!(!out.output.contains("ERROR"), "{}", out.output);
    out
}

#[test]
fn boots_with_qemu_kernel() {
    boots_fully(Boot::Direct, "direct");
}

#[test]
fn boots_through_uboot() {
    let out = boots_fully(Boot::UBoot, "uboot");
    // U-Boot really ran the script and handed over with booti.
    expect_all(
        &out,
        &[
            "U-Boot 20",
            "## Executing script at 40100000",
            "Starting kernel",
        ],
    );
    let uboot_at = out.output.find("U-Boot 20").unwrap();
    assert!(uboot_at < out.output.find("Tessera 0.1.0").unwrap());
}

#[test]
fn refuses_el1_entry() {
    let mut r = run(Boot::Direct, "el1");
    r.virtualization = false;
    let out = boot_until(&r, "boot stopped");
    expect_all(
        &out,
        &[
            "tessera: FATAL: entered at EL1, but Tessera must start at EL2",
            "virtualization=on",
        ],
    );
    assert!(!out.output.contains("boot complete"));
}

#[test]
fn refuses_missing_dtb() {
    let mut r = run(Boot::NoDtb, "no-dtb");
    r.smp = 1;
    let out = boot_until(&r, "boot stopped");
    expect_all(
        &out,
        &["tessera: FATAL: device tree at 0x0 (from x0): no device tree was passed in x0"],
    );
}

#[test]
fn refuses_truncated_dtb() {
    // As if a loader copied only the first part: the rest of memory is zeroes.
    let mut blob = std::fs::read(fixture("qemu-virt.dtb")).unwrap();
    let off_struct = u32::from_be_bytes(blob[8..12].try_into().unwrap()) as usize;
    blob.truncate(off_struct + 1024);
    let dir = tessera_tests::images().join("test-runs/truncated-dtb");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("truncated.dtb");
    std::fs::write(&path, &blob).unwrap();
    let mut r = run(Boot::BadDtb(path), "truncated-dtb");
    r.smp = 1;
    let out = boot_until(&r, "boot stopped");
    let want = format!(
        "tessera: FATAL: device tree at {:#x} (from x0): structure damaged at offset",
        layout::BAD_DTB
    );
    expect_all(&out, &[&want, "(truncated?)"]);
}

#[test]
fn refuses_garbage_dtb() {
    let dir = tessera_tests::images().join("test-runs/garbage-dtb");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("garbage.dtb");
    std::fs::write(&path, [0x5au8; 64]).unwrap();
    let mut r = run(Boot::BadDtb(path), "garbage-dtb");
    r.smp = 1;
    let out = boot_until(&r, "boot stopped");
    expect_all(
        &out,
        &["bad magic 0x5a5a5a5a (expected 0xd00dfeed): not a device tree"],
    );
}

#[test]
fn decodes_an_el2_crash() {
    let mut r = run(Boot::Direct, "crash");
    r.bootargs = "tessera.test=crash".into();
    let out = boot_until(&r, "halted");
    let _ = boot_until; // the crash report ends with "*** core 0 halted"
    expect_all(
        &out,
        &[
            COMPLETE_4,
            "*** EL2 CRASH on core 0 (MPIDR 0x0): unexpected exception (CurSpxSync)",
            "class: Data Abort taken without a change in Exception level (EC 0x25), translation fault",
            "FAR 0x0000dead00000000",
            "ELR 0x00000000402",
        ],
    );
}

#[test]
fn names_a_core_that_does_not_come_up() {
    // A DTB describing a fifth CPU that this 4-core QEMU does not have.
    let dts = Command::new("dtc")
        .args(["-q", "-I", "dtb", "-O", "dts"])
        .arg(fixture("qemu-virt.dtb"))
        .output();
    let dts = match dts {
        Ok(o) if o.status.success() => String::from_utf8(o.stdout).unwrap(),
        _ => panic!("dtc (device-tree-compiler) is needed: run `cargo xtask setup`"),
    };
    let extra = "\t\tcpu@100 {\n\t\t\treg = <0x100>;\n\t\t\tenable-method = \"psci\";\n\t\t\tcompatible = \"arm,cortex-a57\";\n\t\t\tdevice_type = \"cpu\";\n\t\t};\n\n\t\tcpu@0 {";
    let dts = dts.replacen("\t\tcpu@0 {", extra, 1);
    let dir = tessera_tests::images().join("test-runs/five-cpus");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("five.dts"), dts).unwrap();
    let ok = Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
        .arg(dir.join("five.dtb"))
        .arg(dir.join("five.dts"))
        .status()
        .unwrap();
    assert!(ok.success());
    let mut r = run(Boot::Direct, "five-cpus");
    r.bootargs = "tessera.exit=poweroff".into();
    r.extra_args = vec!["-dtb".into(), dir.join("five.dtb").display().to_string()];
    let out = boot_until(&r, "\u{0}never");
    expect_all(
        &out,
        &[
            "CPUs    5: 0x100 0x0 0x1 0x2 0x3",
            "(MPIDR 0x100) did not come up: CPU_ON returned INVALID_PARAMETERS",
            "tessera: boot complete: 4/5 cores online",
        ],
    );
}
