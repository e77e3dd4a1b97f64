//! tessera-shm-host: plays the hypervisor's part of the cockpit on one Linux
//! machine, so that gpu-share's cross-VM transport runs between ordinary
//! processes.
//!
//! Usage: tessera-shm-host --board FILE --dir DIR --vm NAME=COMMAND...
//!
//! Creates the board file's shared regions as `DIR/<region>.shm` and
//! `.irq` (header page written as the hypervisor writes it), starts each
//! `--vm` as `sh -c "exec COMMAND"` with `TESSERA_SHM` naming its regions
//! and its peer index in each (`region=DIR/region:peer,...`) and
//! `TESSERA_VM=NAME`, and writes its pid to `DIR/NAME.pid`. A "VM" whose
//! process ends is restarted, as under the restart fault policy: its boot
//! count and the generation go up in each of its regions and the other
//! peers' doorbells ring before it runs again. SIGTERM or SIGINT stops
//! every VM and then this program.

use gpu_xvm::host::HostShm;
use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

struct Vm {
    name: String,
    command: String,
    /// (region index in `regions`, this VM's peer index there)
    regions: Vec<(usize, u32)>,
    child: Option<Child>,
    boots: u32,
}

fn die(msg: &str) -> ! {
    eprintln!("tessera-shm-host: {msg}");
    std::process::exit(2)
}

fn main() {
    let (mut board, mut dir, mut vms) = (None, None, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--board" => board = Some(val()),
            "--dir" => dir = Some(val()),
            "--vm" => {
                let v = val();
                let (n, c) = v
                    .split_once('=')
                    .unwrap_or_else(|| die("--vm takes NAME=COMMAND"));
                vms.push((n.to_string(), c.to_string()));
            }
            _ => die(&format!("unknown argument {a}")),
        }
    }
    let board = board.unwrap_or_else(|| die("--board FILE is required"));
    let dir = dir.unwrap_or_else(|| die("--dir DIR is required"));
    let board =
        tessera_boards::load(std::path::Path::new(&board)).unwrap_or_else(|e| die(&e.to_string()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| die(&format!("{dir}: {e}")));
    let mut regions = Vec::new();
    for s in &board.shared {
        let prefix = format!("{dir}/{}", s.name);
        let shm = HostShm::create(&prefix, s.size.0 as usize, s.peers.len() as u32)
            .unwrap_or_else(|e| die(&format!("region {}: {e}", s.name)));
        regions.push((s, prefix, shm));
    }
    let mut vms: Vec<Vm> = vms
        .into_iter()
        .map(|(name, command)| {
            if !board.vms.iter().any(|v| v.name == name) {
                die(&format!("no VM {name} in the board file"));
            }
            let regions = regions
                .iter()
                .enumerate()
                .filter_map(|(i, (s, _, _))| {
                    let p = s.peers.iter().position(|p| p.vm == name)?;
                    Some((i, p as u32))
                })
                .collect();
            Vm {
                name,
                command,
                regions,
                child: None,
                boots: 0,
            }
        })
        .collect();
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let start = |vm: &mut Vm| {
        let spec: Vec<String> = vm
            .regions
            .iter()
            .map(|(i, p)| format!("{}={}:{p}", regions[*i].0.name, regions[*i].1))
            .collect();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {}", vm.command))
            .env("TESSERA_SHM", spec.join(","))
            .env("TESSERA_VM", &vm.name)
            .spawn()
            .unwrap_or_else(|e| die(&format!("{}: {e}", vm.name)));
        let _ = std::fs::write(format!("{dir}/{}.pid", vm.name), child.id().to_string());
        eprintln!(
            "tessera-shm-host: vm {} started (boot {}, pid {})",
            vm.name,
            vm.boots,
            child.id()
        );
        vm.child = Some(child);
    };
    for vm in vms.iter_mut() {
        start(vm);
    }
    let mut last_start: HashMap<String, std::time::Instant> = HashMap::new();
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        for vm in vms.iter_mut() {
            let Some(c) = vm.child.as_mut() else { continue };
            let Ok(Some(st)) = c.try_wait() else { continue };
            vm.child = None;
            if STOP.load(Ordering::SeqCst) {
                break;
            }
            vm.boots += 1;
            eprintln!("tessera-shm-host: vm {} ended ({st}); restarting", vm.name);
            for (i, p) in &vm.regions {
                regions[*i].2.restarted(*p);
            }
            // A VM that dies at once must not spin this machine.
            let since = last_start.get(&vm.name).map(|t| t.elapsed());
            if since.is_some_and(|d| d < Duration::from_millis(500)) {
                std::thread::sleep(Duration::from_millis(500));
            }
            last_start.insert(vm.name.clone(), std::time::Instant::now());
            start(vm);
        }
    }
    for vm in vms.iter_mut() {
        if let Some(c) = vm.child.as_mut() {
            // SAFETY: a signal to our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
    }
    for vm in vms.iter_mut() {
        if let Some(mut c) = vm.child.take() {
            let _ = c.wait();
        }
    }
    eprintln!("tessera-shm-host: stopped");
}
