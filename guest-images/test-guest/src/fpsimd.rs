//! The FP/SIMD state must be the guest's alone: EL2 may not change a single
//! bit of q0-q31, FPCR or FPSR across any exit. The soak below fills them
//! with known values, then takes every kind of exit in a loop (hypercall,
//! trapped MMIO, a trapped SGI write and its delivery, a virtual timer
//! interrupt), with no Rust code in between that could itself touch them,
//! and checks every register at the end.

use crate::console::CheckResult;
use crate::gic::{SGI_TEST, VTIMER_INTID};
use crate::msg;

/// Exits of each kind the soak takes.
const ROUNDS: u64 = 500;

core::arch::global_asm!(
    r#"
// Pattern of q<n>: low half (n+1) * 0x0101010101010101, high half its complement.
.macro PATTERN n
    mov     x9, #(\n + 1)
    mul     x11, x9, x14
    mvn     x12, x11
.endm
.macro SETQ n
    PATTERN \n
    fmov    d\n, x11
    mov     v\n\().d[1], x12
.endm
.macro CHECKQ n
    PATTERN \n
    mov     x0, #(\n + 1)
    fmov    x9, d\n
    cmp     x9, x11
    b.ne    fp_soak_out
    mov     x9, v\n\().d[1]
    cmp     x9, x12
    b.ne    fp_soak_out
.endm
// Takes interrupt \intid (acknowledge, end); others are ended too. Gives up
// with result 100 + \intid after 1,000,000 polls.
.macro TAKE intid
    mov     x13, #0x4240
    movk    x13, #0xf, lsl #16
1:  mrs     x9, icc_iar1_el1
    and     x10, x9, #0xffffff
    msr     icc_eoir1_el1, x9
    cmp     x10, #\intid
    b.eq    2f
    subs    x13, x13, #1
    b.ne    1b
    mov     x0, #(100 + \intid)
    b       fp_soak_out
2:
.endm

    .section .text.fp_soak, "ax"
    .global fp_soak
// x0 = rounds, x1 = address of a trapped MMIO register to read,
// x2 = ICC_SGI1R_EL1 value that sends SGI_TEST to this vCPU.
// Returns 0 if everything held, 1-32 for the q register that changed,
// 33 for FPCR, 34 for FPSR, 100 + INTID for an interrupt that never came.
fp_soak:
    stp     x29, x30, [sp, #-96]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     d8, d9, [sp, #48]
    stp     d10, d11, [sp, #64]
    stp     d12, d13, [sp, #80]
    str     d14, [sp, #-16]!
    str     d15, [sp, #8]
    mov     x19, x0
    mov     x20, x1
    mov     x21, x2
    mrs     x22, fpcr
    mov     x14, #0x0101010101010101
    SETQ 0
    SETQ 1
    SETQ 2
    SETQ 3
    SETQ 4
    SETQ 5
    SETQ 6
    SETQ 7
    SETQ 8
    SETQ 9
    SETQ 10
    SETQ 11
    SETQ 12
    SETQ 13
    SETQ 14
    SETQ 15
    SETQ 16
    SETQ 17
    SETQ 18
    SETQ 19
    SETQ 20
    SETQ 21
    SETQ 22
    SETQ 23
    SETQ 24
    SETQ 25
    SETQ 26
    SETQ 27
    SETQ 28
    SETQ 29
    SETQ 30
    SETQ 31
    // Round towards zero, flush-to-zero, default NaN; all cumulative flags.
    mov     x9, #0x03c00000
    msr     fpcr, x9
    mov     x9, #0x9f
    movk    x9, #0x0800, lsl #16
    msr     fpsr, x9
3:  cbz     x19, 4f
    // A hypercall (TESSERA_PING).
    mov     x0, #0xc6000000
    hvc     #0
    // A trapped MMIO read.
    ldr     w9, [x20]
    // A trapped SGI write, and the SGI it raises.
    msr     icc_sgi1r_el1, x21
    isb
    TAKE 1
    // A virtual timer interrupt 2,000 ticks from now.
    mov     x9, #2000
    msr     cntv_tval_el0, x9
    mov     x9, #1
    msr     cntv_ctl_el0, x9
    isb
    TAKE 27
    msr     cntv_ctl_el0, xzr
    isb
    sub     x19, x19, #1
    b       3b
4:  mov     x14, #0x0101010101010101
    CHECKQ 0
    CHECKQ 1
    CHECKQ 2
    CHECKQ 3
    CHECKQ 4
    CHECKQ 5
    CHECKQ 6
    CHECKQ 7
    CHECKQ 8
    CHECKQ 9
    CHECKQ 10
    CHECKQ 11
    CHECKQ 12
    CHECKQ 13
    CHECKQ 14
    CHECKQ 15
    CHECKQ 16
    CHECKQ 17
    CHECKQ 18
    CHECKQ 19
    CHECKQ 20
    CHECKQ 21
    CHECKQ 22
    CHECKQ 23
    CHECKQ 24
    CHECKQ 25
    CHECKQ 26
    CHECKQ 27
    CHECKQ 28
    CHECKQ 29
    CHECKQ 30
    CHECKQ 31
    mov     x0, #33
    mrs     x9, fpcr
    mov     x10, #0x03c00000
    cmp     x9, x10
    b.ne    fp_soak_out
    mov     x0, #34
    mrs     x9, fpsr
    mov     x10, #0x9f
    movk    x10, #0x0800, lsl #16
    cmp     x9, x10
    b.ne    fp_soak_out
    mov     x0, #0
fp_soak_out:
    msr     fpcr, x22
    msr     fpsr, xzr
    msr     cntv_ctl_el0, xzr
    ldr     d15, [sp, #8]
    ldr     d14, [sp], #16
    ldp     d12, d13, [sp, #80]
    ldp     d10, d11, [sp, #64]
    ldp     d8, d9, [sp, #48]
    ldp     x21, x22, [sp, #32]
    ldp     x19, x20, [sp, #16]
    ldp     x29, x30, [sp], #96
    ret
"#
);

unsafe extern "C" {
    fn fp_soak(rounds: u64, mmio: u64, sgi1r: u64) -> u64;
}

/// The vUART's flag register: a trapped read under Tessera.
const UART_FR: u64 = 0x0900_0018;

pub fn check() -> CheckResult {
    crate::exceptions::mask_irqs();
    let sgi1r = (SGI_TEST as u64) << 24 | 1u64 << crate::vcpu();
    // SAFETY: the routine saves what AAPCS64 asks it to (x19-x22, d8-d15)
    // and restores FPCR; it touches only registers and the UART's FR.
    let r = unsafe { fp_soak(ROUNDS, UART_FR, sgi1r) };
    crate::exceptions::unmask_irqs();
    match r {
        0 => Ok(msg!(
            "q0-q31, FPCR and FPSR held across {ROUNDS} rounds of hypercall, MMIO, SGI and timer exits"
        )),
        1..=32 => Err(msg!("q{} changed across exits", r - 1)),
        33 => Err(msg!("FPCR changed across exits")),
        34 => Err(msg!("FPSR changed across exits")),
        _ if r == 100 + VTIMER_INTID as u64 => Err(msg!("the virtual timer interrupt never came")),
        _ => Err(msg!("interrupt {} never came", r - 100)),
    }
}
