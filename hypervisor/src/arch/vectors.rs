//! The EL2 exception vector table. Every entry saves the interrupted
//! registers in a [`Frame`] on the current stack and calls the [`Handlers`]
//! that the layers above installed: IRQs, a guest's synchronous exceptions
//! and SErrors; anything else taken at EL2 is a hypervisor bug and goes to
//! the crash handler. The vectors never name the code above them.

use aarch64_cpu::registers::Writeable;
use core::arch::global_asm;
use spin::Once;

/// What the layers above do with each kind of exception.
pub struct Handlers {
    /// A physical IRQ; `true` when it interrupted a guest.
    pub irq: fn(bool),
    /// A synchronous exception from the guest (EL1/EL0, AArch64).
    pub guest_sync: fn(&mut Frame),
    /// An HVC from the guest: its SMCCC registers x0-x17, results in place.
    pub hvc: fn(&mut SmcccRegs),
    /// An SError from the guest.
    pub guest_serror: fn(&mut Frame),
    /// Anything else: a bug at EL2.
    pub unexpected: fn(&Frame, Kind) -> !,
}

static HANDLERS: Once<Handlers> = Once::new();

/// Installs the handlers (once, on the boot core, before anything can trap).
pub fn set_handlers(h: Handlers) {
    HANDLERS.call_once(|| h);
}

/// Register state saved by the vector stubs; layout shared with the assembly.
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

/// x0-x17 of a guest making an SMC Calling Convention call.
pub type SmcccRegs = [u64; 18];

/// Which of the 16 vectors fired (offset / 0x80).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u64)]
pub enum Kind {
    CurSp0Sync = 0,
    CurSp0Irq,
    CurSp0Fiq,
    CurSp0SError,
    CurSpxSync,
    CurSpxIrq,
    CurSpxFiq,
    CurSpxSError,
    Lower64Sync,
    Lower64Irq,
    Lower64Fiq,
    Lower64SError,
    Lower32Sync,
    Lower32Irq,
    Lower32Fiq,
    Lower32SError,
}

impl Kind {
    fn from_index(i: u64) -> Kind {
        const ALL: [Kind; 16] = [
            Kind::CurSp0Sync,
            Kind::CurSp0Irq,
            Kind::CurSp0Fiq,
            Kind::CurSp0SError,
            Kind::CurSpxSync,
            Kind::CurSpxIrq,
            Kind::CurSpxFiq,
            Kind::CurSpxSError,
            Kind::Lower64Sync,
            Kind::Lower64Irq,
            Kind::Lower64Fiq,
            Kind::Lower64SError,
            Kind::Lower32Sync,
            Kind::Lower32Irq,
            Kind::Lower32Fiq,
            Kind::Lower32SError,
        ];
        ALL[(i & 15) as usize]
    }
}

const FRAME_SIZE: usize = core::mem::size_of::<Frame>();

global_asm!(
    r#"
// x2-x17 and x18-x29 stored (`stp`) or loaded (`ldp`) at their `Frame` offsets.
.macro X2_X17 op
    \op     x2, x3, [sp, #(2 * 8)]
    \op     x4, x5, [sp, #(4 * 8)]
    \op     x6, x7, [sp, #(6 * 8)]
    \op     x8, x9, [sp, #(8 * 8)]
    \op     x10, x11, [sp, #(10 * 8)]
    \op     x12, x13, [sp, #(12 * 8)]
    \op     x14, x15, [sp, #(14 * 8)]
    \op     x16, x17, [sp, #(16 * 8)]
.endm
.macro X18_X29 op
    \op     x18, x19, [sp, #(18 * 8)]
    \op     x20, x21, [sp, #(20 * 8)]
    \op     x22, x23, [sp, #(22 * 8)]
    \op     x24, x25, [sp, #(24 * 8)]
    \op     x26, x27, [sp, #(26 * 8)]
    \op     x28, x29, [sp, #(28 * 8)]
.endm

.macro VECTOR index
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #(0 * 8)]
    X2_X17 stp
    X18_X29 stp
    mov     x1, #\index
    b       exception_common
.endm

// IRQs: the handler is Rust, which keeps x19-x29 itself, and never changes
// ELR/SPSR (EL2 takes no other exception meanwhile), so only the registers
// a call may clobber are saved: the interrupt path's entry and exit cost
// half of a full frame's.
.macro IRQ_VECTOR from_guest
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #(0 * 8)]
    X2_X17 stp
    stp     x18, x30, [sp, #(18 * 8)]
    mov     x0, #\from_guest
    bl      handle_irq
    ldp     x0, x1, [sp, #(0 * 8)]
    X2_X17 ldp
    ldp     x18, x30, [sp, #(18 * 8)]
    add     sp, sp, #{frame}
    eret
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global exception_vectors
exception_vectors:
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 3
    VECTOR 4
    IRQ_VECTOR 0
    VECTOR 6
    VECTOR 7
    // Lower EL, AArch64, synchronous: an HVC takes the short path (SMCCC
    // registers only), anything else the full frame.
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #(0 * 8)]
    mrs     x0, esr_el2
    lsr     x0, x0, #26
    cmp     x0, #0x16
    b.eq    hvc_entry
    X2_X17 stp
    X18_X29 stp
    mov     x1, #8
    b       exception_common
    IRQ_VECTOR 1
    VECTOR 10
    VECTOR 11
    VECTOR 12
    VECTOR 13
    VECTOR 14
    VECTOR 15

// A hypercall: under the SMC Calling Convention it reads x0-x17 and
// returns in x0-x17; the handler is Rust (x19-x29 kept) and ELR already
// points past the HVC. x0 and x1 are saved by the vector.
hvc_entry:
    X2_X17 stp
    stp     x18, x30, [sp, #(18 * 8)]
    mov     x0, sp
    bl      handle_hvc
    ldp     x0, x1, [sp, #(0 * 8)]
    X2_X17 ldp
    ldp     x18, x30, [sp, #(18 * 8)]
    add     sp, sp, #{frame}
    eret

exception_common:
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x30, x2, [sp, #(30 * 8)]
    str     x3, [sp, #(32 * 8)]
    mov     x0, sp
    bl      handle_exception
    .global exception_return
exception_return:
    ldp     x30, x2, [sp, #(30 * 8)]
    ldr     x3, [sp, #(32 * 8)]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x0, x1, [sp, #(0 * 8)]
    X2_X17 ldp
    X18_X29 ldp
    add     sp, sp, #{frame}
    eret

    // x0 = initial guest registers (a Frame anywhere), x1 = this core's
    // stack top: the frame is copied to the top of the stack, so that the
    // guest's traps land on an empty stack, and entered like a return.
    .global guest_enter
guest_enter:
    sub     sp, x1, #{frame}
    mov     x2, sp
    mov     x3, #{frame}
1:  ldp     x4, x5, [x0], #16
    stp     x4, x5, [x2], #16
    subs    x3, x3, #16
    b.ne    1b
    b       exception_return

    // x0 = new stack pointer, x1 = function, x2 = its argument; for a core
    // that leaves its guest for good (CPU_OFF, VM stopped or restarted).
    .global stack_reset_call
stack_reset_call:
    mov     sp, x0
    mov     x0, x2
    br      x1
"#,
    frame = const FRAME_SIZE,
);

unsafe extern "C" {
    static exception_vectors: u8;
    fn guest_enter(frame: *const Frame, stack_top: u64) -> !;
    fn stack_reset_call(sp: u64, f: extern "C" fn(usize) -> !, arg: usize) -> !;
}

impl Frame {
    /// A guest's first registers: x0 and the entry point, EL1h, DAIF masked.
    pub fn entry(pc: u64, x0: u64) -> Frame {
        let mut x = [0; 31];
        x[0] = x0;
        Frame {
            x,
            elr: pc,
            spsr: 0x3c5,
            _pad: 0,
        }
    }
}

/// Leaves EL2 for the guest described by `frame`, on this core's stack.
pub fn enter_guest(frame: &Frame, stack_top: u64) -> ! {
    // SAFETY: the EL2 state for the guest (stage 2, HCR) is set; the frame is
    // copied before the stack is reused.
    unsafe { guest_enter(frame, stack_top) }
}

/// Abandons the current stack and calls `f(arg)` on a fresh one.
pub fn restart_stack(stack_top: u64, f: extern "C" fn(usize) -> !, arg: usize) -> ! {
    // SAFETY: nothing on the old stack is used again.
    unsafe { stack_reset_call(stack_top, f, arg) }
}

/// Points VBAR_EL2 at the table; called on every core before anything can fault.
pub fn install() {
    // Taking the table's address is all we do with the extern static; it is
    // 2 KiB-aligned code in this image.
    let base = &raw const exception_vectors as u64;
    aarch64_cpu::registers::VBAR_EL2.set(base);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Hands an exception EL2 cannot explain to the installed crash handler.
pub fn unexpected(frame: &Frame, kind: Kind) -> ! {
    match HANDLERS.get() {
        Some(h) => (h.unexpected)(frame, kind),
        None => super::cpu::halt(),
    }
}

/// HVCs (see `hvc_entry`).
#[unsafe(no_mangle)]
extern "C" fn handle_hvc(regs: &mut SmcccRegs) {
    match HANDLERS.get() {
        Some(h) => (h.hvc)(regs),
        None => super::cpu::halt(),
    }
}

/// IRQs (see `IRQ_VECTOR`): `from_guest` when one interrupted a guest.
#[unsafe(no_mangle)]
extern "C" fn handle_irq(from_guest: u64) {
    match HANDLERS.get() {
        Some(h) => (h.irq)(from_guest != 0),
        None => super::cpu::halt(),
    }
}

#[unsafe(no_mangle)]
extern "C" fn handle_exception(frame: &mut Frame, index: u64) {
    let kind = Kind::from_index(index);
    let Some(h) = HANDLERS.get() else {
        // Trapped before boot installed anything: nothing can report it.
        super::cpu::halt()
    };
    match kind {
        Kind::Lower64Sync => (h.guest_sync)(frame),
        Kind::Lower64SError => (h.guest_serror)(frame),
        _ => (h.unexpected)(frame, kind),
    }
}
