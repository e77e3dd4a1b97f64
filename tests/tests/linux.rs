//! The `linux` tier: Linux VMs beside a bare-metal one
//! (`boards/test-linux.toml`). This part needs no kernel: Tessera's own
//! check of the staged images refuses bad ones with one line naming the VM
//! and the reason, and the other VMs run.

use qemu_virt::{Boot, Outcome};
use tessera_tests::{boot_until, expect_all, run_image};

/// The staging slots of `boards/test-linux.toml`.
const KERNEL_AT: u64 = 0xA000_0000;
const IVI_INITRD_AT: u64 = 0xA400_0000;
const GPU_INITRD_AT: u64 = 0xAC00_0000;

/// An EFI-stub arm64 Image header whose one section claims `claimed` bytes
/// of file, cut to `len` bytes: a truncated copy.
fn truncated_efi_image(claimed: u32, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; claimed as usize];
    b[0..2].copy_from_slice(b"MZ");
    b[16..24].copy_from_slice(&(2u64 << 20).to_le_bytes()); // image_size
    b[24..32].copy_from_slice(&0xau64.to_le_bytes());
    b[56..60].copy_from_slice(b"ARM\x64");
    b[60..64].copy_from_slice(&0x40u32.to_le_bytes());
    b[0x40..0x44].copy_from_slice(b"PE\0\0");
    b[0x46..0x48].copy_from_slice(&1u16.to_le_bytes());
    b[0x54..0x56].copy_from_slice(&0xa0u16.to_le_bytes());
    let s = 0x40 + 24 + 0xa0;
    b[s + 16..s + 20].copy_from_slice(&(claimed - 0x1000).to_le_bytes());
    b[s + 20..s + 24].copy_from_slice(&0x1000u32.to_le_bytes());
    b.truncate(len);
    b
}

/// Boots the test-linux build with `files` placed by `-device loader` at
/// their slots and `loaded` as the sizes the loader reports.
fn staged_run(name: &str, files: &[(&str, u64, Vec<u8>)], loaded: &str) -> Outcome {
    let mut r = run_image("tessera-test-linux.bin", Boot::Direct, name);
    r.nodefaults = true;
    std::fs::create_dir_all(&r.work_dir).unwrap();
    for (file, at, bytes) in files {
        let path = r.work_dir.join(file);
        std::fs::write(&path, bytes).unwrap();
        r.extra_args.extend([
            "-device".into(),
            format!("loader,file={},addr={at:#x},force-raw=on", path.display()),
        ]);
    }
    r.bootargs = loaded.into();
    let out = boot_until(&r, "bm | heartbeat 2");
    // The bare-metal VM ran its checks, all passed, and beats on.
    expect_all(
        &out,
        &["bm | summary: ", " passed, 0 failed", "bm | heartbeat 1"],
    );
    out
}

fn refused(out: &Outcome, vm: &str, why: &str) {
    expect_all(out, &[&format!("VM {vm}: not started: {why}")]);
    let started = format!("VM {vm} (VMID");
    assert!(!out.output.contains(&started), "{}", out.output);
    assert!(!out.output.contains(&format!("{vm} | ")), "{}", out.output);
}

#[test]
fn wrong_magic_and_missing_images_are_refused() {
    let elf = [b"\x7fELF".as_slice(), &[0u8; 4092]].concat();
    let out = staged_run(
        "linux-wrong-magic",
        &[
            ("Image", KERNEL_AT, elf),
            ("ivi-initrd.cpio", IVI_INITRD_AT, vec![0; 4096]),
        ],
        // gpu-initrd.cpio is not reported: as if its `load` failed.
        "tessera.loaded=Image:0x1000 tessera.loaded=ivi-initrd.cpio:4096",
    );
    refused(
        &out,
        "ivi",
        "kernel \"Image\" is not an arm64 Image (magic 00 00 00 00 at 0x38, expected 41 52 4d 64)",
    );
    refused(
        &out,
        "gpu",
        "\"gpu-initrd.cpio\" was not loaded (no tessera.loaded=gpu-initrd.cpio:SIZE from the loader)",
    );
}

#[test]
fn truncated_empty_and_oversized_images_are_refused() {
    let image = truncated_efi_image(0x10_0000, 0x8_0000);
    let out = staged_run(
        "linux-truncated",
        &[
            ("Image", KERNEL_AT, image),
            ("gpu-initrd.cpio", GPU_INITRD_AT, vec![0; 4096]),
        ],
        "tessera.loaded=Image:0x80000 tessera.loaded=ivi-initrd.cpio:0 tessera.loaded=gpu-initrd.cpio:0x1000",
    );
    refused(&out, "ivi", "\"ivi-initrd.cpio\" is empty (0 bytes loaded)");
    refused(
        &out,
        "gpu",
        "kernel \"Image\" is truncated: 0x80000 bytes loaded, its PE/COFF header says 0x100000",
    );
    let out = staged_run(
        "linux-oversized",
        &[],
        "tessera.loaded=Image:0x4000001 tessera.loaded=ivi-initrd.cpio:1 tessera.loaded=gpu-initrd.cpio:1",
    );
    for vm in ["ivi", "gpu"] {
        refused(
            &out,
            vm,
            "\"Image\": 0x4000001 bytes loaded, more than its 0x4000000-byte staging slot",
        );
    }
}

/// Lines of one VM's console, prefix removed.
fn vm_lines<'a>(out: &'a str, vm: &str) -> Vec<&'a str> {
    let tag = format!("{vm} | ");
    out.lines()
        .filter_map(|l| l.trim_start().strip_prefix(tag.as_str()))
        .collect()
}

/// Where `needle` occurs in `out` for the `n`th time (0-based).
fn nth(out: &str, needle: &str, n: usize) -> Option<usize> {
    out.match_indices(needle).nth(n).map(|(i, _)| i)
}

/// The whole story through U-Boot from the boot medium
/// (`tessera-test-linux-disk.img`, made by the tier): both Linux VMs reach
/// user space and pass their self-checks (the SMP one takes cpu1 offline
/// and back); a 700-byte line pasted at once reaches the IVI's shell whole
/// (the vUART's receive FIFO); a crash (`echo c > /proc/sysrq-trigger`) and `reboot -f` bring
/// the IVI back each time; `poweroff -f` stops the GPU VM alone; the
/// bare-metal VM's heartbeat goes on throughout.
#[test]
fn linux_vms_boot_from_the_medium_crash_reboot_and_power_off() {
    const PASTED: usize = 700;
    let dir = tessera_tests::images();
    let disk = dir.join("tessera-test-linux-disk.img");
    assert!(
        disk.exists(),
        "{} is missing: `cargo xtask test linux` writes it",
        disk.display()
    );
    let mut r = run_image("tessera-test-linux.bin", Boot::Disk(disk), "linux-medium");
    r.nodefaults = true;
    const SHELL: &str = "tessera-linux: shell";
    // A pasted line longer than a PL011's FIFO and than any small buffer
    // along the way arrives whole: all of it written to QEMU at once.
    let pasted = "x".repeat(PASTED);
    r.input = vec![
        (
            format!("ivi | {SHELL}"),
            format!("\x141echo pasted$(echo {pasted} | wc -c)\r").into_bytes(),
        ),
        (
            "ivi | pasted".to_string(),
            b"echo c > /proc/sysrq-trigger\r".to_vec(),
        ),
        (format!("ivi | {SHELL}"), b"reboot -f\r".to_vec()),
        (format!("ivi | {SHELL}"), b"\x142poweroff -f\r".to_vec()),
    ];
    let off = "VM gpu: SYSTEM_OFF from vCPU 0: stopped";
    let limit = std::time::Duration::from_secs(420);
    let out = r
        .run(limit, |o| {
            o.find(off)
                .is_some_and(|at| o[at..].matches("bm | heartbeat").count() >= 3)
        })
        .expect("QEMU runs");
    let o = &out.output;
    assert!(!out.timed_out, "timed out after {limit:?}:\n{o}");
    expect_all(
        &out,
        &[
            // U-Boot found the script on the medium and loaded everything.
            "U-Boot 20",
            "Found U-Boot script /boot.scr",
            "tessera.loaded=Image:0x",
            "tessera.loaded=ivi-initrd.cpio:0x",
            "tessera.loaded=gpu-initrd.cpio:0x",
            "VM ivi (VMID 2): 1 vCPU(s)",
            "VM gpu (VMID 3): 2 vCPU(s)",
            "gpu | tessera-linux: PASS cpus 2 online",
            "gpu | tessera-linux: PASS hotplug",
            "ivi | tessera-linux: PASS cpus 1 online",
            "sysrq triggered crash",
            "VM ivi: SYSTEM_RESET from vCPU 0: restarting",
            off,
        ],
    );
    let ivi = vm_lines(o, "ivi");
    let gpu = vm_lines(o, "gpu");
    // `wc -c` counts the pasted bytes and echo's newline.
    let want = format!("pasted{}", PASTED + 1);
    assert!(
        ivi.iter().any(|l| l.trim() == want),
        "the pasted line did not arrive whole (want {want}): {:?}\n{o}",
        ivi.iter().find(|l| l.starts_with("pasted"))
    );
    // The IVI reached user space three times: first boot, after the crash,
    // after the reboot; each self-check passed in full.
    let inits = ivi
        .iter()
        .filter(|l| l.starts_with("tessera-linux: init at"))
        .count();
    assert_eq!(inits, 3, "IVI boots:\n{o}");
    for (vm, lines, runs) in [("ivi", &ivi, 3), ("gpu", &gpu, 1)] {
        let done: Vec<&&str> = lines
            .iter()
            .filter(|l| l.contains("tessera-linux: DONE"))
            .collect();
        assert_eq!(done.len(), runs, "{vm} self-check runs:\n{o}");
        assert!(
            done.iter().all(|l| l.ends_with(" 0 failed")),
            "{vm}: {done:?}\n{o}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("tessera-linux: FAIL")),
            "{vm}:\n{o}"
        );
    }
    // The reboot came back through SYSTEM_RESET too.
    assert!(
        nth(o, "VM ivi: SYSTEM_RESET from vCPU 0", 1).is_some(),
        "{o}"
    );
    // Powered off alone: nothing more from it; the others went on.
    let at = o.find(off).unwrap();
    assert!(
        !o[at..].contains("gpu | "),
        "gpu printed after SYSTEM_OFF:\n{o}"
    );
    assert!(
        !o.contains("VM ivi: SYSTEM_OFF") && !o.contains("VM bm: SYSTEM"),
        "{o}"
    );
    // bm's heartbeat never stalled: consecutive beats, before and after.
    let beats: Vec<u64> = vm_lines(o, "bm")
        .iter()
        .filter_map(|l| l.strip_prefix("heartbeat ")?.parse().ok())
        .collect();
    assert!(
        beats.windows(2).all(|w| w[1] == w[0] + 1),
        "bm beats {beats:?}"
    );
    let first_crash = o.find("sysrq triggered crash").unwrap();
    assert!(o[..first_crash].contains("bm | heartbeat"), "{o}");
    println!(
        "linux-medium: {:.1} s wall, bm beat {} times",
        out.elapsed.as_secs_f64(),
        beats.len()
    );
}

/// The same medium with the kernel cut to 4 MiB and the GPU VM's initramfs
/// missing (`tessera-test-linux-broken-disk.img`): U-Boot's script reports
/// what did load, and Tessera refuses both Linux VMs by name, with U-Boot's
/// own `filesize` as the evidence; the bare-metal VM runs.
#[test]
fn broken_medium_is_refused_through_uboot() {
    let disk = tessera_tests::images().join("tessera-test-linux-broken-disk.img");
    assert!(
        disk.exists(),
        "{} is missing: `cargo xtask test linux` writes it",
        disk.display()
    );
    let mut r = run_image(
        "tessera-test-linux.bin",
        Boot::Disk(disk),
        "linux-broken-medium",
    );
    r.nodefaults = true;
    let out = boot_until(&r, "bm | heartbeat 2");
    expect_all(
        &out,
        &[
            "Tessera: gpu-initrd.cpio did not load; its VM will not start",
            "tessera.loaded=Image:0x400000 ",
            "bm | summary: ",
        ],
    );
    let o = &out.output;
    let kernel = "kernel \"Image\" is truncated: 0x400000 bytes loaded, its PE/COFF header says 0x";
    refused(&out, "ivi", kernel);
    refused(
        &out,
        "gpu",
        "\"gpu-initrd.cpio\" was not loaded (no tessera.loaded=gpu-initrd.cpio:SIZE from the loader)",
    );
    assert!(o.contains(" passed, 0 failed"), "{o}");
}

/// Shared regions between the Linux VMs (`tessera-test-linux-shm-disk.img`,
/// `boards/test-linux-shm.toml`): both find them with the right sizes and
/// access; 10,000 odd-sized messages each way over `ivi-gpu` with doorbells,
/// from user space through the tessera_shm module, and (first) 10,000 each
/// way between the bare-metal VM and the IVI over `bm-ivi`, the same ring
/// protocol (`tessera-shm-proto`) in both; the GPU VM's kernel
/// crashing 3,000 messages into its first exchange (`tessera.crash`): it
/// restarts and both sides start a new exchange and pass; the IVI's write to the
/// read-only `gpu-ro` is refused by Linux, then (written past Linux) faults
/// at stage 2 and stops the IVI alone while the others run on.
#[test]
fn linux_shared_regions_ping_pong_and_read_only_fault() {
    let disk = tessera_tests::images().join("tessera-test-linux-shm-disk.img");
    assert!(
        disk.exists(),
        "{} is missing: `cargo xtask test linux` writes it",
        disk.display()
    );
    let mut r = run_image("tessera-test-linux-shm.bin", Boot::Disk(disk), "linux-shm");
    r.nodefaults = true;
    let stopped = "VM ivi vCPU 0 fault";
    let limit = std::time::Duration::from_secs(420);
    let out = r
        .run(limit, |o| {
            o.find(stopped)
                .is_some_and(|at| o[at..].matches("gpu | tessera-linux: heartbeat").count() >= 3)
        })
        .expect("QEMU runs");
    let o = &out.output;
    assert!(!out.timed_out, "timed out after {limit:?}:\n{o}");
    expect_all(
        &out,
        &[
            "ivi | tessera-linux: PASS devices",
            "gpu | tessera-linux: PASS devices",
            "bm | check linux-pingpong: pass (10000 messages each way",
            "ivi | tessera-linux: PASS pingpong bm-ivi side B: 10000 messages each way",
            "ivi | tessera-linux: PASS pingpong ivi-gpu side A",
            "gpu | tessera-linux: PASS pingpong ivi-gpu side B",
            "ivi | tessera-linux: PASS rofault",
            "ivi | tessera-linux: DONE 4 passed, 0 failed",
            "gpu | tessera-linux: DONE 2 passed, 0 failed",
            "ivi | tessera-linux: rofault-stage2: writing read-only gpu-ro",
            stopped,
        ],
    );
    // The crash, the restart, then both passes, the IVI having seen it.
    let crash = o
        .find("gpu | tessera-linux: crashing the kernel after 3000 messages")
        .unwrap_or_else(|| panic!("no crash:\n{o}"));
    let reset = crash
        + o[crash..]
            .find("VM gpu: SYSTEM_RESET from vCPU")
            .unwrap_or_else(|| panic!("no restart after the crash:\n{o}"));
    for vm in ["ivi", "gpu"] {
        let pass = format!("{vm} | tessera-linux: PASS pingpong ivi-gpu");
        assert!(
            o[reset..].contains(&pass),
            "{vm} passed before the restart:\n{o}"
        );
        assert_eq!(o.matches(&pass).count(), 1, "{o}");
    }
    let ivi_pass = vm_lines(o, "ivi")
        .into_iter()
        .find(|l| l.starts_with("tessera-linux: PASS pingpong ivi-gpu"))
        .unwrap();
    assert!(ivi_pass.ends_with(" 1 restart(s) seen"), "{ivi_pass}\n{o}");
    assert!(!o.contains("FAIL pingpong"), "{o}");
    assert!(!o.contains("bm | check linux-pingpong: FAIL"), "{o}");
    // Nothing from the IVI after its stop but the line it printed just
    // before the write (its console buffer may drain after Tessera's log).
    let at = o.find(stopped).unwrap();
    assert!(
        !o[at..]
            .lines()
            .any(|l| l.contains("ivi | ") && !l.contains("rofault-stage2: writing")),
        "the IVI ran on:\n{o}"
    );
    assert!(!o.contains("FAIL rofault-stage2"), "{o}");
    assert!(o[at..].contains("bm | heartbeat"), "{o}");
    let (bm, ivi, gpu) = (vm_lines(o, "bm"), vm_lines(o, "ivi"), vm_lines(o, "gpu"));
    for l in bm.iter().chain(&ivi).chain(&gpu) {
        if l.starts_with("tessera-linux: PASS") || l.starts_with("check linux-pingpong") {
            println!("linux-shm: {l}");
        }
    }
    println!("linux-shm: {:.1} s wall", out.elapsed.as_secs_f64());
}
