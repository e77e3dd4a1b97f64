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

/// A trapped MSR, MRS or system instruction (EC 0x18): ISS fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysRegAccess {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
    /// General-purpose register (31: XZR).
    pub rt: u8,
    /// MRS (a read), else MSR or a system instruction.
    pub read: bool,
}

impl SysRegAccess {
    pub const fn decode(esr: u64) -> SysRegAccess {
        SysRegAccess {
            op0: ((esr >> 20) & 3) as u8,
            op2: ((esr >> 17) & 7) as u8,
            op1: ((esr >> 14) & 7) as u8,
            crn: ((esr >> 10) & 0xf) as u8,
            rt: ((esr >> 5) & 0x1f) as u8,
            crm: ((esr >> 1) & 0xf) as u8,
            read: esr & 1 != 0,
        }
    }

    /// (op0, op1, CRn, CRm, op2): the register's encoding.
    pub const fn encoding(&self) -> (u8, u8, u8, u8, u8) {
        (self.op0, self.op1, self.crn, self.crm, self.op2)
    }
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

    #[test]
    fn decodes_trapped_system_register_accesses() {
        // MSR ICC_SGI1R_EL1, x3: op0 3, op1 0, CRn 12, CRm 11, op2 5.
        let esr = 0x18 << 26 | 1 << 25 | 3 << 20 | 5 << 17 | 12 << 10 | 3 << 5 | 11 << 1;
        let a = SysRegAccess::decode(esr);
        assert_eq!(a.encoding(), (3, 0, 12, 11, 5));
        assert_eq!((a.rt, a.read), (3, false));
        // MRS x30, ID_AA64PFR1_EL1: op0 3, op1 0, CRn 0, CRm 4, op2 1.
        let esr = 0x18 << 26 | 1 << 25 | 3 << 20 | 1 << 17 | 30 << 5 | 4 << 1 | 1;
        let a = SysRegAccess::decode(esr);
        assert_eq!(a.encoding(), (3, 0, 0, 4, 1));
        assert_eq!((a.rt, a.read), (30, true));
        // DC CISW, x0: op0 1, op1 0, CRn 7, CRm 14, op2 2.
        let esr = 0x18 << 26 | 1 << 25 | 1 << 20 | 2 << 17 | 7 << 10 | 14 << 1;
        assert_eq!(SysRegAccess::decode(esr).encoding(), (1, 0, 7, 14, 2));
    }
}
