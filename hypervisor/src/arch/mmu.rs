//! The hypervisor's own stage-1 translation (EL2, identity map): RAM as
//! normal cacheable memory, MMIO as device memory, the image's code
//! read-only and executable, everything else non-executable.

use crate::arch::pagetable::{Attrs, MapError, PageTable, Stage, TableMemory, MAIR_EL2, PAGE_SIZE};
use crate::fdt::firmware::{Platform, Range};
use aarch64_cpu::registers::{Readable, ID_AA64MMFR0_EL1, SCTLR_EL2, TCR_EL2};
use core::ptr::addr_of_mut;

const POOL_PAGES: usize = 64;

#[repr(C, align(4096))]
struct Pool([[u64; 512]; POOL_PAGES]);

/// Table pages for the EL2 map. Only the boot core builds it, before any
/// other core runs.
static mut POOL: Pool = Pool([[0; 512]; POOL_PAGES]);

/// Hands out pages of [`POOL`] in order.
struct PoolMemory {
    next: usize,
}

impl TableMemory for PoolMemory {
    fn alloc(&mut self) -> Option<u64> {
        if self.next == POOL_PAGES {
            return None;
        }
        self.next += 1;
        // SAFETY: only the address is taken; the pool is zeroed BSS.
        Some(unsafe { addr_of_mut!(POOL.0[self.next - 1]) } as u64)
    }
    fn entries(&mut self, pa: u64) -> &mut [u64; 512] {
        // SAFETY: `pa` is a page this allocator returned (identity mapped, or
        // the MMU is off); the builder holds the only reference at a time.
        unsafe { &mut *(pa as *mut [u64; 512]) }
    }
}

/// Register values every core loads to turn its MMU on; read by the
/// secondary entry code with the MMU off, so it is cleaned to memory.
#[repr(C)]
pub struct MmuRegs {
    pub mair: u64,
    pub tcr: u64,
    pub ttbr0: u64,
    pub sctlr: u64,
}

#[unsafe(no_mangle)]
pub static mut MMU_REGS: MmuRegs = MmuRegs {
    mair: 0,
    tcr: 0,
    ttbr0: 0,
    sctlr: 0,
};

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __image_end: u8;
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// The image's sections as linked: (code, read-only data, read-write data).
pub fn image_layout() -> (Range, Range, Range) {
    // SAFETY: linker-script symbols; only their addresses are used.
    let (start, text_end, ro_end, end) = unsafe {
        (
            sym(&__image_start),
            sym(&__text_end),
            sym(&__rodata_end),
            sym(&__image_end),
        )
    };
    (
        Range {
            base: start,
            size: text_end - start,
        },
        Range {
            base: text_end,
            size: ro_end - text_end,
        },
        Range {
            base: ro_end,
            size: end - ro_end,
        },
    )
}

pub fn pa_bits() -> (u8, u64) {
    match ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange) {
        0 => (32, 0),
        1 => (36, 1),
        2 => (40, 2),
        3 => (42, 3),
        4 => (44, 4),
        // 48 bits and more: descriptors here carry 48-bit addresses.
        _ => (48, 5),
    }
}

fn align_up(x: u64) -> u64 {
    (x + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

fn align_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// Builds the map and turns the MMU and caches on for the boot core.
pub fn init(p: &Platform, dtb: Range) -> Result<(), MapError> {
    let (va_bits, ps) = pa_bits();
    let mut t = PageTable::new(PoolMemory { next: 0 }, Stage::El2, va_bits)?;
    let (text, rodata, data) = image_layout();
    let image = Range {
        base: text.base,
        size: data.end() - text.base,
    };
    for ram in &p.ram {
        // RAM around the image: plain data.
        if ram.base < image.base && image.base < ram.end() {
            t.map(ram.base, ram.base, image.base - ram.base, Attrs::DATA)?;
            t.map(
                image.end(),
                image.end(),
                ram.end() - image.end(),
                Attrs::DATA,
            )?;
        } else {
            t.map(ram.base, ram.base, ram.size, Attrs::DATA)?;
        }
    }
    t.map(text.base, text.base, text.size, Attrs::CODE)?;
    t.map(rodata.base, rodata.base, rodata.size, Attrs::RODATA)?;
    t.map(data.base, data.base, data.size, Attrs::DATA)?;
    if !p
        .ram
        .iter()
        .any(|r| r.contains(dtb.base) && r.contains(dtb.end() - 1))
    {
        let base = align_down(dtb.base);
        t.map(base, base, align_up(dtb.end()) - base, Attrs::RODATA)?;
    }
    let mut devices: heapless::Vec<Range, 12> = heapless::Vec::new();
    let _ = devices.push(p.gic.dist);
    devices.extend(p.gic.redists.iter().copied());
    devices.extend(p.uart.map(|u| u.range));
    devices.extend(p.smmu);
    devices.extend(p.pcie.as_ref().map(|pc| pc.ecam));
    for d in devices {
        let base = align_down(d.base);
        t.map(base, base, align_up(d.end()) - base, Attrs::DEVICE)?;
    }

    // Values only: the entry code of secondary cores loads them too.
    const TCR_RES1: u64 = (1 << 23) | (1 << 31);
    let tcr = (TCR_EL2::T0SZ.val(64 - va_bits as u64)
        + TCR_EL2::TG0::KiB_4
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::SH0::Inner
        + TCR_EL2::PS.val(ps))
    .value
        | TCR_RES1;
    // The RES1 bits of the E2H=0 layout.
    const SCTLR_RES1: u64 = 0x30c5_0830;
    let sctlr = (SCTLR_EL2::M::Enable
        + SCTLR_EL2::C::Cacheable
        + SCTLR_EL2::I::Cacheable
        + SCTLR_EL2::SA::Enable
        + SCTLR_EL2::WXN::Enable)
        .value
        | SCTLR_RES1;
    // SAFETY: the only writer; no other core runs yet.
    let regs = unsafe { &mut *addr_of_mut!(MMU_REGS) };
    *regs = MmuRegs {
        mair: MAIR_EL2,
        tcr,
        ttbr0: t.root(),
        sctlr,
    };
    // Data written with the caches off must not be shadowed by stale lines.
    invalidate_dcache(image);
    enable(regs);
    clean_dcache(Range {
        base: regs as *const _ as u64,
        size: 32,
    });
    Ok(())
}

fn enable(r: &MmuRegs) {
    // SAFETY: the table identity-maps this code, its stack and data with the
    // same addresses, so execution continues seamlessly once M is set.
    unsafe {
        core::arch::asm!(
            "msr mair_el2, {mair}",
            "msr tcr_el2, {tcr}",
            "msr ttbr0_el2, {ttbr}",
            "dsb ish",
            "isb",
            "tlbi alle2",
            "ic iallu",
            "dsb ish",
            "isb",
            "msr sctlr_el2, {sctlr}",
            "isb",
            mair = in(reg) r.mair, tcr = in(reg) r.tcr, ttbr = in(reg) r.ttbr0, sctlr = in(reg) r.sctlr,
        );
    }
}

const LINE: u64 = 64;

/// Runs one data-cache maintenance instruction on every line of `r`, then
/// waits for them to complete.
fn by_line(r: Range, op: impl Fn(u64)) {
    let mut a = r.base & !(LINE - 1);
    while a < r.end() {
        op(a);
        a += LINE;
    }
    // SAFETY: barrier only.
    unsafe { core::arch::asm!("dsb sy") };
}

fn invalidate_dcache(r: Range) {
    // SAFETY: invalidating lines we own that hold no newer data (caches off).
    by_line(r, |a| unsafe { core::arch::asm!("dc ivac, {}", in(reg) a) });
}

/// Cleans and invalidates to the point of coherency: nothing of the range
/// stays in the caches, so no dirty line of an earlier user can later
/// overwrite what a reader with its caches off writes.
pub fn clean_invalidate_dcache(r: Range) {
    // SAFETY: cleaning first keeps the data; only cache state changes.
    by_line(r, |a| unsafe {
        core::arch::asm!("dc civac, {}", in(reg) a)
    });
}

/// Cleans to the point of coherency, for a reader whose MMU is still off.
pub fn clean_dcache(r: Range) {
    // SAFETY: cleaning has no architectural effect on the data.
    by_line(r, |a| unsafe { core::arch::asm!("dc cvac, {}", in(reg) a) });
}
