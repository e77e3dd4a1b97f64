//! What a guest on `-cpu max` may use, and how Tessera's traps behave:
//! - `cpu-features`: SME is hidden from the ID registers; pointer
//!   authentication works with the guest's own keys; SVE works and its
//!   vector length is set through ZCR_EL1.
//! - `traps`: set/way cache maintenance exits and is ignored; an
//!   implementation-defined register is absent (an Undefined Instruction
//!   exception, after an exit); the PMU cycle counter and a debug register
//!   are used without any exit, whatever the firmware left in MDCR_EL2.

use crate::console::CheckResult;
use crate::exceptions::EXPECT_UNDEF;
use crate::{msg, psci};
use core::arch::asm;
use core::sync::atomic::Ordering::SeqCst;

macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a system register.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v) };
        v
    }};
}

macro_rules! msr {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the check owns these EL1 settings while it runs.
        unsafe { asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) v) };
    }};
}

fn field(v: u64, lsb: u32) -> u64 {
    (v >> lsb) & 0xf
}

pub fn cpu_features() -> CheckResult {
    let pfr0 = mrs!("id_aa64pfr0_el1");
    let pfr1 = mrs!("id_aa64pfr1_el1");
    let isar1 = mrs!("id_aa64isar1_el1");
    let smfr0 = mrs!("S3_0_C0_C4_5");
    if field(pfr1, 24) != 0 || smfr0 != 0 {
        return Err(msg!(
            "SME advertised (ID_AA64PFR1 {pfr1:#x}, ID_AA64SMFR0 {smfr0:#x})"
        ));
    }
    let pac = field(isar1, 4) != 0 || field(isar1, 8) != 0;
    if pac {
        pac_round_trip()?;
    }
    let vl = if field(pfr0, 32) != 0 {
        sve_vector_length()?
    } else {
        0
    };
    Ok(msg!(
        "SME hidden; pointer authentication {}; SVE {}",
        if pac {
            "signs and authenticates with my key"
        } else {
            "absent"
        },
        if vl != 0 {
            "on, ZCR_EL1.LEN=1 gives 32-byte vectors"
        } else {
            "absent"
        }
    ))
}

/// Sets the APIA key, enables it (SCTLR_EL1.EnIA), signs and authenticates.
fn pac_round_trip() -> Result<(), crate::console::Msg> {
    let ptr: u64 = 0x0000_0000_4008_1234;
    let (signed, back): (u64, u64);
    msr!("S3_0_C2_C1_0", 0x0123_4567_89ab_cdefu64); // APIAKEYLO_EL1
    msr!("S3_0_C2_C1_1", 0xfedc_ba98_7654_3210u64); // APIAKEYHI_EL1
    let sctlr = mrs!("sctlr_el1");
    msr!("sctlr_el1", sctlr | 1 << 31);
    // SAFETY: PACIA x0, x1 and AUTIA x0, x1 (as words: no assembler
    // feature needed) only change x0.
    unsafe {
        asm!(".inst 0xdac10020", inout("x0") ptr => signed, in("x1") 42u64);
        asm!(".inst 0xdac11020", inout("x0") signed => back, in("x1") 42u64);
    }
    msr!("sctlr_el1", sctlr);
    if signed == ptr || back != ptr {
        return Err(msg!(
            "PACIA {ptr:#x} -> {signed:#x}, AUTIA -> {back:#x}: want a signed value and the pointer back"
        ));
    }
    Ok(())
}

/// Enables SVE at EL1, asks for 256-bit vectors, reads the length (RDVL).
fn sve_vector_length() -> Result<u64, crate::console::Msg> {
    let cpacr = mrs!("cpacr_el1");
    msr!("cpacr_el1", cpacr | 3 << 16);
    let zcr = mrs!("S3_0_C1_C2_0");
    msr!("S3_0_C1_C2_0", 1u64);
    let vl: u64;
    // SAFETY: RDVL x0, #1 reads the vector length in bytes.
    unsafe { asm!(".inst 0x04bf5020", out("x0") vl) };
    msr!("S3_0_C1_C2_0", zcr);
    msr!("cpacr_el1", cpacr);
    if vl != 32 {
        return Err(msg!("ZCR_EL1.LEN=1 gave {vl}-byte vectors, want 32"));
    }
    Ok(vl)
}

/// Exits of this vCPU so far, this call's included.
fn exits() -> u64 {
    psci::call(psci::TESSERA_EXITS, 0, 0, 0) as u64
}

pub fn traps() -> CheckResult {
    const SET_WAY_OPS: u64 = 10;
    let e0 = exits();
    for _ in 0..SET_WAY_OPS {
        // SAFETY: DC CISW on set 0 way 0 of level 1: at most cleans a line.
        unsafe { asm!("dc cisw, {}", in(reg) 0u64) };
    }
    let e1 = exits();
    // Bounds with room for an unrelated interrupt or two in between: a
    // trapped operation costs one exit each, an untrapped one none.
    if e1 - e0 < SET_WAY_OPS + 1 {
        return Err(msg!(
            "{SET_WAY_OPS} DC CISW took {} exits, want at least {SET_WAY_OPS} (trapped)",
            e1 - e0 - 1
        ));
    }
    EXPECT_UNDEF.store(1, SeqCst);
    // SAFETY: an implementation-defined register; an Undefined Instruction
    // exception is expected and skipped by the vector.
    let _v: u64 = unsafe {
        let v;
        asm!("mrs {}, S3_0_C15_C0_0", out(reg) v);
        v
    };
    let taken = EXPECT_UNDEF.swap(0, SeqCst) == 2;
    let e2 = exits();
    if !taken || e2 - e1 < 2 {
        return Err(msg!(
            "IMPDEF register read: UNDEF {taken}, exits {}: want an UNDEF after one exit",
            e2 - e1 - 1
        ));
    }
    // PMU cycle counter and a breakpoint register, with no exit.
    msr!("pmcr_el0", mrs!("pmcr_el0") | 1);
    msr!("pmcntenset_el0", 1u64 << 31);
    let c0 = mrs!("pmccntr_el0");
    msr!("dbgbvr0_el1", 0x4008_0000u64);
    let bvr = mrs!("dbgbvr0_el1");
    let c1 = mrs!("pmccntr_el0");
    let e3 = exits();
    // Seven PMU and debug accesses: trapped, they would be 7 exits.
    if e3 - e2 > 3 || bvr != 0x4008_0000 || c1 <= c0 {
        return Err(msg!(
            "PMU and debug: {} exits for 7 accesses (want none but stray interrupts, at most 2), DBGBVR0 read {bvr:#x}, cycles {c0} -> {c1}",
            e3 - e2 - 1
        ));
    }
    Ok(msg!(
        "{SET_WAY_OPS} DC CISW trapped and ignored; IMPDEF register read: UNDEF after 1 exit; PMU cycle counter and DBGBVR0 without exits"
    ))
}
