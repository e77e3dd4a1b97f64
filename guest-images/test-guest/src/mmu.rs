//! An identity map at EL1 so that RAM and the shared region are Normal
//! cacheable memory (atomics and the console lock need it on real cores;
//! with the MMU off every access is Device-nGnRnE) and the rest Device.
//! One level-1 table of 1 GiB blocks covers the first 512 GiB of IPA space.

use core::cell::UnsafeCell;

const GIB: u64 = 1 << 30;
const ENTRIES: usize = 512;

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; ENTRIES]>);

// SAFETY: written by vCPU 0 before any other vCPU starts, read-only after.
unsafe impl Sync for Table {}

static LEVEL1: Table = Table(UnsafeCell::new([0; ENTRIES]));

const BLOCK: u64 = 0b01;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const PXN_UXN: u64 = (1 << 53) | (1 << 54);
/// MAIR_EL1: attribute 0 Device-nGnRnE, attribute 1 Normal write-back.
const MAIR: u64 = 0xff << 8;
/// TCR_EL1: T0SZ 25 (39-bit, walks start at level 1), 4 KiB granule,
/// write-back inner shareable walks, no TTBR1 walks, 40-bit IPA.
const TCR: u64 = 25 | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) | (1 << 23) | (0b010 << 32);
const SCTLR_M: u64 = 1 << 0;
const SCTLR_A: u64 = 1 << 1;
const SCTLR_C: u64 = 1 << 2;
const SCTLR_I: u64 = 1 << 12;

/// Builds the map (blocks overlapping `normal` ranges are Normal memory)
/// and turns the MMU on; vCPU 0, once.
pub fn init(normal: &[(u64, u64)]) {
    // SAFETY: no other vCPU runs yet and nothing else holds the table.
    let table = unsafe { &mut *LEVEL1.0.get() };
    for (i, e) in table.iter_mut().enumerate() {
        let (start, end) = (i as u64 * GIB, (i as u64 + 1) * GIB);
        let is_normal = normal
            .iter()
            .any(|&(b, size)| size > 0 && b < end && start < b + size);
        *e = start
            | BLOCK
            | AF
            | if is_normal {
                ATTR_NORMAL | SH_INNER
            } else {
                ATTR_DEVICE | PXN_UXN
            };
    }
    enable();
}

/// Turns the MMU on with the map vCPU 0 built.
pub fn enable() {
    let ttbr = LEVEL1.0.get() as u64;
    // SAFETY: an identity map of everything this guest touches, code
    // included, so execution continues at the same addresses.
    unsafe {
        core::arch::asm!(
            "dsb ish",
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {ttbr}",
            "isb",
            "tlbi vmalle1",
            "dsb nsh",
            "isb",
            "mrs {t}, sctlr_el1",
            "bic {t}, {t}, {a}",
            "orr {t}, {t}, {on}",
            "msr sctlr_el1, {t}",
            "isb",
            "ic iallu",
            "dsb nsh",
            "isb",
            mair = in(reg) MAIR,
            tcr = in(reg) TCR,
            ttbr = in(reg) ttbr,
            a = in(reg) SCTLR_A,
            on = in(reg) SCTLR_M | SCTLR_C | SCTLR_I,
            t = out(reg) _,
        );
    }
}
