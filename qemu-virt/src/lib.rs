//! Launching Tessera on `qemu-system-aarch64 -M virt`: the boot paths
//! (QEMU `-kernel`, U-Boot, and deliberately bad starts for tests), a time
//! limit, and the serial output captured as it arrives.

pub mod uboot;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where things go in guest RAM on QEMU virt (RAM starts at 0x4000_0000).
pub mod layout {
    /// The image runs here (RAM base + the header's text_offset).
    pub const IMAGE: u64 = 0x4020_0000;
    /// U-Boot: the boot script, above the 1 MiB QEMU reserves for its DTB.
    pub const UBOOT_SCRIPT: u64 = 0x4010_0000;
    /// U-Boot: where the image is staged before `booti` moves it into place.
    pub const UBOOT_STAGING: u64 = 0x4800_0000;
    /// Bad starts: a tiny trampoline that sets x0 and jumps to the image.
    pub const SHIM: u64 = 0x4400_0000;
    /// Bad starts: where a damaged DTB is placed.
    pub const BAD_DTB: u64 = 0x4800_0000;
}

/// U-Boot's environment flash bank on QEMU virt (pflash unit 1, 64 MiB; the
/// qemu_arm64 build keeps a 256 KiB environment at its start).
const UBOOT_ENV_SIZE: usize = 0x4_0000;
const PFLASH_SIZE: u64 = 64 << 20;
pub const UBOOT_BIN: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

/// How the image is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// `-kernel tessera.bin`: QEMU's own loader, DTB in x0, entered at EL2.
    Direct,
    /// U-Boot as `-bios`; image and `boot.scr` placed in RAM by `-device
    /// loader`; an environment flash whose `bootcmd` runs the script.
    UBoot,
    /// U-Boot as `-bios` and nothing else: it finds `boot.scr` on this boot
    /// medium (`cargo xtask image`), a virtio block device on virtio-mmio,
    /// and loads everything from it. `Run::image` is not used.
    Disk(PathBuf),
    /// The image in RAM and the core started at it with x0 = 0 (no DTB).
    NoDtb,
    /// As `NoDtb`, but x0 points at this (damaged) DTB blob.
    BadDtb(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Run {
    pub boot: Boot,
    /// The flat image (`target/images/tessera.bin`).
    pub image: PathBuf,
    /// `boot.scr` for [`Boot::UBoot`].
    pub boot_script: Option<PathBuf>,
    pub bootargs: String,
    /// `virtualization=on` (entry at EL2); off gives an EL1 entry.
    pub virtualization: bool,
    pub smp: u32,
    pub memory: String,
    /// `-icount shift=0`: one instruction per virtual nanosecond, so counter
    /// ticks count instructions (for benchmarks).
    pub icount: bool,
    pub extra_args: Vec<String>,
    /// `-nodefaults` (no default NIC or other devices; the serial port is
    /// added back): only what the run names exists.
    pub nodefaults: bool,
    /// Typed at the console, in order: each entry's bytes are sent once its
    /// text has appeared in the output (after the previous entry's).
    pub input: Vec<(String, Vec<u8>)>,
    /// Bytes to type as soon as they are put here, e.g. by `stop_when`
    /// (which sees the output): input that depends on more than a marker.
    pub typed: Option<Arc<Mutex<Vec<u8>>>>,
    /// Scratch files (environment flash, shim) go here.
    pub work_dir: PathBuf,
}

impl Run {
    pub fn new(boot: Boot, image: &Path, work_dir: &Path) -> Run {
        Run {
            boot,
            image: image.to_path_buf(),
            boot_script: None,
            bootargs: String::new(),
            virtualization: true,
            smp: 4,
            memory: "2G".into(),
            icount: false,
            extra_args: Vec::new(),
            nodefaults: false,
            input: Vec::new(),
            typed: None,
            work_dir: work_dir.to_path_buf(),
        }
    }

    /// The full QEMU command line; writes the scratch files it needs.
    pub fn command(&self) -> Result<Command, String> {
        std::fs::create_dir_all(&self.work_dir)
            .map_err(|e| format!("{}: {e}", self.work_dir.display()))?;
        let mut c = Command::new("qemu-system-aarch64");
        let virt = if self.virtualization { "on" } else { "off" };
        // With firmware (-bios), virt would build an ACPI GED where the
        // PL061 GPIO belongs (`acpi=auto`), and a VM given the GPIO by the
        // board file would take an external abort: the board is DT-only.
        let acpi = match self.boot {
            Boot::UBoot | Boot::Disk(_) => ",acpi=off",
            _ => "",
        };
        c.args([
            "-M",
            &format!("virt,virtualization={virt},gic-version=3,iommu=smmuv3{acpi}"),
        ]);
        // Stage 2 in the SMMU (QEMU's model defaults to stage 1 only); no
        // default NIC, which would sit on the PCIe bus outside every plan.
        c.args(["-global", "arm-smmuv3.stage=2", "-nic", "none"]);
        c.args([
            "-cpu",
            "max",
            "-smp",
            &self.smp.to_string(),
            "-m",
            &self.memory,
            "-nographic",
        ]);
        if self.icount {
            c.args(["-icount", "shift=0"]);
        }
        if self.nodefaults {
            c.args(["-nodefaults", "-serial", "stdio"]);
        }
        let image = self.image.display().to_string();
        match &self.boot {
            Boot::Direct => {
                c.args(["-kernel", &image]);
                if !self.bootargs.is_empty() {
                    c.args(["-append", &self.bootargs]);
                }
            }
            Boot::UBoot => {
                let script = self
                    .boot_script
                    .as_ref()
                    .ok_or("U-Boot boot needs boot.scr")?;
                let env = uboot::env_image(
                    &[
                        ("bootdelay", "0"),
                        ("bootcmd", &format!("source {:#x}", layout::UBOOT_SCRIPT)),
                        ("tessera_addr", &format!("{:#x}", layout::UBOOT_STAGING)),
                        ("tessera_args", &self.bootargs),
                    ],
                    UBOOT_ENV_SIZE,
                )?;
                let env_path = self.work_dir.join("uboot-env.img");
                let file = std::fs::File::create(&env_path).map_err(|e| e.to_string())?;
                use std::io::Write;
                (&file).write_all(&env).map_err(|e| e.to_string())?;
                file.set_len(PFLASH_SIZE).map_err(|e| e.to_string())?;
                c.args(["-bios", UBOOT_BIN]);
                c.args([
                    "-drive",
                    &format!("if=pflash,unit=1,format=raw,file={}", env_path.display()),
                ]);
                c.args([
                    "-device",
                    &format!(
                        "loader,file={},addr={:#x},force-raw=on",
                        script.display(),
                        layout::UBOOT_SCRIPT
                    ),
                ]);
                c.args([
                    "-device",
                    &format!(
                        "loader,file={image},addr={:#x},force-raw=on",
                        layout::UBOOT_STAGING
                    ),
                ]);
            }
            Boot::Disk(disk) => {
                c.args(["-bios", UBOOT_BIN]);
                // Read-only: U-Boot never writes it, and tests share it.
                c.args([
                    "-drive",
                    &format!(
                        "if=none,format=raw,readonly=on,id=boot,file={}",
                        disk.display()
                    ),
                ]);
                c.args(["-device", "virtio-blk-device,drive=boot"]);
            }
            Boot::NoDtb => {
                c.args([
                    "-device",
                    &format!("loader,file={image},addr={:#x},force-raw=on", layout::IMAGE),
                ]);
                c.args([
                    "-device",
                    &format!("loader,addr={:#x},cpu-num=0", layout::IMAGE),
                ]);
            }
            Boot::BadDtb(dtb) => {
                let shim = self.work_dir.join("shim.bin");
                std::fs::write(&shim, jump_shim(layout::BAD_DTB, layout::IMAGE))
                    .map_err(|e| e.to_string())?;
                c.args([
                    "-device",
                    &format!("loader,file={image},addr={:#x},force-raw=on", layout::IMAGE),
                ]);
                c.args([
                    "-device",
                    &format!(
                        "loader,file={},addr={:#x},force-raw=on",
                        dtb.display(),
                        layout::BAD_DTB
                    ),
                ]);
                c.args([
                    "-device",
                    &format!(
                        "loader,file={},addr={:#x},force-raw=on",
                        shim.display(),
                        layout::SHIM
                    ),
                ]);
                c.args([
                    "-device",
                    &format!("loader,addr={:#x},cpu-num=0", layout::SHIM),
                ]);
            }
        }
        c.args(&self.extra_args);
        Ok(c)
    }

    /// Runs QEMU until it exits, `stop_when` matches the output so far (QEMU
    /// is then stopped), or `limit` passes (QEMU is killed).
    pub fn run(
        &self,
        limit: Duration,
        stop_when: impl Fn(&str) -> bool,
    ) -> Result<Outcome, String> {
        let mut cmd = self.command()?;
        let mut child = cmd
            .stdin(if self.input.is_empty() && self.typed.is_none() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!("cannot start qemu-system-aarch64 (run `cargo xtask setup`): {e}")
            })?;
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for mut pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }));
        }
        let start = Instant::now();
        let (mut stopped, mut timed_out) = (false, false);
        let mut stdin = child.stdin.take();
        let mut script = self.input.iter();
        let mut next = script.next();
        let mut seen_up_to = 0;
        let status = loop {
            if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                break Some(s);
            }
            if let (Some(typed), Some(pipe)) = (&self.typed, stdin.as_mut()) {
                let bytes = std::mem::take(&mut *typed.lock().unwrap());
                if !bytes.is_empty() {
                    use std::io::Write;
                    pipe.write_all(&bytes)
                        .and_then(|_| pipe.flush())
                        .map_err(|e| format!("QEMU stdin: {e}"))?;
                }
            }
            if let (Some((marker, bytes)), Some(pipe)) = (next, stdin.as_mut()) {
                let out = output.lock().unwrap();
                if let Some(at) = out[seen_up_to..].find(marker.as_str()) {
                    seen_up_to += at + marker.len();
                    drop(out);
                    use std::io::Write;
                    pipe.write_all(bytes)
                        .and_then(|_| pipe.flush())
                        .map_err(|e| format!("QEMU stdin: {e}"))?;
                    next = script.next();
                }
            }
            if stop_when(&output.lock().unwrap()) {
                stopped = true;
            } else if start.elapsed() > limit {
                timed_out = true;
            }
            if stopped || timed_out {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for r in readers {
            let _ = r.join();
        }
        let output = output.lock().unwrap().replace('\r', "");
        Ok(Outcome {
            output,
            status,
            stopped,
            timed_out,
            elapsed: start.elapsed(),
        })
    }
}

#[derive(Debug)]
pub struct Outcome {
    /// Serial output and QEMU's own messages, `\r` removed.
    pub output: String,
    /// QEMU's exit status if it ended by itself.
    pub status: Option<ExitStatus>,
    /// Stopped because the output matched.
    pub stopped: bool,
    /// Killed at the time limit.
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn exited_cleanly(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Four instructions: x0 = `x0`, branch to `entry` (MOVZ/MOVK, BR).
pub fn jump_shim(x0: u64, entry: u64) -> Vec<u8> {
    let movz = |rd: u32, imm: u64, hw: u32| {
        0xd280_0000 | (hw << 21) | (((imm >> (16 * hw)) as u32 & 0xffff) << 5) | rd
    };
    let movk = |rd: u32, imm: u64, hw: u32| {
        0xf280_0000 | (hw << 21) | (((imm >> (16 * hw)) as u32 & 0xffff) << 5) | rd
    };
    let mut words = vec![movz(0, x0, 0)];
    words.extend((1..4).map(|hw| movk(0, x0, hw)));
    words.push(movz(1, entry, 0));
    words.extend((1..4).map(|hw| movk(1, entry, hw)));
    words.push(0xd61f_0000 | (1 << 5)); // br x1
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The boot script baked into `boot.scr`. The address and arguments come
/// from the environment so one script serves every run.
pub const BOOT_SCRIPT: &str = "\
# Tessera boot script for U-Boot (compiled into boot.scr by `cargo xtask build`).
# Expects the flat image at ${tessera_addr}; booti moves it to its link address.
echo \"Tessera: booting image at ${tessera_addr}\"
setenv bootargs \"${tessera_args}\"
booti ${tessera_addr} - ${fdtcontroladdr}
";

/// QEMU arguments for the cockpit's display (`boards/qemu-virt.toml`:
/// virtio-gpu-pci at 00:01.0, the GPU VM's, behind the SMMU), its
/// preferred mode the cockpit's output (512x256), so gpu-server's mode set
/// is exactly the layout; with `qmp`, a QMP socket at that path for
/// [`screendump`].
pub fn cockpit_display(qmp: Option<&Path>) -> Vec<String> {
    let mut a = vec![
        "-device".to_string(),
        "virtio-gpu-pci,addr=1,iommu_platform=on,disable-legacy=on,xres=512,yres=256".into(),
    ];
    if let Some(sock) = qmp {
        a.push("-qmp".into());
        a.push(format!("unix:{},server=on,wait=off", sock.display()));
    }
    a
}

/// One QMP command (JSON text) on a fresh connection to QEMU's `-qmp
/// unix:PATH,server=on,wait=off` socket: greeting, capabilities, the
/// command; its answer's line (`{"return": ...}` or `{"error": ...}`).
pub fn qmp(sock: &Path, command: &str) -> Result<String, String> {
    use std::io::{BufRead, BufReader, Write};
    let s = std::os::unix::net::UnixStream::connect(sock)
        .map_err(|e| format!("{}: {e}", sock.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let mut greeting = String::new();
    r.read_line(&mut greeting).map_err(|e| e.to_string())?;
    let mut line = String::new();
    let mut answer = || -> Result<String, String> {
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("QMP closed".into());
            }
            // Events come in between; the answer has "return" or "error".
            if line.contains("\"return\"") || line.contains("\"error\"") {
                return Ok(line.trim().to_string());
            }
        }
    };
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .map_err(|e| e.to_string())?;
    answer()?;
    w.write_all(command.as_bytes())
        .and_then(|_| w.write_all(b"\n"))
        .map_err(|e| e.to_string())?;
    answer()
}

/// QMP `screendump` of the display into `file`, as `format` (`ppm` or
/// `png`).
pub fn screendump(sock: &Path, file: &Path, format: &str) -> Result<(), String> {
    let a = qmp(
        sock,
        &format!(
            "{{\"execute\":\"screendump\",\"arguments\":{{\"filename\":\"{}\",\"format\":\"{format}\"}}}}",
            file.display()
        ),
    )?;
    if a.contains("\"return\"") {
        Ok(())
    } else {
        Err(format!("screendump: {a}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_encoding() {
        let s = jump_shim(0x4800_0000, 0x4020_0000);
        let w: Vec<u32> = s
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(w[0], 0xd280_0000); // movz x0, #0
        assert_eq!(w[1], 0xf2a9_0000); // movk x0, #0x4800, lsl #16
        assert_eq!(w[5], 0xf2a8_0401); // movk x1, #0x4020, lsl #16
        assert_eq!(w[8], 0xd61f_0020); // br x1
    }

    #[test]
    fn command_lines() {
        let dir = std::env::temp_dir().join("qemu-virt-test");
        let mut r = Run::new(Boot::Direct, Path::new("/img.bin"), &dir);
        r.bootargs = "tessera.exit=poweroff".into();
        let args: Vec<String> = r
            .command()
            .unwrap()
            .get_args()
            .map(|a| a.to_string_lossy().into())
            .collect();
        assert!(args.contains(&"virt,virtualization=on,gic-version=3,iommu=smmuv3".to_string()));
        assert!(args.windows(2).any(|w| w == ["-kernel", "/img.bin"]));
        assert!(args
            .windows(2)
            .any(|w| w == ["-append", "tessera.exit=poweroff"]));
        r.boot = Boot::UBoot;
        assert!(r.command().is_err(), "U-Boot needs a script");
        r.boot_script = Some("/boot.scr".into());
        let args: Vec<String> = r
            .command()
            .unwrap()
            .get_args()
            .map(|a| a.to_string_lossy().into())
            .collect();
        assert!(args
            .iter()
            .any(|a| a == "loader,file=/boot.scr,addr=0x40100000,force-raw=on"));
        assert!(args
            .contains(&"virt,virtualization=on,gic-version=3,iommu=smmuv3,acpi=off".to_string()));
        assert_eq!(
            std::fs::metadata(dir.join("uboot-env.img")).unwrap().len(),
            PFLASH_SIZE
        );
    }
}
