//! The `doorbell` ping-pong between t0 (initiator) and t2 (responder) over
//! shared region 0, the heartbeat that shows a VM keeps running, and the
//! `flood` that t2's vCPU 1 aims at the hypervisor meanwhile.
//!
//! # Protocol
//!
//! Shared region 0, 32-bit words at these offsets; each word has one writer:
//!
//! | offset | writer | what |
//! | --- | --- | --- |
//! | 0x00 | initiator | `READY_A` = 0x5445_5341 ("TESA") once it is set up |
//! | 0x04 | responder | `READY_B` = 0x5445_5342 ("TESB") once it is set up |
//! | 0x08 | initiator | `HEARTBEAT_A` = 0x4842_4541 when its heartbeat starts (the flood may begin) |
//! | 0x0c | responder | `FLOOD`: 1 while vCPU 1 floods, 2 when done |
//! | 0x40 | initiator | message slot A->B: `seq`, `payload[6]`, `checksum` |
//! | 0x80 | responder | message slot B->A: same layout |
//!
//! 1. Each side enables its doorbell SPI (routed to vCPU 0), clears the
//!    words it writes, notes its doorbell count, then sets its READY word and
//!    waits (up to 30 s) for the other's: so either may start first, and a
//!    ring that follows the peer's READY at once is not missed.
//! 2. For seq = 1..=200 the initiator writes payload and checksum, then
//!    `seq` (after a barrier), and rings: odd seq through the control page
//!    (write 0 to 0x0B00_0000), even seq by the `TESSERA_DOORBELL` hypercall.
//! 3. The responder waits (up to 5 s) for its doorbell interrupt number seq
//!    (interrupt count since the start = seq), checks `seq` is the one
//!    expected (else: lost or reordered) and the checksum and payload, then
//!    replies in its own slot with the same seq and the reply payload,
//!    ringing the same way.
//! 4. The initiator waits (up to 5 s) for its doorbell number seq and the
//!    reply with that seq, and checks it the same way.
//! 5. Both check that exactly 200 doorbells arrived (none doubled).
//!
//! `payload[i] = seq * 0x9e3779b9 ^ i * 0x01010101 ^ dir` (dir 0xa0000000
//! A->B, 0xb0000000 B->A); `checksum` = FNV-1a over the 32-bit words
//! `seq, payload[0..6]`. One message is in flight at a time, so each
//! doorbell (an edge) stands for exactly one message.

use crate::console::{self, fail, pass, report, CheckResult, Msg};
use crate::dt::VmInfo;
use crate::timer::{self, ms, now, wait_until};
use crate::{gic, msg, psci};
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering::SeqCst};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// t0: sends first, measures the round trip and the flood's effect.
    Initiator,
    /// t2: answers; its vCPU 1 floods.
    Responder,
}

const READY_A: usize = 0x00;
const READY_B: usize = 0x04;
const HEARTBEAT_A: usize = 0x08;
const FLOOD: usize = 0x0c;
const SLOT_A: usize = 0x40;
const SLOT_B: usize = 0x80;
const MAGIC_A: u32 = 0x5445_5341;
const MAGIC_B: u32 = 0x5445_5342;
const HB_MAGIC: u32 = 0x4842_4541;
const DIR_A: u32 = 0xa000_0000;
const DIR_B: u32 = 0xb000_0000;
const PAYLOAD_WORDS: usize = 6;
const MESSAGES: u32 = 200;
/// Region index the ping-pong uses.
const REGION: u32 = 0;

/// t2's vCPU 1 has finished flooding (or given up).
static FLOOD_DONE: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy)]
struct Region(u64);

impl Region {
    fn get(self, off: usize) -> u32 {
        // SAFETY: a word inside shared region 0 (from the DTB, >= 0x100 bytes).
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

fn payload(seq: u32, i: usize, dir: u32) -> u32 {
    seq.wrapping_mul(0x9e37_79b9) ^ (i as u32).wrapping_mul(0x0101_0101) ^ dir
}

fn checksum(words: impl Iterator<Item = u32>) -> u32 {
    words.fold(0x811c_9dc5, |h, w| (h ^ w).wrapping_mul(0x0100_0193))
}

fn send(r: Region, slot: usize, seq: u32, dir: u32) -> Result<(), Msg> {
    for i in 0..PAYLOAD_WORDS {
        r.set(slot + 4 + 4 * i, payload(seq, i, dir));
    }
    let sum =
        checksum(core::iter::once(seq).chain((0..PAYLOAD_WORDS).map(|i| payload(seq, i, dir))));
    r.set(slot + 4 + 4 * PAYLOAD_WORDS, sum);
    barrier();
    r.set(slot, seq);
    if seq % 2 == 1 {
        psci::doorbell_mmio(REGION);
    } else {
        let ret = psci::doorbell_hvc(REGION);
        if ret != 0 {
            return Err(msg!(
                "message {seq}: TESSERA_DOORBELL({REGION}) returned {ret}"
            ));
        }
    }
    Ok(())
}

/// Checks the message in `slot` is `seq` from direction `dir`.
fn verify(r: Region, slot: usize, seq: u32, dir: u32) -> Result<(), Msg> {
    let got = r.get(slot);
    barrier();
    if got != seq {
        return Err(msg!(
            "expected message {seq}, slot holds {got} ({})",
            if got < seq { "lost" } else { "reordered" }
        ));
    }
    let words: [u32; PAYLOAD_WORDS] = core::array::from_fn(|i| r.get(slot + 4 + 4 * i));
    let sum = r.get(slot + 4 + 4 * PAYLOAD_WORDS);
    if checksum(core::iter::once(got).chain(words.iter().copied())) != sum {
        return Err(msg!("message {seq}: bad checksum {sum:#x}"));
    }
    if let Some(i) = (0..PAYLOAD_WORDS).find(|&i| words[i] != payload(seq, i, dir)) {
        return Err(msg!("message {seq}: payload word {i} = {:#x}", words[i]));
    }
    Ok(())
}

fn setup(vm: &VmInfo) -> Result<Region, Msg> {
    let shm = vm.shm.ok_or_else(|| msg!("no shared region 0 in my DTB"))?;
    if shm.size < 0x100 || !shm.writable {
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
    let (mine, theirs, my_magic, their_magic, my_slot, their_slot, my_dir, their_dir) = match role {
        Role::Initiator => (
            READY_A, READY_B, MAGIC_A, MAGIC_B, SLOT_A, SLOT_B, DIR_A, DIR_B,
        ),
        Role::Responder => (
            READY_B, READY_A, MAGIC_B, MAGIC_A, SLOT_B, SLOT_A, DIR_B, DIR_A,
        ),
    };
    for off in (my_slot..my_slot + 0x40).step_by(4) {
        r.set(off, 0);
    }
    r.set(
        if role == Role::Initiator {
            HEARTBEAT_A
        } else {
            FLOOD
        },
        0,
    );
    // Counted from before we say ready: the peer's first ring may follow
    // our READY word at once.
    let base = gic::DOORBELLS.load(SeqCst);
    barrier();
    r.set(mine, my_magic);
    if !wait_until(now() + ms(30_000), || r.get(theirs) == their_magic) {
        return Err(msg!(
            "the peer never became ready (word {:#x})",
            r.get(theirs)
        ));
    }
    let rang = |n: u32| gic::DOORBELLS.load(SeqCst) - base >= n;
    let start = now();
    for seq in 1..=MESSAGES {
        if role == Role::Initiator {
            send(r, my_slot, seq, my_dir)?;
        }
        let arrived = wait_until(now() + ms(5_000), || rang(seq) && r.get(their_slot) >= seq);
        if !arrived {
            return Err(msg!(
                "message {seq}: timed out (doorbells {}, slot holds {})",
                gic::DOORBELLS.load(SeqCst) - base,
                r.get(their_slot)
            ));
        }
        verify(r, their_slot, seq, their_dir)?;
        if role == Role::Responder {
            send(r, my_slot, seq, my_dir)?;
        }
    }
    let elapsed = now() - start;
    // Late doubles would show up here.
    timer::delay(ms(20));
    let rung = gic::DOORBELLS.load(SeqCst) - base;
    if rung != MESSAGES {
        return Err(msg!("{rung} doorbells for {MESSAGES} messages"));
    }
    if role == Role::Initiator {
        console::line(format_args!(
            "bench doorbell-roundtrip: {} ticks per round trip ({MESSAGES} round trips)",
            elapsed / MESSAGES as u64
        ));
    }
    Ok(msg!(
        "{MESSAGES} messages each way in order, checksums good, {rung} doorbells"
    ))
}

/// `heartbeat <n>` every 50 ms for 2 s (on the virtual timer at 1 kHz). The
/// initiator also bounds its timer lateness while t2 floods.
pub fn heartbeat(vm: &VmInfo, role: Role) {
    const BEATS: u64 = 40;
    const TICKS_PER_BEAT: u64 = 50;
    let region = vm.shm.filter(|s| s.size >= 0x100).map(|s| Region(s.base));
    if let (Role::Initiator, Some(r)) = (role, region) {
        r.set(HEARTBEAT_A, HB_MAGIC);
    }
    let mut flood_seen = 0;
    timer::start_ticks(timer::frequency() / 1000, BEATS * TICKS_PER_BEAT);
    for beat in 1..=BEATS {
        let due = beat * TICKS_PER_BEAT;
        if !wait_until(now() + ms(5_000), || timer::ticks() >= due) {
            fail("heartbeat", msg!("tick {due} did not come"));
            break;
        }
        console::line(format_args!("heartbeat {beat}"));
        if let Some(r) = region {
            flood_seen = flood_seen.max(r.get(FLOOD));
        }
    }
    timer::stop_ticks();
    let s = timer::stats();
    match role {
        Role::Initiator => {
            // Generous: QEMU TCG with 4 vCPUs on a small host has jitter of
            // several ms even without a flood; starvation is far above this.
            let bound = ms(20);
            if s.max_late > bound {
                fail(
                    "flood-bound",
                    msg!("max lateness {} ticks, bound {bound}", s.max_late),
                );
            } else if flood_seen == 0 {
                fail(
                    "flood-bound",
                    msg!(
                        "t2 never flooded during my heartbeat (max lateness {} ticks, bound {bound})",
                        s.max_late
                    ),
                );
            } else {
                pass(
                    "flood-bound",
                    msg!("max lateness {} ticks, bound {bound}", s.max_late),
                );
            }
        }
        Role::Responder => {
            if vm.vcpus >= 2 && !wait_until(now() + ms(10_000), || FLOOD_DONE.load(SeqCst)) {
                fail("flood", msg!("vCPU 1 did not finish flooding"));
            }
        }
    }
}

/// t2's vCPU 1: once t0's heartbeat has started, 1 s of TESSERA_PING calls
/// and control-page doorbell writes as fast as it can.
pub fn flood() {
    let r = match crate::vm().shm {
        Some(s) if s.size >= 0x100 => Region(s.base),
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
    let (mut calls, mut bad) = (0u64, 0u64);
    let end = now() + ms(1_000);
    while now() < end {
        if psci::ping() != 0 {
            bad += 1;
        }
        psci::doorbell_mmio(REGION);
        calls += 1;
    }
    r.set(FLOOD, 2);
    if bad == 0 {
        pass(
            "flood",
            msg!("{calls} TESSERA_PING calls and {calls} doorbell writes in 1 s"),
        );
    } else {
        fail("flood", msg!("TESSERA_PING failed {bad} of {calls} times"));
    }
    FLOOD_DONE.store(true, SeqCst);
}
