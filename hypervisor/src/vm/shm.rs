//! The header page at the start of each shared region (`docs/guest-abi.md`,
//! "Shared regions"): written here only, mapped read-only into every peer.
//! It tells the peers when a member restarted: the generation count goes
//! up and the region's doorbell rings in the other peers.

use super::{hypercall, partition, VmState};
use crate::arch::mmu;
use crate::fdt::firmware::Range;
use core::sync::atomic::{AtomicU32, Ordering};
use tessera_boards::guest::SHM_HEADER_SIZE;
use tessera_boards::{Plan, SharedRegion};

/// "TSHM", little-endian.
pub const MAGIC: u32 = 0x4d48_5354;
pub const VERSION: u32 = 1;
const OFF_MAGIC: u64 = 0x00;
const OFF_VERSION: u64 = 0x04;
const OFF_GENERATION: u64 = 0x08;
const OFF_PEERS: u64 = 0x0c;
const OFF_DATA_OFFSET: u64 = 0x10;
/// Peer *i*'s boot count (board-file peer order), one word each.
const OFF_BOOT_COUNT: u64 = 0x20;

fn word(region: &SharedRegion, offset: u64) -> &'static AtomicU32 {
    // SAFETY: a word of the region's header page: RAM the plan gives this
    // region (inside the EL2 map), 4-byte aligned, written only here, and
    // read-only to the guests, so atomics are the only writers.
    unsafe { &*((region.pa + offset) as *const AtomicU32) }
}

/// The header made visible to a peer that reads with its caches off too.
fn publish(region: &SharedRegion) {
    mmu::clean_dcache(Range {
        base: region.pa,
        size: SHM_HEADER_SIZE,
    });
}

/// At boot, before any VM runs: every region's header from scratch.
pub fn init_headers(plan: &Plan) {
    for region in plan.shared {
        // SAFETY: the header page of a region (see `word`); no guest runs yet.
        unsafe { core::ptr::write_bytes(region.pa as *mut u8, 0, SHM_HEADER_SIZE as usize) };
        word(region, OFF_VERSION).store(VERSION, Ordering::Relaxed);
        word(region, OFF_PEERS).store(region.peers.len() as u32, Ordering::Relaxed);
        word(region, OFF_DATA_OFFSET).store(SHM_HEADER_SIZE as u32, Ordering::Relaxed);
        // The magic last: a reader that sees it sees the rest.
        word(region, OFF_MAGIC).store(MAGIC, Ordering::Release);
        publish(region);
    }
}

/// `vm` restarted (its images and DTB are reloaded): in each of its
/// regions its boot count, then the generation, then the other peers'
/// doorbells.
pub fn note_restart(vm: &VmState) {
    let boot_count = vm.boot_count.load(Ordering::Relaxed);
    for (index, region) in partition::shared_index(super::plan(), vm.name()) {
        if let Some(i) = region.peers.iter().position(|p| p.vm == vm.name()) {
            word(region, OFF_BOOT_COUNT + 4 * i as u64).store(boot_count, Ordering::Release);
        }
        word(region, OFF_GENERATION).fetch_add(1, Ordering::AcqRel);
        publish(region);
        hypercall::doorbell(vm, index as u64);
    }
}
