//! DMA through the SMMU (boards/test-dma.toml): d0 owns the PCIe host and
//! drives QEMU's `edu` device, whose DMA engine copies between RAM (by bus
//! address, which the SMMU translates with d0's stage 2) and a 4 KiB buffer
//! inside the device. d1 keeps a canary where d0 aims when it tries to
//! leave its RAM. The test harness checks Tessera's log lines for the same
//! events.

use crate::console;
use crate::dt::VmInfo;
use crate::psci;
use crate::timer;

/// QEMU virt's ECAM (the guest DTB's `pcie` node says the same).
const ECAM: u64 = 0x40_1000_0000;
/// Where this test puts each edu's BAR0 (1 MiB), in the 32-bit window.
const BAR_LISTED: u64 = 0x1000_0000;
const BAR_UNLISTED: u64 = 0x1010_0000;
/// 00:02.0 is d0's (the board file lists it); 00:03.0 is no one's.
const LISTED: u64 = 2 << 3;
const UNLISTED: u64 = 3 << 3;
const EDU_VENDOR_DEVICE: u32 = 0x11e8_1234;

/// Buffers in d0's RAM. Untranslated, these bus addresses would be
/// physical 0x4040_0000.., inside Tessera's own memory.
const SRC: u64 = 0x4040_0000;
const DST: u64 = 0x4040_1000;
const UNLISTED_DST: u64 = 0x4040_2000;
const RESTART_DST: u64 = 0x4040_3000;
/// d1's canary: its IPA 0x4100_0000 is physical 0x4900_0000 (its RAM is at
/// 0x4800_0000, fixed in the board file). For d0 it is outside its RAM.
pub const OTHER_VM_CANARY: u64 = 0x4900_0000;
const D1_CANARY_IPA: u64 = 0x4100_0000;
const LEN: usize = 4096;
/// d0's word in the shared region once its DMA attempts are over.
const ATTEMPTS_OVER: u64 = 0xd3a0_0d0e;

// edu registers (BAR0) and DMA commands.
const EDU_DMA_SRC: u64 = 0x80;
const EDU_DMA_DST: u64 = 0x88;
const EDU_DMA_COUNT: u64 = 0x90;
const EDU_DMA_CMD: u64 = 0x98;
const EDU_BUFFER: u64 = 0x4_0000;
const DMA_RUN: u32 = 1;
const DMA_TO_RAM: u32 = 2;

fn read32(addr: u64) -> u32 {
    // SAFETY: ECAM and BARs are this VM's passed-through device memory.
    unsafe { crate::mmio::read32(addr as usize) }
}
fn write32(addr: u64, v: u32) {
    // SAFETY: as above.
    unsafe { crate::mmio::write32(addr as usize, v) }
}

fn cfg(function: u64, reg: u64) -> u64 {
    ECAM + (function << 12) + reg
}

/// Finds edu at `function`, gives it its BAR and turns on memory decoding
/// and bus mastering.
fn setup(function: u64, bar: u64) -> Result<(), &'static str> {
    if read32(cfg(function, 0)) != EDU_VENDOR_DEVICE {
        return Err("no edu device there (QEMU needs -device edu,addr=N)");
    }
    write32(cfg(function, 0x10), bar as u32);
    // Command: memory space + bus master (status bits written as 0: no effect).
    write32(cfg(function, 0x04), 0b110);
    if read32(bar) != 0x0100_00ed {
        return Err("edu's identification register does not read back through its BAR");
    }
    Ok(())
}

/// One DMA transfer; waits (5 s of counter) for the engine to finish.
fn dma(bar: u64, src: u64, dst: u64, to_ram: bool) -> Result<(), &'static str> {
    write32(bar + EDU_DMA_SRC, src as u32);
    write32(bar + EDU_DMA_DST, dst as u32);
    write32(bar + EDU_DMA_COUNT, LEN as u32);
    write32(
        bar + EDU_DMA_CMD,
        DMA_RUN | if to_ram { DMA_TO_RAM } else { 0 },
    );
    let give_up = timer::now() + 5 * timer::frequency();
    if timer::wait_until(give_up, || read32(bar + EDU_DMA_CMD) & DMA_RUN == 0) {
        Ok(())
    } else {
        Err("the DMA engine did not finish within 5 s")
    }
}

fn buf(addr: u64) -> &'static mut [u8] {
    // SAFETY: buffers in this VM's RAM that nothing else here uses.
    unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, LEN) }
}

fn pattern(seed: u8) -> impl Iterator<Item = u8> {
    (0..LEN).map(move |i| (i as u8).wrapping_mul(7) ^ seed)
}

fn flag(vm: &VmInfo) -> Option<*mut u64> {
    vm.shms[0].map(|s| s.base as *mut u64)
}

/// RAM -> device -> RAM: what comes back is what went out.
fn roundtrip(check: &str) {
    buf(SRC)
        .iter_mut()
        .zip(pattern(0x5a))
        .for_each(|(b, p)| *b = p);
    buf(DST).fill(0);
    let r = dma(BAR_LISTED, SRC, EDU_BUFFER, false)
        .and_then(|_| dma(BAR_LISTED, EDU_BUFFER, DST, true));
    match r {
        Err(e) => console::fail(check, e),
        Ok(()) if buf(DST).iter().copied().eq(pattern(0x5a)) => console::pass(
            check,
            format_args!(
                "{LEN} bytes from IPA {SRC:#x} through 00:02.0 back to IPA {DST:#x}: intact, in this VM's RAM"
            ),
        ),
        Ok(()) => console::fail(check, "the data did not come back into this VM's RAM"),
    }
}

pub fn owner(vm: &VmInfo) {
    if vm.boot_count >= 1 {
        return after_restart();
    }
    if let Err(e) = setup(LISTED, BAR_LISTED) {
        return console::fail("dma-roundtrip", format_args!("00:02.0: {e}"));
    }
    roundtrip("dma-roundtrip");

    // Out of its RAM, at another VM's memory: the SMMU has no mapping.
    match dma(BAR_LISTED, EDU_BUFFER, OTHER_VM_CANARY, true) {
        Ok(()) => console::pass(
            "dma-outside",
            format_args!("write aimed at IPA {OTHER_VM_CANARY:#x} (d1's canary if untranslated); this VM runs on"),
        ),
        Err(e) => console::fail("dma-outside", e),
    }

    // A function the board file gives to no VM: nothing gets through.
    buf(UNLISTED_DST).fill(0xaa);
    let r = setup(UNLISTED, BAR_UNLISTED)
        .and_then(|_| dma(BAR_UNLISTED, SRC, EDU_BUFFER, false))
        .and_then(|_| dma(BAR_UNLISTED, EDU_BUFFER, UNLISTED_DST, true));
    match r {
        Err(e) => console::fail("dma-unlisted", format_args!("00:03.0: {e}")),
        Ok(()) if buf(UNLISTED_DST).iter().all(|&b| b == 0xaa) => console::pass(
            "dma-unlisted",
            "00:03.0 (listed for no VM) wrote nothing into this VM's RAM",
        ),
        Ok(()) => console::fail("dma-unlisted", "00:03.0's DMA reached this VM's RAM"),
    }
    if let Some(f) = flag(vm) {
        // SAFETY: the first word of the shared region's data, d0's to write.
        unsafe { f.write_volatile(ATTEMPTS_OVER) };
    }

    // A DMA in flight when the VM restarts (edu starts it 100 ms after the
    // command): it must not land in the next boot's memory.
    buf(RESTART_DST).fill(0);
    write32(BAR_LISTED + EDU_DMA_SRC, EDU_BUFFER as u32);
    write32(BAR_LISTED + EDU_DMA_DST, RESTART_DST as u32);
    write32(BAR_LISTED + EDU_DMA_COUNT, LEN as u32);
    write32(BAR_LISTED + EDU_DMA_CMD, DMA_RUN | DMA_TO_RAM);
    console::info(format_args!(
        "DMA to IPA {RESTART_DST:#x} in flight; SYSTEM_RESET"
    ));
    let r = psci::system_reset();
    console::fail("dma-restart", format_args!("SYSTEM_RESET returned {r}"));
}

fn after_restart() {
    // Long past the moment edu would have written (100 ms after the command).
    let t = timer::now() + timer::frequency() / 2;
    timer::wait_until(t, || false);
    if buf(RESTART_DST).iter().all(|&b| b == 0) {
        console::pass(
            "dma-restart",
            "the DMA in flight at the restart did not land in this boot's memory",
        );
    } else {
        console::fail("dma-restart", "DMA from before the restart landed after it");
    }
    // The new boot enables the device again, and it works.
    match setup(LISTED, BAR_LISTED) {
        Ok(()) => roundtrip("dma-after-restart"),
        Err(e) => console::fail("dma-after-restart", e),
    }
    console::summary();
    console::line(format_args!("done"));
}

/// d1: a canary where d0's stray DMA aims; checked once d0 is done trying.
pub fn canary(vm: &VmInfo) {
    buf(D1_CANARY_IPA)
        .iter_mut()
        .zip(pattern(0xc3))
        .for_each(|(b, p)| *b = p);
    let Some(f) = flag(vm) else {
        return console::fail("dma-canary", "no shared region d0-d1 in the DTB");
    };
    let give_up = timer::now() + 300 * timer::frequency();
    // SAFETY: the first word of the shared region's data (d0 writes it).
    let over = timer::wait_until(give_up, || unsafe { f.read_volatile() } == ATTEMPTS_OVER);
    if !over {
        return console::fail("dma-canary", "d0 never said its DMA attempts were over");
    }
    if buf(D1_CANARY_IPA).iter().copied().eq(pattern(0xc3)) {
        console::pass(
            "dma-canary",
            format_args!("intact after d0's DMA at physical {OTHER_VM_CANARY:#x}"),
        );
    } else {
        console::fail("dma-canary", "another VM's DMA wrote into this VM's memory");
    }
    console::summary();
    console::line(format_args!("done"));
}
