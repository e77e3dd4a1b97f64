//! The physical console shared by the VMs: each VM's output lines, tagged
//! with its name (buffered per VM, drained by the boot core: see
//! `drivers::console`), and input routed to one VM at a time (Ctrl-T
//! switches).

use super::console_input::{Input, Router};
use super::vcpu;
use crate::arch::{cpu, timer};
use crate::drivers::{console, gicv3};
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

static INPUT: Mutex<Router> = Mutex::new(Router::new(0, 0));
static INPUT_ON: AtomicBool = AtomicBool::new(false);

/// A finished line of a VM's vUART output (the vUART's sink): into that
/// VM's outbox, never waiting for the UART.
pub fn vm_line(vm: &'static str, text: &str) {
    let index = super::vms().iter().position(|v| v.name() == vm);
    console::vm_line(index.unwrap_or(0), vm, text);
}

/// The physical UART's INTID once input routing is on.
pub fn intid() -> Option<u32> {
    INPUT_ON
        .load(Ordering::Relaxed)
        .then(|| super::plan().platform.uart.spi.intid())
}

/// Routes console input to the plan's first console VM, on this core, and
/// makes this core the one that drains the console's output: on
/// `SGI_DRAIN` (output is waiting), the UART's interrupt (its transmit FIFO
/// has room again) and the EL2 timer (pacing). Each costs it at most
/// `console::BUDGET` bytes written without waiting.
pub fn start_input(gicd: &gicv3::Distributor) {
    let plan = super::plan();
    let vms = super::vms();
    let first = vms
        .iter()
        .position(|v| v.name() == plan.console.input_first)
        .unwrap_or(0);
    *INPUT.lock() = Router::new(first, vms.len());
    let intid = plan.platform.uart.spi.intid();
    gicd.route_spi(intid, cpu::mpidr());
    gicd.enable_spi(intid);
    console::enable_rx_interrupt();
    let rd = gicv3::this_redistributor();
    rd.enable_ppi(console::SGI_DRAIN);
    // The EL2 timer paces the drain (`console::PACE_US`).
    rd.enable_ppi(timer::CNTHP_INTID);
    INPUT_ON.store(true, Ordering::Relaxed);
    console::start_draining(cpu::mpidr());
    if let Some(v) = vms.get(first) {
        log::info!(
            "console input goes to VM {} (Ctrl-T then a VM number 0-{} switches; Ctrl-T n: next)",
            v.name(),
            vms.len().saturating_sub(1)
        );
    }
}

/// The UART's interrupt: bytes arrived (to the focused VM's vUART) or the
/// transmit FIFO has room (the next bytes of output).
pub fn on_interrupt() {
    input();
    console::drain();
}

/// Bytes arrived on the physical console: to the focused VM's vUART.
fn input() {
    while let Some(b) = console::read_byte() {
        let mut router = INPUT.lock();
        match router.feed(b) {
            Input::Byte(b) => {
                let Some(target) = super::vms().get(router.focus()) else {
                    continue;
                };
                drop(router);
                let raise = {
                    let mut u = target.uart.lock();
                    if !u.push_rx(b) {
                        if let Some(held) = target.may_log() {
                            log::warn!(
                                "VM {}: console input dropped (buffer full){held}",
                                target.name()
                            );
                        }
                    }
                    u.irq_level()
                };
                if raise && target.unrunnable.is_none() {
                    vcpu::inject(target, super::plan().platform.uart.spi.intid(), 0);
                }
            }
            Input::Switch(n) => {
                drop(router);
                if let Some(v) = super::vms().get(n) {
                    crate::println!("[console input now goes to VM {n}: {}]", v.name());
                }
            }
            Input::Help => crate::println!(
                "[console: Ctrl-T then 0-9 picks a VM, n the next one, Ctrl-T a literal Ctrl-T]"
            ),
            Input::Nothing => {}
        }
    }
}
