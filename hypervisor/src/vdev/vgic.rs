//! The virtual GICv3 of one VM, as pure state: what the guest sees in its
//! distributor and redistributor frames, which interrupts are pending or
//! active, and which of them sit in a vCPU's list registers.
//!
//! No hardware access here: the EL2 code traps the guest's MMIO accesses and
//! `ICC_SGI1R_EL1` writes, calls into this model, carries out the returned
//! [`Action`]s on the physical GIC, and moves list-register values between
//! the model ([`Vgic::flush_lrs`], [`Vgic::sync_lrs`]) and `ICH_LR<n>_EL2`.
//!
//! What the guest sees: GICv3 with affinity routing always on, security
//! disabled (`GICD_CTLR.DS` = 1), one interrupt group (group 1), no LPIs.
//! vCPU *i* has affinity 0.0.0.*i*. A VM sees only the SPIs it owns (its
//! passed-through ones and the ones the hypervisor injects); every other SPI
//! reads as disabled and ignores writes, and a guest attempt to enable, pend
//! or activate one is counted ([`Vgic::denied`]).
//!
//! State ownership: an interrupt that is not in a list register is described
//! by the model's `pending`/`active` bits. Once loaded into an LR, the LR holds
//! its state; the model keeps a snapshot (for guest reads) and, in `pending`,
//! only what arrived since (an edge re-injected while the guest handles the
//! first one), which the next flush merges into the LR.
//!
//! An edge that arrives for a virtual interrupt whose LR is still pending is
//! held in `pending` (not merged: the guest may have taken the LR since the
//! hypervisor last looked, and then the edge is a new one), and the LR asks
//! for a maintenance interrupt on EOI so that the held edge is delivered
//! then. So a source ringing in a loop costs its peer at most two exits and
//! two interrupts, and no edge that arrives after the guest took the first
//! one is lost.
//!
//! Limits: LRs are never preempted (a higher-priority interrupt waits for a
//! free LR; `flush_lrs` then asks for an underflow interrupt); level-triggered
//! virtual interrupts are pending until the guest takes them or the source
//! calls [`Vgic::retract`]; trigger-mode (ICFGR) writes for passed-through
//! SPIs change only the model, not the physical GIC.

mod lr;
mod mmio;
#[cfg(test)]
mod tests;

use core::ops::Deref;

/// vCPUs per VM at most.
pub const MAX_VCPUS: usize = 4;
/// One past the highest SPI INTID (SPIs are 32..=1019).
pub const MAX_INTID: u32 = 1020;
/// PPIs backed by hardware (the guest's timers): 27 = virtual timer,
/// 30 = EL1 physical timer. They go into LRs with the HW bit set.
pub const HW_PPIS: [u32; 2] = [27, 30];
/// List registers the model tracks per vCPU (`ICH_VTR_EL2.ListRegs` <= 15, so 16 at most).
pub const MAX_LRS: usize = 16;
/// Implemented priority bits (5, as the minimum of the virtual CPU interface):
/// written priorities are masked with this.
pub const PRIORITY_MASK: u8 = 0xf8;
/// Most actions one emulated access can need: a 32-bit enable register may
/// touch 32 hardware SPIs, plus one kick per vCPU.
pub const MAX_ACTIONS: usize = 32 + MAX_VCPUS;

/// 32-bit words of 1-bit-per-INTID state covering INTIDs 0..1024.
const WORDS: usize = 32;
const SGI_COUNT: u32 = 16;
const PRIVATE: u32 = 32;

/// Something the EL2 code must do on the real GIC after an emulated access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Enable a passed-through SPI at the physical distributor.
    EnablePhysSpi(u32),
    /// Disable a passed-through SPI at the physical distributor.
    DisablePhysSpi(u32),
    /// Route a passed-through SPI to the physical core that runs `vcpu`.
    RoutePhysSpi { intid: u32, vcpu: usize },
    /// Enable a hardware PPI in the redistributor of the core that runs `vcpu`.
    EnablePhysPpi { vcpu: usize, intid: u32 },
    /// Disable a hardware PPI in the redistributor of the core that runs `vcpu`.
    DisablePhysPpi { vcpu: usize, intid: u32 },
    /// This vCPU's list registers need a refill (exit it, then `flush_lrs`).
    Kick(usize),
}

/// The actions of one emulated access, in order; each `Kick` at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    list: heapless::Vec<Action, MAX_ACTIONS>,
}

impl Actions {
    fn push(&mut self, action: Action) {
        if matches!(action, Action::Kick(_)) && self.list.contains(&action) {
            return;
        }
        // MAX_ACTIONS covers the worst case of one access.
        let _ = self.list.push(action);
    }

    /// The actions as a slice.
    pub fn as_slice(&self) -> &[Action] {
        &self.list
    }
}

impl Deref for Actions {
    type Target = [Action];

    fn deref(&self) -> &[Action] {
        &self.list
    }
}

/// What a VM's interrupt controller is built from.
#[derive(Debug, Clone, Copy)]
pub struct VmGicConfig<'a> {
    /// vCPUs of the VM, 1..=MAX_VCPUS (clamped).
    pub vcpus: usize,
    /// INTIDs of passed-through SPIs (HW-linked in the LRs).
    pub hw_spis: &'a [u32],
    /// INTIDs of SPIs the hypervisor injects (vUART 33, doorbells).
    pub virtual_spis: &'a [u32],
}

/// One bit per INTID for 32 INTIDs.
#[derive(Debug, Clone, Copy, Default)]
struct Word {
    /// The VM may see this interrupt.
    owned: u32,
    /// Linked to a physical interrupt of the same INTID.
    hw: u32,
    enabled: u32,
    /// Not in an LR: pending. In an LR: pending again since it was loaded.
    pending: u32,
    /// Not in an LR: active. In an LR: set active by the guest since.
    active: u32,
    /// Edge-triggered (else level).
    edge: u32,
    /// Held by a list register (of `lr_vcpu` for SPIs).
    in_lr: u32,
    /// The LR's pending and active state as last seen (for guest reads).
    lr_pending: u32,
    lr_active: u32,
    /// The guest cleared the pending or active state of an interrupt in an
    /// LR: the next flush removes it from the LR.
    unpend: u32,
    deactivate: u32,
}

#[derive(Debug, Clone, Copy)]
struct Cpu {
    /// SGIs and PPIs of this vCPU.
    word: Word,
    priority: [u8; PRIVATE as usize],
    /// The INTID each list register was loaded with.
    slots: [Option<u16>; MAX_LRS],
    /// GICR_WAKER.ProcessorSleep.
    asleep: bool,
}

impl Cpu {
    fn new() -> Cpu {
        let hw = HW_PPIS.iter().fold(0, |m, &i| m | bit(i));
        Cpu {
            word: Word {
                owned: u32::MAX,
                hw,
                edge: (1 << SGI_COUNT) - 1,
                ..Word::default()
            },
            priority: [0; PRIVATE as usize],
            slots: [None; MAX_LRS],
            asleep: true,
        }
    }
}

/// The virtual GIC of one VM. The caller keeps it behind a lock.
#[derive(Debug, Clone)]
pub struct Vgic {
    vcpus: usize,
    /// GICD_CTLR.EnableGrp1.
    group1: bool,
    cpu: [Cpu; MAX_VCPUS],
    /// SPI state; word 0 (the private INTIDs) is unused.
    spi: [Word; WORDS],
    spi_priority: [u8; 1024],
    /// `GICD_IROUTER<n>` packed: Aff2.Aff1.Aff0 in bits [23:0], Aff3 in [31:24].
    route: [u32; 1024],
    /// For an SPI in an LR: the vCPU whose LR it is.
    lr_vcpu: [u8; 1024],
    /// Highest owned SPI (0 if none).
    max_spi: u32,
    denied: u32,
}

const fn bit(intid: u32) -> u32 {
    1 << (intid % 32)
}

const fn word_index(intid: u32) -> usize {
    (intid / 32) as usize
}

/// Calls `f` with the INTID of each set bit of `bits` in word `w`.
fn for_each_bit(w: usize, mut bits: u32, mut f: impl FnMut(u32)) {
    while bits != 0 {
        let b = bits.trailing_zeros();
        bits &= bits - 1;
        f(w as u32 * 32 + b);
    }
}

impl Vgic {
    /// A VM's GIC at reset: everything disabled, priorities 0, SPIs level and
    /// routed to vCPU 0, distributor off, redistributors asleep.
    pub fn new(cfg: &VmGicConfig) -> Vgic {
        let mut vgic = Vgic {
            vcpus: cfg.vcpus.clamp(1, MAX_VCPUS),
            group1: false,
            cpu: [Cpu::new(); MAX_VCPUS],
            spi: [Word::default(); WORDS],
            spi_priority: [0; 1024],
            route: [0; 1024],
            lr_vcpu: [0; 1024],
            max_spi: 0,
            denied: 0,
        };
        let spis = cfg.hw_spis.iter().map(|&i| (i, true));
        for (intid, hw) in spis.chain(cfg.virtual_spis.iter().map(|&i| (i, false))) {
            if !(PRIVATE..MAX_INTID).contains(&intid) {
                continue;
            }
            let word = &mut vgic.spi[word_index(intid)];
            word.owned |= bit(intid);
            if hw {
                word.hw |= bit(intid);
            }
            vgic.max_spi = vgic.max_spi.max(intid);
        }
        vgic
    }

    /// vCPUs of this VM.
    pub fn vcpus(&self) -> usize {
        self.vcpus
    }

    /// Whether the guest has enabled private interrupt `intid` of `vcpu` (the
    /// physical enable of a HW-linked PPI follows it).
    pub fn private_enabled(&self, vcpu: usize, intid: u32) -> bool {
        vcpu < self.vcpus && intid < PRIVATE && self.is(vcpu, intid, |w| w.enabled)
    }

    /// Guest attempts to enable, pend or activate an SPI the VM does not own.
    pub fn denied(&self) -> u32 {
        self.denied
    }

    /// Whether the VM owns this SPI (always true for SGIs and PPIs).
    pub fn owns(&self, intid: u32) -> bool {
        intid < PRIVATE
            || (intid < MAX_INTID && self.spi[word_index(intid)].owned & bit(intid) != 0)
    }

    /// Makes `intid` pending (SPI: on the vCPU its IROUTER names; SGI/PPI: on
    /// `vcpu`). Returns the vCPU to kick if it became deliverable. An SPI the
    /// VM does not own, or a vCPU it does not have, is ignored.
    pub fn inject(&mut self, intid: u32, vcpu: usize) -> Option<usize> {
        if vcpu >= self.vcpus || !self.owns(intid) {
            return None;
        }
        let b = bit(intid);
        let word = self.word_mut(vcpu, word_index(intid));
        let again = word.pending & b != 0 && word.hw & b == 0;
        word.pending |= b;
        // Kick only on a 0-to-1 change of the model's pending bit: the first
        // kick already has the target refresh, so a source ringing in a loop
        // costs its peer one exit, not one per ring (`flush_lrs` holds an
        // edge that finds the LR still pending; see `update_lr`).
        if again {
            return None;
        }
        self.kick_target(vcpu, intid)
    }

    /// Takes back the pending state of a virtual interrupt whose level
    /// source went low (the vUART's line), as a guest `ICPENDR` write would.
    /// Returns the vCPU to kick if the interrupt sits in one of its LRs.
    /// HW-linked interrupts are left alone.
    pub fn retract(&mut self, intid: u32, vcpu: usize) -> Option<usize> {
        if vcpu >= self.vcpus || !self.owns(intid) || self.is(vcpu, intid, |w| w.hw) {
            return None;
        }
        let b = bit(intid);
        let word = self.word_mut(vcpu, word_index(intid));
        word.pending &= !b;
        if word.in_lr & b == 0 {
            return None;
        }
        word.unpend |= b;
        self.holder(vcpu, intid)
    }

    /// A guest write to `ICC_SGI1R_EL1` from vCPU `from`: returns the bitmask
    /// of target vCPUs (the SGI is made pending on each).
    pub fn send_sgi(&mut self, from: usize, sgi1r: u64) -> u32 {
        if from >= self.vcpus {
            return 0;
        }
        let intid = ((sgi1r >> 24) & 0xf) as u32;
        let all = (1u32 << self.vcpus) - 1;
        let targets = if sgi1r & (1 << 40) != 0 {
            all & !(1 << from)
        } else {
            let aff1 = (sgi1r >> 16) & 0xff;
            let aff2 = (sgi1r >> 32) & 0xff;
            let aff3 = (sgi1r >> 48) & 0xff;
            let range_selector = (sgi1r >> 44) & 0xf;
            if aff1 | aff2 | aff3 | range_selector != 0 {
                return 0;
            }
            (sgi1r & 0xffff) as u32 & all
        };
        for_each_bit(0, targets, |vcpu| {
            self.cpu[vcpu as usize].word.pending |= bit(intid);
        });
        targets
    }

    fn word(&self, vcpu: usize, w: usize) -> &Word {
        if w == 0 {
            &self.cpu[vcpu].word
        } else {
            &self.spi[w]
        }
    }

    fn word_mut(&mut self, vcpu: usize, w: usize) -> &mut Word {
        if w == 0 {
            &mut self.cpu[vcpu].word
        } else {
            &mut self.spi[w]
        }
    }

    fn priority(&self, vcpu: usize, intid: u32) -> u8 {
        if intid < PRIVATE {
            self.cpu[vcpu].priority[intid as usize]
        } else {
            self.spi_priority[intid as usize]
        }
    }

    fn is(&self, vcpu: usize, intid: u32, field: fn(&Word) -> u32) -> bool {
        field(self.word(vcpu, word_index(intid))) & bit(intid) != 0
    }

    /// The vCPU an interrupt is delivered to (SPIs: by IROUTER; `None` if it
    /// names no vCPU of this VM).
    fn target(&self, vcpu: usize, intid: u32) -> Option<usize> {
        if intid < PRIVATE {
            return Some(vcpu);
        }
        let route = self.route[intid as usize];
        let aff0 = (route & 0xff) as usize;
        (route & !0xff == 0 && aff0 < self.vcpus).then_some(aff0)
    }

    /// The vCPU whose LRs hold the interrupt, else its target.
    fn holder(&self, vcpu: usize, intid: u32) -> Option<usize> {
        if intid >= PRIVATE && self.is(vcpu, intid, |w| w.in_lr) {
            Some(self.lr_vcpu[intid as usize] as usize)
        } else {
            self.target(vcpu, intid)
        }
    }

    /// Enabled, and for SPIs the distributor forwards group 1.
    fn forwarded(&self, vcpu: usize, intid: u32) -> bool {
        self.is(vcpu, intid, |w| w.enabled) && (intid < PRIVATE || self.group1)
    }

    /// The vCPU to kick after `intid` was pended: its holder if it can be
    /// delivered (or sits in an LR, where a flush merges the new state).
    fn kick_target(&self, vcpu: usize, intid: u32) -> Option<usize> {
        let in_lr = self.is(vcpu, intid, |w| w.in_lr);
        (in_lr || self.forwarded(vcpu, intid))
            .then(|| self.holder(vcpu, intid))
            .flatten()
    }

    /// After a guest changed the state of `intid`: kick whoever must refill.
    fn kick_if_needed(&self, vcpu: usize, intid: u32, actions: &mut Actions) {
        let w = self.word(vcpu, word_index(intid));
        let b = bit(intid);
        let waiting = (w.pending & b != 0 && self.forwarded(vcpu, intid)) || w.active & b != 0;
        if w.in_lr & b != 0 || waiting {
            if let Some(holder) = self.holder(vcpu, intid) {
                actions.push(Action::Kick(holder));
            }
        }
    }
}
