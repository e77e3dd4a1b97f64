//! The test tiers. Each tier is a set of cargo test targets (or, for gpu,
//! gpu-share's own script); results are counted from their summary lines.

use crate::{build, root, setup, Result};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

pub const TIERS: &[(&str, &str)] = &[
    (
        "host",
        "unit tests of the portable logic (cargo test on the host)",
    ),
    (
        "boot",
        "the hypervisor booted on QEMU: directly, through U-Boot, and from bad starts; its image has no FP/SIMD instruction; the test guest and the Linux guest images natively",
    ),
    (
        "partition",
        "three bare-metal test guests side by side on QEMU: isolation, timer, SGIs, PSCI, doorbells, reset; the cluster image woken by its doorbell",
    ),
    (
        "dma",
        "device DMA through the SMMUv3 on QEMU: edu devices translated with their VM's stage 2, strays and unlisted functions blocked and logged, DMA in flight across a restart",
    ),
    (
        "linux",
        "Linux VMs beside a bare-metal one, booted by U-Boot from the boot medium: self-checks, SMP hotplug, crash, reboot, poweroff; bad staged images refused",
    ),
    (
        "cockpit",
        "the cockpit medium through U-Boot: gpu-server in the GPU service VM on Mesa llvmpipe and virtio-gpu, the bare-metal cluster drawing across VMs, checked by QMP screendump against reference renderings",
    ),
    (
        "gpu",
        "gpu-share on the host: front-end and back-end against Mesa, piglit, decoder fuzzing",
    ),
    (
        "conformance",
        "Khronos dEQP-GLES2, a fixed sample, natively and through gpu-share (conformance-full: the whole mustpass)",
    ),
];

pub fn show(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

/// Runs a command, echoing its output and adding up `N passed; M failed` lines
/// (cargo's) or a closing `N passed, M failed` line (scripts').
fn run_counted(mut cmd: Command, tally: &mut Tally) -> Result {
    println!("$ {}", show(&cmd));
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let out = child.stdout.take().unwrap();
    for line in BufReader::new(out).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("{line}");
        let nums: Vec<(u64, &str)> = line
            .split([';', ','])
            .filter_map(|part| {
                let mut w = part.split_whitespace().rev();
                let (word, n) = (w.next()?, w.next()?);
                Some((n.parse().ok()?, word))
            })
            .collect();
        if line.starts_with("test result:")
            || nums.iter().any(|(_, w)| *w == "passed") && nums.iter().any(|(_, w)| *w == "failed")
        {
            for (n, w) in nums {
                match w {
                    "passed" => tally.passed += n,
                    "failed" => tally.failed += n,
                    "ignored" | "skipped" => tally.ignored += n,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", show(&cmd)))
    }
}

fn cargo() -> Command {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(root());
    c
}

/// System tests on QEMU: set-up, images, then the named test targets of
/// `tessera-tests` with the harness arguments given.
fn qemu_tests(targets: &[&str], harness: &[&str], tally: &mut Tally) -> Result {
    setup::all()?;
    build::images()?;
    run_qemu_tests(targets, harness, tally)
}

/// The test targets alone, the images being built.
fn run_qemu_tests(targets: &[&str], harness: &[&str], tally: &mut Tally) -> Result {
    let mut c = cargo();
    c.args(["test", "-p", "tessera-tests"]);
    for t in targets {
        c.args(["--test", t]);
    }
    c.arg("--").args(harness);
    c.env("TESSERA_IMAGES", crate::images_dir());
    run_counted(c, tally)
}

fn tier(name: &str, tally: &mut Tally) -> Result {
    match name {
        "host" => {
            let mut c = cargo();
            // The board checker's parser is behind its `build` feature.
            c.args([
                "test",
                "--workspace",
                "--exclude",
                "tessera-tests",
                "--features",
                "tessera-boards/build",
            ]);
            run_counted(c, tally)
        }
        // Each QEMU uses several host threads; two at a time suits 2 cores.
        "boot" => qemu_tests(
            &["boot", "guest_native", "linux_native", "el2_image"],
            &["--test-threads=2"],
            tally,
        ),
        // --nocapture: the test prints the table of checks.
        "partition" => qemu_tests(&["partition", "cluster_bell"], &["--nocapture"], tally),
        "dma" => qemu_tests(&["dma"], &["--nocapture"], tally),
        // The boot medium of boards/test-linux.toml first (it builds the
        // images, Linux guests included). One QEMU at a time: two 4-core
        // QEMUs on a 2-core host starve each other's guests of the timer
        // accuracy their self-checks demand.
        "linux" => {
            setup::all()?;
            let dir = build::images()?.dir;
            crate::image::write_medium(&dir, "test-linux")?;
            crate::image::write_medium(&dir, "test-linux-shm")?;
            run_qemu_tests(&["linux"], &["--test-threads=1", "--nocapture"], tally)
        }
        // The cockpit medium, and the host programs that render the
        // references (gpu-server on the host's Mesa, cluster-host).
        "cockpit" => {
            setup::all()?;
            // The references render on the host's Mesa (EGL, GLES2), as
            // the gpu and conformance tiers' do; python3 for cockpit.py.
            setup::conformance()?;
            let dir = build::images()?.dir;
            crate::image::write_medium(&dir, "qemu-virt")?;
            let mut c = cargo();
            c.args([
                "build",
                "--release",
                "-p",
                "gpu-server",
                "-p",
                "cockpit-cluster",
                "--features",
                "cockpit-cluster/host",
            ]);
            println!("$ {}", show(&c));
            let s = c.status().map_err(|e| e.to_string())?;
            if !s.success() {
                return Err(
                    "building gpu-server and cluster-host for the references failed".into(),
                );
            }
            // The IVI's test: gpu-share's library and programs on the host
            // (its piglit run), the IVI demo natively (its reference).
            let mut c = Command::new("bash");
            c.current_dir(root()).args([
                "-c",
                ". gpu-share/ci/common.sh && gpu_install_deps && gpu_build && \
                 gcc -O2 -Wall -Werror -o $GPU_OUT/bin/ivi gpu-share/tests/progs/ivi.c \
                 -Igpu-share/include -lEGL -lGLESv2 -Wl,--no-as-needed -lm",
            ]);
            println!("$ {}", show(&c));
            let s = c.status().map_err(|e| e.to_string())?;
            if !s.success() {
                return Err("building gpu-share and the IVI demo on the host failed".into());
            }
            // One 4-core QEMU at a time (2 host cores).
            run_qemu_tests(&["cockpit"], &["--nocapture", "--test-threads=1"], tally)
        }
        "gpu" => {
            let script = root().join("gpu-share/ci/test.sh");
            if !script.exists() {
                return Err(
                    "the gpu tier needs gpu-share/ci/test.sh, which this tree does not have yet"
                        .into(),
                );
            }
            let mut c = Command::new("bash");
            c.current_dir(root()).arg(script);
            run_counted(c, tally)
        }
        "conformance" | "conformance-full" => {
            match crate::conformance::run(name == "conformance-full") {
                Ok(crate::conformance::Outcome::Passed) => tally.passed += 1,
                Ok(crate::conformance::Outcome::Skipped) => tally.ignored += 1,
                Err(e) => {
                    tally.failed += 1;
                    return Err(e);
                }
            }
            Ok(())
        }
        other => {
            let known: Vec<&str> = TIERS.iter().map(|t| t.0).collect();
            Err(format!(
                "unknown tier '{other}' (tiers: {}, conformance-full)",
                known.join(", ")
            ))
        }
    }
}

pub fn run(args: &[String]) -> Result {
    let all: Vec<String>;
    let tiers: &[String] = if args.is_empty() {
        all = TIERS
            .iter()
            .map(|t| t.0)
            .filter(|t| *t != "gpu" || root().join("gpu-share/ci/test.sh").exists())
            .map(String::from)
            .collect();
        &all
    } else {
        args
    };
    let mut tally = Tally::default();
    let mut failed_tiers = Vec::new();
    let mut times = Vec::new();
    for t in tiers {
        println!("\n==== tier {t} ====");
        let started = std::time::Instant::now();
        if let Err(e) = tier(t, &mut tally) {
            eprintln!("tier {t}: {e}");
            failed_tiers.push(t.clone());
        }
        times.push(format!("{t} {} s", started.elapsed().as_secs()));
    }
    println!("\n==== summary: tiers {} ====", tiers.join(", "));
    // Wall time per tier, set-up and image builds included (the first QEMU
    // tier pays for them).
    println!("wall time: {}", times.join(", "));
    if !failed_tiers.is_empty() {
        println!("failed tiers: {}", failed_tiers.join(", "));
    }
    println!(
        "{} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.ignored
    );
    if failed_tiers.is_empty() && tally.failed == 0 {
        Ok(())
    } else {
        Err(format!(
            "{} test(s) failed in tiers: {}",
            tally.failed,
            failed_tiers.join(", ")
        ))
    }
}
