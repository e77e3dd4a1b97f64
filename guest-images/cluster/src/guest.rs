//! Everything the image needs around the cluster program: entry, identity
//! map, heap, console, pacing, the connect-and-draw loop.

extern crate alloc;

use crate::sleep::{self, Sleepy};
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;
use cockpit_cluster::stats::{FrameStats, Split};
use cockpit_cluster::Cluster;
use core::fmt::Write;
use gpu_codec::EncodeError;
use gpu_frontend::Client;
use gpu_xvm::baremetal::GuestPort;
use gpu_xvm::ClientBell;

core::arch::global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    // arm64 Image header, so the image boots as Linux does.
    b       1f
    .long   0
    .quad   0x80000                 // text_offset
    .quad   0                       // image size: not given
    .quad   0x2                     // little-endian, 4 KiB pages
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0
1:  mov     x19, x0                 // the DTB
    mov     x9, #(3 << 20)          // CPACR_EL1.FPEN: Rust uses FP/SIMD
    msr     cpacr_el1, x9
    isb
    ldr     x1, =bss_begin
    ldr     x2, =bss_end
2:  cmp     x1, x2
    b.hs    3f
    str     xzr, [x1], #8
    b       2b
3:  ldr     x1, =stack_top
    mov     sp, x1
    mov     x0, x19
    bl      cluster_main
4:  wfi
    b       4b
"#
);

unsafe extern "C" {
    static heap_begin: u8;
}

/// RAM of the cluster VM (boards/qemu-virt.toml): 64 MiB at 0x4000_0000.
const RAM_END: usize = 0x4000_0000 + (64 << 20);
/// The DTB lies 2 MiB below the end of RAM (docs/guest-abi.md); the heap
/// stops short of it.
const HEAP_END: usize = RAM_END - (4 << 20);
const UART: usize = 0x0900_0000;
const PERIOD_MS: u64 = 33;
/// Between tries to connect (each waits up to 2 s for a server), asleep.
const RETRY_MS: u64 = 1000;

#[global_allocator]
static HEAP: buddy_system_allocator::LockedHeap<32> = buddy_system_allocator::LockedHeap::empty();

#[repr(C, align(4096))]
struct Level1([u64; 512]);

/// Identity map, 1 GiB blocks: the first GiB (GIC, UART, control page)
/// Device memory, the next three (RAM, the shared windows at 2 GiB)
/// Normal write-back, as the service VM maps the same region; the
/// rest unmapped.
static mut MAP: Level1 = Level1([0; 512]);

fn mmu_on() {
    // SAFETY: one vCPU, before anything reads the table.
    let map = unsafe { &mut *core::ptr::addr_of_mut!(MAP) };
    for (gib, entry) in map.0.iter_mut().enumerate().take(4) {
        let attrs = if gib == 0 {
            (1 << 54) | (1 << 53) // never executable; attribute 0
        } else {
            (1 << 2) | (0b11 << 8) // attribute 1, inner shareable
        };
        *entry = ((gib as u64) << 30) | attrs | (1 << 10) | 0b01; // AF, block
    }
    MAIR_EL1.write(
        MAIR_EL1::Attr0_Device::nonGathering_nonReordering_noEarlyWriteAck
            + MAIR_EL1::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc,
    );
    TCR_EL1.write(
        TCR_EL1::T0SZ.val(25)
            + TCR_EL1::TG0::KiB_4
            + TCR_EL1::SH0::Inner
            + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::EPD1::DisableTTBR1Walks
            + TCR_EL1::IPS::Bits_40,
    );
    TTBR0_EL1.set(map as *const Level1 as u64);
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    // SAFETY: no stale translations may survive the switch.
    unsafe { core::arch::asm!("tlbi vmalle1", "dsb nsh") };
    barrier::isb(barrier::SY);
    SCTLR_EL1.modify(
        SCTLR_EL1::M::Enable
            + SCTLR_EL1::C::Cacheable
            + SCTLR_EL1::I::Cacheable
            + SCTLR_EL1::A::Disable,
    );
    barrier::isb(barrier::SY);
}

/// The PL011 (emulated: single 32-bit stores, as docs/guest-abi.md asks).
struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            // SAFETY: the UART's data register, a plain 32-bit store.
            unsafe { core::arch::asm!("str {0:w}, [{1}]", in(reg) b as u32, in(reg) UART) };
        }
        Ok(())
    }
}

macro_rules! say {
    ($($t:tt)*) => {{ let _ = writeln!(Console, $($t)*); }};
}

#[unsafe(no_mangle)]
extern "C" fn cluster_main(dtb: *const u8) -> ! {
    mmu_on();
    sleep::init();
    let start = &raw const heap_begin as usize;
    // SAFETY: the RAM between the image and HEAP_END is used by nothing else.
    unsafe { HEAP.lock().init(start, HEAP_END - start) };
    // SAFETY: x0 at entry was the DTB; the regions it names are mapped above.
    let region = |name| unsafe { GuestPort::from_dtb(dtb, name) };
    let (port, check) = match (region("gpu-cluster"), region(crate::bell::REGION)) {
        (Some(p), _) => (p, false),
        (None, Some(p)) => (p, true),
        (None, None) => halt(format_args!("no shared region gpu-cluster in the DTB")),
    };
    match port.doorbell_intid() {
        Some(intid) => {
            if let Err(e) = sleep::enable_doorbell(intid) {
                halt(format_args!("the doorbell's interrupt: {e}"));
            }
        }
        None => halt(format_args!("the shared region has no doorbell interrupt")),
    }
    let port: &'static Sleepy = alloc::boxed::Box::leak(alloc::boxed::Box::new(Sleepy(port)));
    if check {
        crate::bell::check(port, |a| say!("{a}"));
        halt(format_args!("doorbell check done"));
    }
    let mut n = 0u32;
    let mut failures = 0u32;
    let mut stats = FrameStats::new();
    loop {
        let (att, gpu, len) = match gpu_xvm::link::connect(port, 2000) {
            Ok(c) => c,
            Err(e) => {
                // Twice (the second shows that the sleep between tries
                // ends), then every minute or so: the console is shared.
                if failures < 2 || failures.is_multiple_of(20) {
                    say!("cluster: {e}; trying again ({failures} tries so far)");
                }
                failures += 1;
                sleep::until_ms(sleep::now_ms() + RETRY_MS);
                continue;
            }
        };
        failures = 0;
        // SAFETY: the region stays mapped; one small Region per connection.
        let region = match unsafe { gpu_wire::Region::new(gpu, len) } {
            Ok(r) => &*alloc::boxed::Box::leak(alloc::boxed::Box::new(r)),
            Err(e) => {
                say!("cluster: {e}");
                continue;
            }
        };
        say!("cluster: connected (hello {}), from frame {n}", att.hello);
        let mut cl = match Cluster::new(Client::new(region, ClientBell::new(port, att))) {
            Ok(c) => c,
            Err(e) => {
                say!("cluster: set-up: {e:?}; connecting again");
                continue;
            }
        };
        // Frame k of the session has the slot [next, next + PERIOD_MS);
        // a frame presented late starts the next slot when it ends.
        if let Err(e) = sync_round_trip(&mut cl) {
            say!("cluster: sync calls: {e:?}; connecting again");
            continue;
        }
        let mut next = sleep::now_ms();
        stats.restart();
        let mut split = Split::default();
        loop {
            let begun = sleep::now_us();
            if cl.render(n).is_err() {
                break;
            }
            let encoded = sleep::now_us();
            if cl.present().is_err() {
                break;
            }
            let presented = sleep::now_us();
            split.add(encoded - begun, presented - encoded);
            let deadline = next + PERIOD_MS;
            if let Some(line) = stats.record(presented, deadline * 1000) {
                say!("cluster: {line}");
                if let Some(s) = split.take() {
                    say!("cluster: {s}");
                }
            }
            n = n.wrapping_add(1);
            next = deadline.max(presented / 1000);
            sleep::until_ms(next);
        }
        say!("cluster: session lost at frame {n}; connecting again");
    }
}

/// Synchronous calls timed at each connection (the first one alone: it
/// may meet the server still busy with the set-up).
const SYNC_CALLS: u32 = 32;

/// Times [`SYNC_CALLS`] synchronous calls in a row by the virtual counter
/// and prints the round trip (`cargo xtask bench cockpit` reads the line;
/// under `-icount shift=0` with a 1 GHz counter a tick is an instruction).
fn sync_round_trip<D: gpu_wire::Doorbell>(cl: &mut Cluster<D>) -> Result<(), EncodeError> {
    cl.sync_call()?;
    let (mut min, mut sum) = (u64::MAX, 0u64);
    for _ in 0..SYNC_CALLS {
        let t = CNTVCT_EL0.get();
        cl.sync_call()?;
        let d = CNTVCT_EL0.get() - t;
        min = min.min(d);
        sum += d;
    }
    let ns = |t: u64| (t as u128 * 1_000_000_000 / CNTFRQ_EL0.get().max(1) as u128) as u64;
    say!(
        "cluster: sync call round trip mean {} min {} ns ({SYNC_CALLS} glCheckFramebufferStatus, counter {} Hz)",
        ns(sum / SYNC_CALLS as u64),
        ns(min),
        CNTFRQ_EL0.get()
    );
    Ok(())
}

/// Says why, then sleeps for good (no interrupt wakes it).
fn halt(why: core::fmt::Arguments) -> ! {
    say!("cluster: {why}");
    guest_gic::mask_all();
    loop {
        aarch64_cpu::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    halt(format_args!("panic: {info}"))
}
