//! Benchmarks, apart from tests: they print numbers. Under `-icount shift=0`
//! QEMU runs one instruction per virtual nanosecond, so counter ticks convert
//! to instructions exactly and figures do not depend on host load.

use crate::{build, setup, Result};
use qemu_virt::{Boot, Run};
use std::time::Duration;

fn number_before(text: &str, marker: &str) -> Option<u64> {
    let i = text.find(marker)?;
    text[..i].split_whitespace().last()?.parse().ok()
}

fn boot(verbose: bool) -> Result {
    setup::all()?;
    let images = build::images()?;
    let bin_size = std::fs::metadata(&images.bin)
        .map_err(|e| e.to_string())?
        .len();
    println!("\nboot benchmark: -icount shift=0, 4 cores, entry -> 'boot complete' line");
    println!(
        "{:<12} {:>16} {:>18} {:>22}",
        "path", "counter ticks", "instructions", "instr. since reset"
    );
    for (name, boot) in [("qemu-kernel", Boot::Direct), ("u-boot", Boot::UBoot)] {
        let mut r = Run::new(boot, &images.bin, &images.dir.join(format!("bench-{name}")));
        r.boot_script = Some(images.boot_scr.clone());
        r.bootargs = "tessera.exit=poweroff".into();
        r.icount = true;
        let out = r.run(Duration::from_secs(300), |_| false)?;
        let line = out
            .output
            .lines()
            .find(|l| l.contains("boot complete"))
            .ok_or_else(|| format!("{name}: no boot-complete line:\n{}", out.output))?;
        let ticks =
            number_before(line, "counter ticks from entry").ok_or("unparsable boot line")?;
        let since_reset = number_before(line, "since reset").ok_or("unparsable boot line")?;
        let freq = number_before(line, "Hz").ok_or("unparsable boot line")?;
        // -icount shift=0: one instruction per virtual nanosecond.
        let instr = |t: u64| (t as u128 * 1_000_000_000 / freq as u128) as u64;
        println!(
            "{name:<12} {ticks:>16} {:>18} {:>22}",
            instr(ticks),
            instr(since_reset)
        );
        if verbose {
            println!("{}", out.output);
        }
    }
    println!("flat image size: {bin_size} bytes");
    Ok(())
}

/// The test guest alone under Tessera (boards/bench-solo.toml).
fn solo_run(images: &build::Images) -> Result<qemu_virt::Outcome> {
    let solo_bin = build::board_image("bench-solo", "tessera-bench-solo")?;
    let mut solo = Run::new(Boot::Direct, &solo_bin, &images.dir.join("bench-solo"));
    solo.icount = true;
    solo.run(Duration::from_secs(300), |o| o.contains("solo | done"))
}

/// Only the isolated figures (quick, for work on the trap paths).
fn solo() -> Result {
    setup::all()?;
    let images = build::images()?;
    let out = solo_run(&images)?;
    for l in out.output.lines().filter(|l| l.contains("bench ")) {
        println!("{}", l.trim());
    }
    Ok(())
}

/// The test guests' own measurements (`bench ...` lines), in a VM under
/// Tessera and natively on QEMU without a hypervisor.
fn partition() -> Result {
    setup::all()?;
    let images = build::images()?;
    let collect = |out: &qemu_virt::Outcome| -> Vec<String> {
        out.output
            .lines()
            .filter(|l| l.contains("bench "))
            .map(|l| l.trim().to_string())
            .collect()
    };
    let solo = solo_run(&images)?;
    let mut r = Run::new(
        Boot::Direct,
        &images.dir.join("tessera-test-partition.bin"),
        &images.dir.join("bench-partition"),
    );
    r.icount = true;
    let done = |o: &str| o.contains("t0 | done") && o.contains("t2 | done");
    let vm = r.run(Duration::from_secs(600), done)?;
    let mut native = Run::new(
        Boot::Direct,
        &images.dir.join("guests/test-guest.bin"),
        &images.dir.join("bench-native"),
    );
    native.virtualization = false;
    native.smp = 2;
    native.icount = true;
    let nat = native.run(Duration::from_secs(300), |o| o.contains("summary:"))?;
    println!("\npartition benchmarks: -icount shift=0, counter 1 GHz = 1 tick per instruction");
    println!("-- one VM alone under Tessera (boards/bench-solo.toml; the other cores idle):");
    for l in collect(&solo) {
        println!("   {l}");
    }
    println!("-- in VMs under Tessera (t0, t1, t2 running side by side; QEMU runs the");
    println!("   vCPUs in turn, so other cores' instructions can fall inside a figure):");
    for l in collect(&vm) {
        println!("   {l}");
    }
    println!("-- natively (the test guest alone on QEMU virt at EL1, no hypervisor):");
    for l in collect(&nat) {
        println!("   {l}");
    }
    Ok(())
}

/// The guest command line of `boards/bench-linux.toml`, used natively too.
const LINUX_BOOTARGS: &str = "console=ttyAMA0 quiet tessera.checks=cpus tessera.after=poweroff";

/// `[ secs.micros] <text>`: the printk timestamp of the line holding `text`,
/// in nanoseconds.
fn printk_ns(out: &str, text: &str) -> Option<u64> {
    let line = out.lines().find(|l| l.contains(text))?;
    let stamp = line.split('[').nth(1)?.split(']').next()?.trim();
    let (s, us) = stamp.split_once('.')?;
    Some(s.parse::<u64>().ok()? * 1_000_000_000 + us.parse::<u64>().ok()? * 1000)
}

/// Linux booting to user space (its self-check, then `poweroff -f`) alone
/// under Tessera (`boards/bench-linux.toml`) and natively on QEMU (-smp 1,
/// EL1 entry), with the same kernel, initramfs and command line.
fn linux() -> Result {
    setup::all()?;
    let images = build::images()?;
    let bin = build::board_image("bench-linux", "tessera-bench-linux")?;
    let linux = crate::image::linux_dir();
    let kernel = linux.join("Image");
    let initrd = linux.join("ivi-initrd.cpio");
    let size = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.len())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let (ksize, isize) = (size(&kernel)?, size(&initrd)?);
    const OFF: &str = "reboot: Power down";
    println!("\nLinux boot benchmark: {}, one vCPU; the guest runs tessera.checks=cpus, then poweroff -f", kernel.display());
    println!(
        "{:<9} {:<8} {:>22} {:>24} {:>10}",
        "run", "", "reset -> power down", "kernel: printk time", "wall s"
    );
    for tessera in [false, true] {
        for icount in [true, false] {
            let work = images.dir.join(format!("bench-linux-{tessera}-{icount}"));
            let mut r = if tessera {
                let mut r = Run::new(Boot::Direct, &bin, &work);
                for (file, at) in [(&kernel, 0xa000_0000u64), (&initrd, 0xa400_0000)] {
                    r.extra_args.extend([
                        "-device".into(),
                        format!("loader,file={},addr={at:#x},force-raw=on", file.display()),
                    ]);
                }
                r.bootargs =
                    format!("tessera.loaded=Image:{ksize} tessera.loaded=ivi-initrd.cpio:{isize}");
                r
            } else {
                let mut r = Run::new(Boot::Direct, &kernel, &work);
                r.virtualization = false;
                r.smp = 1;
                r.extra_args
                    .extend(["-initrd".into(), initrd.display().to_string()]);
                r.bootargs = LINUX_BOOTARGS.into();
                r
            };
            r.nodefaults = true;
            r.icount = icount;
            let out = r.run(Duration::from_secs(600), |o| o.contains(OFF))?;
            let kernel_ns = printk_ns(&out.output, OFF)
                .ok_or_else(|| format!("no '{OFF}' line:\n{}", out.output))?;
            // Under Tessera the hypervisor's log line carries the counter
            // since reset; natively the kernel starts at reset.
            let since_reset = if tessera {
                let line = out
                    .output
                    .lines()
                    .find(|l| l.contains("VM linux: SYSTEM_OFF"));
                line.and_then(|l| printk_ns(l, "SYSTEM_OFF"))
            } else {
                Some(kernel_ns)
            };
            let name = if tessera { "tessera" } else { "native" };
            if tessera && icount {
                // The hypervisor's own share: its boot, then checking and
                // copying the staged kernel and initramfs into the VM.
                let started = printk_ns(&out.output, "VM linux (VMID");
                println!(
                    "          (Tessera: VM linux loaded and started {} instructions after entry)",
                    started.map_or("?".into(), |n| n.to_string())
                );
            }
            if icount {
                println!(
                    "{name:<9} {:<8} {:>22} {:>24} {:>10}",
                    "icount",
                    since_reset.map_or("-".into(), |n| format!("{n} instr.")),
                    format!("{kernel_ns} instr."),
                    "-"
                );
            } else {
                println!(
                    "{name:<9} {:<8} {:>22} {:>24} {:>10.1}",
                    "real",
                    "-",
                    "-",
                    out.elapsed.as_secs_f64()
                );
            }
        }
    }
    Ok(())
}

/// Doorbell round trips Linux to Linux from user space under Tessera
/// (`boards/bench-linux-rtt.toml`, -icount shift=0): the IVI self-check's
/// `rtt` line, mean counter ticks = instructions executed on all cores.
fn linux_rtt() -> Result {
    let bin = build::board_image("bench-linux-rtt", "tessera-bench-linux-rtt")?;
    let linux = crate::image::linux_dir();
    let mut r = Run::new(
        Boot::Direct,
        &bin,
        &crate::images_dir().join("bench-linux-rtt"),
    );
    let mut loaded = Vec::new();
    for (file, at) in [
        ("Image", 0xa000_0000u64),
        ("ivi-initrd.cpio", 0xa400_0000),
        ("gpu-initrd.cpio", 0xac00_0000),
    ] {
        let path = linux.join(file);
        let len = std::fs::metadata(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        r.extra_args.extend([
            "-device".into(),
            format!("loader,file={},addr={at:#x},force-raw=on", path.display()),
        ]);
        loaded.push(format!("tessera.loaded={file}:{len}"));
    }
    r.bootargs = loaded.join(" ");
    r.nodefaults = true;
    r.smp = 2;
    r.icount = true;
    const PASS: &str = "ivi | tessera-linux: PASS rtt ";
    let out = r.run(Duration::from_secs(600), |o| {
        o.contains(PASS) || o.contains("tessera-linux: FAIL")
    })?;
    let line = out
        .output
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(PASS))
        .ok_or_else(|| format!("no '{PASS}' line:\n{}", out.output))?;
    println!("\nLinux-to-Linux doorbell round trip, user space to user space, -icount shift=0 (ticks = instructions, all cores):");
    println!("  {line}");
    println!("  ({:.0} s wall)", out.elapsed.as_secs_f64());
    Ok(())
}

/// Statistics windows of the cluster read per run (the first, with the
/// set-up and llvmpipe's first shader compilations, is left out).
const COCKPIT_WINDOWS: usize = 4;

/// The cockpit medium (`boards/qemu-virt.toml`) through U-Boot, as `cargo
/// xtask demo` boots it, once under `-icount shift=0` and once in real
/// time (TCG, several threads): the cluster VM's own lines, its sync-call
/// round trip to gpu-server in the service VM (`cluster: sync call round
/// trip ...`, at each connection) and per window of 30 frames the frame
/// period and where it went (`cluster: split encode ... swap ...`).
fn cockpit() -> Result {
    setup::all()?;
    let disk = crate::image::build("qemu-virt")?;
    let dir = crate::images_dir();
    let mut report = Vec::new();
    for icount in [true, false] {
        let mut r = Run::new(
            Boot::Disk(disk.clone()),
            &dir.join("tessera.bin"),
            &dir.join(format!("bench-cockpit-{icount}")),
        );
        r.nodefaults = true;
        r.icount = icount;
        r.extra_args = qemu_virt::cockpit_display(None);
        let splits = |o: &str| o.matches("cluster: split ").count();
        let out = r.run(Duration::from_secs(1200), |o| {
            splits(o) > COCKPIT_WINDOWS || o.contains("cluster: panic")
        })?;
        let lines: Vec<&str> = out
            .output
            .lines()
            .filter(|l| {
                l.contains("cluster: sync call")
                    || l.contains("cluster: frames ")
                    || l.contains("cluster: split ")
                    || l.contains("cluster: connected")
            })
            .collect();
        if splits(&out.output) <= COCKPIT_WINDOWS {
            let log = dir.join(format!("bench-cockpit-{icount}/console.txt"));
            std::fs::write(&log, &out.output).map_err(|e| e.to_string())?;
            return Err(format!(
                "cockpit (icount {icount}): fewer than {} statistics windows in {:.0} s; console in {}",
                COCKPIT_WINDOWS + 1,
                out.elapsed.as_secs_f64(),
                log.display()
            ));
        }
        let mode = if icount {
            "-icount shift=0 (one QEMU thread, the vCPUs in turn; counter ticks = virtual ns = instructions of all vCPUs while any runs)"
        } else {
            "real time (TCG, a thread per vCPU; times depend on the host's load)"
        };
        report.push(format!(
            "-- {mode}, {:.0} s wall:",
            out.elapsed.as_secs_f64()
        ));
        report.extend(lines.iter().map(|l| format!("   {}", l.trim())));
    }
    println!("
cockpit benchmark: the cluster VM's sync-call round trip to gpu-server in the GPU service VM and its frame time remoted");
    for l in report {
        println!("{l}");
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result {
    match args.first().map(String::as_str) {
        None | Some("boot") => boot(args.iter().any(|a| a == "-v")),
        Some("partition") => partition(),
        Some("solo") => solo(),
        Some("linux") => linux().and_then(|()| linux_rtt()),
        Some("cockpit") => cockpit(),
        Some("gpu") => {
            let s = std::process::Command::new("bash")
                .current_dir(crate::root())
                .arg("gpu-share/ci/bench.sh")
                .status()
                .map_err(|e| e.to_string())?;
            if s.success() {
                Ok(())
            } else {
                Err("gpu benchmark failed".into())
            }
        }
        Some(other) => Err(format!(
            "unknown benchmark '{other}' (boot, partition, solo, linux, cockpit, gpu)"
        )),
    }
}
