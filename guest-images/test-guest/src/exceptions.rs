//! EL1 exception vectors. IRQs save the interrupted state (general and
//! FP/SIMD registers) and go to [`crate::gic::handle_irqs`]; anything else is
//! unexpected in this guest: a `FAIL unexpected exception` line, then stop.

use crate::console;

/// 1: the next synchronous exception is an Undefined Instruction a check
/// expects (skip it, set 2).
#[unsafe(no_mangle)]
pub static EXPECT_UNDEF: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
use core::arch::global_asm;

global_asm!(
    r#"
.macro UNEXPECTED index
    .balign 0x80
    mov     x0, #\index
    b       unexpected_entry
.endm
.macro IRQ
    .balign 0x80
    b       irq_entry
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global exception_vectors
exception_vectors:
    UNEXPECTED 0                    // current EL, SP0: sync
    UNEXPECTED 1                    //   IRQ (we always run on SPx)
    UNEXPECTED 2                    //   FIQ
    UNEXPECTED 3                    //   SError
    .balign 0x80                    // current EL, SPx: sync
    b       sync_spx_entry
    IRQ                             //   IRQ
    UNEXPECTED 6                    //   FIQ
    UNEXPECTED 7                    //   SError
    UNEXPECTED 8                    // lower EL (none here)
    UNEXPECTED 9
    UNEXPECTED 10
    UNEXPECTED 11
    UNEXPECTED 12
    UNEXPECTED 13
    UNEXPECTED 14
    UNEXPECTED 15

// An Undefined Instruction a check provoked on purpose (EXPECT_UNDEF = 1)
// is skipped and noted (EXPECT_UNDEF = 2); anything else is unexpected.
sync_spx_entry:
    stp     x0, x1, [sp, #-16]!
    adrp    x0, EXPECT_UNDEF
    add     x0, x0, :lo12:EXPECT_UNDEF
    ldr     w1, [x0]
    cmp     w1, #1
    b.ne    7f
    mrs     x1, esr_el1
    lsr     x1, x1, #26
    cbnz    x1, 7f
    mov     w1, #2
    str     w1, [x0]
    mrs     x1, elr_el1
    add     x1, x1, #4
    msr     elr_el1, x1
    ldp     x0, x1, [sp], #16
    eret
7:  ldp     x0, x1, [sp], #16
    mov     x0, #4
    b       unexpected_entry

unexpected_entry:
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    bl      unexpected_exception
6:  wfi
    b       6b

    // Frame: x0-x30, ELR, SPSR, pad (272 bytes), then q0-q31 (512 bytes).
irq_entry:
    sub     sp, sp, #784
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x0, elr_el1
    mrs     x1, spsr_el1
    stp     x30, x0, [sp, #240]
    str     x1, [sp, #256]
    add     x0, sp, #272
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    mrs     x1, fpsr
    mrs     x2, fpcr
    stp     x1, x2, [sp, #-16]!
    bl      handle_irqs
    ldp     x1, x2, [sp], #16
    msr     fpsr, x1
    msr     fpcr, x2
    add     x0, sp, #272
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    ldp     x30, x0, [sp, #240]
    ldr     x1, [sp, #256]
    msr     elr_el1, x0
    msr     spsr_el1, x1
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #784
    eret
"#
);

unsafe extern "C" {
    static exception_vectors: u8;
}

/// Points VBAR_EL1 at the table; first thing on every vCPU.
pub fn install() {
    // SAFETY: the table is 2 KiB-aligned code in this image.
    unsafe {
        let base = &raw const exception_vectors as u64;
        core::arch::asm!("msr vbar_el1, {}", "isb", in(reg) base);
    }
}

pub fn unmask_irqs() {
    // SAFETY: the vectors and the GIC are set up before anyone calls this.
    unsafe { core::arch::asm!("msr daifclr, #2", "isb") };
}

pub fn mask_irqs() {
    // SAFETY: masking interrupts is always safe.
    unsafe { core::arch::asm!("msr daifset, #2", "isb") };
}

#[unsafe(no_mangle)]
extern "C" fn unexpected_exception(index: u64, esr: u64, elr: u64, far: u64) {
    const KINDS: [&str; 4] = ["sync", "IRQ", "FIQ", "SError"];
    console::emergency(format_args!(
        "FAIL unexpected exception ESR={esr:#x} ELR={elr:#x} FAR={far:#x} ({} from {}, vCPU {})",
        KINDS[(index & 3) as usize],
        if index < 4 {
            "EL1 SP0"
        } else if index < 8 {
            "EL1"
        } else {
            "a lower EL"
        },
        crate::vcpu()
    ));
}
