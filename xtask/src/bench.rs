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

/// Frames of the cluster's twin run natively in the service VM, and the
/// command that runs them there.
const NATIVE_FRAMES: u32 = 90;
const NATIVE_CMD: &[u8] = b"\x142svm-bench native 90\r";

/// What the cockpit benchmark types, in order, and what it waits for
/// before the next step (markers the typed command's echo cannot match).
/// Console input goes to the VM chosen with Ctrl-T and a digit (the board
/// file's order: 1 the IVI, 2 the service VM); each command is typed
/// whole, a second after the one before.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// Until the IVI's shell: then its demo is stopped.
    Boot,
    /// The cluster alone: its round trip and statistics windows.
    Cluster,
    /// The IVI's `ivi-run measure`: bench's sync calls and workloads,
    /// gpu-share's test programs.
    Measure,
    /// The IVI demo and the cluster drawing together.
    Both,
    /// The IVI stopped; the cluster's twin natively in the service VM.
    Native,
    /// gpu-server again with GPU_SERVER_PROFILE=1, until the cluster
    /// connected again and drew a statistics window.
    Profile,
    /// Then the IVI demo for [`PROFILE_CMD`]'s frames beside the cluster:
    /// its session's end prints the server's profile of it.
    ProfileIvi,
    Done,
}

struct Driver {
    step: Step,
    /// Where the output stood when the step began.
    from: usize,
    typed: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Commands still to type, one a second.
    pending: Vec<&'static [u8]>,
    typed_at: std::time::Instant,
}

const STATS_CMD: &[u8] = b"\x141ivi-run ivi,--stats,10\r";
const PROFILE_CMD: &[u8] = b"\x141ivi-run ivi,--frames,30,--stats,10\r";

impl Driver {
    /// Advances on the output so far; true when the run is over.
    fn advance(&mut self, o: &str) -> bool {
        if !self.pending.is_empty() && self.typed_at.elapsed() >= Duration::from_secs(1) {
            let cmd = self.pending.remove(0);
            self.typed.lock().unwrap().extend_from_slice(cmd);
            self.typed_at = std::time::Instant::now();
        }
        let since = &o[self.from..];
        let next = match self.step {
            Step::Boot => o
                .lines()
                .any(|l| l.trim_start().starts_with("ivi |") && l.contains("tessera-linux: shell")),
            Step::Cluster => {
                since.matches("cluster: split ").count() > COCKPIT_WINDOWS
                    && o.contains("cluster: sync call round trip")
            }
            Step::Measure => since.contains("tessera-ivi: measure done"),
            Step::Both => {
                since.matches("ivi: ivi: frames ").count() >= 3
                    && since.matches("cluster: frames ").count() >= 2
            }
            Step::Native => since.contains("native: cluster-native exited"),
            Step::Profile => since
                .find("cluster: connected")
                .is_some_and(|i| since[i..].contains("cluster: frames ")),
            Step::ProfileIvi => profile_line(since).is_some(),
            Step::Done => true,
        };
        if next {
            let (step, typed): (Step, &[&'static [u8]]) = match self.step {
                Step::Boot => (Step::Cluster, &[b"\x141ivi-run none\r"]),
                Step::Cluster => (Step::Measure, &[b"\x141ivi-run measure\r"]),
                Step::Measure => (Step::Both, &[STATS_CMD]),
                Step::Both => (Step::Native, &[b"\x141ivi-run none\r", NATIVE_CMD]),
                Step::Native => (Step::Profile, &[b"\x142svm-bench profile\r"]),
                Step::Profile => (Step::ProfileIvi, &[PROFILE_CMD]),
                Step::ProfileIvi | Step::Done => (Step::Done, &[]),
            };
            self.step = step;
            self.from = o.len();
            self.pending.extend_from_slice(typed);
        }
        self.step == Step::Done
    }
}

/// gpu-server's profile line (`gpu-server: client N: profile: ... futex
/// sleeps`), whole: the hypervisor's console wraps long lines, each piece
/// on a line of its own behind the VM's tag.
fn profile_line(out: &str) -> Option<String> {
    let i = out.find(": profile: ")?;
    let start = out[..i].rfind("gpu-server: client ")?;
    let end = i + out[i..].find(" futex sleeps")? + " futex sleeps".len();
    let mut text = String::new();
    for (n, l) in out[start..end].lines().enumerate() {
        match l.trim_start().strip_prefix("gpu | ") {
            Some(piece) => text.push_str(piece),
            None if n == 0 => text.push_str(l),
            // Another VM's line in between.
            None => {}
        }
    }
    Some(text)
}

/// The text of the lines of `out` that contain `what`, from `what` on.
fn lines_with<'a>(out: &'a str, what: &str) -> Vec<&'a str> {
    out.lines()
        .filter_map(|l| l.find(what).map(|i| l[i..].trim_end()))
        .collect()
}

/// `... NAME [mean] VALUE ...`: the number after the word `name`.
fn value_after(line: &str, name: &str) -> Option<f64> {
    let mut w = line.split_whitespace().skip_while(|x| *x != name).skip(1);
    let v = w.next()?;
    match v {
        "mean" => w.next()?.parse().ok(),
        v => v.parse().ok(),
    }
}

/// The mean of the `mean` figures after `name` in the cluster's windows
/// (the first left out when there are more than two).
fn windows_mean(lines: &[&str], name: &str) -> Option<f64> {
    let skip = usize::from(lines.len() > 2);
    let v: Vec<f64> = lines[skip..]
        .iter()
        .filter_map(|l| value_after(l, name))
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Native output md5 of a host build of a test program (`gpu_build`'s
/// target/gpu-share/bin), to set beside the IVI's.
fn host_md5(prog: &str) -> Option<String> {
    let bin = crate::root().join("target/gpu-share/bin").join(prog);
    let out = std::process::Command::new(&bin)
        .env("MESA_GLES_VERSION_OVERRIDE", "2.0")
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let mut c = std::process::Command::new("md5sum");
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().ok()?;
    use std::io::Write;
    child.stdin.take()?.write_all(&out.stdout).ok()?;
    let sum = child.wait_with_output().ok()?;
    Some(
        String::from_utf8_lossy(&sum.stdout)
            .split_whitespace()
            .next()?
            .to_string(),
    )
}

/// One run's figures, from its console.
fn cockpit_report(o: &str, icount: bool, wall: f64, report: &mut Vec<String>) {
    let unit = if icount { "instr." } else { "ns" };
    debug_assert!(NATIVE_CMD.ends_with(format!(" {NATIVE_FRAMES}\r").as_bytes()));
    let mode = if icount {
        "-icount shift=0 (one QEMU thread, the vCPUs in turn; counter ticks = virtual ns = instructions of all vCPUs while any runs)"
    } else {
        "real time (TCG, a thread per vCPU; times depend on the host's load)"
    };
    report.push(format!("-- {mode}, {wall:.0} s wall:"));
    // The phases, split where their commands were echoed.
    let at = |what: &str| o.find(what).unwrap_or(o.len());
    let (measure, both, native) = (
        at("ivi-run measure"),
        at("ivi-run ivi,--stats,10"),
        at("svm-bench native"),
    );
    let alone = &o[..measure];
    report.push("   the cluster, the IVI idle:".into());
    for l in lines_with(alone, "cluster: sync call")
        .into_iter()
        .chain(lines_with(alone, "cluster: frames "))
        .chain(lines_with(alone, "cluster: split "))
    {
        report.push(format!("     {l}"));
    }
    let swap = windows_mean(&lines_with(alone, "cluster: split "), "swap");
    report.push("   the IVI's sync calls (bench rtt: each call timed alone) and bench's workloads (1 s each; per call: the frame over its calls):".into());
    let m = &o[measure..both];
    let bench: Vec<&str> = lines_with(m, "bench: ")
        .into_iter()
        .map(|l| &l["bench: ".len()..])
        .collect();
    for l in bench.iter().filter(|l| l.starts_with("rtt ")) {
        report.push(format!("     {l}"));
    }
    for l in bench.iter().filter(|l| l.contains(" fps ")) {
        // "MODE fps F (N frames in T s, ...)"; query/sync/roundtrip make
        // 1000 sync calls a frame, draws 2000 glUniform4f + 2000 draws.
        let calls = if l.starts_with("draws") {
            4000.0
        } else {
            1000.0
        };
        let frames = l
            .split_whitespace()
            .find_map(|w| w.strip_prefix('(')?.parse::<f64>().ok());
        let per = match (frames, value_after(l, "in")) {
            (Some(n), Some(t)) if n > 0.0 => format!("{:.0} {unit} a call", t * 1e9 / n / calls),
            _ => "-".into(),
        };
        report.push(format!("     {l}: {per}"));
    }
    report.push(
        "   gpu-share's test programs in the IVI (each: start, connect, run, exit; from /proc/uptime, 10 ms steps):".into(),
    );
    let progs = lines_with(m, "measure prog ");
    for p in crate::ivi::TEST_PROGS {
        let line = progs
            .iter()
            .find(|l| l.split_whitespace().nth(2) == Some(p));
        let Some(line) = line else {
            report.push(format!("     {p}: did not run"));
            continue;
        };
        let status = value_after(line, "status").unwrap_or(-1.0);
        let ms = value_after(line, "ms").unwrap_or(0.0);
        let md5 = line.split_whitespace().last().unwrap_or("");
        let same = match host_md5(p) {
            Some(h) if h == md5 => "same output as natively on the host",
            // builtins' pixels: the service VM's Mesa 22.3 and the
            // host's compute transcendentals differently.
            Some(_) => "output differs from the host's native run",
            None => "(no host build to compare)",
        };
        let cost = if icount {
            format!("{:.0} M instr.", ms)
        } else {
            format!("{ms:.0} ms")
        };
        report.push(format!("     {p:<11} status {status:.0}, {cost}, {same}"));
    }
    report.push("   both drawing (the IVI demo, the cluster):".into());
    let b = &o[both..native];
    let ivi = lines_with(b, "ivi: frames ");
    for l in &ivi {
        report.push(format!("     {l}"));
    }
    let cl = lines_with(b, "cluster: frames ");
    for l in &cl {
        report.push(format!("     {l}"));
    }
    let fps = |p: Option<f64>| p.map_or("-".into(), |p| format!("{:.1}", 1000.0 / p));
    report.push(format!(
        "     frames per second: cluster {}, IVI {} (from the mean periods above{})",
        fps(windows_mean(&cl, "mean")),
        fps(windows_mean(&ivi, "mean")),
        if icount {
            "; per 10^9 instructions of all VMs"
        } else {
            ""
        }
    ));
    report.push(format!(
        "   the cluster's frame natively in the service VM (cluster-native, gpu-server stopped, {NATIVE_FRAMES} frames):"
    ));
    let profile = at("svm-bench profile");
    let n = &o[native..profile];
    let nat = lines_with(n, "cluster-native: frames ");
    for l in &nat {
        report.push(format!("     {l}"));
    }
    let native_ms = windows_mean(&nat, "mean");
    if let (Some(s), Some(nm)) = (swap, native_ms) {
        report.push(format!(
            "     remoted: the cluster's eglSwapBuffers wait {s:.2} ms; native: its frame {nm:.2} ms; remoted / native {:.2}",
            s / nm
        ));
    }
    report.push(
        "   gpu-server's profile of an IVI demo session (30 frames beside the cluster; GPU_SERVER_PROFILE=1; the time at fences, yielding to the cluster, is outside busy and idle):".into(),
    );
    let p = &o[at("ivi,--frames,30")..];
    for l in lines_with(p, "ivi: frames ") {
        report.push(format!("     {l}"));
    }
    if let Some(l) = profile_line(p) {
        report.push(format!("     {l}"));
    }
}

/// The cockpit medium (`boards/qemu-virt.toml`) through U-Boot, as `cargo
/// xtask demo` boots it, once under `-icount shift=0` and once in real
/// time (TCG, several threads), driven through the VMs' shells ([`Step`]):
/// the cluster alone (its sync-call round trip to gpu-server in the service
/// VM and its frame time), the IVI's sync calls, bench workloads and test
/// programs across VMs (`ivi-run measure`), both clients drawing (frames
/// per second each), and the cluster's frame natively in the service VM
/// (`svm-bench native`).
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
        let typed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        r.typed = Some(typed.clone());
        let driver = std::sync::Mutex::new(Driver {
            step: Step::Boot,
            from: 0,
            typed,
            pending: Vec::new(),
            typed_at: std::time::Instant::now(),
        });
        let out = r.run(Duration::from_secs(2400), |o| {
            driver.lock().unwrap().advance(o) || o.contains("cluster: panic")
        })?;
        let log = dir.join(format!("bench-cockpit-{icount}/console.txt"));
        std::fs::write(&log, &out.output).map_err(|e| e.to_string())?;
        let step = driver.lock().unwrap().step;
        if step != Step::Done {
            return Err(format!(
                "cockpit (icount {icount}): stopped at step {step:?} after {:.0} s; console in {}",
                out.elapsed.as_secs_f64(),
                log.display()
            ));
        }
        cockpit_report(&out.output, icount, out.elapsed.as_secs_f64(), &mut report);
    }
    println!("\ncockpit benchmark: gpu-share across VMs (the cluster VM, the IVI) into gpu-server in the GPU service VM, and the cluster's frame natively there");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_from_console_lines() {
        let split =
            "cluster | cluster: split encode mean 0.02 swap mean 13.95 max 18.0 ms (30 frames)";
        assert_eq!(value_after(split, "swap"), Some(13.95));
        assert_eq!(value_after(split, "max"), Some(18.0));
        assert_eq!(value_after("query fps 61.5 (62 frames)", "fps"), Some(61.5));
        assert_eq!(value_after("query fps x", "fps"), None);
        assert_eq!(value_after("no such word", "fps"), None);
        let w = [
            "cluster: frames 30 period mean 90.0 ms",
            "cluster: frames 60 period mean 30.0 ms",
            "cluster: frames 90 period mean 40.0 ms",
        ];
        // The first window (set-up) is left out when there are more than two.
        assert_eq!(windows_mean(&w, "mean"), Some(35.0));
        assert_eq!(windows_mean(&w[..2], "mean"), Some(60.0));
        assert_eq!(windows_mean(&[], "mean"), None);
        let o = "a\n ivi | tessera-ivi: bench: rtt query min 5\nb";
        assert_eq!(lines_with(o, "rtt "), ["rtt query min 5"]);
    }

    #[test]
    fn a_console_gives_each_phase_its_figures() {
        let o = "\
 cluster | cluster: sync call round trip mean 53322 min 5031 ns (32 glCheckFramebufferStatus)
 cluster | cluster: split encode mean 0.0 swap mean 56.5 max 1288.1 ms (30 frames)
 cluster | cluster: split encode mean 0.0 swap mean 14.0 max 19.6 ms (30 frames)
 cluster | cluster: split encode mean 0.0 swap mean 14.2 max 19.6 ms (30 frames)
     ivi | / # ivi-run measure
     ivi | tessera-ivi: bench: rtt query min 4146 median 135713 mean 171581 ns (200 calls)
     ivi | tessera-ivi: bench: query fps 5.8 (6 frames in 1.20 s, error 0x0)
     ivi | tessera-ivi: bench: sync fps 0.0 (1 frames in 67.83 s, error 0x0)
     ivi | tessera-ivi: measure prog triangle status 0 ms 1130 md5 0
     ivi | / # ivi-run ivi,--stats,10
     ivi | tessera-ivi: ivi: ivi: frames 10 period mean 50.0 ms
 cluster | cluster: frames 690 period mean 40.0 p95 43.7 max 48.1 ms missed 17
     gpu | / # svm-bench native 90
     gpu | cluster-native: frames 30 frame mean 54.88 max 1252.43 ms
     gpu | cluster-native: frames 60 frame mean 14.10 max 13.70 ms
     gpu | cluster-native: frames 90 frame mean 14.10 max 13.74 ms
     gpu | / # svm-bench profile
     ivi | / # ivi-run ivi,--frames,30,--stats,10
     gpu | gpu-server: client 4: profile: 900 records; per record 1 ns busy, of which 
 cluster | cluster: frames 900 period mean 33.0 p95 35.0 max 36.0 ms missed 0
     gpu | 1 ns in the driver; idle 2.0 ms over 3 empty-ring waits, 4 futex sleeps
";
        let mut r = Vec::new();
        cockpit_report(o, true, 1.0, &mut r);
        let text = r.join("\n");
        for want in [
            "rtt query min 4146",
            "query fps 5.8 (6 frames in 1.20 s, error 0x0): 200000 instr. a call",
            "sync fps 0.0 (1 frames in 67.83 s, error 0x0): 67830000 instr. a call",
            "triangle    status 0, 1130 M instr.",
            "vao: did not run",
            "frames per second: cluster 25.0, IVI 20.0",
            // The swap wait of windows 2 and 3 over the twin's 2 and 3.
            "wait 14.10 ms; native: its frame 14.10 ms; remoted / native 1.00",
            "client 4: profile: 900 records; per record 1 ns busy, of which 1 ns in the driver; idle 2.0 ms over 3 empty-ring waits, 4 futex sleeps",
        ] {
            assert!(text.contains(want), "no '{want}' in:\n{text}");
        }
    }

    #[test]
    fn the_driver_types_each_step_and_ends() {
        let typed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut d = Driver {
            step: Step::Boot,
            from: 0,
            typed: typed.clone(),
            pending: Vec::new(),
            typed_at: std::time::Instant::now(),
        };
        let mut o = String::from("     gpu | tessera-linux: shell\n");
        assert!(!d.advance(&o));
        assert_eq!(
            d.step,
            Step::Boot,
            "the service VM's shell is not the IVI's"
        );
        o.push_str("     ivi | tessera-linux: shell (tshm --help)\n");
        assert!(!d.advance(&o));
        assert_eq!(d.step, Step::Cluster);
        o.push_str(" cluster | cluster: sync call round trip mean 1 min 1 ns\n");
        for _ in 0..=COCKPIT_WINDOWS {
            assert_eq!(d.step, Step::Cluster);
            o.push_str(" cluster | cluster: split encode mean 0 swap mean 1 max 1 ms\n");
            d.advance(&o);
        }
        assert_eq!(d.step, Step::Measure);
        o.push_str("ivi | tessera-ivi: measure done in 9 s\n");
        d.advance(&o);
        for _ in 0..3 {
            assert_eq!(d.step, Step::Both);
            o.push_str("ivi | tessera-ivi: ivi: ivi: frames 10 period mean 1 ms\n");
            o.push_str("cluster | cluster: frames 30 period mean 1 ms\n");
            d.advance(&o);
        }
        assert_eq!(d.step, Step::Native);
        o.push_str("gpu | tessera-svm: native: cluster-native exited with 0\n");
        d.advance(&o);
        assert_eq!(d.step, Step::Profile);
        o.push_str("cluster | cluster: frames 30 period mean 1 ms\n");
        d.advance(&o);
        assert_eq!(d.step, Step::Profile, "a window of the old session");
        o.push_str("cluster | cluster: connected (hello 2), from frame 9\n");
        o.push_str("cluster | cluster: frames 30 period mean 1 ms\n");
        d.advance(&o);
        assert_eq!(d.step, Step::ProfileIvi);
        o.push_str("gpu | gpu-server: client 3: profile: 9 records, 2\n");
        assert!(!d.advance(&o), "the line is not whole yet");
        o.push_str("gpu | futex sleeps\n");
        assert!(d.advance(&o));
        // The commands go out one a second, in order.
        d.typed_at -= Duration::from_secs(2);
        d.advance(&o);
        assert_eq!(*typed.lock().unwrap(), b"\x141ivi-run none\r");
        assert!(d.pending.len() > 3);
    }
}
