//! `cargo xtask`: sets the machine up, builds the images, runs the demo,
//! the test tiers and the benchmarks. See README.md.

mod bench;
mod build;
mod conformance;
mod cpio;
mod guests;
mod image;
mod ivi;
mod linux;
mod setup;
mod test;
mod userland;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>
  demo               set up, build and boot the cockpit on QEMU from its boot medium; screenshots in target/cockpit/ (Ctrl-A X quits)
  test [TIER...]     run test tiers (default: all): host, boot, partition, dma, linux, cockpit, gpu, conformance;
                     conformance-full runs the whole dEQP-GLES2 mustpass both ways
  build              build the images into target/images/ (Linux guests: target/images/linux/)
  linux-images [--run [BOOTARGS...]]  build the Linux guest images; --run boots the GPU VM's natively on QEMU virt
  image [BOARD]      write the boot medium for a board (default qemu-virt): target/images/<stem>-disk.img
  guest [--run]      build the test guest (target/images/guests/test-guest.bin); --run boots it natively on QEMU virt
  run [--uboot] [BOOTARGS...]  boot the built image on QEMU
  bench [boot|partition|solo|linux|cockpit|gpu]  print benchmark figures (instruction counts under -icount)
  setup              install what the build and tests need (Rust targets, QEMU 10, U-Boot, the Linux images' tools, dEQP's run-time libraries)";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn images_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target.join("images")
}

pub type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::all().and_then(|_| setup::conformance()),
        Some("build") => setup::rust_target()
            .and_then(|_| setup::linux())
            .and_then(|_| build::images().map(|_| ())),
        Some("linux-images") => setup::rust_target()
            .and_then(|_| setup::linux())
            .and_then(|_| linux::command(&args[1..])),
        Some("image") => setup::rust_target()
            .and_then(|_| setup::linux())
            .and_then(|_| image::command(&args[1..])),
        Some("guest") => setup::rust_target().and_then(|_| guests::command(&args[1..])),
        Some("test") => test::run(&args[1..]),
        Some("demo") => demo(),
        Some("run") => run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("help" | "-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The cockpit: the boot medium of `boards/qemu-virt.toml` through U-Boot,
/// the GPU (virtio-gpu-pci) behind the SMMU, the cluster VM on core 0, the
/// IVI Linux on core 1 and the GPU service VM's Linux on cores 2-3, whose
/// gpu-server composites the cluster (and the IVI) onto the display. A QMP
/// screendump of that display every few seconds lands in
/// `target/cockpit/screen.png`.
fn demo() -> Result {
    setup::all()?;
    let disk = image::build("qemu-virt")?;
    let dir = images_dir();
    let shots = dir.parent().unwrap().join("cockpit");
    std::fs::create_dir_all(&shots).map_err(|e| format!("{}: {e}", shots.display()))?;
    let screen = shots.join("screen.png");
    let _ = std::fs::remove_file(&screen);
    println!(
        "\n== Tessera demo: the cockpit (boards/qemu-virt.toml) from its boot medium through U-Boot =="
    );
    println!(
        "   cluster (core 0, bare metal), ivi (core 1, Linux), gpu (cores 2-3, Linux, owns the PCIe GPU behind the SMMU: gpu-server)"
    );
    println!(
        "   the display (512x256: cluster left, IVI right) is written to {} every {} s",
        screen.display(),
        SCREENSHOT_EVERY.as_secs()
    );
    let mut r = qemu_virt::Run::new(
        qemu_virt::Boot::Disk(disk),
        &dir.join("tessera.bin"),
        &dir.join("demo"),
    );
    r.nodefaults = true;
    let sock = r.work_dir.join("qmp.sock");
    r.extra_args = qemu_virt::cockpit_display(Some(&sock));
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if interactive {
        println!(
            "   Ctrl-T then 0/1/2 sends your typing to that VM (the Linux VMs end in a shell); Ctrl-A then X quits QEMU.\n"
        );
        // Live: a VNC display on this machine only, the first free port
        // from 5900 on (printed once QEMU says which).
        r.extra_args
            .extend(["-vnc".to_string(), "127.0.0.1:0,to=99".into()]);
        let mut cmd = r.command()?;
        println!("$ {}", test::show(&cmd));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("qemu-system-aarch64: {e}"))?;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        let shooter = std::thread::spawn(move || {
            let mut told = false;
            while !d.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(SCREENSHOT_EVERY);
                if !told {
                    if let Some(port) = vnc_port(&sock) {
                        println!("\r\ndemo: watch the display live with a VNC viewer on 127.0.0.1:{port}\r");
                        told = true;
                    }
                }
                // QEMU is not listening yet, or has quit: the next try.
                let _ = screenshot(&sock, &screen);
            }
        });
        let status = child.wait().map_err(|e| e.to_string());
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = shooter.join();
        let status = status?;
        return if status.success() {
            Ok(())
        } else {
            Err(format!("QEMU exited with {status}"))
        };
    }
    // No terminal: run until both Linux VMs finished their self-checks and
    // the cluster drew 20 s, with screenshots, then show what they said.
    let connected = std::cell::Cell::new(None::<std::time::Instant>);
    let last = std::cell::Cell::new(std::time::Instant::now());
    let out = r.run(std::time::Duration::from_secs(300), |o| {
        if connected.get().is_none() && o.contains("cluster: connected") {
            connected.set(Some(std::time::Instant::now()));
        }
        if o.contains("gpu | tessera-linux: DONE") && last.get().elapsed() >= SCREENSHOT_EVERY {
            last.set(std::time::Instant::now());
            let _ = screenshot(&sock, &screen);
        }
        o.contains("ivi | tessera-linux: DONE")
            && connected
                .get()
                .is_some_and(|t| t.elapsed() > std::time::Duration::from_secs(20))
    })?;
    println!("{}", out.output);
    if out.timed_out {
        return Err("the cluster did not draw within 5 minutes".into());
    }
    println!("the display: {}", screen.display());
    Ok(())
}

const SCREENSHOT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The VNC display's TCP port (QMP `query-vnc`).
fn vnc_port(sock: &std::path::Path) -> Option<u16> {
    let a = qemu_virt::qmp(sock, "{\"execute\":\"query-vnc\"}").ok()?;
    let at = a.find("\"service\"")?;
    let digits: String = a[at + 9..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A PNG of the display, replacing `to` whole.
fn screenshot(sock: &std::path::Path, to: &std::path::Path) -> Result {
    let tmp = to.with_extension("png.tmp");
    qemu_virt::screendump(sock, &tmp, "png")?;
    std::fs::rename(&tmp, to).map_err(|e| e.to_string())
}

fn run(args: &[String]) -> Result {
    let uboot = args.iter().any(|a| a == "--uboot");
    let bootargs: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--uboot")
        .collect();
    let images = build::Images::existing()?;
    boot_interactive(&images, uboot, &bootargs.join(" "))
}

fn boot_interactive(images: &build::Images, uboot: bool, bootargs: &str) -> Result {
    use qemu_virt::{Boot, Run};
    let mut r = Run::new(
        if uboot { Boot::UBoot } else { Boot::Direct },
        &images.bin,
        &images.dir.join("run"),
    );
    r.boot_script = Some(images.boot_scr.clone());
    r.bootargs = bootargs.to_string();
    qemu_interactive(r.command()?, "")
}

/// Runs QEMU on this terminal (the command line shown first) until it exits.
pub fn qemu_interactive(mut cmd: std::process::Command, note: &str) -> Result {
    println!("$ {}{note}", test::show(&cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("qemu-system-aarch64: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("QEMU exited with {status}"))
    }
}
