use super::lr::{lr_intid, lr_state, lr_value, ACTIVE, PENDING};
use super::mmio::{ICFGR, IPRIORITYR, SGI_BASE as SGI};
use super::*;

const ISENABLER: u64 = 0x100;
const ICENABLER: u64 = 0x180;
const ISPENDR: u64 = 0x200;
const ICPENDR: u64 = 0x280;
const ISACTIVER: u64 = 0x300;
const ICACTIVER: u64 = 0x380;
const HW_SPIS: [u32; 2] = [48, 49];
const VIRTUAL_SPIS: [u32; 7] = [33, 34, 35, 36, 37, 38, 100];

fn vgic(vcpus: usize) -> Vgic {
    Vgic::new(&VmGicConfig {
        vcpus,
        hw_spis: &HW_SPIS,
        virtual_spis: &VIRTUAL_SPIS,
    })
}

fn irouter(intid: u32) -> u64 {
    0x6000 + 8 * intid as u64
}

/// Offset of the 1-bit register at `base` holding `intid`, and its bit.
fn bit_reg(base: u64, intid: u32) -> (u64, u64) {
    (base + 4 * (intid / 32) as u64, 1 << (intid % 32))
}

fn dist_set(v: &mut Vgic, base: u64, intid: u32) -> Actions {
    let (offset, value) = bit_reg(base, intid);
    v.dist_write(offset, 4, value)
}

fn dist_bit(v: &Vgic, base: u64, intid: u32) -> bool {
    let (offset, value) = bit_reg(base, intid);
    v.dist_read(offset, 4) & value != 0
}

/// Distributor on, `spis` enabled with the given priorities.
fn ready(v: &mut Vgic, spis: &[(u32, u8)]) {
    v.dist_write(0, 4, 2);
    for &(intid, priority) in spis {
        dist_set(v, ISENABLER, intid);
        v.dist_write(IPRIORITYR + intid as u64, 1, priority as u64);
    }
}

fn lr_ids(lrs: &[u64]) -> [Option<u32>; 4] {
    let mut ids = [None; 4];
    for (id, &lr) in ids.iter_mut().zip(lrs) {
        *id = (lr_state(lr) != 0).then(|| lr_intid(lr));
    }
    ids
}

/// The guest acknowledges and completes LR `n` (EOI with deactivation).
fn complete(lrs: &mut [u64], n: usize) {
    lrs[n] &= !(3 << 62);
}

#[test]
fn distributor_reset_values() {
    let v = vgic(2);
    // ARE and DS read as one, group 1 off, RWP 0.
    assert_eq!(v.dist_read(0x0, 4), 0x50);
    let typer = v.dist_read(0x4, 4);
    assert_eq!(typer & 0x1f, 3, "ITLinesNumber covers SPI 100");
    assert_eq!((typer >> 5) & 7, 1, "CPUNumber = vCPUs - 1");
    assert_eq!((typer >> 19) & 0x1f, 9, "IDbits: 10 bits");
    assert_eq!(typer & (1 << 10), 0, "SecurityExtn");
    assert_eq!(typer & (3 << 16), 0, "no LPIs, no MBIS");
    assert_eq!(v.dist_read(0x8, 4), 0x43b);
    assert_eq!(v.dist_read(0xffe8, 4), 0x30);
    assert_eq!(v.dist_read(0xfff0, 4), 0x0d);
    assert_eq!(v.dist_read(0xfffc, 4), 0xb1);
    // IGROUPR: owned SPIs are group 1, the rest (and the private word) zero.
    assert_eq!(v.dist_read(0x84, 4), 0x7e | 0x3 << 16);
    assert_eq!(v.dist_read(0x80, 4), 0);
    for base in [ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER, ICACTIVER] {
        assert_eq!(v.dist_read(base + 4, 4), 0);
    }
    assert_eq!(v.dist_read(IPRIORITYR + 32, 4), 0);
    assert_eq!(v.dist_read(ICFGR + 8, 4), 0, "SPIs reset level");
    assert_eq!(v.dist_read(irouter(33), 8), 0);
    // Unimplemented registers read as zero.
    assert_eq!(v.dist_read(0x10, 4), 0);
    assert_eq!(v.dist_read(0x800, 4), 0, "ITARGETSR with ARE");
    assert_eq!(v.dist_read(0xf00, 4), 0);
    // No SPIs at all: ITLinesNumber 0.
    let bare = Vgic::new(&VmGicConfig {
        vcpus: 1,
        hw_spis: &[],
        virtual_spis: &[],
    });
    assert_eq!(bare.dist_read(0x4, 4) & 0xff, 0);
}

#[test]
fn distributor_ctlr() {
    let mut v = vgic(2);
    let actions = v.dist_write(0x0, 4, 0x8000_0013);
    assert_eq!(
        v.dist_read(0x0, 4),
        0x52,
        "EnableGrp1 only; grp0, RWP ignored"
    );
    assert_eq!(*actions, [Action::Kick(0), Action::Kick(1)]);
    assert!(v.dist_write(0x0, 4, 0x12).is_empty(), "no change, no kick");
    v.dist_write(0x0, 4, 0);
    assert_eq!(v.dist_read(0x0, 4), 0x50);
    // Wrong size or misaligned: RAZ/WI.
    assert_eq!(v.dist_read(0x0, 2), 0);
    v.dist_write(0x0, 1, 2);
    assert_eq!(v.dist_read(0x0, 4), 0x50);
}

#[test]
fn ipriorityr_byte_and_word_access() {
    let mut v = vgic(1);
    v.dist_write(IPRIORITYR + 32, 4, 0x4433_2211);
    // 32 is not owned; 33..35 are; 5 priority bits kept.
    assert_eq!(v.dist_read(IPRIORITYR + 32, 4), 0x4030_2000);
    assert_eq!(v.dist_read(IPRIORITYR + 33, 1), 0x20);
    assert_eq!(v.dist_read(IPRIORITYR + 35, 1), 0x40);
    v.dist_write(IPRIORITYR + 34, 1, 0xff);
    assert_eq!(v.dist_read(IPRIORITYR + 32, 4), 0x40f8_2000);
    v.dist_write(IPRIORITYR + 36, 2, 0xa0b0);
    assert_eq!(v.dist_read(IPRIORITYR + 36, 2), 0xa0b0);
    assert_eq!(v.dist_read(IPRIORITYR + 33, 4), 0, "misaligned word");
    // Private priorities are RAZ/WI in the distributor...
    v.dist_write(IPRIORITYR, 4, 0xffff_ffff);
    assert_eq!(v.dist_read(IPRIORITYR, 4), 0);
    // ...and live in the redistributor.
    v.redist_write(0, SGI + IPRIORITYR + 24, 4, 0x8070_6050);
    assert_eq!(v.redist_read(0, SGI + IPRIORITYR + 24, 4), 0x8070_6050);
    v.redist_write(0, SGI + IPRIORITYR + 27, 1, 0x11);
    assert_eq!(v.redist_read(0, SGI + IPRIORITYR + 24, 4), 0x1070_6050);
    assert_eq!(v.redist_read(0, SGI + IPRIORITYR + 28, 4), 0);
    assert_eq!(v.redist_read(0, SGI + 0x420, 4), 0, "only IPRIORITYR0-7");
}

#[test]
fn irouter_64_bit_and_halves() {
    let mut v = vgic(4);
    v.dist_write(irouter(33), 8, 0x0000_00ab_8012_3402);
    // IRM (bit 31) is RES0 with No1N; Aff3.Aff2.Aff1.Aff0 kept.
    assert_eq!(v.dist_read(irouter(33), 8), 0x0000_00ab_0012_3402);
    assert_eq!(v.dist_read(irouter(33), 4), 0x0012_3402);
    assert_eq!(v.dist_read(irouter(33) + 4, 4), 0xab);
    v.dist_write(irouter(33) + 4, 4, 0);
    v.dist_write(irouter(33), 4, 3);
    assert_eq!(v.dist_read(irouter(33), 8), 3);
    assert_eq!(v.target(0, 33), Some(3));
    v.dist_write(irouter(33), 8, 4);
    assert_eq!(v.target(0, 33), None, "no vCPU 4");
    v.dist_write(irouter(33), 8, 0x100);
    assert_eq!(v.target(0, 33), None, "Aff1 1 names no vCPU");
    // Unowned SPI: RAZ/WI; no IROUTER below 32.
    v.dist_write(irouter(40), 8, 1);
    assert_eq!(v.dist_read(irouter(40), 8), 0);
    assert_eq!(v.dist_read(irouter(0), 8), 0);
    assert_eq!(v.dist_read(irouter(33), 2), 0, "halfword");
    assert!(v.dist_read(0x4, 4) & (1 << 25) != 0, "TYPER.No1N");
}

#[test]
fn icfgr_edge_and_level() {
    let mut v = vgic(1);
    // ICFGR2 covers 32..47: owned 33..38.
    v.dist_write(ICFGR + 8, 4, 0xffff_ffff);
    assert_eq!(v.dist_read(ICFGR + 8, 4), 0x2aa8);
    v.dist_write(ICFGR + 8, 4, 0x0000_0008);
    assert_eq!(v.dist_read(ICFGR + 8, 4), 0x8, "34 edge, others level");
    assert_eq!(v.dist_read(ICFGR, 4), 0, "SGI config RAZ in GICD");
    // GICR: SGIs are always edge; hardware PPIs always level.
    assert_eq!(v.redist_read(0, SGI + ICFGR, 4), 0xaaaa_aaaa);
    v.redist_write(0, SGI + ICFGR, 4, 0);
    assert_eq!(v.redist_read(0, SGI + ICFGR, 4), 0xaaaa_aaaa);
    assert_eq!(v.redist_read(0, SGI + ICFGR + 4, 4), 0);
    v.redist_write(0, SGI + ICFGR + 4, 4, 0xffff_ffff);
    let ppis = v.redist_read(0, SGI + ICFGR + 4, 4);
    // Bit 1 of each field (bit 0 is RES0); PPI 11 (27) and 14 (30) stay level.
    assert_eq!(ppis, 0xaaaa_aaaa & !(2 << 22) & !(2 << 28));
}

#[test]
fn unowned_spis_are_raz_wi_and_counted() {
    let mut v = vgic(1);
    ready(&mut v, &[]);
    for base in [ISENABLER, ISPENDR, ISACTIVER] {
        assert!(dist_set(&mut v, base, 40).is_empty());
        assert!(!dist_bit(&v, base, 40));
    }
    assert_eq!(v.denied(), 3);
    // Clearing (Linux clears every SPI at boot) and configuring are harmless.
    v.dist_write(ICENABLER + 4, 4, u32::MAX as u64);
    v.dist_write(ICPENDR + 4, 4, u32::MAX as u64);
    v.dist_write(IPRIORITYR + 40, 1, 0x80);
    assert_eq!(v.dist_read(IPRIORITYR + 40, 1), 0);
    assert_eq!(v.denied(), 3);
    // One access touching owned and unowned SPIs: the owned part works.
    v.dist_write(ISENABLER + 4, 4, (1 << 1) | (1 << 8));
    assert!(dist_bit(&v, ISENABLER, 33));
    assert_eq!(v.denied(), 4);
    // INTIDs 1020..1023 are not SPIs: no count.
    v.dist_write(ISENABLER + 4 * 31, 4, 0xf000_0000);
    assert_eq!(v.denied(), 4);
    assert_eq!(
        v.inject(40, 0),
        None,
        "the hypervisor cannot inject it either"
    );
    assert!(!v.owns(40) && v.owns(33) && v.owns(5));
}

#[test]
fn hw_spi_actions() {
    let mut v = vgic(2);
    let actions = v.dist_write(ISENABLER + 4, 4, (1 << 16) | (1 << 17) | (1 << 1));
    assert_eq!(
        *actions,
        [Action::EnablePhysSpi(48), Action::EnablePhysSpi(49)]
    );
    assert!(dist_set(&mut v, ISENABLER, 48).is_empty(), "already on");
    let actions = dist_set(&mut v, ICENABLER, 49);
    assert_eq!(*actions, [Action::DisablePhysSpi(49)]);
    let actions = v.dist_write(irouter(48), 8, 1);
    assert_eq!(*actions, [Action::RoutePhysSpi { intid: 48, vcpu: 1 }]);
    assert!(v.dist_write(irouter(48), 8, 7).is_empty(), "no such vCPU");
    assert!(v.dist_write(irouter(33), 8, 1).is_empty(), "virtual SPI");
}

#[test]
fn hw_ppi_actions() {
    let mut v = vgic(2);
    let actions = v.redist_write(1, SGI + ISENABLER, 4, (1 << 27) | (1 << 30) | (1 << 26));
    assert_eq!(
        *actions,
        [
            Action::EnablePhysPpi { vcpu: 1, intid: 27 },
            Action::EnablePhysPpi { vcpu: 1, intid: 30 },
        ]
    );
    assert_eq!(
        v.redist_read(1, SGI + ISENABLER, 4),
        (1 << 27) | (1 << 30) | (1 << 26)
    );
    assert_eq!(v.redist_read(0, SGI + ISENABLER, 4), 0, "banked per vCPU");
    let actions = v.redist_write(1, SGI + ICENABLER, 4, 1 << 27);
    assert_eq!(*actions, [Action::DisablePhysPpi { vcpu: 1, intid: 27 }]);
    assert_eq!(v.redist_read(1, SGI + ICENABLER, 4), (1 << 30) | (1 << 26));
}

#[test]
fn redistributor_rd_base() {
    let v = vgic(3);
    for vcpu in 0..3 {
        let typer = v.redist_read(vcpu, 0x8, 8);
        assert_eq!(typer >> 32, vcpu as u64, "Affinity: Aff0 = vCPU");
        assert_eq!((typer >> 8) & 0xffff, vcpu as u64, "Processor_Number");
        assert_eq!(typer & (1 << 4) != 0, vcpu == 2, "Last");
        assert_eq!(typer & 0xf, 0, "no LPIs");
        assert_eq!(v.redist_read(vcpu, 0x8, 4), typer & 0xffff_ffff);
        assert_eq!(v.redist_read(vcpu, 0xc, 4), typer >> 32);
    }
    assert_eq!(v.redist_read(3, 0x8, 8), 0, "no vCPU 3");
    assert_eq!(v.redist_read(0, 0x0, 4), 0, "GICR_CTLR");
    assert_eq!(v.redist_read(0, 0x4, 4), 0x43b);
    assert_eq!(v.redist_read(0, 0xffe8, 4), 0x30);
    assert_eq!(v.redist_read(0, 0x70, 8), 0, "PROPBASER");
}

#[test]
fn redistributor_waker() {
    let mut v = vgic(2);
    assert_eq!(v.redist_read(0, 0x14, 4), 0x6, "asleep at reset");
    v.redist_write(0, 0x14, 4, 0);
    assert_eq!(v.redist_read(0, 0x14, 4), 0, "awake, children awake");
    assert_eq!(v.redist_read(1, 0x14, 4), 0x6);
    v.redist_write(0, 0x14, 4, 0x2);
    assert_eq!(v.redist_read(0, 0x14, 4), 0x6);
    v.redist_write(0, 0x14, 4, 0x4);
    assert_eq!(v.redist_read(0, 0x14, 4), 0, "ChildrenAsleep is read-only");
}

#[test]
fn redistributor_sgi_base() {
    let mut v = vgic(2);
    assert_eq!(
        v.redist_read(0, SGI + 0x80, 4),
        u32::MAX as u64,
        "IGROUPR0 RAO"
    );
    v.redist_write(0, SGI + 0x80, 4, 0);
    assert_eq!(
        v.redist_read(0, SGI + 0x80, 4),
        u32::MAX as u64,
        "IGROUPR0 WI"
    );
    v.redist_write(0, SGI + ISPENDR, 4, 0x8001);
    assert_eq!(v.redist_read(0, SGI + ICPENDR, 4), 0x8001);
    v.redist_write(0, SGI + ICPENDR, 4, 0x1);
    assert_eq!(v.redist_read(0, SGI + ISPENDR, 4), 0x8000);
    v.redist_write(0, SGI + ISACTIVER, 4, 0x4);
    assert_eq!(v.redist_read(0, SGI + ICACTIVER, 4), 0x4);
    v.redist_write(0, SGI + ICACTIVER, 4, 0x4);
    assert_eq!(v.redist_read(0, SGI + ISACTIVER, 4), 0);
    assert_eq!(v.redist_read(1, SGI + ISPENDR, 4), 0, "banked per vCPU");
    // Only the first word exists in the SGI_base page.
    v.redist_write(0, SGI + ISENABLER + 4, 4, 1);
    assert_eq!(v.redist_read(0, SGI + ISENABLER + 4, 4), 0);
    assert_eq!(v.dist_read(ISENABLER + 4, 4), 0);
    // And the distributor's first word is RAZ/WI.
    v.dist_write(ISENABLER, 4, 0xffff_ffff);
    assert_eq!(v.redist_read(0, SGI + ISENABLER, 4), 0);
    assert_eq!(v.denied(), 0);
}

#[test]
fn inject_flush_sync_round_trip() {
    let mut v = vgic(1);
    ready(&mut v, &[(33, 0xa0)]);
    assert_eq!(v.inject(33, 0), Some(0));
    assert!(dist_bit(&v, ISPENDR, 33));
    let mut lrs = [0u64; 4];
    assert!(!v.flush_lrs(0, &mut lrs));
    let expected = 1 << 62 | 1 << 60 | 0xa0 << 48 | 33;
    assert_eq!(lrs[0], expected);
    assert_eq!(lrs[0], lr_value(33, 0xa0, false, PENDING));
    assert_eq!(lrs[1..], [0; 3]);
    assert!(dist_bit(&v, ISPENDR, 33), "pending in the LR");
    // Flushing again does not load it twice.
    assert!(!v.flush_lrs(0, &mut lrs));
    assert_eq!(lr_ids(&lrs), [Some(33), None, None, None]);
    // The guest acknowledges it.
    lrs[0] = lr_value(33, 0xa0, false, ACTIVE);
    v.sync_lrs(0, &lrs);
    assert!(!dist_bit(&v, ISPENDR, 33));
    assert!(dist_bit(&v, ISACTIVER, 33));
    // ... and completes it.
    complete(&mut lrs, 0);
    v.sync_lrs(0, &lrs);
    assert!(!dist_bit(&v, ISPENDR, 33));
    assert!(!dist_bit(&v, ISACTIVER, 33));
    assert!(!v.flush_lrs(0, &mut lrs));
    assert_eq!(lr_ids(&lrs), [None; 4]);
    // The freed LR is used again.
    v.inject(34, 0);
    dist_set(&mut v, ISENABLER, 34);
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lr_ids(&lrs), [Some(34), None, None, None]);
}

#[test]
fn not_deliverable_until_enabled() {
    let mut v = vgic(2);
    // Disabled: pending, but nothing to kick or load.
    assert_eq!(v.inject(33, 0), None);
    let mut lrs = [0u64; 4];
    assert!(!v.flush_lrs(0, &mut lrs));
    assert_eq!(lrs, [0; 4]);
    // Enabled while the distributor is off: still waiting.
    assert!(dist_set(&mut v, ISENABLER, 33).is_empty());
    assert!(!v.flush_lrs(0, &mut lrs));
    // Group 1 on: every vCPU is kicked, and it is delivered.
    assert_eq!(*v.dist_write(0, 4, 2), [Action::Kick(0), Action::Kick(1)]);
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lr_ids(&lrs), [Some(33), None, None, None]);
    // SGIs and PPIs do not depend on the distributor's enable.
    let mut v = vgic(1);
    v.redist_write(0, SGI + ISENABLER, 4, 1 << 20);
    assert_eq!(v.inject(20, 0), Some(0));
    let mut lrs = [0u64; 4];
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lr_ids(&lrs), [Some(20), None, None, None]);
}

#[test]
fn guest_pend_and_enable_kick_the_target() {
    let mut v = vgic(2);
    ready(&mut v, &[(33, 0)]);
    v.dist_write(irouter(33), 8, 1);
    assert_eq!(*dist_set(&mut v, ISPENDR, 33), [Action::Kick(1)]);
    assert_eq!(*v.redist_write(0, SGI + ISPENDR, 4, 1), []);
    assert_eq!(*v.redist_write(0, SGI + ISENABLER, 4, 1), [Action::Kick(0)]);
    // Rerouting a waiting SPI kicks its new target.
    assert_eq!(*v.dist_write(irouter(33), 8, 0), [Action::Kick(0)]);
}

#[test]
fn more_pending_than_list_registers() {
    let mut v = vgic(1);
    let spis = [
        (33, 0x50),
        (34, 0x10),
        (35, 0x40),
        (36, 0x20),
        (37, 0x60),
        (38, 0x30),
    ];
    ready(&mut v, &spis);
    for (intid, _) in spis {
        v.inject(intid, 0);
    }
    let mut lrs = [0u64; 4];
    assert!(v.flush_lrs(0, &mut lrs), "two wait");
    assert_eq!(lr_ids(&lrs), [Some(34), Some(36), Some(38), Some(35)]);
    // Still full: nothing changes.
    assert!(v.flush_lrs(0, &mut lrs));
    assert_eq!(lr_ids(&lrs), [Some(34), Some(36), Some(38), Some(35)]);
    // The guest handled 34 and 38; 36 is active, 35 still pending.
    complete(&mut lrs, 0);
    complete(&mut lrs, 2);
    lrs[1] = lr_value(36, 0x20, false, ACTIVE);
    v.sync_lrs(0, &lrs);
    assert!(!v.flush_lrs(0, &mut lrs), "the rest fit");
    assert_eq!(lr_ids(&lrs), [Some(33), Some(36), Some(37), Some(35)]);
    assert_eq!(lr_state(lrs[1]), ACTIVE);
    for intid in [34, 38] {
        assert!(!dist_bit(&v, ISPENDR, intid));
    }
}

#[test]
fn priority_ordering_ties_by_intid() {
    let mut v = vgic(1);
    ready(&mut v, &[(100, 0x80), (35, 0x80), (34, 0x80), (33, 0x88)]);
    v.redist_write(0, SGI + ISENABLER, 4, (1 << 3) | (1 << 27));
    v.redist_write(0, SGI + IPRIORITYR, 4, 0x8000_0000);
    v.redist_write(0, SGI + IPRIORITYR + 27, 1, 0x90);
    for intid in [100, 35, 34, 33, 3, 27] {
        v.inject(intid, 0);
    }
    let mut lrs = [0u64; 4];
    assert!(v.flush_lrs(0, &mut lrs));
    assert_eq!(lr_ids(&lrs), [Some(3), Some(34), Some(35), Some(100)]);
    for n in 0..4 {
        complete(&mut lrs, n);
    }
    v.sync_lrs(0, &lrs);
    assert!(!v.flush_lrs(0, &mut lrs));
    assert_eq!(lr_ids(&lrs), [Some(33), Some(27), None, None]);
    assert_eq!((lrs[0] >> 48) & 0xff, 0x88);
    assert_eq!((lrs[1] >> 48) & 0xff, 0x90);
}

#[test]
fn sgi_targeting() {
    let mut v = vgic(3);
    for vcpu in 0..3 {
        v.redist_write(vcpu, SGI + ISENABLER, 4, 0xffff);
    }
    // TargetList vCPUs 1 and 2 (and 3, which does not exist), INTID 5.
    assert_eq!(v.send_sgi(0, 5 << 24 | 0b1110), 0b110);
    assert_eq!(v.redist_read(1, SGI + ISPENDR, 4), 1 << 5);
    assert_eq!(v.redist_read(2, SGI + ISPENDR, 4), 1 << 5);
    assert_eq!(v.redist_read(0, SGI + ISPENDR, 4), 0);
    // IRM: all but self.
    assert_eq!(v.send_sgi(1, 1 << 40 | 7 << 24), 0b101);
    assert_eq!(v.redist_read(0, SGI + ISPENDR, 4), 1 << 7);
    assert_eq!(v.redist_read(1, SGI + ISPENDR, 4), 1 << 5);
    // Another cluster (Aff1, Aff2, Aff3 or RS non-zero) has no vCPUs.
    assert_eq!(v.send_sgi(0, 1 << 16 | 0b10), 0);
    assert_eq!(v.send_sgi(0, 1 << 32 | 0b10), 0);
    assert_eq!(v.send_sgi(0, 1 << 48 | 0b10), 0);
    assert_eq!(v.send_sgi(0, 1 << 44 | 0b10), 0);
    // To self.
    assert_eq!(v.send_sgi(2, 15 << 24 | 0b100), 0b100);
    assert_eq!(v.send_sgi(3, 0b1), 0, "no vCPU 3 sends");
    let mut lrs = [0u64; 4];
    v.flush_lrs(2, &mut lrs);
    assert_eq!(lr_ids(&lrs), [Some(5), Some(7), Some(15), None]);
    let mut lrs0 = [0u64; 4];
    v.flush_lrs(0, &mut lrs0);
    assert_eq!(lr_ids(&lrs0), [Some(7), None, None, None]);
}

#[test]
fn edge_reinjected_while_active() {
    let mut v = vgic(1);
    ready(&mut v, &[(33, 0x40)]);
    v.dist_write(ICFGR + 8, 4, 2 << 2);
    v.inject(33, 0);
    let mut lrs = [0u64; 4];
    v.flush_lrs(0, &mut lrs);
    lrs[0] = lr_value(33, 0x40, false, ACTIVE);
    v.sync_lrs(0, &lrs);
    // A second edge while the guest handles the first.
    assert_eq!(v.inject(33, 0), Some(0));
    assert!(dist_bit(&v, ISPENDR, 33) && dist_bit(&v, ISACTIVER, 33));
    assert!(!v.flush_lrs(0, &mut lrs));
    assert_eq!(lr_ids(&lrs), [Some(33), None, None, None], "same LR");
    assert_eq!(lr_state(lrs[0]), PENDING | ACTIVE);
    // A third one while the LR is pending: one kick, then held (the guest
    // may already have taken the second) until the LR is done; a fourth
    // finds it pending and kicks no one.
    assert_eq!(v.inject(33, 0), Some(0));
    assert_eq!(v.inject(33, 0), None);
    assert!(!v.flush_lrs(0, &mut lrs));
    assert_eq!(lr_ids(&lrs), [Some(33), None, None, None]);
    assert_eq!(lr_state(lrs[0]), PENDING | ACTIVE);
    // Completing the first leaves the second pending.
    lrs[0] = lr_value(33, 0x40, false, PENDING) | (lrs[0] & (1 << 41));
    v.sync_lrs(0, &lrs);
    complete(&mut lrs, 0);
    v.sync_lrs(0, &lrs);
    // Then the held edge, once.
    assert!(dist_bit(&v, ISPENDR, 33));
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lr_state(lrs[0]), PENDING);
    complete(&mut lrs, 0);
    v.sync_lrs(0, &lrs);
    assert!(!dist_bit(&v, ISPENDR, 33));
}

#[test]
fn reinjection_between_flush_and_sync_is_kept() {
    // Injected (another core) while the guest runs and acknowledges it.
    let mut v = vgic(1);
    ready(&mut v, &[(33, 0)]);
    v.inject(33, 0);
    let mut lrs = [0u64; 4];
    v.flush_lrs(0, &mut lrs);
    v.inject(33, 0);
    lrs[0] = lr_value(33, 0, false, ACTIVE);
    v.sync_lrs(0, &lrs);
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lr_state(lrs[0]), PENDING | ACTIVE);
}

#[test]
fn hw_linked_interrupts() {
    let mut v = vgic(1);
    ready(&mut v, &[(48, 0x20)]);
    v.redist_write(0, SGI + ISENABLER, 4, 1 << 27);
    v.inject(48, 0);
    v.inject(27, 0);
    let mut lrs = [0u64; 4];
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lrs[0], 1 << 62 | 3 << 60 | 27 << 32 | 27, "priority 0");
    assert_eq!(lrs[1], 1 << 62 | 3 << 60 | 48 << 32 | 0x20 << 48 | 48);
    // An active HW LR cannot become pending and active: it waits.
    lrs[1] = lr_value(48, 0x20, true, ACTIVE);
    v.sync_lrs(0, &lrs);
    v.inject(48, 0);
    assert!(!v.flush_lrs(0, &mut lrs));
    assert_eq!(lr_state(lrs[1]), ACTIVE);
    assert_eq!(lr_ids(&lrs), [Some(27), Some(48), None, None]);
    // Deactivated by the guest (and with it the physical interrupt).
    complete(&mut lrs, 1);
    v.sync_lrs(0, &lrs);
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lr_ids(&lrs), [Some(27), Some(48), None, None]);
    assert_eq!(lr_state(lrs[1]), PENDING);
    // Level HW interrupt done by the guest: gone from the model.
    complete(&mut lrs, 0);
    complete(&mut lrs, 1);
    v.sync_lrs(0, &lrs);
    assert_eq!(v.redist_read(0, SGI + ISPENDR, 4), 0);
    assert!(!dist_bit(&v, ISPENDR, 48));
}

#[test]
fn guest_clears_state_of_interrupts_in_lrs() {
    let mut v = vgic(1);
    ready(&mut v, &[(33, 0), (34, 0), (35, 0)]);
    for intid in [33, 34, 35] {
        v.inject(intid, 0);
    }
    let mut lrs = [0u64; 4];
    v.flush_lrs(0, &mut lrs);
    lrs[2] = lr_value(35, 0, false, ACTIVE);
    v.sync_lrs(0, &lrs);
    // Clear-pending 33, disable 34 (pending only), deactivate 35.
    assert_eq!(*dist_set(&mut v, ICPENDR, 33), [Action::Kick(0)]);
    assert_eq!(*dist_set(&mut v, ICENABLER, 34), [Action::Kick(0)]);
    dist_set(&mut v, ICACTIVER, 35);
    assert!(!dist_bit(&v, ISPENDR, 33));
    assert!(!dist_bit(&v, ISACTIVER, 35));
    assert!(!v.flush_lrs(0, &mut lrs));
    assert_eq!(lr_ids(&lrs), [None; 4]);
    // 34 stays pending, and comes back when enabled again.
    assert!(dist_bit(&v, ISPENDR, 34));
    assert_eq!(*dist_set(&mut v, ISENABLER, 34), [Action::Kick(0)]);
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lr_ids(&lrs), [Some(34), None, None, None]);
}

#[test]
fn guest_sets_active() {
    let mut v = vgic(1);
    ready(&mut v, &[(33, 0x10)]);
    assert_eq!(*dist_set(&mut v, ISACTIVER, 33), [Action::Kick(0)]);
    let mut lrs = [0u64; 4];
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lrs[0], lr_value(33, 0x10, false, ACTIVE));
}

#[test]
fn spis_go_to_their_routed_vcpu() {
    let mut v = vgic(2);
    ready(&mut v, &[(33, 0), (34, 0)]);
    v.dist_write(irouter(34), 8, 1);
    assert_eq!(v.inject(33, 1), Some(0), "the vcpu argument is ignored");
    assert_eq!(v.inject(34, 0), Some(1));
    let mut lrs0 = [0u64; 4];
    let mut lrs1 = [0u64; 4];
    v.flush_lrs(0, &mut lrs0);
    v.flush_lrs(1, &mut lrs1);
    assert_eq!(lr_ids(&lrs0), [Some(33), None, None, None]);
    assert_eq!(lr_ids(&lrs1), [Some(34), None, None, None]);
    // Rerouted while in vCPU 1's LR: vCPU 0 does not load it a second time.
    v.dist_write(irouter(34), 8, 0);
    lrs1[0] = lr_value(34, 0, false, ACTIVE);
    v.sync_lrs(1, &lrs1);
    assert_eq!(v.inject(34, 0), Some(1), "kick the vCPU holding it");
    v.flush_lrs(0, &mut lrs0);
    assert_eq!(lr_ids(&lrs0), [Some(33), None, None, None]);
    v.flush_lrs(1, &mut lrs1);
    assert_eq!(lr_state(lrs1[0]), PENDING | ACTIVE);
    // Routed to nowhere: pending, never delivered.
    v.dist_write(irouter(33), 8, 9);
    complete(&mut lrs0, 0);
    v.sync_lrs(0, &lrs0);
    assert_eq!(v.inject(33, 0), None);
    assert!(!v.flush_lrs(0, &mut lrs0) && !v.flush_lrs(1, &mut lrs1));
    assert!(dist_bit(&v, ISPENDR, 33));
}

#[test]
fn bad_arguments_are_ignored() {
    let mut v = vgic(2);
    assert_eq!(v.inject(5, 2), None, "no vCPU 2");
    assert_eq!(v.inject(1020, 0), None);
    assert_eq!(v.inject(5000, 0), None);
    let mut lrs = [0u64; 4];
    assert!(!v.flush_lrs(2, &mut lrs));
    v.sync_lrs(2, &lrs);
    assert_eq!(v.redist_read(2, 0x8, 8), 0);
    assert!(v.redist_write(2, SGI + ISENABLER, 4, 1 << 27).is_empty());
    assert_eq!(v.dist_read(0x1_0000, 4), 0);
    assert_eq!(v.redist_read(0, 0x2_0000, 4), 0);
    // More LRs than the model tracks: the extra ones stay unused.
    ready(&mut v, &[]);
    v.redist_write(0, SGI + ISENABLER, 4, 0xffff);
    for sgi in 0..16 {
        v.inject(sgi, 0);
    }
    let mut many = [0u64; 20];
    assert!(!v.flush_lrs(0, &mut many));
    assert_eq!(many[16..], [0; 4]);
    // Too many vCPUs are clamped.
    let big = Vgic::new(&VmGicConfig {
        vcpus: 9,
        hw_spis: &[],
        virtual_spis: &[20, 1020, 40],
    });
    assert_eq!(big.vcpus(), MAX_VCPUS);
    assert!(big.owns(40) && !big.owns(1020));
    assert_eq!(big.dist_read(0x4, 4) & 0x1f, 1);
}

#[test]
fn guest_cannot_strand_a_physical_interrupt() {
    let mut v = vgic(1);
    ready(&mut v, &[(48, 0), (49, 0)]);
    v.inject(48, 0);
    v.inject(49, 0);
    let mut lrs = [0u64; 4];
    v.flush_lrs(0, &mut lrs);
    lrs[1] = lr_value(49, 0, true, ACTIVE);
    v.sync_lrs(0, &lrs);
    // Clearing the pending state of 48 or the active state of 49 would
    // leave the physical interrupt active for ever: ignored.
    dist_set(&mut v, ICPENDR, 48);
    dist_set(&mut v, ICACTIVER, 49);
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lrs[0], lr_value(48, 0, true, PENDING));
    assert_eq!(lrs[1], lr_value(49, 0, true, ACTIVE));
}

#[test]
fn retract_a_level_interrupt() {
    let mut v = vgic(1);
    ready(&mut v, &[(33, 0), (48, 0)]);
    v.inject(33, 0);
    assert_eq!(v.retract(33, 0), None, "not loaded yet: just dropped");
    assert!(!dist_bit(&v, ISPENDR, 33));
    v.inject(33, 0);
    let mut lrs = [0u64; 4];
    v.flush_lrs(0, &mut lrs);
    assert_eq!(v.retract(33, 0), Some(0));
    assert!(!dist_bit(&v, ISPENDR, 33));
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lr_ids(&lrs), [None; 4]);
    assert_eq!(v.retract(48, 0), None, "HW-linked");
    assert_eq!(v.retract(40, 0), None, "not owned");
}

#[test]
fn foreign_list_registers_are_left_alone() {
    let mut v = vgic(1);
    ready(&mut v, &[(33, 0), (34, 0)]);
    v.inject(33, 0);
    let mut lrs = [0u64; 2];
    v.flush_lrs(0, &mut lrs);
    // The caller reused LR 0 for something of its own; LR 1 is busy too.
    let foreign = lr_value(900, 0, false, PENDING);
    lrs = [foreign, foreign + 1];
    v.inject(34, 0);
    assert!(v.flush_lrs(0, &mut lrs));
    assert_eq!(lrs, [foreign, foreign + 1]);
}

#[test]
fn unloading_keeps_a_pending_sgi_for_the_next_entry() {
    let mut v = vgic(2);
    v.redist_write(1, SGI + ISENABLER, 4, 1 << 3);
    let targets = v.send_sgi(0, 3 << 24 | 1 << 1);
    assert_eq!(targets, 1 << 1);
    let mut lrs = [0u64; 4];
    v.flush_lrs(1, &mut lrs);
    assert_eq!(lr_ids(&lrs)[0], Some(3));
    // vCPU 1 goes off (CPU_OFF) with the SGI still pending in its LR.
    assert!(v.unload_lrs(1, &lrs).is_empty());
    assert!(v.redist_read(1, SGI + ISPENDR, 4) & (1 << 3) != 0);
    // Back on: the SGI is loaded again into empty LRs.
    let mut lrs = [0u64; 4];
    v.flush_lrs(1, &mut lrs);
    assert_eq!(lr_ids(&lrs)[0], Some(3));
    assert_eq!(lr_state(lrs[0]), PENDING);
}

#[test]
fn unloading_returns_active_hw_interrupts_for_deactivation() {
    let mut v = vgic(1);
    v.redist_write(0, SGI + ISENABLER, 4, 1 << 27);
    assert!(v.private_enabled(0, 27));
    assert!(!v.private_enabled(0, 30));
    v.inject(27, 0);
    let mut lrs = [0u64; 4];
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lr_ids(&lrs)[0], Some(27));
    // The guest acknowledged it (active) and is restarted before its EOI.
    lrs[0] = (lrs[0] & !(3 << 62)) | (ACTIVE as u64) << 62;
    let physical = v.unload_lrs(0, &lrs);
    assert_eq!(physical.as_slice(), &[27]);
    // Nothing of it is left in the model.
    let mut lrs = [0u64; 4];
    assert!(!v.flush_lrs(0, &mut lrs));
    assert_eq!(lr_ids(&lrs), [None; 4]);
    // An LR the model did not load (left from before a restart) counts too.
    let stale = [lr_value(30, 0, true, PENDING), 0, 0, 0];
    assert_eq!(vgic(1).unload_lrs(0, &stale).as_slice(), &[30]);
}

#[test]
fn direct_load_takes_a_free_lr_only_when_the_model_agrees() {
    let mut v = vgic(1);
    // Disabled: slow path (the model decides).
    assert_eq!(v.load_direct(0, 27, 0xf), None);
    v.redist_write(0, SGI + ISENABLER, 4, 1 << 27 | 1 << 3);
    // No empty LR: slow path.
    assert_eq!(v.load_direct(0, 27, 0), None);
    let (n, lr) = v.load_direct(0, 27, 0b1110).expect("a free LR");
    assert_eq!(n, 1);
    assert_eq!((lr_intid(lr), lr_state(lr)), (27, PENDING));
    assert!(lr & (1 << 61) != 0, "hardware-linked");
    // Still pending in its LR (not empty): the model must merge.
    assert_eq!(v.load_direct(0, 27, 0b1101), None);
    // Completed by the guest since (its LR is empty): reused in place.
    let (again, _) = v.load_direct(0, 27, 0b1111).expect("reused");
    assert_eq!(again, 1);
    // The model knows LR 1 holds it: a refill keeps it, and the guest's
    // completion frees it.
    let mut lrs = [0, lr, 0, 0];
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lr_ids(&lrs), [None, Some(27), None, None]);
    lrs[1] = 0;
    v.sync_lrs(0, &lrs);
    assert!(v.load_direct(0, 27, 0xf).is_some());
    // An LR the model still counts as used is never taken, even if empty.
    let mut w = vgic(1);
    w.redist_write(0, SGI + ISENABLER, 4, 1 << 3 | 1 << 27);
    w.send_sgi(0, 3 << 24 | 1);
    let mut lrs = [0u64; 4];
    w.flush_lrs(0, &mut lrs);
    assert_eq!(lr_ids(&lrs)[0], Some(3));
    let (n, _) = w.load_direct(0, 27, 0b0001 | 0b0100).unwrap();
    assert_eq!(n, 2);
}

/// ICH_LR<n>_EL2.EOI (virtual interrupts): maintenance interrupt on
/// deactivation.
const LR_EOI: u64 = 1 << 41;

#[test]
fn doorbell_storm_kicks_the_peer_once() {
    // The peer has the doorbell in an LR, pending, with its interrupts
    // masked; the other VM rings it a thousand times.
    let mut v = vgic(1);
    ready(&mut v, &[(33, 0xa0)]);
    v.dist_write(ICFGR + 8, 4, 2 << 2);
    assert_eq!(v.inject(33, 0), Some(0));
    let mut lrs = [0u64; 4];
    v.flush_lrs(0, &mut lrs);
    assert_eq!(lr_state(lrs[0]), PENDING);
    let mut kicks = 0;
    for _ in 0..1000 {
        if let Some(t) = v.inject(33, 0) {
            kicks += 1;
            // The kicked vCPU exits and refreshes: the LR is still pending.
            v.sync_lrs(t, &lrs);
            v.flush_lrs(t, &mut lrs);
        }
    }
    assert!(kicks <= 1, "{kicks} kicks for one pending doorbell");
    assert_eq!(lr_ids(&lrs), [Some(33), None, None, None]);
    // An edge may have come after the guest took the interrupt, unseen:
    // it is held, and the LR asks for a maintenance interrupt on EOI.
    assert_ne!(lrs[0] & LR_EOI, 0);
    // The guest unmasks, takes and completes it: the held edge comes once.
    complete(&mut lrs, 0);
    v.sync_lrs(0, &lrs);
    assert!(!v.flush_lrs(0, &mut lrs));
    assert_eq!(lr_ids(&lrs), [Some(33), None, None, None]);
    assert_eq!(lrs[0] & LR_EOI, 0);
    complete(&mut lrs, 0);
    v.sync_lrs(0, &lrs);
    assert!(!v.flush_lrs(0, &mut lrs));
    assert_eq!(lrs, [0; 4], "no LR left behind, no stale EOI request");
}

#[test]
fn pending_interrupt_waiting_for_an_lr_is_kicked_once() {
    let mut v = vgic(1);
    ready(&mut v, &[(33, 0), (34, 0)]);
    assert_eq!(v.inject(33, 0), Some(0));
    // Before the target refreshed (or while its LRs are full): no more kicks.
    assert_eq!(v.inject(33, 0), None);
    assert_eq!(v.inject(33, 0), None);
    // Another interrupt is its own 0-to-1 change.
    assert_eq!(v.inject(34, 0), Some(0));
}
