//! The SMMUv3's registers and Tessera's use of them (EL2 only).

use super::format::{Command, EventRecord, Features, QueueIndex, SmmuError, Ste};
use crate::arch::timer;
use core::ptr::NonNull;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_structs! {
    Page0 {
        (0x00 => idr0: ReadOnly<u32>),
        (0x04 => idr1: ReadOnly<u32>),
        (0x08 => idr2: ReadOnly<u32>),
        (0x0c => idr3: ReadOnly<u32>),
        (0x10 => idr4: ReadOnly<u32>),
        (0x14 => idr5: ReadOnly<u32>),
        (0x18 => _iidr),
        (0x1c => aidr: ReadOnly<u32>),
        (0x20 => cr0: ReadWrite<u32>),
        (0x24 => cr0ack: ReadOnly<u32>),
        (0x28 => cr1: ReadWrite<u32>),
        (0x2c => cr2: ReadWrite<u32>),
        (0x30 => _r0),
        (0x44 => gbpa: ReadWrite<u32>),
        (0x48 => _r1),
        (0x50 => irq_ctrl: ReadWrite<u32>),
        (0x54 => irq_ctrlack: ReadOnly<u32>),
        (0x58 => _r2),
        (0x60 => gerror: ReadOnly<u32>),
        (0x64 => gerrorn: ReadWrite<u32>),
        (0x68 => gerror_irq_cfg0: ReadWrite<u64>),
        (0x70 => _r3),
        (0x80 => strtab_base: ReadWrite<u64>),
        (0x88 => strtab_base_cfg: ReadWrite<u32>),
        (0x8c => _r4),
        (0x90 => cmdq_base: ReadWrite<u64>),
        (0x98 => cmdq_prod: ReadWrite<u32>),
        (0x9c => cmdq_cons: ReadOnly<u32>),
        (0xa0 => eventq_base: ReadWrite<u64>),
        (0xa8 => _r5),
        (0xb0 => eventq_irq_cfg0: ReadWrite<u64>),
        (0xb8 => _r6),
        (0x100 => @END),
    }
}

register_structs! {
    /// Page 1 (base + 64 KiB): the event queue's producer and consumer.
    Page1 {
        (0x00 => _r0),
        (0xa8 => eventq_prod: ReadOnly<u32>),
        (0xac => eventq_cons: ReadWrite<u32>),
        (0xb0 => @END),
    }
}

const CR0_SMMUEN: u32 = 1 << 0;
const CR0_EVENTQEN: u32 = 1 << 2;
const CR0_CMDQEN: u32 = 1 << 3;
/// CR1: queues and tables write-back cacheable, inner shareable (the SMMU
/// is coherent: checked), the same attributes as the CPUs' mappings.
const CR1_WB_ISH: u32 = 1 | 1 << 2 | 3 << 4 | 1 << 6 | 1 << 8 | 3 << 10;
/// CR2: record events for stream IDs beyond the table (RECINVSID); no
/// broadcast TLB maintenance from the CPUs (PTM): Tessera invalidates by
/// command.
const CR2_RECINVSID_PTM: u32 = 1 << 1 | 1 << 2;
const GBPA_UPDATE: u32 = 1 << 31;
const GBPA_ABORT: u32 = 1 << 20;
const IRQ_CTRL_GERROR: u32 = 1 << 0;
const IRQ_CTRL_EVENTQ: u32 = 1 << 2;
const GERROR_CMDQ_ERR: u32 = 1 << 0;
/// Read/write-allocate hint in the queue and table base registers.
const BASE_ALLOC: u64 = 1 << 62;
const EVENTQ_OVFLG: u32 = 1 << 31;

/// Entries of the linear stream table: at least every function on bus 0.
const MIN_STREAM_TABLE_LOG2: u8 = 8;
/// At most 2^12 entries (256 KiB) from Tessera's heap; a two-level table
/// would lift this (docs/smmu.md).
const MAX_STREAM_TABLE_LOG2: u8 = 12;
const CMDQ_LOG2: u8 = 8;
const EVENTQ_LOG2: u8 = 8;

/// Zeroed memory for the SMMU, aligned to its own size; never freed.
fn alloc_table(bytes: usize, what: &'static str) -> Result<NonNull<u8>, SmmuError> {
    let layout = core::alloc::Layout::from_size_align(bytes, bytes.max(64))
        .map_err(|_| SmmuError::NoMemory(what))?;
    // SAFETY: non-zero size; the SMMU uses it for as long as Tessera runs.
    NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) }).ok_or(SmmuError::NoMemory(what))
}

fn wait_for(mut done: impl FnMut() -> bool, what: &'static str) -> Result<(), SmmuError> {
    // 100 ms of counter time; an SMMU acknowledges within microseconds.
    let give_up = timer::now() + timer::frequency() / 10;
    while !done() {
        if timer::now() > give_up {
            return Err(SmmuError::Timeout(what));
        }
        core::hint::spin_loop();
    }
    Ok(())
}

/// Orders the CPU's writes to the SMMU's tables and queues before what
/// follows (the SMMU is coherent, so no cache maintenance).
fn publish() {
    // SAFETY: a barrier; no memory is accessed.
    unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
}

pub struct Smmu {
    p0: &'static Page0,
    p1: &'static Page1,
    pub features: Features,
    strtab: NonNull<Ste>,
    strtab_log2: u8,
    cmdq: NonNull<Command>,
    cmdq_ix: QueueIndex,
    eventq: NonNull<EventRecord>,
    eventq_ix: QueueIndex,
}

// SAFETY: the tables and queues are Tessera's alone; callers serialise all
// use behind one lock.
unsafe impl Send for Smmu {}

impl Smmu {
    /// Global bypass off with abort, before anything else: from here until
    /// the SMMU is enabled no device reaches memory at all.
    ///
    /// # Safety
    /// `base` is an SMMUv3's register frame (128 KiB), mapped as Device
    /// memory at EL2; only one `Smmu` exists for it.
    pub unsafe fn abort_all(base: u64) -> Result<Smmu, SmmuError> {
        // SAFETY: per the contract above.
        let (p0, p1) = unsafe {
            (
                &*(base as *const Page0),
                &*((base + 0x1_0000) as *const Page1),
            )
        };
        let features = Features::decode(p0.idr0.get(), p0.idr1.get(), p0.idr5.get(), p0.aidr.get());
        let smmu = Smmu {
            p0,
            p1,
            features,
            strtab: NonNull::dangling(),
            strtab_log2: 0,
            cmdq: NonNull::dangling(),
            cmdq_ix: QueueIndex { log2: 0 },
            eventq: NonNull::dangling(),
            eventq_ix: QueueIndex { log2: 0 },
        };
        wait_for(|| p0.gbpa.get() & GBPA_UPDATE == 0, "SMMU_GBPA")?;
        p0.gbpa.set(GBPA_UPDATE | GBPA_ABORT);
        wait_for(|| p0.gbpa.get() & GBPA_UPDATE == 0, "SMMU_GBPA abort")?;
        // Firmware may have left it on with tables Tessera does not know.
        smmu.set_cr0(0)?;
        Ok(smmu)
    }

    /// SMMU_IDR0-5 as read, for the boot log.
    pub fn id_registers(&self) -> [u32; 6] {
        let r = self.p0;
        [
            r.idr0.get(),
            r.idr1.get(),
            r.idr2.get(),
            r.idr3.get(),
            r.idr4.get(),
            r.idr5.get(),
        ]
    }

    fn set_cr0(&self, value: u32) -> Result<(), SmmuError> {
        self.p0.cr0.set(value);
        wait_for(|| self.p0.cr0ack.get() == value, "SMMU_CR0")
    }

    /// Builds the stream table (every entry invalid: nothing gets through),
    /// the command and event queues, and turns translation on. Streams up to
    /// `max_sid` can then be given entries.
    pub fn enable(&mut self, ipa_bits: u8, max_sid: u32) -> Result<(), SmmuError> {
        let f = self.features;
        f.check_stage2(ipa_bits)?;
        let need = (32 - max_sid.leading_zeros()) as u8;
        let log2 = need.max(MIN_STREAM_TABLE_LOG2).min(f.sid_bits);
        if need > f.sid_bits || log2 > MAX_STREAM_TABLE_LOG2 {
            return Err(SmmuError::StreamIdTooLarge {
                sid: max_sid,
                limit_bits: f.sid_bits.min(MAX_STREAM_TABLE_LOG2),
            });
        }
        let strtab = alloc_table(64 << log2, "stream table")?;
        let cmdq_log2 = CMDQ_LOG2.min(f.cmdq_log2);
        let cmdq = alloc_table(16 << cmdq_log2, "command queue")?;
        let eventq_log2 = EVENTQ_LOG2.min(f.eventq_log2);
        let eventq = alloc_table(32 << eventq_log2, "event queue")?;
        self.strtab = strtab.cast();
        self.strtab_log2 = log2;
        self.cmdq = cmdq.cast();
        self.cmdq_ix = QueueIndex { log2: cmdq_log2 };
        self.eventq = eventq.cast();
        self.eventq_ix = QueueIndex { log2: eventq_log2 };
        publish();

        let r = self.p0;
        r.cr1.set(CR1_WB_ISH);
        r.cr2.set(CR2_RECINVSID_PTM);
        // Linear format (FMT = 0), LOG2SIZE entries.
        r.strtab_base.set(BASE_ALLOC | strtab.as_ptr() as u64);
        r.strtab_base_cfg.set(log2 as u32);
        r.cmdq_base
            .set(BASE_ALLOC | cmdq.as_ptr() as u64 | cmdq_log2 as u64);
        r.cmdq_prod.set(0);
        self.set_cr0(CR0_CMDQEN)?;
        self.submit(&[
            super::format::cmd_cfgi_all(),
            super::format::cmd_tlbi_nsnh_all(),
        ])?;

        r.eventq_base
            .set(BASE_ALLOC | eventq.as_ptr() as u64 | eventq_log2 as u64);
        self.p1.eventq_cons.set(self.p1.eventq_prod.get());
        self.set_cr0(CR0_CMDQEN | CR0_EVENTQEN)?;

        // Wired interrupts: no MSI addresses.
        r.irq_ctrl.set(0);
        wait_for(|| r.irq_ctrlack.get() == 0, "SMMU_IRQ_CTRL")?;
        r.gerror_irq_cfg0.set(0);
        r.eventq_irq_cfg0.set(0);
        r.gerrorn.set(r.gerror.get());
        r.irq_ctrl.set(IRQ_CTRL_GERROR | IRQ_CTRL_EVENTQ);
        wait_for(
            || r.irq_ctrlack.get() == IRQ_CTRL_GERROR | IRQ_CTRL_EVENTQ,
            "SMMU_IRQ_CTRL",
        )?;
        self.set_cr0(CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN)
    }

    fn ste_mut(&mut self, sid: u32) -> Result<&mut Ste, SmmuError> {
        if sid >> self.strtab_log2 != 0 {
            return Err(SmmuError::StreamIdTooLarge {
                sid,
                limit_bits: self.strtab_log2,
            });
        }
        // SAFETY: `sid` is inside the table `enable` allocated, which only
        // this (locked) driver writes.
        Ok(unsafe { &mut *self.strtab.as_ptr().add(sid as usize) })
    }

    /// Installs `ste` for stream `sid` without the SMMU ever seeing half of
    /// it: a live entry is first made to abort (its other words are then
    /// ignored), invalidated, rewritten, and word 0 goes last.
    pub fn set_ste(&mut self, sid: u32, ste: &Ste) -> Result<(), SmmuError> {
        let slot: *mut u64 = self.ste_mut(sid)?.as_mut_ptr();
        // SAFETY: `slot` is the 8 words of this stream's entry (checked by
        // `ste_mut`); volatile so that the SMMU sees each store in order.
        unsafe {
            if slot.read_volatile() & 1 != 0 {
                slot.write_volatile(super::format::ste_abort()[0]);
                publish();
                self.submit(&[super::format::cmd_cfgi_ste(sid)])?;
            }
            for (i, &word) in ste.iter().enumerate().skip(1) {
                slot.add(i).write_volatile(word);
            }
            publish();
            slot.write_volatile(ste[0]);
        }
        publish();
        self.submit(&[super::format::cmd_cfgi_ste(sid)])
    }

    /// Drops every cached translation of `vmid`.
    pub fn invalidate_vmid(&mut self, vmid: u16) -> Result<(), SmmuError> {
        self.submit(&[super::format::cmd_tlbi_s12_vmall(vmid)])
    }

    /// Queues `cmds` and a CMD_SYNC, and waits until the SMMU has completed
    /// them all.
    fn submit(&mut self, cmds: &[Command]) -> Result<(), SmmuError> {
        let r = self.p0;
        let q = self.cmdq_ix;
        let mut prod = r.cmdq_prod.get();
        let mut sync_at = prod;
        for (i, cmd) in cmds.iter().chain([&super::format::cmd_sync()]).enumerate() {
            wait_for(
                || !q.full(prod, r.cmdq_cons.get()),
                "SMMU command queue space",
            )?;
            // SAFETY: `slot` is inside the queue `enable` allocated; the SMMU
            // reads it only once PROD passes it.
            unsafe {
                let slot = self.cmdq.as_ptr().add(q.slot(prod));
                slot.cast::<u64>().write_volatile(cmd[0]);
                slot.cast::<u64>().add(1).write_volatile(cmd[1]);
            }
            if i == cmds.len() {
                sync_at = prod;
            }
            prod = q.next(prod);
        }
        publish();
        r.cmdq_prod.set(prod);
        let done = wait_for(
            || {
                let cons = r.cmdq_cons.get();
                q.consumed(sync_at, cons, prod)
                    || r.gerror.get() & GERROR_CMDQ_ERR != r.gerrorn.get() & GERROR_CMDQ_ERR
            },
            "SMMU CMD_SYNC",
        );
        let cons = r.cmdq_cons.get();
        let err = (cons >> 24 & 0x7f) as u8;
        if r.gerror.get() & GERROR_CMDQ_ERR != r.gerrorn.get() & GERROR_CMDQ_ERR {
            // Acknowledge, so that the next error is seen; the queue stays
            // stopped on the bad command, which is a Tessera bug.
            r.gerrorn.set(r.gerrorn.get() ^ GERROR_CMDQ_ERR);
            return Err(SmmuError::Command(err));
        }
        done
    }

    /// Takes every waiting event record (at most a queue's worth, so a flood
    /// cannot hold the caller), oldest first; returns whether the queue had
    /// overflowed (events were lost).
    pub fn drain_events(&mut self, mut each: impl FnMut(&EventRecord)) -> bool {
        let q = self.eventq_ix;
        let prod = self.p1.eventq_prod.get();
        let acked = self.p1.eventq_cons.get();
        let mut cons = q.index(acked);
        for _ in 0..1u32 << q.log2 {
            if q.empty(prod, cons) {
                break;
            }
            // SAFETY: a slot of the queue `enable` allocated that the SMMU
            // has written (between CONS and PROD).
            let record = unsafe { self.eventq.as_ptr().add(q.slot(cons)).read_volatile() };
            each(&record);
            cons = q.next(cons);
        }
        let overflowed = (prod ^ acked) & EVENTQ_OVFLG != 0;
        // Acknowledge an overflow by copying the flag into CONS.
        self.p1.eventq_cons.set(cons | prod & EVENTQ_OVFLG);
        overflowed
    }

    /// Global errors raised since the last call (SMMU_GERROR bits), now
    /// acknowledged.
    pub fn take_global_errors(&mut self) -> u32 {
        let active = self.p0.gerror.get() ^ self.p0.gerrorn.get();
        self.p0.gerrorn.set(self.p0.gerror.get());
        active
    }
}
