//! The Linux guests' self-check, run by `/init`: one line per check,
//! `tessera-linux: PASS <check> [what was seen]` or
//! `tessera-linux: FAIL <check> <why>`, then `tessera-linux: DONE <n>
//! passed, <m> failed`. Which checks run comes from the kernel command
//! line (config.rs), so a test harness picks them per VM.

mod config;
mod fpsimd;

use std::fs;
use std::time::{Duration, Instant};
use tessera_shm_linux::{pingpong, Region};

type Check = Result<String, String>;

fn sys(path: &str) -> Result<String, String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{path}: {e}"))
}

fn cpus(c: &config::Config) -> Check {
    let online = config::cpu_count(&sys("/sys/devices/system/cpu/online")?)?;
    let want = match c.cpus {
        Some(n) => n,
        None => config::cpu_count(&sys("/sys/devices/system/cpu/possible")?)?,
    };
    if online == want {
        Ok(format!("{online} online"))
    } else {
        Err(format!("{online} CPUs online, expected {want}"))
    }
}

fn set_online(cpu: usize, on: bool) -> Result<(), String> {
    let p = format!("/sys/devices/system/cpu/cpu{cpu}/online");
    fs::write(&p, if on { "1" } else { "0" }).map_err(|e| format!("writing {p}: {e}"))
}

/// Runs `f` on `cpu` (pinned), returning the CPU it ran on.
fn on_cpu(cpu: usize) -> Result<usize, String> {
    std::thread::spawn(move || {
        // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                return Err(format!(
                    "pinning to cpu{cpu}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
            Ok(libc::sched_getcpu() as usize)
        }
    })
    .join()
    .map_err(|_| "thread panicked".to_string())?
}

/// cpu1 offline (PSCI CPU_OFF) and back (CPU_ON), then work runs on it.
fn hotplug() -> Check {
    if config::cpu_count(&sys("/sys/devices/system/cpu/possible")?)? < 2 {
        return Err("only one CPU: nothing to take offline".into());
    }
    let t = Instant::now();
    set_online(1, false)?;
    let off = sys("/sys/devices/system/cpu/online")?;
    if off != "0" && !off.starts_with("0,") {
        return Err(format!("after cpu1 offline, online is '{off}'"));
    }
    if on_cpu(1).is_ok() {
        return Err("a thread could be pinned to the offline cpu1".into());
    }
    set_online(1, true)?;
    let on = sys("/sys/devices/system/cpu/online")?;
    if config::cpu_count(&on)? < 2 {
        return Err(format!("after cpu1 online, online is '{on}'"));
    }
    let ran = on_cpu(1)?;
    if ran != 1 {
        return Err(format!("pinned to cpu1, ran on cpu{ran}"));
    }
    Ok(format!(
        "cpu1 off and on again in {} ms, then ran a thread",
        t.elapsed().as_millis()
    ))
}

/// The virtual counter and its frequency (EL0 may read them: Linux
/// allows it for the vDSO).
fn counter() -> (u64, u64) {
    #[cfg(target_arch = "aarch64")]
    {
        let (c, f): (u64, u64);
        // SAFETY: reading EL0-accessible counter registers.
        unsafe {
            std::arch::asm!("isb", "mrs {c}, cntvct_el0", "mrs {f}, cntfrq_el0", c = out(reg) c, f = out(reg) f)
        };
        (c, f)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<Instant> = OnceLock::new();
        (
            T0.get_or_init(Instant::now).elapsed().as_nanos() as u64,
            1_000_000_000,
        )
    }
}

/// How late a sleep may end. Under QEMU without `-icount` on a busy host
/// a vCPU thread can wait for a host CPU for tens of ms; a lost or
/// misprogrammed timer interrupt costs far more (the next tick, or never).
const SLEEP_LATE_MAX_US: u64 = 250_000;

/// `sleep` against the virtual counter: never early, not much late, and
/// the kernel's clock runs at the counter's rate (CNTFRQ is right).
fn sleep_check() -> Check {
    let (mut worst, mut total_counter, mut total_clock) = (0u64, 0u64, 0u64);
    for ms in [10u64, 50, 100, 200] {
        let (c0, f) = counter();
        let m0 = Instant::now();
        std::thread::sleep(Duration::from_millis(ms));
        let (c1, _) = counter();
        let by_clock = m0.elapsed().as_micros() as u64;
        let by_counter = (c1 - c0) * 1_000_000 / f; // us
        if by_counter < ms * 1000 {
            return Err(format!(
                "sleep {ms} ms ended after {by_counter} us by the counter"
            ));
        }
        let late = by_counter - ms * 1000;
        if late > SLEEP_LATE_MAX_US {
            return Err(format!("sleep {ms} ms took {by_counter} us by the counter"));
        }
        worst = worst.max(late);
        total_counter += by_counter;
        total_clock += by_clock;
    }
    // Both reads pairs are back to back, so they differ by at most a
    // preemption; a wrong frequency shows as a proportional difference.
    if total_clock.abs_diff(total_counter) > 20_000 + total_counter / 50 {
        return Err(format!(
            "360 ms of sleeps: {total_counter} us by the counter, {total_clock} us by CLOCK_MONOTONIC"
        ));
    }
    Ok(format!(
        "10-200 ms sleeps never early, at most {worst} us late; CLOCK_MONOTONIC {total_clock} us vs counter {total_counter} us"
    ))
}

const RUNS: u32 = 10;

/// The FP/SIMD computation on every online CPU at once while the main
/// thread sleeps in short steps (timer interrupts, context switches).
fn fpsimd_check() -> Check {
    let n = config::cpu_count(&sys("/sys/devices/system/cpu/online")?)?;
    let t = Instant::now();
    let workers: Vec<_> = (0..n * 2)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..RUNS {
                    let got = fpsimd::run(fpsimd::SEED, fpsimd::ROUNDS);
                    if got != fpsimd::EXPECTED {
                        return Err(format!("got {got:#x}, expected {:#x}", fpsimd::EXPECTED));
                    }
                    std::thread::yield_now();
                }
                Ok(())
            })
        })
        .collect();
    let mut naps = 0;
    while workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(1));
        naps += 1;
    }
    for w in workers {
        w.join().map_err(|_| "worker panicked".to_string())??;
    }
    Ok(format!(
        "{} threads x {RUNS} runs right in {} ms ({naps} naps meanwhile)",
        n * 2,
        t.elapsed().as_millis()
    ))
}

fn devices(c: &config::Config) -> Check {
    if fs::metadata("/sys/module/tessera_shm").is_err() {
        return Err("the tessera_shm module is not loaded".into());
    }
    let found = tessera_shm_linux::list().map_err(|e| e.to_string())?;
    for want in &c.shm {
        if !found.contains(&want.name) {
            return Err(format!("no region {} (found: {found:?})", want.name));
        }
        let r = Region::open(&want.name).map_err(|e| e.to_string())?;
        if r.size() as u64 != want.size || r.writable() != want.writable {
            return Err(format!(
                "{}: {:#x} bytes {}, expected {:#x} {}",
                want.name,
                r.size(),
                if r.writable() { "rw" } else { "ro" },
                want.size,
                if want.writable { "rw" } else { "ro" }
            ));
        }
        r.header().map_err(|e| format!("{}: {e}", want.name))?;
    }
    if found.len() != c.shm.len() && !c.shm.is_empty() {
        return Err(format!(
            "regions {found:?}, expected {} of them",
            c.shm.len()
        ));
    }
    Ok(format!("regions {found:?}"))
}

/// This VM's boot count from the guest DTB (0 at first boot).
fn boot_count() -> Result<u32, String> {
    let p = "/proc/device-tree/chosen/tessera,boot-count";
    let b = fs::read(p).map_err(|e| format!("{p}: {e}"))?;
    let b: [u8; 4] = b.try_into().map_err(|_| format!("{p}: not one cell"))?;
    Ok(u32::from_be_bytes(b))
}

fn pingpong_check(name: &str, side: pingpong::Side, n: u32, crash: Option<u32>) -> Check {
    let r = Region::open(name).map_err(|e| e.to_string())?;
    if !r.writable() {
        return Err(format!("{name} is read-only here"));
    }
    let crash = match crash {
        Some(at) if boot_count()? == 0 => Some(at),
        _ => None,
    };
    let t = Instant::now();
    let s = pingpong::run_observed(&r, side, (n, u32::MAX, 1), &mut |received| {
        if Some(received) == crash {
            println!(
                "tessera-linux: crashing the kernel after {received} messages (tessera.crash)"
            );
            // The kernel does not return from this write.
            let _ = fs::write("/proc/sysrq-trigger", "c");
        }
    })
    .map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    Ok(format!(
        "{name} side {side:?}: {} messages each way, {} body bytes, {:.2} s ({:.0} round trips/s), {} restart(s) seen",
        s.messages,
        s.bytes,
        secs,
        s.messages as f64 / secs,
        s.restarts
    ))
}

/// One page of region `name` at `offset` mapped read-write (the module
/// refuses that for read-only parts unless `stage2_test` is set).
fn map_writable(name: &str, offset: i64) -> Result<*mut u32, String> {
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/tessera/{name}"))
        .map_err(|e| format!("{name}: {e}"))?;
    // SAFETY: a new shared mapping of our device (it outlives the fd).
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&dev),
            offset,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!(
            "mapping {name} writable: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(p as *mut u32)
}

/// Doorbell round trips from user space, one message at a time (session
/// 2: after the ping-pong's session 1 on the same region).
fn rtt_check(name: &str, side: pingpong::Side, n: u32) -> Check {
    let r = Region::open(name).map_err(|e| e.to_string())?;
    let (c0, f) = counter();
    let s = pingpong::run_observed(&r, side, (n, 1, 2), &mut |_| {}).map_err(|e| e.to_string())?;
    let ticks = counter().0 - c0;
    let mean = ticks / n as u64;
    Ok(match side {
        pingpong::Side::A => format!(
            "{name}: {n} round trips, mean {mean} counter ticks ({} ns at {f} Hz), {} restart(s) seen",
            mean * 1_000_000_000 / f,
            s.restarts
        ),
        pingpong::Side::B => format!("{name}: answered {n} one at a time"),
    })
}

/// A write to a read-only region's mapping: Linux's own page tables catch
/// it (SIGSEGV in a child), and a writable mapping is refused.
fn rofault(name: &str) -> Check {
    let r = Region::open(name).map_err(|e| e.to_string())?;
    if r.writable() {
        return Err(format!("{name} is writable here: nothing to fault"));
    }
    let stage2 = sys("/sys/module/tessera_shm/parameters/stage2_test")? == "Y";
    let refused = match map_writable(name, 0x1000) {
        Ok(p) => {
            // SAFETY: our mapping, unmapped once.
            unsafe { libc::munmap(p as *mut libc::c_void, 4096) };
            if !stage2 {
                return Err("a writable mapping of a read-only region was allowed".into());
            }
            "allowed for the stage-2 test"
        }
        Err(_) => "refused",
    };
    // SAFETY: fork in a process with no other threads running; the child
    // only writes to the mapping and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: the data mapping of `r`; the write must fault.
        unsafe {
            std::ptr::write_volatile(r.data(), 0x5a);
            libc::_exit(0)
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV {
        Ok(format!(
            "{name}: a write faulted (SIGSEGV); a writable mapping was {refused}"
        ))
    } else {
        Err(format!(
            "{name}: the write did not fault (wait status {status:#x})"
        ))
    }
}

/// The hypervisor's containment: map the read-only region writable (the
/// module allows it only with stage2_test) and write. Stage 2 must stop
/// this VM; returning is a failure.
fn stage2_write(name: &str) -> String {
    // The data, read-only for this VM.
    let p = match map_writable(name, 0x1000) {
        Ok(p) => p,
        Err(e) => return format!("{e} (boot with tessera_shm.stage2_test=1)"),
    };
    println!("tessera-linux: rofault-stage2: writing read-only {name} past Linux; the hypervisor must stop or restart this VM");
    // SAFETY: a mapped page; the write is the test.
    unsafe { std::ptr::write_volatile(p, 0xdead_beef) };
    std::thread::sleep(Duration::from_millis(100));
    format!("{name}: the write went through to read-only memory")
}

fn main() {
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let role = fs::read_to_string("/etc/tessera-role").unwrap_or_default();
    let c = match config::parse(&cmdline, role.trim()) {
        Ok(c) => c,
        Err(e) => {
            println!("tessera-linux: FAIL config {e}");
            println!("tessera-linux: DONE 0 passed, 1 failed");
            std::process::exit(1);
        }
    };
    let (mut pass, mut fail) = (0, 0);
    for check in &c.checks {
        // One result per exchange for pingpong (a line each: console
        // lines are short), one for every other check.
        let results = match check.as_str() {
            "cpus" => vec![cpus(&c)],
            "hotplug" => vec![hotplug()],
            "sleep" => vec![sleep_check()],
            "fpsimd" => vec![fpsimd_check()],
            "devices" => vec![devices(&c)],
            "pingpong" => c
                .pingpong
                .iter()
                .map(|(name, side, n)| pingpong_check(name, *side, *n, c.crash_after))
                .collect(),
            "rtt" => {
                let (name, side, n) = c.rtt.as_ref().unwrap();
                vec![rtt_check(name, *side, *n)]
            }
            "rofault" => vec![rofault(&c.rofault.as_ref().unwrap().0)],
            _ => unreachable!("config::parse knows the checks"),
        };
        for r in results {
            match r {
                Ok(what) => {
                    pass += 1;
                    println!("tessera-linux: PASS {check} {what}");
                }
                Err(why) => {
                    fail += 1;
                    println!("tessera-linux: FAIL {check} {why}");
                }
            }
        }
    }
    println!("tessera-linux: DONE {pass} passed, {fail} failed");
    if let Some((name, true)) = &c.rofault {
        if c.checks.iter().any(|x| x == "rofault") {
            let why = stage2_write(name);
            println!("tessera-linux: FAIL rofault-stage2 {why}");
        }
    }
    std::process::exit(if fail == 0 { 0 } else { 1 });
}
