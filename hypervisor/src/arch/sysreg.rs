//! System registers that `aarch64-cpu` does not type (or types without their
//! fields), given named fields with tock-registers, plus the list registers
//! by number. Every other register is written through `aarch64-cpu`'s typed
//! accessors where it is used.

use aarch64_cpu::registers::*;
use tock_registers::register_bitfields;

/// A system register read and written whole with `mrs`/`msr`, typed by the
/// fields of `$fields`.
macro_rules! sysreg {
    ($(#[$doc:meta])* $ty:ident, $name:ident, $asm:literal, $fields:ty) => {
        $(#[$doc])*
        pub struct $ty;
        impl Readable for $ty {
            type T = u64;
            type R = $fields;
            #[inline]
            fn get(&self) -> u64 {
                let v;
                // SAFETY: reading an EL2 system register has no side effects.
                unsafe { core::arch::asm!(concat!("mrs {}, ", $asm), out(reg) v, options(nomem, nostack)) };
                v
            }
        }
        impl Writeable for $ty {
            type T = u64;
            type R = $fields;
            #[inline]
            fn set(&self, v: u64) {
                // SAFETY: EL2 control registers, owned by the hypervisor; the
                // callers say what each value means for the guest.
                unsafe { core::arch::asm!(concat!("msr ", $asm, ", {}"), in(reg) v, options(nostack)) };
            }
        }
        pub const $name: $ty = $ty;
    };
}

register_bitfields! {u64,
    /// CPTR_EL2 without VHE (HCR_EL2.E2H = 0), Arm ARM D19.2.
    pub CPTR [
        /// Trap CPACR_EL1 accesses.
        TCPAC OFFSET(31) NUMBITS(1) [],
        /// Trap activity monitor accesses.
        TAM OFFSET(30) NUMBITS(1) [],
        /// Trap trace register accesses.
        TTA OFFSET(20) NUMBITS(1) [],
        /// Trap SME (RES1 where SME is not implemented).
        TSM OFFSET(12) NUMBITS(1) [],
        /// Trap FP/SIMD (and SVE).
        TFP OFFSET(10) NUMBITS(1) [],
        /// Trap SVE (RES1 where SVE is not implemented).
        TZ OFFSET(8) NUMBITS(1) [],
        /// RES1 bits: 13, 9 and 7:0.
        RES1_13 OFFSET(13) NUMBITS(1) [],
        RES1_9 OFFSET(9) NUMBITS(1) [],
        RES1_LOW OFFSET(0) NUMBITS(8) [
            Ones = 0xff
        ]
    ],
    /// ICH_VMCR_EL2: the guest's view of its CPU interface controls.
    pub ICH_VMCR [
        VPMR OFFSET(24) NUMBITS(8) [],
        VBPR0 OFFSET(21) NUMBITS(3) [],
        VBPR1 OFFSET(18) NUMBITS(3) [],
        VEOIM OFFSET(9) NUMBITS(1) [],
        VCBPR OFFSET(4) NUMBITS(1) [],
        VFIQEn OFFSET(3) NUMBITS(1) [],
        VAckCtl OFFSET(2) NUMBITS(1) [],
        VENG1 OFFSET(1) NUMBITS(1) [],
        VENG0 OFFSET(0) NUMBITS(1) []
    ],
    /// ICH_AP<n>R<m>_EL2: one bit per active group priority.
    pub ICH_APR [
        ACTIVE OFFSET(0) NUMBITS(32) []
    ]
}

register_bitfields! {u64,
    /// VPIDR_EL2: the MIDR_EL1 value EL1 reads.
    pub VPIDR [
        VALUE OFFSET(0) NUMBITS(32) []
    ]
}

sysreg!(Vpidr, VPIDR_EL2, "vpidr_el2", VPIDR::Register);
sysreg!(Cptr, CPTR_EL2, "cptr_el2", CPTR::Register);
sysreg!(IchVmcr, ICH_VMCR_EL2, "ich_vmcr_el2", ICH_VMCR::Register);
sysreg!(IchAp0r0, ICH_AP0R0_EL2, "ich_ap0r0_el2", ICH_APR::Register);
sysreg!(IchAp1r0, ICH_AP1R0_EL2, "ich_ap1r0_el2", ICH_APR::Register);

/// ICH_ELRSR_EL2: a bit per list register that holds no interrupt.
#[inline]
pub fn empty_lrs() -> u32 {
    let v: u64;
    // SAFETY: reading a status register has no side effects.
    unsafe { core::arch::asm!("mrs {}, ich_elrsr_el2", out(reg) v, options(nomem, nostack)) };
    v as u32
}

/// Implemented list registers (ICH_VTR_EL2.ListRegs + 1).
#[inline]
pub fn lr_count() -> usize {
    ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1
}

macro_rules! lr_access {
    ($($n:literal => $reg:ident),*) => {
        /// ICH_LR<n>_EL2; 0 for a list register that does not exist.
        #[inline]
        pub fn read_lr(n: usize) -> u64 {
            match n {
                $($n => $reg.get(),)*
                _ => 0,
            }
        }
        /// Writes ICH_LR<n>_EL2; ignored for one that does not exist.
        #[inline]
        pub fn write_lr(n: usize, v: u64) {
            match n {
                $($n => $reg.set(v),)*
                _ => {}
            }
        }
    };
}
lr_access!(0 => ICH_LR0_EL2, 1 => ICH_LR1_EL2, 2 => ICH_LR2_EL2, 3 => ICH_LR3_EL2,
    4 => ICH_LR4_EL2, 5 => ICH_LR5_EL2, 6 => ICH_LR6_EL2, 7 => ICH_LR7_EL2,
    8 => ICH_LR8_EL2, 9 => ICH_LR9_EL2, 10 => ICH_LR10_EL2, 11 => ICH_LR11_EL2,
    12 => ICH_LR12_EL2, 13 => ICH_LR13_EL2, 14 => ICH_LR14_EL2, 15 => ICH_LR15_EL2);

/// The syndrome of the exception being handled: (ESR_EL2, FAR_EL2, HPFAR_EL2).
#[inline]
pub fn syndrome() -> (u64, u64, u64) {
    (ESR_EL2.get(), FAR_EL2.get(), HPFAR_EL2.get())
}

/// ZCR_EL2.LEN all ones: the guest may use the core's longest SVE vector
/// (its reset value is UNKNOWN). Only with SVE implemented and CPTR_EL2.TZ
/// clear, or the write traps.
#[inline]
pub fn sve_full_length_for_guest() {
    // SAFETY: ZCR_EL2 (S3_4_C1_C2_0; no crate names it) only limits EL1/EL0's
    // SVE vector length; EL2 itself executes no SVE.
    unsafe { core::arch::asm!("msr S3_4_C1_C2_0, {}", "isb", in(reg) 0x1ffu64, options(nostack)) };
}

/// The ID register (op0 3, op1 0, CRn 0, `crm` 1-7, `op2`) as this core has
/// it; the feature-ID space is RAZ where nothing is allocated.
pub fn read_id_register(crm: u8, op2: u8) -> u64 {
    let mut v: u64 = 0;
    // SAFETY: reading ID registers has no side effects; every encoding of
    // this space is readable at EL2.
    unsafe {
        match (crm, op2) {
            (1, 0) => core::arch::asm!("mrs {}, S3_0_C0_C1_0", out(reg) v, options(nomem, nostack)),
            (1, 1) => core::arch::asm!("mrs {}, S3_0_C0_C1_1", out(reg) v, options(nomem, nostack)),
            (1, 2) => core::arch::asm!("mrs {}, S3_0_C0_C1_2", out(reg) v, options(nomem, nostack)),
            (1, 3) => core::arch::asm!("mrs {}, S3_0_C0_C1_3", out(reg) v, options(nomem, nostack)),
            (1, 4) => core::arch::asm!("mrs {}, S3_0_C0_C1_4", out(reg) v, options(nomem, nostack)),
            (1, 5) => core::arch::asm!("mrs {}, S3_0_C0_C1_5", out(reg) v, options(nomem, nostack)),
            (1, 6) => core::arch::asm!("mrs {}, S3_0_C0_C1_6", out(reg) v, options(nomem, nostack)),
            (1, 7) => core::arch::asm!("mrs {}, S3_0_C0_C1_7", out(reg) v, options(nomem, nostack)),
            (2, 0) => core::arch::asm!("mrs {}, S3_0_C0_C2_0", out(reg) v, options(nomem, nostack)),
            (2, 1) => core::arch::asm!("mrs {}, S3_0_C0_C2_1", out(reg) v, options(nomem, nostack)),
            (2, 2) => core::arch::asm!("mrs {}, S3_0_C0_C2_2", out(reg) v, options(nomem, nostack)),
            (2, 3) => core::arch::asm!("mrs {}, S3_0_C0_C2_3", out(reg) v, options(nomem, nostack)),
            (2, 4) => core::arch::asm!("mrs {}, S3_0_C0_C2_4", out(reg) v, options(nomem, nostack)),
            (2, 5) => core::arch::asm!("mrs {}, S3_0_C0_C2_5", out(reg) v, options(nomem, nostack)),
            (2, 6) => core::arch::asm!("mrs {}, S3_0_C0_C2_6", out(reg) v, options(nomem, nostack)),
            (2, 7) => core::arch::asm!("mrs {}, S3_0_C0_C2_7", out(reg) v, options(nomem, nostack)),
            (3, 0) => core::arch::asm!("mrs {}, S3_0_C0_C3_0", out(reg) v, options(nomem, nostack)),
            (3, 1) => core::arch::asm!("mrs {}, S3_0_C0_C3_1", out(reg) v, options(nomem, nostack)),
            (3, 2) => core::arch::asm!("mrs {}, S3_0_C0_C3_2", out(reg) v, options(nomem, nostack)),
            (3, 3) => core::arch::asm!("mrs {}, S3_0_C0_C3_3", out(reg) v, options(nomem, nostack)),
            (3, 4) => core::arch::asm!("mrs {}, S3_0_C0_C3_4", out(reg) v, options(nomem, nostack)),
            (3, 5) => core::arch::asm!("mrs {}, S3_0_C0_C3_5", out(reg) v, options(nomem, nostack)),
            (3, 6) => core::arch::asm!("mrs {}, S3_0_C0_C3_6", out(reg) v, options(nomem, nostack)),
            (3, 7) => core::arch::asm!("mrs {}, S3_0_C0_C3_7", out(reg) v, options(nomem, nostack)),
            (4, 0) => core::arch::asm!("mrs {}, S3_0_C0_C4_0", out(reg) v, options(nomem, nostack)),
            (4, 1) => core::arch::asm!("mrs {}, S3_0_C0_C4_1", out(reg) v, options(nomem, nostack)),
            (4, 2) => core::arch::asm!("mrs {}, S3_0_C0_C4_2", out(reg) v, options(nomem, nostack)),
            (4, 3) => core::arch::asm!("mrs {}, S3_0_C0_C4_3", out(reg) v, options(nomem, nostack)),
            (4, 4) => core::arch::asm!("mrs {}, S3_0_C0_C4_4", out(reg) v, options(nomem, nostack)),
            (4, 5) => core::arch::asm!("mrs {}, S3_0_C0_C4_5", out(reg) v, options(nomem, nostack)),
            (4, 6) => core::arch::asm!("mrs {}, S3_0_C0_C4_6", out(reg) v, options(nomem, nostack)),
            (4, 7) => core::arch::asm!("mrs {}, S3_0_C0_C4_7", out(reg) v, options(nomem, nostack)),
            (5, 0) => core::arch::asm!("mrs {}, S3_0_C0_C5_0", out(reg) v, options(nomem, nostack)),
            (5, 1) => core::arch::asm!("mrs {}, S3_0_C0_C5_1", out(reg) v, options(nomem, nostack)),
            (5, 2) => core::arch::asm!("mrs {}, S3_0_C0_C5_2", out(reg) v, options(nomem, nostack)),
            (5, 3) => core::arch::asm!("mrs {}, S3_0_C0_C5_3", out(reg) v, options(nomem, nostack)),
            (5, 4) => core::arch::asm!("mrs {}, S3_0_C0_C5_4", out(reg) v, options(nomem, nostack)),
            (5, 5) => core::arch::asm!("mrs {}, S3_0_C0_C5_5", out(reg) v, options(nomem, nostack)),
            (5, 6) => core::arch::asm!("mrs {}, S3_0_C0_C5_6", out(reg) v, options(nomem, nostack)),
            (5, 7) => core::arch::asm!("mrs {}, S3_0_C0_C5_7", out(reg) v, options(nomem, nostack)),
            (6, 0) => core::arch::asm!("mrs {}, S3_0_C0_C6_0", out(reg) v, options(nomem, nostack)),
            (6, 1) => core::arch::asm!("mrs {}, S3_0_C0_C6_1", out(reg) v, options(nomem, nostack)),
            (6, 2) => core::arch::asm!("mrs {}, S3_0_C0_C6_2", out(reg) v, options(nomem, nostack)),
            (6, 3) => core::arch::asm!("mrs {}, S3_0_C0_C6_3", out(reg) v, options(nomem, nostack)),
            (6, 4) => core::arch::asm!("mrs {}, S3_0_C0_C6_4", out(reg) v, options(nomem, nostack)),
            (6, 5) => core::arch::asm!("mrs {}, S3_0_C0_C6_5", out(reg) v, options(nomem, nostack)),
            (6, 6) => core::arch::asm!("mrs {}, S3_0_C0_C6_6", out(reg) v, options(nomem, nostack)),
            (6, 7) => core::arch::asm!("mrs {}, S3_0_C0_C6_7", out(reg) v, options(nomem, nostack)),
            (7, 0) => core::arch::asm!("mrs {}, S3_0_C0_C7_0", out(reg) v, options(nomem, nostack)),
            (7, 1) => core::arch::asm!("mrs {}, S3_0_C0_C7_1", out(reg) v, options(nomem, nostack)),
            (7, 2) => core::arch::asm!("mrs {}, S3_0_C0_C7_2", out(reg) v, options(nomem, nostack)),
            (7, 3) => core::arch::asm!("mrs {}, S3_0_C0_C7_3", out(reg) v, options(nomem, nostack)),
            (7, 4) => core::arch::asm!("mrs {}, S3_0_C0_C7_4", out(reg) v, options(nomem, nostack)),
            (7, 5) => core::arch::asm!("mrs {}, S3_0_C0_C7_5", out(reg) v, options(nomem, nostack)),
            (7, 6) => core::arch::asm!("mrs {}, S3_0_C0_C7_6", out(reg) v, options(nomem, nostack)),
            (7, 7) => core::arch::asm!("mrs {}, S3_0_C0_C7_7", out(reg) v, options(nomem, nostack)),
            _ => {}
        }
    }
    v
}

/// PMCR_EL0.N: event counters this core implements.
pub fn pmu_counters() -> u64 {
    let pmcr: u64;
    // SAFETY: reading PMCR_EL0 at EL2 has no side effects.
    unsafe { core::arch::asm!("mrs {}, pmcr_el0", out(reg) pmcr, options(nomem, nostack)) };
    (pmcr >> 11) & 0x1f
}
