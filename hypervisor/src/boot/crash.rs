//! What happens when the hypervisor itself faults or panics: a decoded report
//! on the console, then this core stops. Other cores are left running.

use crate::arch::esr;
use crate::arch::{
    cpu,
    vectors::{Frame, Kind},
};
use crate::drivers::console::print_forced;

fn sysreg_esr_far() -> (u64, u64) {
    let (esr, far): (u64, u64);
    // SAFETY: reading syndrome registers has no side effects.
    unsafe { core::arch::asm!("mrs {}, esr_el2", "mrs {}, far_el2", out(reg) esr, out(reg) far) };
    (esr, far)
}

pub fn report(frame: &Frame, kind: Kind) -> ! {
    let (esr_v, far) = sysreg_esr_far();
    let ec = esr::class(esr_v);
    let core = cpu::core_index();
    print_forced(format_args!(
        "\n*** EL2 CRASH on core {core} (MPIDR {:#x}): unexpected exception ({kind:?})\n",
        cpu::mpidr()
    ));
    if matches!(ec, 0x20 | 0x21 | 0x24 | 0x25) {
        print_forced(format_args!(
            "    class: {} (EC {ec:#04x}), {}{}\n",
            esr::class_name(ec),
            esr::fault_status_name(esr_v),
            if ec >= 0x24 && esr_v & (1 << 6) != 0 {
                ", on write"
            } else {
                ""
            }
        ));
    } else {
        print_forced(format_args!(
            "    class: {} (EC {ec:#04x})\n",
            esr::class_name(ec)
        ));
    }
    let far_note = if esr::far_valid(esr_v) {
        ""
    } else {
        " (not valid for this class)"
    };
    print_forced(format_args!(
        "    ESR {esr_v:#010x}  FAR {far:#018x}{far_note}\n    ELR {:#018x}  SPSR {:#010x}\n    x0 {:#018x} x1 {:#018x} x29 {:#018x} x30 {:#018x}\n",
        frame.elr, frame.spsr, frame.x[0], frame.x[1], frame.x[29], frame.x[30]
    ));
    print_forced(format_args!("*** core {core} halted\n"));
    cpu::halt()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    print_forced(format_args!(
        "\n*** EL2 PANIC on core {}: {}\n*** core {} halted\n",
        cpu::core_index(),
        info,
        cpu::core_index()
    ));
    cpu::halt()
}
