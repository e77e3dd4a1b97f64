//! The image's first bytes (the arm64 Image header), the primary core's entry
//! and the entry of cores started by PSCI `CPU_ON`.
//!
//! Register use at entry follows the Linux arm64 boot protocol: x0 holds the
//! DTB's physical address, the MMU and D-cache are off. The assembly does only
//! what Rust cannot: check where it was loaded, zero BSS and set a stack.
//! EL2 is built soft-float and never touches FP/SIMD, so nothing here
//! enables it; CPTR_EL2 is a guest setting (`vm/vcpu.rs`).

use super::cpu::{EARLY_UART, MAX_CPUS, STACK_SIZE};
use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    // arm64 Image header (Linux Documentation/arch/arm64/booting.rst).
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x200000                // text_offset: 2 MiB above a 2 MiB-aligned RAM base
    .quad   __image_size            // effective size, BSS included
    .quad   0x2                     // flags: little-endian, 4 KiB pages, near the RAM base
    .quad   0, 0, 0                 // res2-res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

primary_entry:
    mrs     x20, cntpct_el0         // entry timestamp, for the boot-time report
    mov     x19, x0                 // DTB address
    // Loaded where we were linked? The code is linked at a fixed address.
    adr     x1, _start
    ldr     x2, =_start
    cmp     x1, x2
    b.ne    wrong_load_address
    // Zero BSS (stacks, heap, page-table pool included).
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  ldr     x1, =__stacks_start
    add     x1, x1, #{stack_size}
    mov     sp, x1
    mov     x0, x19
    mov     x1, x20
    bl      primary_main
    b       park

    // x0 = context_id = our logical core index.
    .global secondary_entry
secondary_entry:
    mov     x19, x0
    cmp     x19, #{max_cpus}
    b.hs    park
    // Same EL2 map as the boot core; its registers were cleaned to memory.
    ldr     x1, =MMU_REGS
    ldp     x2, x3, [x1]            // MAIR, TCR
    ldp     x4, x5, [x1, #16]       // TTBR0, SCTLR
    msr     mair_el2, x2
    msr     tcr_el2, x3
    msr     ttbr0_el2, x4
    dsb     ish
    isb
    tlbi    alle2
    ic      iallu
    dsb     ish
    isb
    msr     sctlr_el2, x5
    isb
    mov     x2, #{stack_size}
    madd    x1, x19, x2, x2         // (index + 1) * STACK_SIZE
    ldr     x3, =__stacks_start
    add     x1, x1, x3
    mov     sp, x1
    mov     x0, x19
    bl      secondary_main
    b       park

    // No stack or console is trustworthy here; write straight to the UART the
    // build was configured for, then halt.
wrong_load_address:
    ldr     x1, ={early_uart}
    adr     x2, wrong_msg
5:  ldrb    w3, [x2], #1
    cbz     w3, park
6:  ldr     w4, [x1, #0x18]         // PL011 FR
    tbnz    w4, #5, 6b              // TXFF
    str     w3, [x1]
    b       5b

    .global park
park:
    msr     daifset, #0xf
7:  wfe
    b       7b

wrong_msg:
    .asciz  "tessera: FATAL: image loaded at the wrong address; it must run at its link address (text_offset 0x200000 from a 2 MiB-aligned RAM base)\r\n"
    .balign 4
"#,
    stack_size = const STACK_SIZE,
    max_cpus = const MAX_CPUS,
    early_uart = const EARLY_UART,
);
