//! The EL2 heap: a buddy allocator over a fixed region in BSS, for the few
//! structures sized at boot (later: per-VM state, generated guest DTBs).

use buddy_system_allocator::LockedHeap;
use core::ptr::addr_of_mut;

pub const HEAP_SIZE: usize = 2 << 20;

#[repr(C, align(4096))]
struct Space([u8; HEAP_SIZE]);

#[unsafe(link_section = ".noinit.heap")]
static mut SPACE: Space = Space([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Hands the region to the allocator; once, on the boot core, MMU on.
pub fn init() -> u64 {
    // SAFETY: SPACE is used by nothing else, and init runs once.
    unsafe {
        let start = addr_of_mut!(SPACE) as usize;
        HEAP.lock().init(start, HEAP_SIZE);
        start as u64
    }
}
