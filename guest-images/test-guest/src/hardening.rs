//! Checks of the hypervisor's edges (issue 8): SMCCC discovery, 32-bit PSCI
//! arguments, racing `CPU_ON`s, a doorbell storm against a masked peer, and
//! the shared-region header that tells peers about a restart.

use crate::checks::{self, Secondary};
use crate::console::{self, fail, pass, report, CheckResult};
use crate::dt::{Shm, VmInfo};
use crate::timer::{ms, now, wait_until};
use crate::{exceptions, gic, msg, psci};
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};

const SMCCC_VERSION: u32 = 0x8000_0000;
const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
const WORKAROUNDS: [(u32, &str); 3] = [
    (0x8000_8000, "WORKAROUND_1"),
    (0x8000_7fff, "WORKAROUND_2"),
    (0x8000_3fff, "WORKAROUND_3"),
];
const AFFINITY_INFO_32: u32 = 0x8400_0004;

/// The calling vCPU's exits to EL2 so far (this call included).
fn exits() -> u64 {
    psci::call(psci::TESSERA_EXITS, 0, 0, 0) as u64
}

fn get(addr: u64) -> u32 {
    // SAFETY: a word of a shared region the DTB gives this VM (mapped
    // Normal by `mmu::init`).
    unsafe { read_volatile(addr as *const u32) }
}

fn set(addr: u64, v: u32) {
    // SAFETY: as in `get`, in the data part of a writable region.
    unsafe { write_volatile(addr as *mut u32, v) }
}

/// SMCCC 1.1 discovery as Linux does it: `PSCI_FEATURES(SMCCC_VERSION)`,
/// `SMCCC_VERSION`, then `SMCCC_ARCH_FEATURES` for the Spectre workarounds.
/// QEMU's firmware (TCG) implements none of them, and the hypervisor must
/// pass that on instead of claiming a mitigation.
pub fn smccc() {
    report("smccc", smccc_result());
}

fn smccc_result() -> CheckResult {
    let f = psci::call(psci::PSCI_FEATURES, SMCCC_VERSION as u64, 0, 0);
    if f != 0 {
        return Err(msg!("PSCI_FEATURES(SMCCC_VERSION) = {f}, want 0"));
    }
    let v = psci::call(SMCCC_VERSION, 0, 0, 0);
    if v != 0x1_0001 {
        return Err(msg!("SMCCC_VERSION = {v:#x}, want 0x10001 (1.1)"));
    }
    let af = psci::call(SMCCC_ARCH_FEATURES, SMCCC_ARCH_FEATURES as u64, 0, 0);
    if af != 0 {
        return Err(msg!("SMCCC_ARCH_FEATURES(itself) = {af}, want 0"));
    }
    let unknown = psci::call(SMCCC_ARCH_FEATURES, 0x8000_00ff, 0, 0);
    if unknown != psci::NOT_SUPPORTED {
        return Err(msg!("SMCCC_ARCH_FEATURES(0x800000ff) = {unknown}, want -1"));
    }
    for (fid, name) in WORKAROUNDS {
        let r = psci::call(SMCCC_ARCH_FEATURES, fid as u64, 0, 0);
        if r != psci::NOT_SUPPORTED {
            return Err(msg!(
                "SMCCC_ARCH_FEATURES({name}) = {r}; QEMU's firmware has none (want -1)"
            ));
        }
        let call = psci::call(fid, 1, 0, 0);
        if call != psci::NOT_SUPPORTED {
            return Err(msg!("{name} = {call}, want -1 (not supported)"));
        }
    }
    Ok(msg!(
        "version 1.1; ARCH_FEATURES: itself 0, WORKAROUND_1/2/3 NOT_SUPPORTED as the firmware says"
    ))
}

/// An SMC32 PSCI call ignores the upper halves of its arguments (SMCCC):
/// `AFFINITY_INFO_32` of vCPU 0 (this one) at level 0, with junk above.
pub fn psci32() {
    let r = psci::call(
        AFFINITY_INFO_32,
        0xffff_ffff_0000_0000,
        0xdead_beef_0000_0000,
        0,
    );
    if r == psci::AFFINITY_ON {
        pass(
            "psci32",
            msg!("AFFINITY_INFO_32 with junk in the upper halves: ON"),
        );
    } else {
        fail(
            "psci32",
            msg!("AFFINITY_INFO_32 with junk in the upper halves = {r}, want 0 (ON)"),
        );
    }
}

/// Two `CPU_ON`s of vCPU 1 back to back: the second must fail (ON_PENDING
/// or ALREADY_ON) without changing where or with what vCPU 1 starts.
pub fn cpu_on_race(vm: &VmInfo) {
    if vm.vcpus < 2 {
        return;
    }
    report("cpu-on-race", cpu_on_race_result());
}

fn cpu_on_race_result() -> CheckResult {
    let first = checks::start_secondary(1, Secondary::ReportIn);
    let second = psci::cpu_on(1, Secondary::RaceLoser as u64);
    if first != 0 {
        return Err(msg!("CPU_ON(vCPU 1) = {first}"));
    }
    let up = wait_until(now() + ms(10_000), || {
        checks::is_up_as(Secondary::ReportIn) || LOSER_RAN.load(SeqCst)
    }) && !LOSER_RAN.load(SeqCst);
    checks::release_secondary();
    if !up {
        return Err(msg!(
            "vCPU 1 did not start with the winning CPU_ON's context (second CPU_ON = {second})"
        ));
    }
    match second {
        -5 | -4 => Ok(msg!(
            "second CPU_ON = {second}; vCPU 1 started with the first one's context"
        )),
        r => Err(msg!("second CPU_ON = {r}, want -5 (ON_PENDING) or -4")),
    }
}

static LOSER_RAN: AtomicBool = AtomicBool::new(false);

/// The loser's context reached vCPU 1 (from `checks::secondary`).
pub fn race_loser_ran() {
    LOSER_RAN.store(true, SeqCst);
    fail(
        "cpu-on-race",
        msg!("vCPU 1 started with the losing CPU_ON's context"),
    );
}

/// Doorbell storm over region 0 (t0 rings, t2 has its interrupts masked).
/// Words after the ping-pong's protocol area.
const STORM_READY: u64 = 0x200;
const STORM_DONE: u64 = 0x204;
const STORM_MAGIC: u32 = 0x5354_524d;
const STORM_RINGS: u32 = 1_000_000;

/// t0: once t2 is masked, ring region 0 a million times.
pub fn storm_ring(vm: &VmInfo) {
    report("doorbell-storm", storm_ring_result(vm));
}

fn storm_ring_result(vm: &VmInfo) -> CheckResult {
    let shm = vm.shm.ok_or_else(|| msg!("no shared region 0"))?;
    set(shm.base + STORM_DONE, 0);
    if !wait_until(now() + ms(30_000), || {
        get(shm.base + STORM_READY) == STORM_MAGIC
    }) {
        return Err(msg!("t2 never got ready"));
    }
    set(shm.base + STORM_READY, 0);
    let start = now();
    for _ in 0..STORM_RINGS {
        psci::doorbell_mmio(0);
    }
    let ticks = now() - start;
    set(shm.base + STORM_DONE, STORM_MAGIC);
    Ok(msg!("rang {STORM_RINGS} times in {ticks} ticks"))
}

/// t2: interrupts masked while t0 rings; then count exits and doorbells.
pub fn storm_masked(vm: &VmInfo) {
    report("doorbell-storm", storm_masked_result(vm));
}

fn storm_masked_result(vm: &VmInfo) -> CheckResult {
    let shm = vm.shm.ok_or_else(|| msg!("no shared region 0"))?;
    exceptions::mask_irqs();
    let before = gic::DOORBELLS.load(SeqCst);
    let e0 = exits();
    set(shm.base + STORM_READY, STORM_MAGIC);
    let done = wait_until(now() + ms(120_000), || {
        get(shm.base + STORM_DONE) == STORM_MAGIC
    });
    let e1 = exits();
    exceptions::unmask_irqs();
    if !done {
        return Err(msg!("t0 never finished ringing"));
    }
    // `e1` counts its own hypercall.
    let storm_exits = e1 - e0 - 1;
    wait_until(now() + ms(5), || false);
    let got = gic::DOORBELLS.load(SeqCst) - before;
    if got == 0 || storm_exits > got as u64 {
        return Err(msg!(
            "{storm_exits} exits while masked, {got} doorbell interrupts after unmasking ({STORM_RINGS} rings)"
        ));
    }
    Ok(msg!(
        "{STORM_RINGS} rings while masked: {storm_exits} exits, {got} doorbell interrupt(s) after unmasking"
    ))
}

/// Shared-region header (docs/guest-abi.md).
const HDR_MAGIC: u64 = 0x00;
const HDR_VERSION: u64 = 0x04;
const HDR_GENERATION: u64 = 0x08;
const HDR_PEERS: u64 = 0x0c;
const HDR_DATA_OFFSET: u64 = 0x10;
const HDR_BOOT_COUNT: u64 = 0x20;
const SHM_MAGIC: u32 = 0x4d48_5354; // "TSHM"
/// t0's region with t1 (index 1 for t0): doorbells received on it.
static RESTART_DOORBELLS: AtomicU32 = AtomicU32::new(0);
static RESTART_INTID: AtomicU32 = AtomicU32::new(0);
const T1_RESTARTS: u32 = 3;

/// From the IRQ handler: whether `intid` was the restart region's doorbell.
pub fn on_irq(intid: u32) -> bool {
    if intid != 0 && intid == RESTART_INTID.load(SeqCst) {
        RESTART_DOORBELLS.fetch_add(1, SeqCst);
        true
    } else {
        false
    }
}

fn restart_region(vm: &VmInfo) -> Option<Shm> {
    vm.shms[1]
}

/// t0, at start: listen to the doorbell of its region with t1.
pub fn watch_restarts(vm: &VmInfo) {
    if let Some(intid) = restart_region(vm).and_then(|s| s.intid) {
        RESTART_INTID.store(intid, SeqCst);
        gic::enable_spi(intid, 0);
    }
}

/// t0, at the end: t1 restarted three times; the header of their region
/// says so (generation, t1's boot count) and its doorbell rang.
pub fn shm_restart(vm: &VmInfo) {
    report("shm-restart", shm_restart_result(vm));
}

fn shm_restart_result(vm: &VmInfo) -> CheckResult {
    let shm = restart_region(vm).ok_or_else(|| msg!("no shared region 1 (with t1)"))?;
    let h = shm.header;
    let (magic, version) = (get(h + HDR_MAGIC), get(h + HDR_VERSION));
    if magic != SHM_MAGIC || version != 1 {
        return Err(msg!(
            "no header at {h:#x}: magic {magic:#x} version {version} (DTB data offset {:?})",
            shm.data_offset
        ));
    }
    let peers = get(h + HDR_PEERS);
    let offset = get(h + HDR_DATA_OFFSET) as u64;
    if peers != 2 || Some(offset) != shm.data_offset || shm.base != h + offset {
        return Err(msg!(
            "header: {peers} peers, data offset {offset:#x}; DTB: {:?}",
            shm.data_offset
        ));
    }
    let me = shm
        .peer_index
        .ok_or_else(|| msg!("no tessera,peer-index"))?;
    let t1 = HDR_BOOT_COUNT + 4 * (1 - me as u64);
    let settled = wait_until(now() + ms(30_000), || {
        get(h + t1) >= T1_RESTARTS && RESTART_DOORBELLS.load(SeqCst) > 0
    });
    let (generation, t1_boots) = (get(h + HDR_GENERATION), get(h + t1));
    let mine = get(h + HDR_BOOT_COUNT + 4 * me as u64);
    let rings = RESTART_DOORBELLS.load(SeqCst);
    if !settled || generation != T1_RESTARTS || mine != 0 {
        return Err(msg!(
            "generation {generation}, t1 boot count {t1_boots}, mine {mine}, {rings} doorbell(s); want {T1_RESTARTS}, {T1_RESTARTS}, 0, at least 1"
        ));
    }
    console::info(format_args!(
        "shm-restart: header generation {generation}, t1 boot count {t1_boots}"
    ));
    Ok(msg!(
        "t1 restarted {T1_RESTARTS} times: generation {generation}, its boot count {t1_boots}, {rings} doorbell(s)"
    ))
}
