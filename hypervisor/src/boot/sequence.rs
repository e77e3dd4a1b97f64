//! The boot sequence: the boot core's path from entry to "boot complete",
//! and the path of every core it starts.

use super::args::{self as bootargs, OnBootComplete, SelfTest};
use super::{crash, heap};
use crate::arch::{cpu, mmu, psci, timer, vectors};
use crate::drivers::{console, gicv3};
use crate::fdt::firmware::{self as dtb, Conduit, DtbError, Platform, Range};
use crate::println;
use crate::vm::{self, irq, partition};
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Once;

static PLATFORM: Once<Platform<'static>> = Once::new();
/// Set by the boot core once the VMs are built: every core may enter its guest.
static START_VMS: AtomicBool = AtomicBool::new(false);
/// `tessera.test=firmware-traps`: see `boot::args`.
static FIRMWARE_TRAPS: AtomicBool = AtomicBool::new(false);
static ONLINE: [AtomicBool; cpu::MAX_CPUS] = [const { AtomicBool::new(false) }; cpu::MAX_CPUS];
/// MPIDR each logical core was started with.
static MPIDRS: [core::sync::atomic::AtomicU64; cpu::MAX_CPUS] =
    [const { core::sync::atomic::AtomicU64::new(0) }; cpu::MAX_CPUS];

/// Finds and checks the DTB the loader passed in x0.
fn firmware_dtb(addr: u64) -> Result<&'static [u8], DtbError> {
    if addr == 0 {
        return Err(DtbError::Missing);
    }
    if !addr.is_multiple_of(8) {
        return Err(DtbError::Misaligned(addr));
    }
    // SAFETY: the boot protocol says x0 is a DTB in RAM; the header is read
    // first, and only `totalsize` (capped by `header_total_size`) after it.
    let header = unsafe { core::slice::from_raw_parts(addr as *const u8, 40) };
    let total = dtb::header_total_size(header)?;
    // SAFETY: as above; the blob is never written.
    let blob = unsafe { core::slice::from_raw_parts(addr as *const u8, total) };
    // SAFETY: only the boot core runs, once; nothing else uses the buffer.
    let copy = unsafe { &mut *addr_of_mut!(DTB_COPY.0) };
    let len = dtb::normalize_into(blob, copy)?;
    Ok(&copy[..len])
}

/// The firmware DTB in normal form (see `dtb::normalize_into`): what every
/// later lookup reads, so the firmware's copy is free again once we boot.
#[repr(align(8))]
struct DtbCopy([u8; 256 * 1024]);
#[unsafe(link_section = ".noinit.dtb")]
static mut DTB_COPY: DtbCopy = DtbCopy([0; 256 * 1024]);

fn fatal(args: core::fmt::Arguments) -> ! {
    println!("tessera: FATAL: {args}");
    println!("tessera: boot stopped; core halted");
    cpu::halt()
}

#[unsafe(no_mangle)]
extern "C" fn primary_main(dtb_addr: u64, entry_ticks: u64) -> ! {
    let el = cpu::current_el();
    let blob = firmware_dtb(dtb_addr);
    let uart = blob
        .as_ref()
        .ok()
        .and_then(|b| dtb::console_uart(b))
        .map_or(cpu::EARLY_UART as u64, |r| r.base);
    // SAFETY: the UART the DTB names (or the board default); MMU still off.
    unsafe { console::init(uart) };
    println!(
        "\nTessera {} (static-partitioning hypervisor, EL2)",
        env!("CARGO_PKG_VERSION")
    );
    if el != 2 {
        fatal(format_args!(
            "entered at EL{el}, but Tessera must start at EL2 (QEMU: -M virt,virtualization=on; \
             U-Boot/firmware: boot the image without dropping to EL1)"
        ));
    }
    cpu::set_core_index(0);
    vectors::set_handlers(vectors::Handlers {
        irq: irq::on_exception,
        guest_sync: vm::trap::sync,
        hvc: vm::hypercall::hvc,
        guest_serror: vm::trap::serror,
        unexpected: crash::report,
    });
    vectors::install();
    let blob = match blob {
        Ok(b) => b,
        Err(e) => fatal(format_args!("device tree at {dtb_addr:#x} (from x0): {e}")),
    };
    let platform = match dtb::parse(blob) {
        Ok(p) => PLATFORM.call_once(|| p),
        Err(e) => fatal(format_args!("device tree at {dtb_addr:#x}: {e}")),
    };
    let dtb_range = Range {
        base: dtb_addr,
        size: blob.len() as u64,
    };
    if let Err(e) = mmu::init(platform, dtb_range) {
        fatal(format_args!("building the EL2 page tables: {e:?}"));
    }
    let heap_base = heap::init();
    let freq = timer::frequency();
    console::init_logger(entry_ticks, freq, log::LevelFilter::Info);
    let (text, rodata, data) = mmu::image_layout();
    log::info!(
        "EL2 MMU on: code {:#x}+{:#x} RX, rodata +{:#x} R, data/bss +{:#x} RW; heap {} KiB at {heap_base:#x}",
        text.base, text.size, rodata.size, data.size, heap::HEAP_SIZE >> 10
    );
    println!("{platform}");
    let plan = vm::plan();
    if let Err(m) = partition::check_against_dtb(plan, platform, text.base) {
        fatal(format_args!(
            "board file '{}' does not match this machine: {m}",
            plan.platform.name
        ));
    }
    log::info!(
        "board '{}': plan with {} VM(s) checked against the DTB",
        plan.platform.name,
        plan.vms.len()
    );
    let absent: alloc::vec::Vec<&'static str> =
        partition::absent_devices(plan, platform, |base| dtb::node_at(blob, base))
            .map(|d| {
                log::error!(
                    "board device \"{}\" at {:#x} is not in this machine's DTB: the VM that owns it will not start{}",
                    d.name,
                    d.mmio[0].base,
                    if d.compatible.contains(&"arm,pl061") {
                        " (QEMU virt booted through firmware has it only with -M virt,acpi=off)"
                    } else {
                        ""
                    }
                );
                d.name
            })
            .collect();
    vm::set_absent_devices(absent);
    let options = bootargs::parse(platform.bootargs);
    if let Some(word) = options.unknown {
        log::warn!("ignoring unknown boot option '{word}'");
    }
    FIRMWARE_TRAPS.store(options.firmware_traps, Ordering::Relaxed);

    let boot_mpidr = cpu::mpidr();
    MPIDRS[0].store(boot_mpidr, Ordering::Relaxed);
    // SAFETY: the distributor from the DTB, mapped as device memory above;
    // this is the only instance.
    let gicd = gicv3::set_distributor(unsafe { gicv3::Distributor::new(&platform.gic) });
    if let Err(e) = gicd.init(boot_mpidr) {
        fatal(format_args!("GICv3 distributor: {e:?}"));
    }
    log::info!("GICv3 distributor up: {} interrupt lines", gicd.lines());
    timer::init();
    log::info!(
        "generic timer: {}.{:03} MHz",
        freq / 1_000_000,
        freq / 1_000 % 1_000
    );
    match init_this_core(platform) {
        Ok(late) => log::info!("core 0 online: MPIDR {boot_mpidr:#x}, EL2, boot core, EL2 timer IRQ ok ({late} ticks late)"),
        Err(e) => fatal(format_args!("core 0: {e}")),
    }
    ONLINE[0].store(true, Ordering::Release);

    let (online, total) = start_secondaries(platform, boot_mpidr);
    let now = timer::now();
    let since_entry = now - entry_ticks;
    println!(
        "tessera: boot complete: {online}/{total} cores online; {since_entry} counter ticks from entry ({} us), {now} since reset, counter {freq} Hz",
        since_entry * 1_000_000 / freq.max(1)
    );

    if options.self_test == SelfTest::Crash {
        log::info!("self-test: reading an unmapped address to exercise the crash report");
        // SAFETY: deliberately faulting; the crash handler takes over.
        unsafe { core::ptr::read_volatile(0xdead_0000_0000 as *const u64) };
    }
    if options.on_complete == OnBootComplete::PowerOff {
        println!("tessera: powering off (tessera.exit=poweroff)");
        if let Some(conduit) = platform.psci {
            let r = psci::call(conduit, psci::SYSTEM_OFF, 0, 0, 0);
            log::error!("SYSTEM_OFF failed: {}", psci::error_name(r));
        } else {
            log::error!("cannot power off: the DTB names no PSCI firmware");
        }
        cpu::halt()
    }

    let mpidrs: heapless::Vec<u64, { cpu::MAX_CPUS }> = (0..total)
        .map(|i| {
            if ONLINE[i].load(Ordering::Acquire) {
                MPIDRS[i].load(Ordering::Relaxed)
            } else {
                u64::MAX
            }
        })
        .collect();
    vm::probe_firmware(platform.psci);
    // The VMs' stage 2 is the SMMU's too: no wider than its input.
    let smmu_oas = vm::dma::probe(platform);
    let cpu_ipa_bits = if mmu::pa_bits().0 >= 48 { 48 } else { 39 };
    let ipa_bits = smmu_oas.map_or(cpu_ipa_bits, |oas| cpu_ipa_bits.min(oas));
    vm::dma::enable(platform, ipa_bits, gicd);
    vm::build_all(&mpidrs, ipa_bits, gicd, &|file| {
        bootargs::loaded(platform.bootargs, file)
    });
    vm::start_all();
    vm::console::start_input(gicd);
    START_VMS.store(true, Ordering::Release);
    // SAFETY: wakes the other cores from WFE; no memory effects.
    unsafe { core::arch::asm!("dsb ish", "sev") };
    vm::vcpu::run(0)
}

/// What every core does for itself: redistributor, CPU interface, timer,
/// and a timer interrupt end to end to prove the path works.
/// Why a core could not be brought into service.
enum CoreError {
    Gic(gicv3::GicError),
    TimerSilent,
}

impl core::fmt::Display for CoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CoreError::Gic(e) => write!(f, "GICv3: {e}"),
            CoreError::TimerSilent => write!(f, "EL2 timer interrupt did not arrive within 1 s"),
        }
    }
}

fn init_this_core(p: &Platform) -> Result<u64, CoreError> {
    let mpidr = cpu::mpidr();
    // SAFETY: redistributor regions from the DTB, mapped as device memory;
    // each core builds only its own.
    let rd = unsafe { gicv3::Redistributor::for_core(&p.gic, mpidr) }.map_err(CoreError::Gic)?;
    let rd = gicv3::set_this_redistributor(rd);
    rd.init().map_err(CoreError::Gic)?;
    gicv3::init_cpu_interface();
    cpu::init_hcr();
    timer::init();
    if FIRMWARE_TRAPS.load(Ordering::Relaxed) {
        cpu::set_firmware_like_traps();
    }
    vm::vcpu::clear_lrs();

    // One 10 us timer interrupt at EL2.
    let core = cpu::core_index();
    let freq = timer::frequency();
    irq::TIMER_FIRED_AT[core].store(0, Ordering::Relaxed);
    rd.enable_ppi(timer::CNTHP_INTID);
    let deadline = timer::now() + freq / 100_000;
    timer::arm_el2(deadline);
    // SAFETY: unmask IRQs; the vector table is installed.
    unsafe { core::arch::asm!("msr daifclr, #2") };
    // It arrives within microseconds; 1 s because under emulation on a busy
    // host the counter runs at wall-clock pace while the core may not run.
    let give_up = deadline + freq;
    timer::wait_until(give_up, || {
        irq::TIMER_FIRED_AT[core].load(Ordering::Acquire) != 0
    });
    // SAFETY: mask IRQs again; nothing at EL2 wants them yet.
    unsafe { core::arch::asm!("msr daifset, #2") };
    rd.disable_ppi(timer::CNTHP_INTID);
    let fired = irq::TIMER_FIRED_AT[core].load(Ordering::Acquire);
    if fired == 0 {
        timer::disarm_el2();
        return Err(CoreError::TimerSilent);
    }
    Ok(fired - deadline)
}

fn start_secondaries(p: &Platform, boot_mpidr: u64) -> (usize, usize) {
    let total = p.cpus.len();
    let Some(conduit) = p.psci else {
        log::warn!("no PSCI node in the DTB: only the boot core runs");
        return (1, total);
    };
    let version = psci::call(conduit, psci::PSCI_VERSION, 0, 0, 0);
    log::info!(
        "PSCI {}.{} via {}",
        version >> 16,
        version & 0xffff,
        if conduit == Conduit::Smc {
            "smc"
        } else {
            "hvc"
        }
    );
    unsafe extern "C" {
        fn secondary_entry();
    }
    let freq = timer::frequency();
    let mut online = 1;
    let mut index = 0;
    for &mpidr in p.cpus.iter().filter(|&&m| m != boot_mpidr) {
        index += 1;
        MPIDRS[index].store(mpidr, Ordering::Relaxed);
        let entry = secondary_entry as *const () as u64;
        let r = psci::call(conduit, psci::CPU_ON_64, mpidr, entry, index as u64);
        if r != 0 {
            log::error!(
                "core {index} (MPIDR {mpidr:#x}) did not come up: CPU_ON returned {}",
                psci::error_name(r)
            );
            continue;
        }
        // 5 s of counter time: a core reports in within milliseconds, but
        // under emulation on a busy host the counter runs at wall-clock pace.
        let give_up = timer::now() + 5 * freq;
        if timer::wait_until(give_up, || ONLINE[index].load(Ordering::Acquire)) {
            online += 1;
        } else {
            log::error!(
                "core {index} (MPIDR {mpidr:#x}) did not come up: no report within 5 s of CPU_ON"
            );
        }
    }
    (online, total)
}

#[unsafe(no_mangle)]
extern "C" fn secondary_main(index: usize) -> ! {
    cpu::set_core_index(index);
    vectors::install();
    let p = PLATFORM
        .get()
        .expect("the boot core parsed the DTB before CPU_ON");
    match init_this_core(p) {
        Ok(latency) => {
            log::info!(
                "core {index} online: MPIDR {:#x}, EL{}, EL2 timer IRQ ok ({latency} ticks late)",
                cpu::mpidr(),
                cpu::current_el()
            );
            ONLINE[index].store(true, Ordering::Release);
            // SAFETY: wakes the boot core from WFE; no memory effects.
            unsafe { core::arch::asm!("dsb ish", "sev") };
        }
        Err(e) => log::error!("core {index} (MPIDR {:#x}) failed: {e}", cpu::mpidr()),
    }
    timer::wait_until(u64::MAX, || START_VMS.load(Ordering::Acquire));
    vm::vcpu::run(index)
}
