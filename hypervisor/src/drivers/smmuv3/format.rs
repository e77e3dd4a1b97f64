//! *Portable*: the SMMUv3's in-memory formats and ID registers (Arm IHI
//! 0070): what the feature registers say, stream table entries, commands and
//! event records, as plain values so they are host-tested. The driver next
//! door only moves them between memory and registers.

use core::fmt;

/// What the ID registers say, as far as Tessera cares (the boot log prints
/// all of it: docs/smmu.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub stage1: bool,
    pub stage2: bool,
    /// Translation table formats: AArch64 tables supported.
    pub aarch64_tables: bool,
    /// Table walks and queue accesses are coherent with the CPUs' caches.
    pub coherent: bool,
    pub vmid16: bool,
    pub two_level_stream_table: bool,
    pub little_endian_tables: bool,
    pub msi: bool,
    pub ats: bool,
    pub pri: bool,
    /// SMMU_IDR0.STALL_MODEL: 0 both, 1 terminate only, 2 stall only.
    pub stall_model: u8,
    pub sid_bits: u8,
    pub ssid_bits: u8,
    pub cmdq_log2: u8,
    pub eventq_log2: u8,
    /// Output (physical) address size in bits.
    pub oas_bits: u8,
    /// SMMU_IDR5.OAS as encoded (0 = 32 bits ... 6 = 52 bits), which the
    /// stage-2 `PS` fields use too.
    pub oas: u8,
    pub gran4k: bool,
    pub gran16k: bool,
    pub gran64k: bool,
    /// SMMU_AIDR: architecture minor revision (SMMUv3.x).
    pub minor: u8,
}

/// Bits of an OAS/PS encoding (VTCR_EL2.PS, SMMU_IDR5.OAS, STE.S2PS).
pub const fn ps_bits(ps: u8) -> u8 {
    match ps {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        _ => 52,
    }
}

const fn field(v: u32, lo: u32, width: u32) -> u32 {
    (v >> lo) & ((1 << width) - 1)
}

impl Features {
    /// From SMMU_IDR0, IDR1, IDR5 and AIDR.
    pub fn decode(idr0: u32, idr1: u32, idr5: u32, aidr: u32) -> Features {
        let oas = field(idr5, 0, 3) as u8;
        Features {
            stage2: idr0 & 1 != 0,
            stage1: idr0 & 2 != 0,
            aarch64_tables: field(idr0, 2, 2) & 2 != 0,
            coherent: idr0 & 1 << 4 != 0,
            msi: idr0 & 1 << 13 != 0,
            ats: idr0 & 1 << 10 != 0,
            pri: idr0 & 1 << 16 != 0,
            vmid16: idr0 & 1 << 18 != 0,
            // TTENDIAN: 0 mixed, 2 little only, 3 big only.
            little_endian_tables: field(idr0, 21, 2) != 3,
            stall_model: field(idr0, 24, 2) as u8,
            two_level_stream_table: field(idr0, 27, 2) == 1,
            sid_bits: field(idr1, 0, 6) as u8,
            ssid_bits: field(idr1, 6, 5) as u8,
            eventq_log2: field(idr1, 16, 5) as u8,
            cmdq_log2: field(idr1, 21, 5) as u8,
            oas,
            oas_bits: ps_bits(oas),
            gran4k: idr5 & 1 << 4 != 0,
            gran16k: idr5 & 1 << 5 != 0,
            gran64k: idr5 & 1 << 6 != 0,
            minor: field(aidr, 0, 4) as u8,
        }
    }

    /// Whether this SMMU can translate with the CPU's own stage-2 tables as
    /// Tessera builds them: AArch64 format, 4 KiB granule, little-endian,
    /// coherent walks, an IPA space of `ipa_bits`.
    pub fn check_stage2(&self, ipa_bits: u8) -> Result<(), SmmuError> {
        if !self.stage2 {
            return Err(SmmuError::NoStage2);
        }
        if !self.aarch64_tables {
            return Err(SmmuError::NoAArch64Tables);
        }
        if !self.gran4k {
            return Err(SmmuError::No4KGranule);
        }
        if !self.little_endian_tables {
            return Err(SmmuError::BigEndianOnly);
        }
        if !self.coherent {
            return Err(SmmuError::NotCoherent);
        }
        if self.stall_model == 2 {
            return Err(SmmuError::StallOnly);
        }
        // With stage 1 bypassed the SMMU's input is the IPA, at most OAS wide.
        if ipa_bits > self.oas_bits {
            return Err(SmmuError::IpaTooWide {
                ipa_bits,
                oas_bits: self.oas_bits,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yn = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "SMMUv3.{}: stage 1 {}, stage 2 {}, AArch64 tables {}, coherent {}, \
             {}-bit stream IDs, {}-bit substream IDs, 2-level stream table {}, {}-bit VMIDs, \
             OAS {} bits, granules{}{}{}, command queue 2^{}, event queue 2^{}, \
             MSI {}, ATS {}, PRI {}, stall model {}",
            self.minor,
            yn(self.stage1),
            yn(self.stage2),
            yn(self.aarch64_tables),
            yn(self.coherent),
            self.sid_bits,
            self.ssid_bits,
            yn(self.two_level_stream_table),
            if self.vmid16 { 16 } else { 8 },
            self.oas_bits,
            if self.gran4k { " 4K" } else { "" },
            if self.gran16k { " 16K" } else { "" },
            if self.gran64k { " 64K" } else { "" },
            self.cmdq_log2,
            self.eventq_log2,
            yn(self.msi),
            yn(self.ats),
            yn(self.pri),
            match self.stall_model {
                0 => "stall and terminate",
                1 => "terminate",
                _ => "stall",
            }
        )
    }
}

/// Why the SMMU cannot guard the plan: each refuses the boot's DMA
/// passthrough with its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmmuError {
    NoStage2,
    NoAArch64Tables,
    No4KGranule,
    BigEndianOnly,
    NotCoherent,
    StallOnly,
    IpaTooWide {
        ipa_bits: u8,
        oas_bits: u8,
    },
    /// A stream the plan needs is beyond SMMU_IDR1.SIDSIZE or the linear
    /// stream table Tessera builds.
    StreamIdTooLarge {
        sid: u32,
        limit_bits: u8,
    },
    /// No memory for the stream table or a queue.
    NoMemory(&'static str),
    /// A register update was not acknowledged (CR0ACK, GBPA.UPDATE, ...).
    Timeout(&'static str),
    /// The command queue stopped on an error (SMMU_CMDQ_CONS.ERR).
    Command(u8),
}

impl fmt::Display for SmmuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SmmuError::NoStage2 => write!(f, "no stage-2 translation (SMMU_IDR0.S2P = 0)"),
            SmmuError::NoAArch64Tables => write!(f, "no AArch64 translation tables (SMMU_IDR0.TTF)"),
            SmmuError::No4KGranule => write!(f, "no 4 KiB granule (SMMU_IDR5.GRAN4K = 0), which Tessera's stage-2 tables use"),
            SmmuError::BigEndianOnly => write!(f, "big-endian translation tables only (SMMU_IDR0.TTENDIAN)"),
            SmmuError::NotCoherent => write!(f, "table walks are not cache-coherent (SMMU_IDR0.COHACC = 0): not supported"),
            SmmuError::StallOnly => write!(f, "stall-only fault model (SMMU_IDR0.STALL_MODEL = 2): not supported"),
            SmmuError::IpaTooWide { ipa_bits, oas_bits } => write!(
                f,
                "the VMs' {ipa_bits}-bit guest-physical space is wider than the SMMU's {oas_bits}-bit input"
            ),
            SmmuError::StreamIdTooLarge { sid, limit_bits } => write!(
                f,
                "stream ID {sid:#x} is beyond the {limit_bits}-bit stream table"
            ),
            SmmuError::NoMemory(what) => write!(f, "no memory for the {what}"),
            SmmuError::Timeout(what) => write!(f, "{what}: not acknowledged"),
            SmmuError::Command(code) => write!(f, "command queue error {}", cerror_name(code)),
        }
    }
}

/// SMMU_CMDQ_CONS.ERR codes.
pub const fn cerror_name(code: u8) -> &'static str {
    match code {
        0 => "CERROR_NONE",
        1 => "CERROR_ILL (illegal command)",
        2 => "CERROR_ABT (command fetch aborted)",
        3 => "CERROR_ATC_INV_SYNC",
        _ => "(unknown)",
    }
}

/// SMMU_GERROR bits, named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalErrors(pub u32);

impl fmt::Display for GlobalErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 9] = [
            "command queue error (CMDQ_ERR)",
            "",
            "event queue full, events lost (EVTQ_ABT_ERR)",
            "PRI queue full (PRIQ_ABT_ERR)",
            "command-sync MSI aborted (MSI_CMDQ_ABT_ERR)",
            "event MSI aborted (MSI_EVTQ_ABT_ERR)",
            "PRI MSI aborted (MSI_PRIQ_ABT_ERR)",
            "global-error MSI aborted (MSI_GERROR_ABT_ERR)",
            "service failure mode (SFM_ERR)",
        ];
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & 1 << bit != 0 && !name.is_empty() {
                write!(f, "{}{name}", if first { "" } else { "; " })?;
                first = false;
            }
        }
        if first {
            write!(f, "{:#x}", self.0)?;
        }
        Ok(())
    }
}

/// A stream table entry: 64 bytes.
pub type Ste = [u64; 8];

const STE_V: u64 = 1;
const STE_CFG_ABORT: u64 = 0b000 << 1;
const STE_CFG_S2: u64 = 0b110 << 1;
/// STE.SHCFG = "use incoming shareability" (only used when stage 2 is off;
/// the Arm ARM asks for it in any case).
const STE_1_SHCFG_INCOMING: u64 = 1 << 44;
const STE_2_S2AA64: u64 = 1 << 51;
/// Record stage-2 faults as events (terminate, don't stall: S2S = 0).
const STE_2_S2R: u64 = 1 << 58;
/// S2TTB: the table base, bits 47:4 (Tessera's tables carry 48-bit
/// addresses; VTTBR_EL2's VMID sits in bits 63:48).
const STE_3_S2TTB_MASK: u64 = ((1 << 48) - 1) & !0xf;

/// An entry the SMMU finds invalid: the stream's transactions are aborted
/// and each is reported as a `C_BAD_STE` event.
pub const STE_INVALID: Ste = [0; 8];

/// Valid and aborting, silently: for a VM's streams while it stops or
/// restarts (a quiesced device gets no event flood).
pub const fn ste_abort() -> Ste {
    [STE_V | STE_CFG_ABORT, 0, 0, 0, 0, 0, 0, 0]
}

/// Stage 1 bypassed, stage 2 with a VM's tables: `vttbr` is the VM's
/// VTTBR_EL2 (table base; its VMID field is ignored for `vmid`), `vtcr` its
/// VTCR_EL2. The STE's stage-2 fields use VTCR_EL2's layout bit for bit
/// (T0SZ, SL0, IRGN0, ORGN0, SH0, TG0, PS at bits 32+), with PS clamped to
/// what the SMMU outputs (`oas`).
pub fn ste_stage2(vmid: u16, vttbr: u64, vtcr: u64, oas: u8) -> Ste {
    const VTCR_FIELDS: u64 = (1 << 16) - 1; // T0SZ..TG0; PS below
    let ps = ((vtcr >> 16) & 7).min(oas as u64);
    let s2 = (vtcr & VTCR_FIELDS) | ps << 16;
    [
        STE_V | STE_CFG_S2,
        STE_1_SHCFG_INCOMING,
        vmid as u64 | s2 << 32 | STE_2_S2AA64 | STE_2_S2R,
        vttbr & STE_3_S2TTB_MASK,
        0,
        0,
        0,
        0,
    ]
}

/// A command: 16 bytes.
pub type Command = [u64; 2];

pub const OP_CFGI_STE: u64 = 0x03;
pub const OP_CFGI_ALL: u64 = 0x04;
pub const OP_TLBI_S12_VMALL: u64 = 0x28;
pub const OP_TLBI_NSNH_ALL: u64 = 0x30;
pub const OP_SYNC: u64 = 0x46;

/// Invalidate the SMMU's cached copy of one stream's STE.
pub const fn cmd_cfgi_ste(sid: u32) -> Command {
    [OP_CFGI_STE | (sid as u64) << 32, 1 /* leaf */]
}
/// Invalidate every cached configuration (Range = 31: all stream IDs).
pub const fn cmd_cfgi_all() -> Command {
    [OP_CFGI_ALL, 31]
}
/// Invalidate every TLB entry of one VMID (stage 1 and 2).
pub const fn cmd_tlbi_s12_vmall(vmid: u16) -> Command {
    [OP_TLBI_S12_VMALL | (vmid as u64) << 32, 0]
}
/// Invalidate every non-secure, non-hypervisor TLB entry.
pub const fn cmd_tlbi_nsnh_all() -> Command {
    [OP_TLBI_NSNH_ALL, 0]
}
/// Completes once every command before it has (CS = SIG_NONE: the driver
/// watches SMMU_CMDQ_CONS pass it).
pub const fn cmd_sync() -> Command {
    [OP_SYNC, 0]
}

/// Queue index arithmetic: `log2` entries, with the wrap bit just above the
/// index (SMMU_*Q_PROD/CONS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueIndex {
    pub log2: u8,
}

impl QueueIndex {
    fn mask(self) -> u32 {
        (1 << self.log2) - 1
    }
    fn wrap(self) -> u32 {
        1 << self.log2
    }
    /// Index and wrap bit of a PROD/CONS value (flags above them dropped).
    pub fn index(self, p: u32) -> u32 {
        p & (self.wrap() | self.mask())
    }
    pub fn slot(self, p: u32) -> usize {
        (p & self.mask()) as usize
    }
    /// The index after `p` (index and wrap bit; the rest of the register is
    /// the caller's).
    pub fn next(self, p: u32) -> u32 {
        self.index(p).wrapping_add(1) & ((self.wrap() << 1) - 1)
    }
    pub fn full(self, prod: u32, cons: u32) -> bool {
        self.slot(prod) == self.slot(cons) && (prod ^ cons) & self.wrap() != 0
    }
    pub fn empty(self, prod: u32, cons: u32) -> bool {
        self.index(prod ^ cons) == 0
    }
    /// Whether the consumer at `cons` has gone past the entry written at
    /// `at` (so the command there has completed), given the producer is at
    /// `prod` (after `at`).
    pub fn consumed(self, at: u32, cons: u32, prod: u32) -> bool {
        // Distances from `at`, modulo twice the queue size.
        let m = (self.wrap() << 1) - 1;
        let to_cons = cons.wrapping_sub(at) & m;
        let to_prod = prod.wrapping_sub(at) & m;
        to_cons != 0 && to_cons <= to_prod
    }
}

/// An event record: 32 bytes.
pub type EventRecord = [u64; 4];

/// One event, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub kind: u8,
    pub sid: u32,
    /// The input address (the IPA, with stage 1 bypassed), where the event
    /// type records one.
    pub addr: Option<u64>,
    /// Read (true) or write, where recorded.
    pub read: Option<bool>,
    /// Whether the fault came from stage 2 (vs. stage 1), where recorded.
    pub stage2: bool,
}

const F_UUT: u8 = 0x01;
const C_BAD_STREAMID: u8 = 0x02;
const F_STE_FETCH: u8 = 0x03;
const C_BAD_STE: u8 = 0x04;
const F_STREAM_DISABLED: u8 = 0x06;
const F_TRANSL_FORBIDDEN: u8 = 0x07;
const F_WALK_EABT: u8 = 0x0b;
const F_TRANSLATION: u8 = 0x10;
const F_ADDR_SIZE: u8 = 0x11;
const F_ACCESS: u8 = 0x12;
const F_PERMISSION: u8 = 0x13;

impl Event {
    pub fn decode(r: &EventRecord) -> Event {
        let kind = r[0] as u8;
        let sid = (r[0] >> 32) as u32;
        let with_addr = matches!(
            kind,
            F_UUT
                | F_TRANSL_FORBIDDEN
                | F_WALK_EABT
                | F_TRANSLATION
                | F_ADDR_SIZE
                | F_ACCESS
                | F_PERMISSION
        );
        Event {
            kind,
            sid,
            addr: with_addr.then_some(r[2]),
            read: with_addr.then_some(r[1] & 1 << 35 != 0),
            stage2: with_addr && r[1] & 1 << 39 != 0,
        }
    }

    pub const fn name(&self) -> &'static str {
        match self.kind {
            F_UUT => "unsupported upstream transaction (F_UUT)",
            C_BAD_STREAMID => "stream not in the stream table (C_BAD_STREAMID)",
            F_STE_FETCH => "stream table fetch aborted (F_STE_FETCH)",
            C_BAD_STE => "stream has no valid entry (C_BAD_STE)",
            F_STREAM_DISABLED => "stream disabled (F_STREAM_DISABLED)",
            F_TRANSL_FORBIDDEN => "translation forbidden (F_TRANSL_FORBIDDEN)",
            F_WALK_EABT => "table walk aborted (F_WALK_EABT)",
            F_TRANSLATION => "translation fault: address not mapped for this VM (F_TRANSLATION)",
            F_ADDR_SIZE => "address size fault (F_ADDR_SIZE)",
            F_ACCESS => "access flag fault (F_ACCESS)",
            F_PERMISSION => "permission fault: the VM may not write there (F_PERMISSION)",
            _ => "event",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_id_registers() {
        // IDR0: S2P, TTF=AArch64 (0b10), COHACC, VMID16, TTENDIAN=LE (0b10),
        // STALL_MODEL=1 (terminate), ST_LEVEL=1 (2-level).
        let idr0 = 1 | 0b10 << 2 | 1 << 4 | 1 << 18 | 0b10 << 21 | 1 << 24 | 1 << 27;
        // IDR1: SIDSIZE 16, SSIDSIZE 0, EVENTQS 19, CMDQS 19.
        let idr1 = 16 | 19 << 16 | 19 << 21;
        // IDR5: OAS 44 bits (4), GRAN4K, GRAN64K.
        let idr5 = 4 | 1 << 4 | 1 << 6;
        let f = Features::decode(idr0, idr1, idr5, 1);
        assert!(f.stage2 && !f.stage1 && f.aarch64_tables && f.coherent && f.vmid16);
        assert!(f.two_level_stream_table && f.little_endian_tables);
        assert_eq!((f.sid_bits, f.cmdq_log2, f.eventq_log2), (16, 19, 19));
        assert_eq!(
            (f.oas, f.oas_bits, f.gran4k, f.gran16k, f.gran64k),
            (4, 44, true, false, true)
        );
        assert_eq!(f.check_stage2(44), Ok(()));
        assert_eq!(
            f.check_stage2(48),
            Err(SmmuError::IpaTooWide {
                ipa_bits: 48,
                oas_bits: 44
            })
        );
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        let good = 1 | 0b10 << 2 | 1 << 4 | 0b10 << 21;
        let idr5 = 5 | 1 << 4;
        let check = |idr0: u32, idr5: u32| Features::decode(idr0, 16, idr5, 0).check_stage2(40);
        assert_eq!(check(good, idr5), Ok(()));
        assert_eq!(check(good & !1, idr5), Err(SmmuError::NoStage2));
        assert_eq!(
            check(good & !(0b11 << 2), idr5),
            Err(SmmuError::NoAArch64Tables)
        );
        assert_eq!(check(good & !(1 << 4), idr5), Err(SmmuError::NotCoherent));
        assert_eq!(
            check(good | 0b11 << 21, idr5),
            Err(SmmuError::BigEndianOnly)
        );
        assert_eq!(check(good | 2 << 24, idr5), Err(SmmuError::StallOnly));
        assert_eq!(check(good, 5 | 1 << 6), Err(SmmuError::No4KGranule));
    }

    #[test]
    fn stage2_ste_carries_the_vms_tables() {
        // VTCR_EL2 for 44 bits: T0SZ 20, SL0 2 (level 0), IRGN/ORGN WBWA,
        // SH inner, TG0 4K, PS 48 bits (5).
        let vtcr = 20 | 2 << 6 | 1 << 8 | 1 << 10 | 3 << 12 | 5 << 16 | 1 << 31;
        let vttbr = 0x4123_4000 | 7 << 48;
        let ste = ste_stage2(7, vttbr, vtcr, 4);
        assert_eq!(
            ste[0], 0b1101,
            "V, Config = stage 1 bypass, stage 2 translate"
        );
        assert_eq!(ste[1], 1 << 44, "SHCFG: incoming");
        assert_eq!(ste[2] & 0xffff, 7, "S2VMID");
        assert_eq!((ste[2] >> 32) & 0x3f, 20, "S2T0SZ");
        assert_eq!((ste[2] >> 38) & 3, 2, "S2SL0");
        assert_eq!((ste[2] >> 40) & 3, 1, "S2IR0");
        assert_eq!((ste[2] >> 42) & 3, 1, "S2OR0");
        assert_eq!((ste[2] >> 44) & 3, 3, "S2SH0");
        assert_eq!((ste[2] >> 46) & 3, 0, "S2TG 4K");
        assert_eq!((ste[2] >> 48) & 7, 4, "S2PS clamped to the SMMU's OAS");
        assert_ne!(ste[2] & 1 << 51, 0, "S2AA64");
        assert_eq!(ste[2] & 1 << 52, 0, "S2ENDI little-endian");
        assert_eq!(ste[2] & 1 << 57, 0, "S2S: terminate, don't stall");
        assert_ne!(ste[2] & 1 << 58, 0, "S2R: record faults");
        assert_eq!(ste[3], 0x4123_4000, "S2TTB without the VMID");
        assert_eq!(ste[4..], [0; 4]);
        assert_eq!(ste_abort()[0], 1);
        assert_eq!(STE_INVALID[0] & 1, 0);
    }

    #[test]
    fn command_encodings() {
        assert_eq!(cmd_cfgi_ste(0x18), [0x18_0000_0003, 1]);
        assert_eq!(cmd_cfgi_all(), [0x04, 31]);
        assert_eq!(cmd_tlbi_s12_vmall(3), [0x3_0000_0028, 0]);
        assert_eq!(cmd_tlbi_nsnh_all(), [0x30, 0]);
        assert_eq!(cmd_sync(), [0x46, 0]);
    }

    #[test]
    fn queue_indices_wrap() {
        let q = QueueIndex { log2: 2 };
        assert!(q.empty(0, 0));
        let mut p = 0;
        for _ in 0..4 {
            p = q.next(p);
        }
        assert_eq!(p, 0b100, "wrapped once");
        assert!(q.full(p, 0));
        assert!(!q.empty(p, 0));
        assert_eq!(q.slot(p), 0);
        for _ in 0..4 {
            p = q.next(p);
        }
        assert_eq!(p, 0, "wrap bit flips back");
        // A command at 3 (prod now 4): done once cons is past it.
        assert!(!q.consumed(3, 3, 4));
        assert!(q.consumed(3, 4, 4));
        // Across the wrap: at 7, prod 0 (=8), cons 0.
        assert!(q.consumed(7, 0, 0));
        assert!(!q.consumed(7, 7, 0));
        // Bits above the wrap bit (e.g. CONS.ERR) are ignored by next().
        assert_eq!(q.next(0x0100_0003), 4);
    }

    #[test]
    fn names_global_errors() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(
            GlobalErrors(0x4).to_string(),
            "event queue full, events lost (EVTQ_ABT_ERR)"
        );
        assert_eq!(
            GlobalErrors(0x101).to_string(),
            "command queue error (CMDQ_ERR); service failure mode (SFM_ERR)"
        );
        assert_eq!(GlobalErrors(0x2).to_string(), "0x2");
    }

    #[test]
    fn decodes_events() {
        // F_TRANSLATION, stream 0x10, a stage-2 write at 0x7000_0040.
        let r = [0x10_0000_0010, 1 << 39, 0x7000_0040, 0x7000_0000];
        let e = Event::decode(&r);
        assert_eq!(
            e,
            Event {
                kind: 0x10,
                sid: 0x10,
                addr: Some(0x7000_0040),
                read: Some(false),
                stage2: true
            }
        );
        assert!(e.name().contains("F_TRANSLATION"));
        // A read permission fault.
        let e = Event::decode(&[0x8_0000_0013, 1 << 35 | 1 << 39, 0x4000_0000, 0]);
        assert_eq!((e.read, e.sid), (Some(true), 8));
        // C_BAD_STE has a stream but no address.
        let e = Event::decode(&[0x18_0000_0004, 0, 0xdead, 0]);
        assert_eq!((e.kind, e.sid, e.addr, e.read), (4, 0x18, None, None));
        assert!(e.name().contains("C_BAD_STE"));
    }
}
