//! Per-core facts: identity, exception level, stacks, halting.

use aarch64_cpu::registers::{
    CurrentEL, Readable, Writeable, HCR_EL2, MDCR_EL2, MPIDR_EL1, TPIDR_EL2,
};

/// Cores Tessera can run on; each gets a stack in BSS.
pub const MAX_CPUS: usize = crate::fdt::firmware::MAX_CPUS;
pub const STACK_SIZE: usize = 64 * 1024;
/// UART used only if the image finds itself at the wrong address, before
/// anything else is known (QEMU virt's PL011).
pub const EARLY_UART: usize = 0x0900_0000;

#[repr(C, align(4096))]
pub struct Stacks([[u8; STACK_SIZE]; MAX_CPUS]);

/// The entry code points `sp` into this; the symbol is what it uses.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".noinit.stacks")]
static mut __stacks_start: Stacks = Stacks([[0; STACK_SIZE]; MAX_CPUS]);

pub fn current_el() -> u8 {
    CurrentEL.read(CurrentEL::EL) as u8
}

/// Affinity fields of MPIDR_EL1 (Aff3 in bits 39:32), as the DTB writes them.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// Logical index of this core (0 = boot core), kept in TPIDR_EL2.
pub fn core_index() -> usize {
    TPIDR_EL2.get() as usize
}

/// TPIDR_EL2 is a software scratch register, ours alone.
pub fn set_core_index(i: usize) {
    TPIDR_EL2.set(i as u64);
}

/// Stops this core for good: interrupts masked, waiting forever (WFI, so
/// an emulator's host thread sleeps too).
pub fn halt() -> ! {
    loop {
        // SAFETY: masking interrupts and waiting has no memory effects.
        unsafe { core::arch::asm!("msr daifset, #0xf", "wfi") };
    }
}

/// Top of this core's EL2 stack.
pub fn stack_top(core: usize) -> u64 {
    let base = core::ptr::addr_of!(__stacks_start) as u64;
    base + ((core + 1) * STACK_SIZE) as u64
}

/// HCR_EL2 while the hypervisor runs: EL1 is AArch64, and physical IRQs,
/// FIQs and SErrors are taken to EL2 (at EL2 they are masked otherwise).
pub fn init_hcr() {
    // No guest runs yet; these bits only route exceptions to EL2.
    HCR_EL2.write(
        HCR_EL2::RW::EL1IsAarch64
            + HCR_EL2::AMO::SET
            + HCR_EL2::IMO::EnableVirtualIRQ
            + HCR_EL2::FMO::EnableVirtualFIQ,
    );
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// For a test: MDCR_EL2 as a careless firmware might leave it, trapping
/// guests' debug and PMU accesses (Tessera must set its own on VM entry).
pub fn set_firmware_like_traps() {
    MDCR_EL2.write(
        MDCR_EL2::TDE::SET
            + MDCR_EL2::TDA::SET
            + MDCR_EL2::TDOSA::SET
            + MDCR_EL2::TDRA::SET
            + MDCR_EL2::TPM::SET
            + MDCR_EL2::TPMCR::SET,
    );
}
