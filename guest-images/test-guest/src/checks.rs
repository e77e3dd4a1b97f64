//! The checks that need no peer VM: memory, timer, PSCI, SGIs between the
//! VM's vCPUs, the hypercall round trip and the isolation fault; and what
//! secondary vCPUs do when started.

use crate::console::{self, fail, report, CheckResult};
use crate::dt::VmInfo;
use crate::timer::{self, ms, now, wait_until};
use crate::{doorbell, entry, gic, msg, psci, vcpu};
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};

const MIB: u64 = 1 << 20;

/// What a secondary vCPU does when started (its PSCI context id).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u64)]
pub enum Secondary {
    /// Report in, wait for vCPU 0's release, CPU_OFF (the `psci` check).
    ReportIn = 1,
    /// Exchange SGIs with vCPU 0 (the `sgi` check).
    Sgi = 2,
    /// Flood the hypervisor with hypercalls and doorbells (`flood`).
    Flood = 3,
    /// Timer ticks, an SGI left pending, then `CPU_OFF` (`cpu-off-on`).
    BeforeOff = 4,
    /// After `CPU_ON` again: the SGI and timer ticks (`cpu-off-on`).
    AfterOn = 5,
    /// Read outside the VM's memory with vCPU 0 (`restart-once`).
    FaultTogether = 6,
    /// The losing `CPU_ON` of the `cpu-on-race` check: must never run.
    RaceLoser = 7,
}

impl Secondary {
    pub fn from_context(c: u64) -> Option<Secondary> {
        [
            Secondary::ReportIn,
            Secondary::Sgi,
            Secondary::Flood,
            Secondary::BeforeOff,
            Secondary::AfterOn,
            Secondary::FaultTogether,
            Secondary::RaceLoser,
        ]
        .into_iter()
        .find(|s| *s as u64 == c)
    }
}

/// The job a started vCPU has reached (after its GIC is up).
static UP: AtomicU32 = AtomicU32::new(0);
/// vCPU 0 lets a reported-in vCPU go off.
static RELEASE: AtomicBool = AtomicBool::new(false);
/// vCPU 1's side of the SGI exchange: 0 running, 1 done, else failed at 1000 + n.
static SGI_RESULT: AtomicU32 = AtomicU32::new(0);
const SGIS_EACH_WAY: u32 = 100;

/// Secondary vCPUs' work, then back to `CPU_OFF` in the caller.
pub fn secondary(job: Option<Secondary>) {
    let Some(job) = job else {
        fail(
            "psci",
            msg!("vCPU {} started with an unknown context id", vcpu()),
        );
        return;
    };
    UP.store(job as u32, SeqCst);
    match job {
        Secondary::ReportIn => {
            if !wait_until(now() + ms(10_000), || RELEASE.load(SeqCst)) {
                fail("psci", msg!("vCPU {}: never released by vCPU 0", vcpu()));
            }
        }
        Secondary::Sgi => {
            let r = match exchange_sgis(0) {
                Ok(()) => 1,
                Err(n) => 1000 + n,
            };
            SGI_RESULT.store(r, SeqCst);
        }
        Secondary::Flood => doorbell::flood(),
        Secondary::BeforeOff => crate::lifecycle::before_off(),
        Secondary::AfterOn => crate::lifecycle::after_on(),
        Secondary::FaultTogether => {
            crate::lifecycle::fault_together(crate::lifecycle::fault_address())
        }
        Secondary::RaceLoser => crate::hardening::race_loser_ran(),
    }
}

/// Starts vCPU `v` with `job` once it is off; returns CPU_ON's result.
pub fn start_secondary(v: usize, job: Secondary) -> i64 {
    wait_until(now() + ms(5_000), || {
        psci::affinity_info(v) == psci::AFFINITY_OFF
    });
    UP.store(0, SeqCst);
    RELEASE.store(false, SeqCst);
    psci::cpu_on(v, job as u64)
}

/// Lets a vCPU that reported in (`ReportIn`) go off.
pub fn release_secondary() {
    RELEASE.store(true, SeqCst);
}

/// Whether a started vCPU has reached `job`.
pub fn is_up_as(job: Secondary) -> bool {
    UP.load(SeqCst) == job as u32
}

pub fn up_as(job: Secondary) -> bool {
    wait_until(now() + ms(10_000), || UP.load(SeqCst) == job as u32)
}

/// Patterns over a few MiB of RAM that hold neither the image (code, data,
/// stacks) nor the DTB.
pub fn memory(vm: &VmInfo) {
    report("memory", memory_result(vm));
}

fn memory_result(vm: &VmInfo) -> CheckResult {
    const WANT: u64 = 4 * MIB;
    let (ram, ram_end) = (vm.ram.0, vm.ram.0 + vm.ram.1);
    let (_, image_end) = entry::image_range();
    let (dtb, dtb_end) = (vm.dtb.0, vm.dtb.0 + vm.dtb.1);
    let mut start = image_end.next_multiple_of(MIB).max(ram);
    if start < dtb_end && dtb < start + WANT {
        start = dtb_end.next_multiple_of(MIB);
    }
    let len = WANT.min(ram_end.saturating_sub(start));
    if len < MIB {
        return Err(msg!(
            "no free RAM to test in {ram:#x}..{ram_end:#x} (image ends {image_end:#x}, DTB {dtb:#x}..{dtb_end:#x})"
        ));
    }
    let words = (len / 8) as usize;
    let p = start as *mut u64;
    let patterns: [fn(u64) -> u64; 3] = [
        |a| a ^ 0x5a5a_5a5a_5a5a_5a5a,
        |a| !a,
        |a| a.rotate_left(17).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    ];
    for (k, pat) in patterns.iter().enumerate() {
        for i in 0..words {
            // SAFETY: [start, start + len) is RAM of this VM that nothing
            // else uses (checked above).
            unsafe { write_volatile(p.add(i), pat(start + 8 * i as u64)) };
        }
        for i in 0..words {
            let addr = start + 8 * i as u64;
            // SAFETY: as above.
            let got = unsafe { read_volatile(p.add(i)) };
            if got != pat(addr) {
                return Err(msg!(
                    "pattern {k} at {addr:#x}: wrote {:#x}, read {got:#x}",
                    pat(addr)
                ));
            }
        }
    }
    Ok(msg!(
        "{} MiB at {start:#x}, {} patterns",
        len / MIB,
        patterns.len()
    ))
}

/// 100 virtual-timer ticks at 1 kHz.
pub fn timer() {
    const TICKS: u64 = 100;
    let period = timer::frequency() / 1000;
    let exits_before = psci::call(psci::TESSERA_EXITS, 0, 0, 0);
    timer::start_ticks(period, TICKS);
    let done = wait_until(now() + period * TICKS * 5 + ms(2_000), || {
        timer::ticks() >= TICKS
    });
    timer::stop_ticks();
    let exits = psci::call(psci::TESSERA_EXITS, 0, 0, 0) - exits_before - 1;
    let s = timer::stats();
    if exits_before >= 0 {
        console::line(format_args!(
            "bench vtimer-exits: {exits} exits for {} ticks",
            s.count
        ));
    }
    console::line(format_args!(
        "bench vtimer-latency: mean {} max {} ticks ({} samples)",
        s.mean_late, s.max_late, s.count
    ));
    let r = if !done {
        Err(msg!("only {} of {TICKS} ticks arrived (lost)", s.count))
    } else if s.early > 0 {
        Err(msg!("{} ticks arrived before their deadline", s.early))
    } else if s.mean_period.abs_diff(period) * 5 > period {
        Err(msg!(
            "mean period {} ticks, want {period} +-20%",
            s.mean_period
        ))
    } else {
        Ok(msg!(
            "{TICKS} ticks at 1 kHz, mean period {} ticks (nominal {period}), lateness mean {} max {} ticks",
            s.mean_period,
            s.mean_late,
            s.max_late
        ))
    };
    report("timer", r);
}

pub fn psci(vm: &VmInfo) {
    report("psci", psci_result(vm));
}

fn psci_result(vm: &VmInfo) -> CheckResult {
    let v = psci::call(psci::PSCI_VERSION, 0, 0, 0);
    let (major, minor) = (v >> 16, v & 0xffff);
    if !(1..0x8000).contains(&major) {
        return Err(msg!("PSCI_VERSION {v:#x}: want >= 1.0"));
    }
    let f = psci::call(psci::PSCI_FEATURES, psci::CPU_ON_64 as u64, 0, 0);
    if f != 0 {
        return Err(msg!("PSCI_FEATURES(CPU_ON) = {f}, want 0"));
    }
    let f = psci::call(psci::PSCI_FEATURES, psci::UNKNOWN_FUNCTION as u64, 0, 0);
    if f != psci::NOT_SUPPORTED {
        return Err(msg!(
            "PSCI_FEATURES({:#x}) = {f}, want NOT_SUPPORTED (-1)",
            psci::UNKNOWN_FUNCTION
        ));
    }
    let m = psci::call(psci::MIGRATE_INFO_TYPE, 0, 0, 0);
    if m != 2 {
        return Err(msg!("MIGRATE_INFO_TYPE = {m}, want 2"));
    }
    if vm.in_vm() {
        let other = psci::call_other_conduit(psci::PSCI_VERSION);
        if other != v {
            return Err(msg!(
                "PSCI_VERSION over the other conduit = {other:#x}, want {v:#x}"
            ));
        }
    }
    if vm.vcpus < 2 {
        return Ok(msg!("version {major}.{minor}, 1 vCPU"));
    }
    let a = psci::affinity_info(1);
    if a != psci::AFFINITY_OFF {
        return Err(msg!(
            "AFFINITY_INFO(vCPU 1) = {a} before CPU_ON, want OFF (1)"
        ));
    }
    let r = start_secondary(1, Secondary::ReportIn);
    if r != 0 {
        return Err(msg!("CPU_ON(vCPU 1) = {r}, want 0"));
    }
    if !up_as(Secondary::ReportIn) {
        return Err(msg!("vCPU 1 did not report in after CPU_ON"));
    }
    let a = psci::affinity_info(1);
    RELEASE.store(true, SeqCst);
    if a != psci::AFFINITY_ON {
        return Err(msg!(
            "AFFINITY_INFO(vCPU 1) = {a} while running, want ON (0)"
        ));
    }
    let mut a = a;
    if !wait_until(now() + ms(5_000), || {
        a = psci::affinity_info(1);
        a == psci::AFFINITY_OFF
    }) {
        return Err(msg!(
            "AFFINITY_INFO(vCPU 1) = {a} after its CPU_OFF, want OFF (1)"
        ));
    }
    Ok(msg!(
        "version {major}.{minor}, vCPU 1 on, reported in, off again"
    ))
}

/// Sends SGIS_EACH_WAY SGIs to `peer`, each after the previous one arrived,
/// and waits for as many from it. Err(n): SGI n did not arrive.
fn exchange_sgis(peer: usize) -> Result<(), u32> {
    for n in 1..=SGIS_EACH_WAY {
        gic::send_sgi(gic::SGI_TEST, peer);
        if !wait_until(now() + ms(1_000), || gic::SGIS[peer].load(SeqCst) >= n) {
            return Err(n);
        }
    }
    let me = vcpu();
    if !wait_until(now() + ms(5_000), || {
        gic::SGIS[me].load(SeqCst) >= SGIS_EACH_WAY
    }) {
        return Err(2000 + gic::SGIS[me].load(SeqCst));
    }
    Ok(())
}

/// vCPU 0 and vCPU 1 send each other 100 SGIs.
pub fn sgi() {
    report("sgi", sgi_result());
}

fn sgi_result() -> CheckResult {
    for c in &gic::SGIS {
        c.store(0, SeqCst);
    }
    SGI_RESULT.store(0, SeqCst);
    let r = start_secondary(1, Secondary::Sgi);
    if r != 0 {
        return Err(msg!("CPU_ON(vCPU 1) = {r}"));
    }
    if !up_as(Secondary::Sgi) {
        return Err(msg!("vCPU 1 did not come up"));
    }
    let mine = exchange_sgis(1);
    wait_until(now() + ms(10_000), || SGI_RESULT.load(SeqCst) != 0);
    let theirs = SGI_RESULT.load(SeqCst);
    let (got0, got1) = (gic::SGIS[0].load(SeqCst), gic::SGIS[1].load(SeqCst));
    if let Err(n) = mine {
        return Err(msg!(
            "vCPU 0 -> 1: SGI {n} did not arrive (vCPU 1 got {got1}, vCPU 0 got {got0})"
        ));
    }
    match theirs {
        1 => {}
        0 => return Err(msg!("vCPU 1 did not finish (it got {got1}, sent {got0})")),
        n => {
            return Err(msg!(
                "vCPU 1 -> 0: SGI {} did not arrive (vCPU 0 got {got0})",
                n - 1000
            ))
        }
    }
    if got0 != SGIS_EACH_WAY || got1 != SGIS_EACH_WAY {
        return Err(msg!(
            "counts: vCPU 0 got {got0}, vCPU 1 got {got1}, want {SGIS_EACH_WAY} each"
        ));
    }
    Ok(msg!(
        "{SGIS_EACH_WAY} SGIs each way between vCPU 0 and vCPU 1"
    ))
}

/// TESSERA_PING round trips (in a VM only).
pub fn hvc_roundtrip() {
    const CALLS: u64 = 1000;
    let mut bad = 0;
    let t = now();
    for _ in 0..CALLS {
        if psci::ping() != 0 {
            bad += 1;
        }
    }
    let per = (now() - t) / CALLS;
    console::line(format_args!(
        "bench hvc-roundtrip: {per} ticks per call ({CALLS} calls)"
    ));
    let r = if bad == 0 {
        Ok(msg!("TESSERA_PING returned 0 {CALLS} times"))
    } else {
        Err(msg!(
            "TESSERA_PING returned non-zero {bad} of {CALLS} times"
        ))
    };
    report("hypercall", r);
}

/// An address outside the VM's RAM: reading it must stop (and, by policy,
/// restart) the VM.
pub fn outside_address(vm: &VmInfo) -> u64 {
    (vm.ram.0 + vm.ram.1).next_multiple_of(32 * MIB) + 32 * MIB
}

/// QEMU virt's PL031 RTC, SPI 2: passed through to t1 only in the test plan.
const RTC_SPI: u32 = 2;

/// Passed-through devices: a VM whose DTB has the RTC can use it (its
/// registers answer, its clock runs); a VM without it has no node for it.
pub fn devices(vm: &VmInfo) {
    let result = match vm.rtc {
        Some((base, spi)) => {
            // SAFETY: the RTC's registers, passed through to this VM (its DTB says so).
            let (id0, id1, now) = unsafe {
                (
                    crate::mmio::read32(base as usize + 0xfe0),
                    crate::mmio::read32(base as usize + 0xfe4),
                    crate::mmio::read32(base as usize),
                )
            };
            if id0 == 0x31 && id1 == 0x10 && now > 1_600_000_000 {
                Ok(msg!(
                    "PL031 at {base:#x} (SPI {spi}) answers: PeriphID 0x31 0x10, time {now}"
                ))
            } else {
                Err(msg!(
                    "PL031 at {base:#x}: PeriphID {id0:#x} {id1:#x}, time {now}"
                ))
            }
        }
        None => Ok(msg!("no passed-through device in my DTB")),
    };
    report("devices", result);
}

/// A VM can enable or pend only the SPIs it owns: the RTC's SPI for t1,
/// nothing of it for the others (their writes are ignored, reads say 0).
pub fn gic_ownership(vm: &VmInfo) {
    let owned = vm.rtc.is_some_and(|(_, spi)| spi == RTC_SPI);
    let intid = RTC_SPI + 32;
    gic::enable_spi(intid, 0);
    let enabled = gic::spi_enabled(intid);
    gic::disable_spi(intid);
    let result = if enabled == owned {
        Ok(msg!(
            "SPI {RTC_SPI} {}",
            if owned {
                "(mine) enabled"
            } else {
                "(not mine) stayed disabled"
            }
        ))
    } else {
        Err(msg!(
            "SPI {RTC_SPI}: owned {owned}, but enabling it left it enabled={enabled}"
        ))
    };
    report("gic-ownership", result);
}

/// More interrupts pending at once than the GIC has list registers: eight
/// distinct SGIs to itself while IRQs are masked; all eight must arrive
/// once they are unmasked (the hypervisor refills its list registers).
pub fn lr_overflow() {
    gic::enable_burst_sgis();
    let me = vcpu();
    let before = gic::SGIS[me].load(SeqCst);
    crate::exceptions::mask_irqs();
    for sgi in gic::SGI_BURST {
        gic::send_sgi(sgi, me);
    }
    crate::exceptions::unmask_irqs();
    let want = before + gic::SGI_BURST.len() as u32;
    wait_until(now() + ms(100), || gic::SGIS[me].load(SeqCst) >= want);
    let got = gic::SGIS[me].load(SeqCst) - before;
    let result = if got == gic::SGI_BURST.len() as u32 {
        Ok(msg!("{got} SGIs raised at once, all delivered"))
    } else {
        Err(msg!(
            "{} SGIs raised at once, {got} delivered",
            gic::SGI_BURST.len()
        ))
    };
    report("lr-overflow", result);
}
