//! The `doorbell` ping-pong between t0 (initiator) and t2 (responder) over
//! shared region 0 (protocol in [`crate::protocol`]), the heartbeat that
//! shows a VM keeps running, and the `flood` that t2's vCPU 1 aims at the
//! hypervisor meanwhile.

use crate::checks::{self, Secondary};
use crate::console::{self, fail, pass, report, CheckResult, Msg};
use crate::dt::VmInfo;
use crate::protocol::{
    self, Link, Role, CONTROL_DONE, CONTROL_MAX, CONTROL_MEAN, FLOOD, HB_MAGIC, HEARTBEAT_A,
    MESSAGES, SIZE,
};
use crate::timer::{self, ms, now, wait_until};
use crate::{gic, msg, psci};
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

/// Region index the ping-pong uses.
const REGION: u32 = 0;

/// One-way doorbell latency, ring to the receiver's interrupt handler: the
/// ringer stores the counter just before ringing (`RING_TS_*`), the
/// handler subtracts it. Only while the ping-pong runs.
static MY_RING_TS: AtomicU64 = AtomicU64::new(0);
static PEER_RING_TS: AtomicU64 = AtomicU64::new(0);
static LAT_SUM: AtomicU64 = AtomicU64::new(0);
static LAT_MAX: AtomicU64 = AtomicU64::new(0);
static LAT_N: AtomicU64 = AtomicU64::new(0);

/// From the IRQ handler, on a doorbell.
pub fn on_doorbell() {
    let peer = PEER_RING_TS.load(SeqCst);
    if peer == 0 {
        return;
    }
    let at = now();
    let r = Region(peer);
    let sent = r.get(0) as u64 | (r.get(4) as u64) << 32;
    if sent != 0 && at >= sent {
        LAT_SUM.fetch_add(at - sent, SeqCst);
        LAT_MAX.fetch_max(at - sent, SeqCst);
        LAT_N.fetch_add(1, SeqCst);
    }
}

/// t2's vCPU 1 has finished flooding (or given up).
static FLOOD_DONE: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy)]
struct Region(u64);

impl Region {
    fn get(self, off: usize) -> u32 {
        // SAFETY: a word inside shared region 0 (from the DTB, at least `SIZE` bytes).
        unsafe { read_volatile((self.0 as usize + off) as *const u32) }
    }
    fn set(self, off: usize, v: u32) {
        // SAFETY: as in `get`; only the words this side owns are written.
        unsafe { write_volatile((self.0 as usize + off) as *mut u32, v) }
    }
}

fn barrier() {
    // SAFETY: a barrier only.
    unsafe { core::arch::asm!("dmb sy") };
}

/// The protocol's view of this VM: the region, both ring methods, the
/// doorbell interrupt count and the counter.
impl Link for Region {
    fn get(&self, off: usize) -> u32 {
        Region::get(*self, off)
    }
    fn set(&self, off: usize, v: u32) {
        Region::set(*self, off, v)
    }
    fn barrier(&self) {
        barrier()
    }
    fn ring(&self, hypercall: bool) -> Result<(), i64> {
        let ts = MY_RING_TS.load(SeqCst);
        if ts != 0 {
            let t = now();
            let mine = Region(ts);
            mine.set(0, t as u32);
            mine.set(4, (t >> 32) as u32);
            barrier();
        }
        if hypercall {
            match psci::doorbell_hvc(REGION) {
                0 => Ok(()),
                e => Err(e),
            }
        } else {
            psci::doorbell_mmio(REGION);
            Ok(())
        }
    }
    fn doorbells(&self) -> u32 {
        gic::DOORBELLS.load(SeqCst)
    }
    fn wait(&self, ms: u64, done: &mut dyn FnMut() -> bool) -> bool {
        wait_until(now() + timer::ms(ms), done)
    }
    fn now(&self) -> u64 {
        now()
    }
}

fn setup(vm: &VmInfo) -> Result<Region, Msg> {
    let shm = vm.shm.ok_or_else(|| msg!("no shared region 0 in my DTB"))?;
    if shm.size < SIZE as u64 || !shm.writable {
        return Err(msg!(
            "shared region 0 at {:#x}: size {:#x}, writable {}",
            shm.base,
            shm.size,
            shm.writable
        ));
    }
    let intid = shm
        .intid
        .ok_or_else(|| msg!("shared region 0 has no doorbell interrupt"))?;
    gic::DOORBELL_INTID.store(intid, SeqCst);
    gic::enable_spi(intid, 0);
    Ok(Region(shm.base))
}

pub fn ping_pong(vm: &VmInfo, role: Role) {
    report("doorbell", ping_pong_result(vm, role));
}

fn ping_pong_result(vm: &VmInfo, role: Role) -> CheckResult {
    let r = setup(vm)?;
    let (mine, peer) = match role {
        Role::Initiator => (protocol::RING_TS_A, protocol::RING_TS_B),
        Role::Responder => (protocol::RING_TS_B, protocol::RING_TS_A),
    };
    r.set(mine, 0);
    r.set(mine + 4, 0);
    MY_RING_TS.store(r.0 + mine as u64, SeqCst);
    PEER_RING_TS.store(r.0 + peer as u64, SeqCst);
    let result = protocol::run(&r, role);
    MY_RING_TS.store(0, SeqCst);
    PEER_RING_TS.store(0, SeqCst);
    let ticks = result.map_err(|e| msg!("{e}"))?;
    if role == Role::Initiator {
        console::line(format_args!(
            "bench doorbell-roundtrip: {} ticks per round trip ({MESSAGES} round trips)",
            ticks / MESSAGES as u64
        ));
    }
    let n = LAT_N.load(SeqCst);
    if n > 0 {
        console::line(format_args!(
            "bench doorbell-latency: mean {} max {} ticks from ring to the peer's handler ({n} samples)",
            LAT_SUM.load(SeqCst) / n,
            LAT_MAX.load(SeqCst)
        ));
    }
    Ok(msg!(
        "{MESSAGES} messages each way in order, checksums good, one doorbell each"
    ))
}

/// What Tessera may add to t0's mean timer lateness beyond the control's
/// (t2's vCPU 0, waiting for the same 1 kHz ticks in the same run, under
/// the same QEMU scheduling). The mean, not the worst: one tick can wait a
/// whole QEMU round when core 3's turn ends while it holds t0's vGIC lock
/// (lock-holder preemption, which hardware does not have), while what
/// Tessera makes core 0 do or wait for on every tick moves the mean. Seen:
/// 7,700 above the control with doorbell storms fixed, 97,000 with them
/// (docs/partition.md, "The flood bound").
const FLOOD_ALLOWANCE_US: u64 = 20;

/// `heartbeat <n>` every 50 ms for 2 s (on the virtual timer at 1 kHz). The
/// initiator (t0) bounds its timer lateness while t2 floods against the
/// responder's vCPU 0 (the control), which measures the same ticks at the
/// same time on core 2.
pub fn heartbeat(vm: &VmInfo, role: Role) {
    const BEATS: u64 = 40;
    const TICKS_PER_BEAT: u64 = 50;
    let region = vm
        .shm
        .filter(|s| s.size >= SIZE as u64)
        .map(|s| Region(s.base));
    if let (Role::Initiator, Some(r)) = (role, region) {
        r.set(CONTROL_DONE, 0);
        r.set(HEARTBEAT_A, HB_MAGIC);
    }
    let mut flood_seen = 0;
    let exits_before = psci::call(psci::TESSERA_EXITS, 0, 0, 0);
    timer::start_ticks(timer::frequency() / 1000, BEATS * TICKS_PER_BEAT);
    for beat in 1..=BEATS {
        let due = beat * TICKS_PER_BEAT;
        if !wait_until(now() + ms(5_000), || timer::ticks() >= due) {
            fail("heartbeat", msg!("tick {due} did not come"));
            break;
        }
        console::line(format_args!("heartbeat {beat}"));
        console::poll_input();
        if let Some(r) = region {
            flood_seen = flood_seen.max(r.get(FLOOD));
        }
    }
    timer::stop_ticks();
    let s = timer::stats();
    let exits = psci::call(psci::TESSERA_EXITS, 0, 0, 0) - exits_before;
    console::line(format_args!(
        "bench heartbeat-lateness: mean {} max {} ticks ({} samples, {exits} exits of vCPU 0)",
        s.mean_late, s.max_late, s.count
    ));
    match (role, region) {
        (Role::Initiator, Some(r)) => {
            let control = wait_until(now() + ms(10_000), || r.get(CONTROL_DONE) == HB_MAGIC)
                .then(|| (r.get(CONTROL_MEAN) as u64, r.get(CONTROL_MAX) as u64));
            let allowance = ms(1) * FLOOD_ALLOWANCE_US / 1000;
            match control {
                _ if flood_seen == 0 => fail(
                    "flood-bound",
                    msg!(
                        "t2 never flooded during my heartbeat (mean lateness {} ticks)",
                        s.mean_late
                    ),
                ),
                Some((mean, max)) => {
                    let bound = mean + allowance;
                    let text = msg!(
                        "mean lateness {} ticks (max {}); control t2 vCPU 0: mean {mean} (max {max}); bound {bound}",
                        s.mean_late,
                        s.max_late
                    );
                    if s.mean_late <= bound {
                        pass("flood-bound", text)
                    } else {
                        fail("flood-bound", text)
                    }
                }
                None => fail(
                    "flood-bound",
                    msg!("t2 never reported its control lateness"),
                ),
            }
        }
        (Role::Responder, region) => {
            if let Some(r) = region {
                r.set(CONTROL_MEAN, s.mean_late.min(u32::MAX as u64) as u32);
                r.set(CONTROL_MAX, s.max_late.min(u32::MAX as u64) as u32);
                barrier();
                r.set(CONTROL_DONE, HB_MAGIC);
            }
            if vm.vcpus >= 2 && !wait_until(now() + ms(10_000), || FLOOD_DONE.load(SeqCst)) {
                fail("flood", msg!("vCPU 1 did not finish flooding"));
            }
        }
        (Role::Initiator, None) => fail("flood-bound", msg!("no shared region 0")),
    }
}

/// t2's vCPU 0: starts vCPU 1 on [`flood`] (it waits for t0's heartbeat).
pub fn start_flood(vm: &VmInfo) {
    if vm.vcpus < 2 {
        FLOOD_DONE.store(true, SeqCst);
        return;
    }
    let r = checks::start_secondary(1, Secondary::Flood);
    if r != 0 {
        fail("flood", msg!("CPU_ON(vCPU 1) = {r}"));
        FLOOD_DONE.store(true, SeqCst);
    }
}

/// A shared-region index no VM has: ringing it is refused (and logged by
/// the hypervisor, rate-limited).
const BAD_REGION: u32 = 7;
/// Console lines the flood writes at most (one every 4 rounds).
const FLOOD_LINES: u64 = 1500;

/// t2's vCPU 1: once t0's heartbeat has started, 1 s of TESSERA_PING calls,
/// control-page doorbell writes, invalid doorbells (control page and
/// hypercall) and console lines as fast as it can. Then `console-flood`:
/// EL2 must not have written to the physical UART on t2's cores meanwhile
/// (`TESSERA_UART_TOUCHES`): its output waits in its buffer for the core
/// that drains the console.
pub fn flood() {
    let r = match crate::vm().shm {
        Some(s) if s.size >= SIZE as u64 => Region(s.base),
        _ => {
            fail("flood", msg!("no shared region 0"));
            FLOOD_DONE.store(true, SeqCst);
            return;
        }
    };
    if !wait_until(now() + ms(10_000), || r.get(HEARTBEAT_A) == HB_MAGIC) {
        fail("flood", msg!("t0's heartbeat never started"));
        FLOOD_DONE.store(true, SeqCst);
        return;
    }
    r.set(FLOOD, 1);
    let touches_before = psci::uart_touches();
    let (mut calls, mut bad, mut refused, mut lines) = (0u64, 0u64, 0u64, 0u64);
    let end = now() + ms(1_000);
    while now() < end {
        if psci::ping() != 0 {
            bad += 1;
        }
        psci::doorbell_mmio(REGION);
        if calls % 2 == 0 {
            psci::doorbell_mmio(BAD_REGION);
        } else if psci::doorbell_hvc(BAD_REGION) == -2 {
            refused += 1;
        }
        if calls % 4 == 0 && lines < FLOOD_LINES {
            console::line(format_args!(
                "flood {lines:5}: the quick brown fox jumps over the lazy dog, again and again and again"
            ));
            lines += 1;
        }
        calls += 1;
    }
    let touches = psci::uart_touches() - touches_before;
    r.set(FLOOD, 2);
    if bad == 0 {
        pass(
            "flood",
            msg!("{calls} TESSERA_PING calls and {calls} doorbell writes in 1 s"),
        );
    } else {
        fail("flood", msg!("TESSERA_PING failed {bad} of {calls} times"));
    }
    let hvc_bad = calls / 2;
    if touches != 0 {
        fail(
            "console-flood",
            msg!("EL2 touched the physical UART {touches} times on t2's cores while t2 wrote {lines} lines and rang {calls} invalid doorbells"),
        );
    } else if refused != hvc_bad {
        fail(
            "console-flood",
            msg!("TESSERA_DOORBELL({BAD_REGION}) refused {refused} of {hvc_bad} times"),
        );
    } else {
        pass(
            "console-flood",
            msg!("{lines} lines, {calls} invalid doorbells; EL2 touched the physical UART 0 times on t2's cores"),
        );
    }
    FLOOD_DONE.store(true, SeqCst);
}
