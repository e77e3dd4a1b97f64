//! List registers: loading deliverable interrupts into `ICH_LR<n>_EL2`
//! values and folding the guest's progress back into the model.

use super::{bit, for_each_bit, word_index, Vgic, MAX_LRS, PRIVATE, WORDS};

const LR_PINTID_SHIFT: u32 = 32;
const LR_PRIORITY_SHIFT: u32 = 48;
const LR_GROUP1: u64 = 1 << 60;
const LR_HW: u64 = 1 << 61;
/// Virtual (HW = 0) LRs: maintenance interrupt when the guest deactivates it.
const LR_EOI: u64 = 1 << 41;
const LR_STATE_SHIFT: u32 = 62;

/// LR state bits: pending, active (both: pending and active).
pub(super) const PENDING: u8 = 1;
pub(super) const ACTIVE: u8 = 2;

/// An `ICH_LR<n>_EL2` value: group 1, HW-linked ones with pINTID = vINTID.
pub(super) fn lr_value(intid: u32, priority: u8, hw: bool, state: u8) -> u64 {
    let hw = if hw {
        LR_HW | (intid as u64) << LR_PINTID_SHIFT
    } else {
        0
    };
    (state as u64) << LR_STATE_SHIFT
        | hw
        | LR_GROUP1
        | (priority as u64) << LR_PRIORITY_SHIFT
        | intid as u64
}

pub(super) fn lr_state(lr: u64) -> u8 {
    (lr >> LR_STATE_SHIFT) as u8
}

pub(super) fn lr_intid(lr: u64) -> u32 {
    lr as u32
}

impl Vgic {
    /// Fill list registers for `vcpu`: `lrs` holds the current `ICH_LR<n>_EL2`
    /// values (one per implemented LR). LRs the model loaded are brought up to
    /// date (state changes by the guest's register writes, edges that arrived
    /// meanwhile: active becomes pending and active), then free LRs take the
    /// deliverable interrupts, highest priority (lowest value) first, ties by
    /// lower INTID. Returns whether more deliverable interrupts wait than fit
    /// (the caller then sets `ICH_HCR_EL2.UIE`).
    pub fn flush_lrs(&mut self, vcpu: usize, lrs: &mut [u64]) -> bool {
        if vcpu >= self.vcpus {
            return false;
        }
        let count = lrs.len().min(MAX_LRS);
        let lrs = &mut lrs[..count];
        for (n, lr) in lrs.iter_mut().enumerate() {
            self.update_lr(vcpu, n, lr);
        }
        let mut free = lrs
            .iter()
            .enumerate()
            .filter(|&(n, &lr)| self.cpu[vcpu].slots[n].is_none() && lr_state(lr) == 0)
            .fold(0u32, |m, (n, _)| m | 1 << n);
        // A free LR keeps no stale EOI request (it would raise maintenance
        // interrupts for good).
        for_each_bit(0, free, |n| lrs[n as usize] = 0);
        while let Some(intid) = self.best_candidate(vcpu) {
            if free == 0 {
                return true;
            }
            let n = free.trailing_zeros() as usize;
            free &= free - 1;
            lrs[n] = self.load(vcpu, n, intid);
        }
        false
    }

    /// After the guest ran: fold the LR states back. An LR that became
    /// invalid is done (for level-triggered HW interrupts the hardware keeps
    /// tracking the line); pending and active ones stay in their LR.
    pub fn sync_lrs(&mut self, vcpu: usize, lrs: &[u64]) {
        if vcpu >= self.vcpus {
            return;
        }
        for (n, &lr) in lrs.iter().enumerate().take(MAX_LRS) {
            let Some(intid) = self.cpu[vcpu].slots[n] else {
                continue;
            };
            let intid = intid as u32;
            let state = if lr_intid(lr) == intid {
                lr_state(lr)
            } else {
                0
            };
            if state == 0 {
                self.release(vcpu, n, intid);
            } else {
                self.snapshot(vcpu, intid, state);
            }
        }
    }

    /// The fastest path, for a hardware interrupt whose list register the
    /// guest has emptied (it completed the interrupt): `lr` is the value of
    /// LR `n`, empty, and the model still counts the interrupt in that LR
    /// with nothing of its own to add. Returns the LR value with the
    /// interrupt pending again, priority unchanged; the model's view (in LR
    /// `n`) stays true. `None`: use [`Vgic::load_direct`] or the slow path.
    pub fn repend_in_place(&self, vcpu: usize, intid: u32, n: usize, lr: u64) -> Option<u64> {
        let b = bit(intid);
        let w = self.word(vcpu, word_index(intid));
        let mine = vcpu < self.vcpus
            && intid < PRIVATE
            && lr_intid(lr) == intid
            && lr & LR_HW != 0
            && lr_state(lr) == 0
            && self.cpu[vcpu].slots.get(n) == Some(&Some(intid as u16));
        let clean = w.enabled & b != 0 && (w.pending | w.active | w.unpend | w.deactivate) & b == 0;
        (mine && clean).then_some(lr | (PENDING as u64) << LR_STATE_SHIFT)
    }

    /// The fast path for an interrupt of the vCPU that runs on this core: if
    /// it can be delivered to `vcpu`, has no state in the model and sits in
    /// no LR, it goes pending into the first LR that is empty in `empty`
    /// (ICH_ELRSR_EL2) and unused by the model, with no scan of anything
    /// else. Returns the LR and its value; `None`: take the slow path
    /// (`inject`, then a refill).
    pub fn load_direct(&mut self, vcpu: usize, intid: u32, empty: u32) -> Option<(usize, u64)> {
        if vcpu >= self.vcpus || !self.forwarded(vcpu, intid) {
            return None;
        }
        if intid >= PRIVATE && self.target(vcpu, intid) != Some(vcpu) {
            return None;
        }
        let b = bit(intid);
        let w = self.word(vcpu, word_index(intid));
        if w.owned & b == 0 || (w.pending | w.active) & b != 0 {
            return None;
        }
        let slots = &self.cpu[vcpu].slots;
        let n = if w.in_lr & b != 0 {
            // Loaded before: if the guest has completed it since (its LR is
            // empty), that LR is released as a refill would, and reused.
            let n = (0..MAX_LRS).find(|&n| slots[n] == Some(intid as u16))?;
            if empty & (1 << n) == 0 {
                return None;
            }
            self.release(vcpu, n, intid);
            n
        } else {
            (0..MAX_LRS).find(|&n| empty & (1 << n) != 0 && slots[n].is_none())?
        };
        self.word_mut(vcpu, word_index(intid)).pending |= b;
        Some((n, self.load(vcpu, n, intid)))
    }

    /// The vCPU leaves its guest (`CPU_OFF`, stop, restart): each LR's state
    /// goes back to the model, so an SGI pending in an LR is still pending
    /// when the vCPU comes back. HW-linked interrupts cannot wait in the
    /// model: their physical side stays active until someone deactivates it,
    /// so they are dropped and their physical INTIDs returned for the caller
    /// to deactivate (a level source that is still asserted fires again).
    /// Every LR is empty afterwards.
    pub fn unload_lrs(&mut self, vcpu: usize, lrs: &[u64]) -> heapless::Vec<u32, MAX_LRS> {
        let mut physical = heapless::Vec::new();
        for (n, &lr) in lrs.iter().enumerate().take(MAX_LRS) {
            if lr & LR_HW != 0 && lr_state(lr) != 0 {
                let _ = physical.push(((lr >> LR_PINTID_SHIFT) & 0x1fff) as u32);
            }
            if vcpu >= self.vcpus {
                continue;
            }
            let Some(intid) = self.cpu[vcpu].slots[n] else {
                continue;
            };
            let intid = intid as u32;
            let mut state = if lr_intid(lr) == intid {
                lr_state(lr)
            } else {
                0
            };
            let b = bit(intid);
            let word = self.word_mut(vcpu, word_index(intid));
            if word.unpend & b != 0 {
                state &= !PENDING;
            }
            if word.deactivate & b != 0 {
                state &= !ACTIVE;
            }
            if word.hw & b != 0 {
                word.pending &= !b;
                word.active &= !b;
            } else {
                if state & PENDING != 0 {
                    word.pending |= b;
                }
                if state & ACTIVE != 0 {
                    word.active |= b;
                }
            }
            self.release(vcpu, n, intid);
        }
        physical
    }

    /// Brings LR `n` up to date with the model (see `flush_lrs`).
    fn update_lr(&mut self, vcpu: usize, n: usize, lr: &mut u64) {
        let Some(intid) = self.cpu[vcpu].slots[n] else {
            return;
        };
        let intid = intid as u32;
        if lr_intid(*lr) != intid {
            // Not what the model loaded: leave it to its writer.
            self.release(vcpu, n, intid);
            return;
        }
        let mut state = lr_state(*lr);
        let b = bit(intid);
        let forwarded = self.forwarded(vcpu, intid);
        let word = self.word_mut(vcpu, word_index(intid));
        let hw = word.hw & b != 0;
        if state != 0 {
            if word.unpend & b != 0 {
                state &= !PENDING;
            }
            if word.deactivate & b != 0 {
                state &= !ACTIVE;
            }
            word.unpend &= !b;
            word.deactivate &= !b;
            // A HW-linked LR cannot be pending and active: a new pending
            // state waits in the model until the LR is free.
            // A virtual LR that is still pending holds the new edge in the
            // model until the guest deactivates it (see the module doc).
            let hold = !hw && state & PENDING != 0;
            if word.pending & b != 0 && !hold && (!hw || state & ACTIVE == 0) {
                state |= PENDING;
                word.pending &= !b;
            }
            if word.active & b != 0 && (!hw || state & PENDING == 0) {
                state |= ACTIVE;
                word.active &= !b;
            }
            // Pending only but no longer deliverable: back to the model.
            if state == PENDING && !forwarded {
                word.pending |= b;
                state = 0;
            }
        }
        if state == 0 {
            self.release(vcpu, n, intid);
            *lr = 0;
        } else {
            let held = !hw && self.word(vcpu, word_index(intid)).pending & b != 0;
            *lr = lr_value(intid, self.priority(vcpu, intid), hw, state);
            if held {
                *lr |= LR_EOI;
            }
            self.snapshot(vcpu, intid, state);
        }
    }

    /// Loads `intid` into LR `n` of `vcpu`: its state moves out of the model.
    fn load(&mut self, vcpu: usize, n: usize, intid: u32) -> u64 {
        let b = bit(intid);
        let forwarded = self.forwarded(vcpu, intid);
        let word = self.word_mut(vcpu, word_index(intid));
        let hw = word.hw & b != 0;
        let mut state = 0;
        if word.active & b != 0 {
            state |= ACTIVE;
            word.active &= !b;
        }
        if word.pending & b != 0 && forwarded && !(hw && state != 0) {
            state |= PENDING;
            word.pending &= !b;
        }
        word.in_lr |= b;
        if intid >= PRIVATE {
            self.lr_vcpu[intid as usize] = vcpu as u8;
        }
        self.cpu[vcpu].slots[n] = Some(intid as u16);
        self.snapshot(vcpu, intid, state);
        lr_value(intid, self.priority(vcpu, intid), hw, state)
    }

    /// LR `n` no longer holds `intid`.
    fn release(&mut self, vcpu: usize, n: usize, intid: u32) {
        self.cpu[vcpu].slots[n] = None;
        let b = bit(intid);
        let word = self.word_mut(vcpu, word_index(intid));
        word.in_lr &= !b;
        word.lr_pending &= !b;
        word.lr_active &= !b;
        word.unpend &= !b;
        word.deactivate &= !b;
    }

    fn snapshot(&mut self, vcpu: usize, intid: u32, state: u8) {
        let b = bit(intid);
        let word = self.word_mut(vcpu, word_index(intid));
        word.lr_pending = (word.lr_pending & !b) | if state & PENDING != 0 { b } else { 0 };
        word.lr_active = (word.lr_active & !b) | if state & ACTIVE != 0 { b } else { 0 };
    }

    /// Interrupts of word `w` that wait for an LR of `vcpu` (ignoring SPI routing).
    fn candidates(&self, vcpu: usize, w: usize) -> u32 {
        let word = self.word(vcpu, w);
        let forwarded = if w == 0 || self.group1 {
            word.enabled
        } else {
            0
        };
        ((word.pending & forwarded) | word.active) & word.owned & !word.in_lr
    }

    /// The deliverable interrupt with the highest priority (lowest value),
    /// ties to the lower INTID.
    fn best_candidate(&self, vcpu: usize) -> Option<u32> {
        let mut best: Option<(u8, u32)> = None;
        // Words above the highest owned SPI never hold a candidate: on the
        // hot path (a timer interrupt) this is most of the scan.
        let words = (self.max_spi as usize / 32 + 1).min(WORDS);
        for w in 0..words {
            for_each_bit(w, self.candidates(vcpu, w), |intid| {
                if w != 0 && self.target(vcpu, intid) != Some(vcpu) {
                    return;
                }
                let priority = self.priority(vcpu, intid);
                if best.is_none_or(|(p, _)| priority < p) {
                    best = Some((priority, intid));
                }
            });
        }
        best.map(|(_, intid)| intid)
    }
}
