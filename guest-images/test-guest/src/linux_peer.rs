//! Ping-pong with a Linux VM over shared region 0 (`bm` on the `linux`
//! tier's shared-region board): the same ring and protocol the Linux
//! self-check speaks (`tessera-shm-proto`), this VM as side A. As `bell`
//! (the partition tier's `boards/test-cluster-bell.toml`) the same with
//! the cluster image as side B, strictly one message in flight: each
//! message a doorbell round trip, timed.

use crate::console::{report, CheckResult};
use crate::dt::VmInfo;
use crate::timer::{frequency, ms, now, wait_until};
use crate::{gic, msg, psci};
use core::cell::Cell;
use core::sync::atomic::Ordering::SeqCst;
use core::time::Duration;
use tessera_shm_proto::pingpong::{self, Link, Side};

/// What a run exchanges and reports.
pub struct Exchange {
    pub check: &'static str,
    pub messages: u32,
    /// Most messages unanswered at a time.
    pub window: u32,
}

/// With Linux: its `tessera.pingpong` default, streamed.
pub const LINUX: Exchange = Exchange {
    check: "linux-pingpong",
    messages: 10_000,
    window: u32::MAX,
};
/// With the cluster image (its `bell` module answers as many).
pub const CLUSTER: Exchange = Exchange {
    check: "cluster-pingpong",
    messages: 2000,
    window: 1,
};
/// The header page's generation word (docs/guest-abi.md, "Header page").
const HDR_GENERATION: u64 = 0x08;

struct Region {
    data: u64,
    len: usize,
    header: u64,
    /// Doorbells taken as seen by `wait`.
    seen: Cell<u32>,
}

impl Link for Region {
    /// The `TESSERA_DOORBELL` hypercall's error code.
    type Error = i64;
    fn data(&self) -> *mut u8 {
        self.data as *mut u8
    }
    fn data_len(&self) -> usize {
        self.len
    }
    fn ring(&self) -> Result<(), i64> {
        match psci::doorbell_hvc(0) {
            0 => Ok(()),
            e => Err(e),
        }
    }
    fn wait(&self, timeout: Duration) -> Result<bool, i64> {
        let give_up = now() + ms(timeout.as_millis() as u64);
        let got = wait_until(give_up, || gic::DOORBELLS.load(SeqCst) != self.seen.get());
        self.seen.set(gic::DOORBELLS.load(SeqCst));
        Ok(got)
    }
    fn generation(&self) -> Result<u32, i64> {
        // SAFETY: the header page of shared region 0 (from the DTB, mapped
        // by `mmu::init`), read only.
        Ok(unsafe { core::ptr::read_volatile((self.header + HDR_GENERATION) as *const u32) })
    }
    fn now(&self) -> Duration {
        Duration::from_nanos((now() as u128 * 1_000_000_000 / frequency() as u128) as u64)
    }
}

/// Runs the exchange if this VM has a shared region; reports it under
/// its check's name.
pub fn ping_pong(vm: &VmInfo, x: &Exchange) {
    if vm.shm.is_some() {
        report(x.check, result(vm, x));
    }
}

fn result(vm: &VmInfo, x: &Exchange) -> CheckResult {
    let shm = vm.shm.ok_or_else(|| msg!("no shared region 0"))?;
    if !shm.writable {
        return Err(msg!("shared region 0 is read-only here"));
    }
    let intid = shm
        .intid
        .ok_or_else(|| msg!("shared region 0 has no doorbell interrupt"))?;
    gic::DOORBELL_INTID.store(intid, SeqCst);
    gic::enable_spi(intid, 0);
    let r = Region {
        data: shm.base,
        len: shm.size as usize,
        header: shm.header,
        seen: Cell::new(gic::DOORBELLS.load(SeqCst)),
    };
    let t0 = now();
    let s = pingpong::run_observed(&r, Side::A, (x.messages, x.window, 1), &mut |_| {})
        .map_err(|e| msg!("{e}"))?;
    let ticks = now() - t0;
    let ns = |t: u64| (t as u128 * 1_000_000_000 / frequency() as u128) as u64;
    Ok(msg!(
        "{} messages each way, {} body bytes, in order, checksums good, {} ms ({} ns a message), {} restart(s) seen",
        s.messages,
        s.bytes,
        ticks * 1000 / frequency(),
        ns(ticks) / s.messages.max(1) as u64,
        s.restarts
    ))
}
