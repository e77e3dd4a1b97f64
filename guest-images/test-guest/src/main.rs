//! Tessera's bare-metal test guest. It runs at EL1 inside a VM (or natively
//! on QEMU virt, where it calls itself `native`), checks what the machine
//! gives it, and prints one line per check:
//!
//! ```text
//! check <name>: pass [(details)]
//! check <name>: FAIL <reason>
//! summary: <N> passed, <M> failed
//! ```
//!
//! Which checks run depends on the VM name and boot count in the DTB
//! (`/chosen/tessera,vm-name`, `tessera,boot-count`); see [`run`]:
//!
//! | VM | checks |
//! | --- | --- |
//! | native (no name) | memory, timer, psci, sgi (2 vCPUs), fp-state |
//! | `t0` | memory, timer, psci, hvc bench, smccc, psci32, doorbell (initiator), doorbell-storm (rings), heartbeat + flood-bound, shm-restart |
//! | `t1`, boot 0 | memory, timer, psci, fp-state, cpu-features, traps, hvc bench, smccc, psci32, summary, then isolation (a read outside its RAM, from a timer interrupt handler) |
//! | `t1`, boot 1 | restart, irq-after-fault, then an unhandled trap |
//! | `t1`, boot 2 | trap-contained, then PSCI `SYSTEM_RESET` from a timer interrupt handler |
//! | `t1`, boot 3 | reset, irq-after-reset, then `SYSTEM_OFF` |
//! | `t2`, boot 0 | memory, timer, psci (2 vCPUs), sgi, cpu-off-on, hvc bench, smccc, psci32, cpu-on-race, doorbell (responder), doorbell-storm (masked), heartbeat; vCPU 1 floods; then both vCPUs fault at once |
//! | `t2`, boot 1 | restart-once |
//! | `bm` (the `linux` tier) | memory, timer, psci, hvc bench, smccc, psci32, then `heartbeat <n>` every second for good |
//!
//! The doorbell protocol is described in [`protocol`]; it is unit-tested on
//! the host (`cargo test -p test-guest`).

#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
// Check results carry their text inline (no heap): large `Err`s are the point.
#![allow(clippy::result_large_err)]

#[cfg(target_os = "none")]
mod checks;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod dma;
#[cfg(target_os = "none")]
mod doorbell;
#[cfg(target_os = "none")]
mod dt;
#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
mod exceptions;
#[cfg(target_os = "none")]
mod features;
#[cfg(target_os = "none")]
mod fpsimd;
#[cfg(target_os = "none")]
mod gic;
#[cfg(target_os = "none")]
mod hardening;
#[cfg(target_os = "none")]
mod lifecycle;
#[cfg(target_os = "none")]
mod linux_peer;
#[cfg(target_os = "none")]
use guest_gic::mmio;
#[cfg(target_os = "none")]
mod mmu;
#[cfg(any(target_os = "none", test))]
mod protocol;
#[cfg(target_os = "none")]
mod psci;
#[cfg(target_os = "none")]
mod timer;

/// Host builds (`cargo test --workspace`): nothing to run.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("test-guest is a bare-metal image: build it with `cargo xtask guest`");
}

#[cfg(target_os = "none")]
pub use guest::*;

#[cfg(target_os = "none")]
mod guest {
    use crate::checks::{self, Secondary};
    use crate::console::{self, summary};
    use crate::dt::VmInfo;
    use crate::{
        dma, doorbell, dt, exceptions, features, fpsimd, gic, hardening, lifecycle, mmu, protocol,
        psci, timer,
    };

    /// Stacks reserved in the linker script (`MAX_VCPUS` there).
    pub const MAX_VCPUS: usize = 4;

    /// What the DTB says, read once by vCPU 0 before it starts the others.
    static VM: spin::Once<VmInfo> = spin::Once::new();

    pub fn vm() -> &'static VmInfo {
        VM.get().expect("VM info read at entry")
    }

    /// This vCPU's index: MPIDR_EL1.Aff0 (the ABI makes it the vCPU number).
    pub fn vcpu() -> usize {
        use aarch64_cpu::registers::{Readable, MPIDR_EL1};
        (MPIDR_EL1.get() & 0xff) as usize
    }

    /// vCPU 0's Rust entry, from `entry.rs` with x0 = the DTB's IPA.
    #[unsafe(no_mangle)]
    extern "C" fn guest_main(dtb: u64) -> ! {
        exceptions::install();
        timer::init_event_stream();
        // The DTB is read with the MMU off: it says where RAM and the
        // shared region are, which the map makes Normal memory.
        let info = dt::read(dtb);
        // Every shared region, header page included.
        let shm =
            |i: usize| info.shms[i].map_or((0, 0), |s| (s.header, s.base + s.size - s.header));
        mmu::init(&[info.ram, shm(0), shm(1), shm(2), shm(3)]);
        let vm = VM.call_once(|| info);
        console::info(format_args!(
            "test-guest: VM {} boot {}, {} vCPU(s), RAM {:#x}+{:#x}, DTB {:#x}, counter {} Hz",
            vm.name(),
            vm.boot_count,
            vm.vcpus,
            vm.ram.0,
            vm.ram.1,
            dtb,
            timer::frequency()
        ));
        if let Err(e) = gic::init_distributor().and_then(|_| gic::init_this_vcpu()) {
            console::fail("gic", format_args!("{e}"));
            summary();
            idle();
        }
        exceptions::unmask_irqs();
        run(vm);
        idle()
    }

    /// Secondary vCPUs' Rust entry (PSCI `CPU_ON`), x0 = the context id.
    #[unsafe(no_mangle)]
    extern "C" fn secondary_main(context: u64) -> ! {
        exceptions::install();
        mmu::enable();
        timer::init_event_stream();
        if VM.get().is_none() {
            console::info(format_args!(
                "vCPU {} started before vCPU 0 read the DTB",
                vcpu()
            ));
            psci::cpu_off();
        }
        match gic::init_this_vcpu() {
            Ok(()) => {
                exceptions::unmask_irqs();
                checks::secondary(Secondary::from_context(context));
            }
            Err(e) => console::fail("gic", format_args!("vCPU {}: {e}", vcpu())),
        }
        exceptions::mask_irqs();
        psci::cpu_off()
    }

    /// The plan for this VM, by name and boot count.
    fn run(vm: &VmInfo) {
        match (vm.name(), vm.boot_count) {
            ("t1", 1) => {
                console::pass(
                    "restart",
                    format_args!("back after the fault, boot count 1"),
                );
                lifecycle::irq_still_works("irq-after-fault");
                // A system-register access the hypervisor does not handle
                // (group-0 SGI, trapped by HCR_EL2.FMO): contained to this
                // VM, which is restarted.
                console::info(format_args!(
                    "writing ICC_SGI0R_EL1: the hypervisor must contain this trap"
                ));
                // SAFETY: deliberately provoking the hypervisor.
                unsafe { core::arch::asm!("msr icc_sgi0r_el1, {}", "isb", in(reg) 0u64) };
                console::fail(
                    "trap-contained",
                    format_args!("ICC_SGI0R_EL1 write returned"),
                );
                summary();
            }
            ("t1", 2) => {
                console::pass(
                    "trap-contained",
                    format_args!("restarted after an unhandled trap, boot count 2"),
                );
                lifecycle::reset_in_irq();
                console::fail("reset", format_args!("no SYSTEM_RESET from the handler"));
                summary();
            }
            ("t1", n) if n >= 3 => {
                console::pass(
                    "reset",
                    format_args!("back after SYSTEM_RESET, boot count {n}"),
                );
                lifecycle::irq_still_works("irq-after-reset");
                summary();
                console::info(format_args!("calling PSCI SYSTEM_OFF"));
                let r = psci::system_off();
                console::fail("system-off", format_args!("SYSTEM_OFF returned {r}"));
            }
            // DMA through the SMMU (boards/test-dma.toml).
            ("d0", _) => dma::owner(vm),
            ("d1", _) => dma::canary(vm),
            // Benchmarks alone on the machine (boards/bench-solo.toml).
            ("solo", _) => {
                checks::timer();
                checks::hvc_roundtrip();
                summary();
                console::line(format_args!("done"));
            }
            ("t2", n) if n >= 1 => {
                restarted_once(n);
                summary();
            }
            (name, _) => {
                if name == "t0" {
                    hardening::watch_restarts(vm);
                }
                checks::memory(vm);
                checks::timer();
                checks::psci(vm);
                if vm.vcpus >= 2 {
                    checks::sgi();
                    if vm.in_vm() {
                        lifecycle::cpu_off_on();
                    }
                }
                checks::lr_overflow();
                // VMs without a doorbell: the soak takes every interrupt.
                if matches!(name, "t1" | "native") {
                    console::report("fp-state", fpsimd::check());
                }
                if name == "t1" {
                    console::report("cpu-features", features::cpu_features());
                    console::report("traps", features::traps());
                }
                if vm.in_vm() {
                    checks::hvc_roundtrip();
                    checks::devices(vm);
                    checks::gic_ownership(vm);
                    hardening::smccc();
                    hardening::psci32();
                    hardening::cpu_on_race(vm);
                }
                match name {
                    "t0" => {
                        doorbell::ping_pong(vm, protocol::Role::Initiator);
                        hardening::storm_ring(vm);
                        doorbell::heartbeat(vm, protocol::Role::Initiator);
                        hardening::shm_restart(vm);
                        summary();
                    }
                    "t2" => {
                        doorbell::ping_pong(vm, protocol::Role::Responder);
                        hardening::storm_masked(vm);
                        doorbell::start_flood(vm);
                        doorbell::heartbeat(vm, protocol::Role::Responder);
                        summary();
                    }
                    "t1" => {
                        summary();
                        lifecycle::fault_in_irq(checks::outside_address(vm));
                    }
                    "bm" | "bell" => {
                        use crate::linux_peer::{ping_pong, CLUSTER, LINUX};
                        ping_pong(vm, if name == "bm" { &LINUX } else { &CLUSTER });
                        summary();
                        beat_forever();
                    }
                    _ => summary(),
                }
                if matches!(name, "t0" | "t2") {
                    console::line(format_args!("done"));
                }
                if name == "t2" {
                    lifecycle::both_vcpus_fault(checks::outside_address(vm));
                }
            }
        }
    }

    /// `heartbeat <n>` once a second for good: the `linux` tier watches it
    /// while the Linux VMs crash, reboot and power off. It sleeps in WFI
    /// between ticks of the virtual timer (WFE with the event stream would
    /// keep a host core busy under QEMU, slowing the Linux VMs).
    fn beat_forever() -> ! {
        use crate::timer;
        timer::start_ticks(timer::frequency(), u64::MAX);
        for n in 1.. {
            while timer::ticks() < n {
                aarch64_cpu::asm::wfi();
            }
            console::line(format_args!("heartbeat {n}"));
        }
        unreachable!()
    }

    /// t2 after both its vCPUs faulted at once: back exactly once, and
    /// vCPU 1 starts as it should.
    fn restarted_once(boot: u32) {
        if boot != 1 {
            console::fail(
                "restart-once",
                format_args!("boot count {boot}: restarted more than once"),
            );
            return;
        }
        let r = checks::start_secondary(1, checks::Secondary::ReportIn);
        if r != 0 || !checks::up_as(checks::Secondary::ReportIn) {
            console::fail(
                "restart-once",
                format_args!("boot count 1, but vCPU 1 did not start (CPU_ON {r})"),
            );
            return;
        }
        checks::release_secondary();
        console::pass(
            "restart-once",
            format_args!("both vCPUs faulted at once; back once (boot count 1), vCPU 1 starts"),
        );
    }

    /// Nothing left to do: sleep with interrupts masked.
    pub fn idle() -> ! {
        exceptions::mask_irqs();
        loop {
            aarch64_cpu::asm::wfi();
        }
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        exceptions::mask_irqs();
        console::emergency(format_args!(
            "check panic: FAIL vCPU {}: {}",
            vcpu(),
            info.message()
        ));
        if let Some(l) = info.location() {
            console::emergency(format_args!("  at {}:{}", l.file(), l.line()));
        }
        loop {
            aarch64_cpu::asm::wfi();
        }
    }
}
