//! The image's first bytes (the arm64 Image header) and the two entry
//! points: vCPU 0 at boot (x0 = DTB) and vCPUs started by PSCI `CPU_ON`
//! (x0 = context id). The assembly only does what Rust cannot: check the
//! load address, enable FP/SIMD, zero BSS and pick this vCPU's stack.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    // arm64 Image header (Linux Documentation/arch/arm64/booting.rst).
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x80000                 // text_offset: QEMU -kernel loads us at RAM + 0x80000
    .quad   __image_size            // effective size, stacks included
    .quad   0x2                     // flags: little-endian, 4 KiB pages
    .quad   0, 0, 0                 // res2-res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

primary_entry:
    mov     x19, x0                 // DTB address
    adr     x1, _start
    ldr     x2, =_start
    cmp     x1, x2
    b.ne    wrong_load_address
    bl      enable_fp
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  mov     x0, #0
    bl      set_stack
    mov     x0, x19
    bl      guest_main
    b       park

    .global secondary_entry
secondary_entry:
    mov     x19, x0                 // context id
    bl      enable_fp
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff           // vCPU index (Aff0)
    cmp     x0, #{max_vcpus}
    b.hs    park
    bl      set_stack
    mov     x0, x19
    bl      secondary_main
    b       park

    // sp = top of stack x0 (x0 < MAX_VCPUS); keeps x30.
set_stack:
    ldr     x1, =STACK_SIZE
    madd    x2, x0, x1, x1          // (index + 1) * STACK_SIZE
    ldr     x3, =__stacks_start
    add     x2, x2, x3
    mov     sp, x2
    ret

enable_fp:
    mov     x9, #(3 << 20)          // CPACR_EL1.FPEN = 0b11: no FP/SIMD traps
    msr     cpacr_el1, x9
    isb
    ret

    // Straight to the PL011: nothing else is set up.
wrong_load_address:
    ldr     x1, =0x09000000
    adr     x2, wrong_msg
3:  ldrb    w3, [x2], #1
    cbz     w3, park
4:  ldr     w4, [x1, #0x18]         // FR
    tbnz    w4, #5, 4b              // TXFF
    str     w3, [x1]
    b       3b

park:
    msr     daifset, #0xf
5:  wfi
    b       5b

wrong_msg:
    .asciz  "check load-address: FAIL test-guest must run at its link address 0x40080000 (load the image at IPA 0x4008_0000)\r\n"
    .balign 4
"#,
    max_vcpus = const crate::MAX_VCPUS,
);

unsafe extern "C" {
    /// The `CPU_ON` entry point for secondary vCPUs.
    pub fn secondary_entry();
    static __image_start: u8;
    static __image_end: u8;
}

/// The IPA range the image (code, data, BSS, stacks) occupies.
pub fn image_range() -> (u64, u64) {
    // Linker symbols; only their addresses are taken.
    (
        &raw const __image_start as u64,
        &raw const __image_end as u64,
    )
}
