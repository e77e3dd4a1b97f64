//! ESR_ELx decoding for crash reports and trap dispatch.

/// The exception class, ESR bits [31:26].
pub const fn class(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// The exception class in words (Arm ARM, ESR_EL2.EC).
pub const fn class_name(ec: u8) -> &'static str {
    match ec {
        0x00 => "Unknown reason",
        0x01 => "Trapped WFI/WFE",
        0x03..=0x06 => "Trapped AArch32 coprocessor access",
        0x07 => "Access to SIMD/FP or SVE trapped by CPACR/CPTR",
        0x0c => "Trapped AArch32 MRRC",
        0x0d => "Branch Target Exception",
        0x0e => "Illegal Execution state",
        0x11..=0x13 => "AArch32 SVC/HVC/SMC",
        0x15 => "SVC from AArch64",
        0x16 => "HVC from AArch64",
        0x17 => "SMC from AArch64",
        0x18 => "Trapped MSR/MRS/system instruction",
        0x19 => "Access to SVE trapped",
        0x1c => "Pointer authentication failure",
        0x20 => "Instruction Abort from a lower Exception level",
        0x21 => "Instruction Abort taken without a change in Exception level",
        0x22 => "PC alignment fault",
        0x24 => "Data Abort from a lower Exception level",
        0x25 => "Data Abort taken without a change in Exception level",
        0x26 => "SP alignment fault",
        0x28 | 0x2c => "Trapped floating-point exception",
        0x2f => "SError interrupt",
        0x30 | 0x31 => "Breakpoint",
        0x32 | 0x33 => "Software Step",
        0x34 | 0x35 => "Watchpoint",
        0x38 => "BKPT (AArch32)",
        0x3c => "BRK instruction",
        _ => "Reserved exception class",
    }
}

/// For instruction and data aborts: the fault status code (ISS[5:0]) in words.
pub const fn fault_status_name(esr: u64) -> &'static str {
    match esr & 0x3f {
        0x00..=0x03 => "address size fault",
        0x04..=0x07 => "translation fault",
        0x08..=0x0b => "access flag fault",
        0x0c..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x21 => "alignment fault",
        0x30 => "TLB conflict abort",
        _ => "other fault",
    }
}

/// Whether FAR holds a meaningful address for this syndrome.
pub const fn far_valid(esr: u64) -> bool {
    matches!(class(esr), 0x20 | 0x21 | 0x22 | 0x24 | 0x25 | 0x34 | 0x35)
        // ISS.FnV (bit 10) set means FAR is not valid.
        && (esr & (1 << 10)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_data_abort() {
        // EC 0x25, IL, ISS: WnR=0, DFSC=0x04|level 0 translation fault... level 1.
        let esr = (0x25 << 26) | (1 << 25) | 0x05;
        assert_eq!(class(esr), 0x25);
        assert_eq!(
            class_name(class(esr)),
            "Data Abort taken without a change in Exception level"
        );
        assert_eq!(fault_status_name(esr), "translation fault");
        assert!(far_valid(esr));
        assert!(!far_valid(esr | (1 << 10)));
        assert!(!far_valid(0x16 << 26));
        assert_eq!(class_name(0x16), "HVC from AArch64");
        assert_eq!(class_name(0x3f), "Reserved exception class");
    }
}
