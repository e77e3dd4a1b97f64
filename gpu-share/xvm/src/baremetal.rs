//! The bare-metal guest's port: the region at the IPA its DTB gives
//! (`tessera-shm@` node by `tessera,name`), rung by Tessera's
//! `TESSERA_DOORBELL` hypercall. It takes no interrupts itself: a wait
//! polls the counters, paced by the virtual counter. A guest that takes
//! the doorbell interrupt ([`GuestPort::doorbell_intid`]) wraps it with
//! its own `irq_count`/`wait_irq`, as the cluster image does.

use crate::Port;

const TESSERA_DOORBELL: u64 = 0xC600_0001;

pub struct GuestPort {
    base: u64,
    len: usize,
    data_offset: usize,
    index: u32,
    peer: u32,
    intid: Option<u32>,
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

impl GuestPort {
    /// The shared region named `name` in the DTB at `dtb`.
    ///
    /// # Safety
    /// `dtb` must be the guest's DTB (x0 at entry); the region it names
    /// must be mapped Normal memory at its IPA (identity-mapped stage 1).
    pub unsafe fn from_dtb(dtb: *const u8, name: &str) -> Option<GuestPort> {
        // SAFETY: forwarded; the parser checks the magic first.
        let fdt = unsafe { fdt::Fdt::from_ptr(dtb) }.ok()?;
        let node = fdt.all_nodes().find(|n| {
            n.name.starts_with("tessera-shm@")
                && n.property("tessera,name").and_then(|p| p.as_str()) == Some(name)
        })?;
        let reg = node.reg()?.next()?;
        let cell = |p: &str| node.property(p).and_then(|v| be32(v.value));
        let len = reg.size?;
        let data_offset = cell("tessera,data-offset")? as usize;
        // `interrupts = <0 SPI 1>`: an SPI (type 0), edge; INTID = 32 + SPI.
        let intid = node.property("interrupts").and_then(|p| {
            let (ty, spi) = (be32(p.value)?, be32(p.value.get(4..)?)?);
            (ty == 0 && spi < 988).then_some(32 + spi)
        });
        (data_offset < len).then_some(GuestPort {
            base: reg.starting_address as u64,
            len,
            data_offset,
            index: cell("tessera,index")?,
            peer: cell("tessera,peer-index")?,
            intid,
        })
    }

    /// The INTID of the region's doorbell interrupt, if it has one.
    pub fn doorbell_intid(&self) -> Option<u32> {
        self.intid
    }
}

fn counter() -> (u64, u64) {
    let (cnt, frq): (u64, u64);
    // SAFETY: reads of the generic timer's counter and frequency.
    unsafe {
        core::arch::asm!("isb; mrs {}, cntvct_el0", out(reg) cnt);
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) frq);
    }
    (cnt, frq.max(1))
}

// SAFETY: the DTB names the region and the hypervisor maps it there.
unsafe impl Port for GuestPort {
    fn header(&self) -> Result<crate::ShmHeader, crate::XvmError> {
        crate::ShmHeader::parse(
            // SAFETY: offsets inside the header page the DTB names.
            |off| unsafe { crate::shm::read32(self.base as *const u8, off) },
            self.peer,
            self.data_len(),
        )
    }
    fn data(&self) -> *mut u8 {
        (self.base as usize + self.data_offset) as *mut u8
    }
    fn data_len(&self) -> usize {
        self.len - self.data_offset
    }
    fn peer_index(&self) -> u32 {
        self.peer
    }
    fn ring(&self) {
        let mut x0 = TESSERA_DOORBELL;
        // SAFETY: the hypercall changes x0-x17 only; the barrier publishes
        // our writes to the region before the peer's interrupt.
        unsafe {
            core::arch::asm!("dsb ish", "hvc #0",
                inout("x0") x0, inout("x1") self.index as u64 => _,
                out("x2") _, out("x3") _, out("x4") _, out("x5") _, out("x6") _,
                out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _, options(nostack));
        }
        let _ = x0;
    }
    fn irq_count(&self) -> u32 {
        0
    }
    fn wait_irq(&self, _seen: u32, timeout_ms: u32) {
        // Returns after at most 100 us: the caller re-checks its counter.
        let (start, frq) = counter();
        let ticks = frq * timeout_ms.min(1) as u64 / 10_000;
        while counter().0.wrapping_sub(start) < ticks {
            core::hint::spin_loop();
        }
    }
    fn now_ms(&self) -> u64 {
        let (c, f) = counter();
        c / (f / 1000).max(1) + 1
    }
}
