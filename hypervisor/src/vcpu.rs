//! A vCPU on its physical core: entering EL1, and every trap back to EL2
//! (hypercalls and PSCI, emulated devices, SGIs, faults), plus the virtual
//! interrupts it receives through the GIC list registers.

use crate::arch::vectors::{self, Frame};
use crate::arch::{cpu, gicv3, timer};
use crate::vm::{self, Power, VmState};
use core::sync::atomic::Ordering;
use spin::{Mutex, Once};
use tessera_hv::guest_dtb::{CONTROL_IPA, GICD_IPA, GICR_IPA, GICR_STRIDE, UART_IPA};
use tessera_hv::vgic::Action;
use tessera_hv::{esr, mmio, partition};

/// Physical SGIs the hypervisor sends itself.
pub const SGI_KICK: u32 = 0; // refresh the target's list registers / wake it
pub const SGI_STOP: u32 = 1; // the target's VM is stopping: leave the guest
/// Maintenance interrupt (PPI 9): list registers ran low (ICH_HCR_EL2.UIE).
const MAINTENANCE_INTID: u32 = 25;
/// Guest timers, forwarded as hardware-linked virtual interrupts.
const VTIMER_INTID: u32 = 27;
const PTIMER_INTID: u32 = 30;

const PSCI_VERSION: u64 = 0x8400_0000;
const PSCI_CPU_OFF: u64 = 0x8400_0002;
const PSCI_CPU_ON_32: u64 = 0x8400_0003;
const PSCI_CPU_ON_64: u64 = 0xc400_0003;
const PSCI_AFFINITY_INFO_32: u64 = 0x8400_0004;
const PSCI_AFFINITY_INFO_64: u64 = 0xc400_0004;
const PSCI_MIGRATE_INFO_TYPE: u64 = 0x8400_0006;
const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
const PSCI_SYSTEM_RESET: u64 = 0x8400_0009;
const PSCI_FEATURES: u64 = 0x8400_000a;
pub const TESSERA_PING: u64 = 0xc600_0000;
pub const TESSERA_DOORBELL: u64 = 0xc600_0001;
const SUPPORTED: [u64; 12] = [
    PSCI_VERSION,
    PSCI_CPU_OFF,
    PSCI_CPU_ON_32,
    PSCI_CPU_ON_64,
    PSCI_AFFINITY_INFO_32,
    PSCI_AFFINITY_INFO_64,
    PSCI_MIGRATE_INFO_TYPE,
    PSCI_SYSTEM_OFF,
    PSCI_SYSTEM_RESET,
    PSCI_FEATURES,
    TESSERA_PING,
    TESSERA_DOORBELL,
];
const NOT_SUPPORTED: u64 = -1i64 as u64;
const INVALID_PARAMETERS: u64 = -2i64 as u64;
const ALREADY_ON: u64 = -4i64 as u64;
const ON_PENDING: u64 = -5i64 as u64;

/// Each core's life after boot: wait until its vCPU is switched on, enter
/// the guest. Also where a core comes back to when its vCPU goes off.
pub extern "C" fn run(core: usize) -> ! {
    let Some((vm, vi)) = vm::this_vcpu() else {
        // No vCPU here; the core may still serve the console's input.
        loop {
            // SAFETY: sleep until an interrupt is pending (IRQs masked).
            unsafe { core::arch::asm!("wfi") };
            drain_pending_irqs();
        }
    };
    debug_assert_eq!(core, cpu::core_index());
    // KICK wakes this core for CPU_ON; STOP is sent to running vCPUs.
    let rd = crate::boot::this_redistributor();
    rd.enable_ppi(SGI_KICK);
    rd.enable_ppi(SGI_STOP);
    let v = &vm.vcpus[vi];
    loop {
        if v.power() == Power::OnPending && !vm.stopping.load(Ordering::Acquire) {
            break;
        }
        // SAFETY: sleep until an interrupt (a KICK SGI) is pending; IRQs
        // stay masked at EL2 and are acknowledged below.
        unsafe { core::arch::asm!("wfi") };
        drain_pending_irqs();
    }
    v.set_power(Power::On);
    if vi == 0 {
        vm.note_started();
    }
    enter(
        vm,
        vi,
        v.entry.load(Ordering::Relaxed),
        v.context.load(Ordering::Relaxed),
    )
}

/// While idle with IRQs masked: handle what woke us.
fn drain_pending_irqs() {
    while crate::irq::handle() {}
}

/// Leaves this core's vCPU for good and goes back to waiting in [`run`].
pub fn park() -> ! {
    let core = cpu::core_index();
    vectors::restart_stack(cpu::stack_top(core), run, core)
}

fn enter(vm: &VmState, vi: usize, pc: u64, x0: u64) -> ! {
    let ipa_bits = vm::ipa_bits() as u64;
    let ps = match ipa_bits {
        32 => 0,
        36 => 1,
        40 => 2,
        42 => 3,
        44 => 4,
        _ => 5,
    };
    // 4 KiB granule, start level from the IPA size (SL0: 2 = level 0, 1 = level 1).
    let sl0 = if ipa_bits > 39 { 2 } else { 1 };
    let vtcr =
        (64 - ipa_bits) | sl0 << 6 | 0b01 << 8 | 0b01 << 10 | 0b11 << 12 | ps << 16 | 1 << 31;
    const HCR_VM: u64 = 1 << 0;
    const HCR_SWIO: u64 = 1 << 1;
    const HCR_FMO: u64 = 1 << 3;
    const HCR_IMO: u64 = 1 << 4;
    const HCR_AMO: u64 = 1 << 5;
    const HCR_FB: u64 = 1 << 9;
    const HCR_BSU_IS: u64 = 1 << 10;
    const HCR_TSC: u64 = 1 << 19;
    const HCR_RW: u64 = 1 << 31;
    let hcr =
        HCR_VM | HCR_SWIO | HCR_FMO | HCR_IMO | HCR_AMO | HCR_FB | HCR_BSU_IS | HCR_TSC | HCR_RW;
    let vmpidr = (1 << 31) | vi as u64;
    // SAFETY: the EL2 controls of this core's one guest, and a reset of its
    // EL1 state (so a restarted VM starts clean); caches and TLBs for its
    // VMID are invalidated before the first instruction runs.
    unsafe {
        core::arch::asm!(
            "msr vtcr_el2, {vtcr}",
            "msr vttbr_el2, {vttbr}",
            "isb",
            "tlbi vmalls12e1",
            "dsb nsh",
            "msr hcr_el2, {hcr}",
            "mrs {tmp}, midr_el1",
            "msr vpidr_el2, {tmp}",
            "msr vmpidr_el2, {vmpidr}",
            "msr sctlr_el1, {sctlr}",
            "msr cpacr_el1, xzr",
            "msr vbar_el1, xzr",
            "msr cntv_ctl_el0, xzr",
            "msr cntp_ctl_el0, xzr",
            "msr cntkctl_el1, xzr",
            "msr ich_vmcr_el2, xzr",
            "msr ich_hcr_el2, {en}",
            "ic iallu",
            "dsb nsh",
            "isb",
            vtcr = in(reg) vtcr, vttbr = in(reg) vm.vttbr, hcr = in(reg) hcr,
            vmpidr = in(reg) vmpidr, sctlr = in(reg) 0x30d0_0800u64, en = in(reg) 1u64,
            tmp = out(reg) _,
        );
    }
    clear_lrs();
    let rd = crate::boot::this_redistributor();
    rd.enable_ppi(MAINTENANCE_INTID);
    // Guest timers stay off physically until the guest enables them in its vGIC.
    rd.disable_ppi(VTIMER_INTID);
    rd.disable_ppi(PTIMER_INTID);
    rd.enable_ppi(SGI_KICK);
    rd.enable_ppi(SGI_STOP);
    let core = cpu::core_index();
    // The first frame must not live on the stack it is copied to the top of.
    let frame = ENTRY_FRAMES[core].call_once(|| Mutex::new(Frame::entry(0, 0)));
    let mut f = frame.lock();
    *f = Frame::entry(pc, x0);
    let ptr: *const Frame = &*f;
    drop(f);
    // SAFETY: only this core uses its entry frame, and only here.
    vectors::enter_guest(unsafe { &*ptr }, cpu::stack_top(core))
}

static ENTRY_FRAMES: [Once<Mutex<Frame>>; cpu::MAX_CPUS] = [const { Once::new() }; cpu::MAX_CPUS];

// ---- list registers --------------------------------------------------------

fn lr_count() -> usize {
    let vtr: u64;
    // SAFETY: reading an ID register.
    unsafe { core::arch::asm!("mrs {}, ich_vtr_el2", out(reg) vtr) };
    ((vtr & 0x1f) + 1) as usize
}

macro_rules! lr_access {
    ($($n:literal),*) => {
        fn read_lr(n: usize) -> u64 {
            let v: u64;
            match n {
                // SAFETY: list registers of this core's virtual CPU interface.
                $($n => unsafe { core::arch::asm!(concat!("mrs {}, ich_lr", $n, "_el2"), out(reg) v) },)*
                _ => v = 0,
            }
            v
        }
        fn write_lr(n: usize, v: u64) {
            match n {
                // SAFETY: as above.
                $($n => unsafe { core::arch::asm!(concat!("msr ich_lr", $n, "_el2, {}"), in(reg) v) },)*
                _ => {}
            }
        }
    };
}
lr_access!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

fn clear_lrs() {
    for n in 0..lr_count() {
        write_lr(n, 0);
    }
}

/// Folds the list registers back into the VM's vGIC, refills them, and asks
/// for a maintenance interrupt if more is pending than fits.
fn refresh_lrs(vm: &VmState, vi: usize) {
    let n = lr_count().min(16);
    let mut lrs = [0u64; 16];
    for (i, lr) in lrs.iter_mut().enumerate().take(n) {
        *lr = read_lr(i);
    }
    let overflow = {
        let mut g = vm.vgic.lock();
        g.sync_lrs(vi, &lrs[..n]);
        g.flush_lrs(vi, &mut lrs[..n])
    };
    for (i, &lr) in lrs.iter().enumerate().take(n) {
        write_lr(i, lr);
    }
    const EN: u64 = 1;
    const UIE: u64 = 1 << 1;
    let hcr = if overflow { EN | UIE } else { EN };
    // SAFETY: this core's virtual CPU interface control.
    unsafe { core::arch::asm!("msr ich_hcr_el2, {}", "isb", in(reg) hcr) };
}

/// Makes the target vCPU look at its pending interrupts: here, or by SGI.
fn kick(vm: &VmState, target: usize) {
    let here = cpu::core_index();
    let v = &vm.vcpus[target];
    if v.core == here {
        refresh_lrs(vm, target);
    } else {
        gicv3::send_sgi(SGI_KICK, v.mpidr);
    }
}

/// Injects `intid` into `vm` (SPIs go where the guest routed them).
pub fn inject(vm: &VmState, intid: u32, vcpu: usize) {
    let target = vm.vgic.lock().inject(intid, vcpu);
    if let Some(t) = target {
        kick(vm, t);
    }
}

fn apply(vm: &VmState, actions: tessera_hv::vgic::Actions) {
    for a in actions.iter() {
        match *a {
            Action::EnablePhysSpi(i) => crate::boot::distributor().enable_spi(i),
            Action::DisablePhysSpi(i) => crate::boot::distributor().disable_spi(i),
            Action::RoutePhysSpi { intid, vcpu } => {
                if let Some(v) = vm.vcpus.get(vcpu) {
                    crate::boot::distributor().route_spi(intid, v.mpidr)
                }
            }
            Action::EnablePhysPpi { vcpu, intid } => ppi_on_vcpu(vm, vcpu, intid, true),
            Action::DisablePhysPpi { vcpu, intid } => ppi_on_vcpu(vm, vcpu, intid, false),
            Action::Kick(t) => kick(vm, t),
        }
    }
}

fn ppi_on_vcpu(vm: &VmState, vcpu: usize, intid: u32, on: bool) {
    // A vCPU's redistributor is only ever written by its own core.
    if vm
        .vcpus
        .get(vcpu)
        .is_some_and(|v| v.core == cpu::core_index())
    {
        let rd = crate::boot::this_redistributor();
        if on {
            rd.enable_ppi(intid)
        } else {
            rd.disable_ppi(intid)
        }
    }
}

pub enum Irq {
    /// Given to the guest, hardware-linked: its EOI deactivates it.
    Forwarded,
    /// Handled here; the caller deactivates it.
    Handled,
    Unknown,
}

/// A physical interrupt at EL2 (after EOI/priority drop).
pub fn on_irq(intid: u32) -> Irq {
    let Some((vm, vi)) = vm::this_vcpu() else {
        return Irq::Unknown;
    };
    match intid {
        SGI_KICK | MAINTENANCE_INTID => {
            refresh_lrs(vm, vi);
            Irq::Handled
        }
        SGI_STOP => {
            if vm.stopping.load(Ordering::Acquire) {
                gicv3::deactivate(intid);
                vm.vcpus[vi].set_power(Power::Off);
                park();
            }
            Irq::Handled
        }
        VTIMER_INTID | PTIMER_INTID => {
            inject(vm, intid, vi);
            Irq::Forwarded
        }
        _ if vm.cfg.spis.iter().any(|s| s.intid() == intid) => {
            inject(vm, intid, vi);
            Irq::Forwarded
        }
        _ => Irq::Unknown,
    }
}

// ---- traps -------------------------------------------------------------------

fn syndrome() -> (u64, u64, u64) {
    let (esr, far, hpfar): (u64, u64, u64);
    // SAFETY: reading syndrome registers.
    unsafe {
        core::arch::asm!("mrs {}, esr_el2", "mrs {}, far_el2", "mrs {}, hpfar_el2",
            out(reg) esr, out(reg) far, out(reg) hpfar)
    };
    (esr, far, hpfar)
}

/// A synchronous exception from the guest on this core.
pub fn trap(frame: &mut Frame) {
    let (esr, far, hpfar) = syndrome();
    let Some((vm, vi)) = vm::this_vcpu() else {
        crate::crash::report(frame, vectors::Kind::Lower64Sync);
    };
    match esr::class(esr) {
        0x16 => hypercall(vm, vi, frame),
        0x17 => {
            hypercall(vm, vi, frame);
            frame.elr += 4; // a trapped SMC returns to itself
        }
        0x24 => match mmio::decode(esr, hpfar, far) {
            Ok(access) if emulate(vm, frame, &access) => frame.elr += 4,
            Ok(access) => fault(
                vm,
                vi,
                frame,
                esr,
                FaultKind::Unmapped(access.ipa, access.write),
            ),
            Err(_) => {
                let ipa = ((hpfar >> 4) & 0xff_ffff_ffff) << 12 | (far & 0xfff);
                let kind = if is_emulated(vm, ipa) {
                    FaultKind::NoSyndrome(ipa)
                } else {
                    FaultKind::Unmapped(ipa, esr & (1 << 6) != 0)
                };
                fault(vm, vi, frame, esr, kind)
            }
        },
        0x20 => {
            let ipa = ((hpfar >> 4) & 0xff_ffff_ffff) << 12 | (far & 0xfff);
            fault(vm, vi, frame, esr, FaultKind::Fetch(ipa))
        }
        0x18 if sysreg_is_sgi1r(esr) => {
            let rt = ((esr >> 5) & 0x1f) as usize;
            let value = if rt == 31 { 0 } else { frame.x[rt] };
            let targets = vm.vgic.lock().send_sgi(vi, value);
            for t in (0..vm.vcpus.len()).filter(|t| targets & (1 << t) != 0) {
                kick(vm, t);
            }
            frame.elr += 4;
        }
        0x01 => frame.elr += 4, // WFI/WFE, should they ever be trapped
        _ => fault(vm, vi, frame, esr, FaultKind::Trap),
    }
}

pub fn serror(frame: &mut Frame) {
    let (esr, _, _) = syndrome();
    match vm::this_vcpu() {
        Some((vm, vi)) => fault(vm, vi, frame, esr, FaultKind::SError),
        None => crate::crash::report(frame, vectors::Kind::Lower64SError),
    }
}

/// ICC_SGI1R_EL1 write: op0 3, op1 0, CRn 12, CRm 11, op2 5, direction write.
fn sysreg_is_sgi1r(esr: u64) -> bool {
    let iss = esr & 0x1ff_ffff;
    let (op0, op2, op1, crn, crm, read) = (
        (iss >> 20) & 3,
        (iss >> 17) & 7,
        (iss >> 14) & 7,
        (iss >> 10) & 0xf,
        (iss >> 1) & 0xf,
        iss & 1,
    );
    (op0, op1, crn, crm, op2, read) == (3, 0, 12, 11, 5, 0)
}

fn hypercall(vm: &'static VmState, vi: usize, frame: &mut Frame) {
    let fid = frame.x[0] & 0xffff_ffff;
    let ret = match fid {
        PSCI_VERSION => 0x1_0001,
        PSCI_FEATURES => {
            if SUPPORTED.contains(&(frame.x[1] & 0xffff_ffff)) {
                0
            } else {
                NOT_SUPPORTED
            }
        }
        PSCI_MIGRATE_INFO_TYPE => 2,
        PSCI_CPU_ON_32 | PSCI_CPU_ON_64 => cpu_on(vm, frame.x[1], frame.x[2], frame.x[3]),
        PSCI_AFFINITY_INFO_32 | PSCI_AFFINITY_INFO_64 => match vcpu_of(vm, frame.x[1]) {
            Some(t) if frame.x[2] == 0 => match vm.vcpus[t].power() {
                Power::On => 0,
                Power::Off => 1,
                Power::OnPending => 2,
            },
            _ => INVALID_PARAMETERS,
        },
        PSCI_CPU_OFF => {
            vm.vcpus[vi].set_power(Power::Off);
            park();
        }
        PSCI_SYSTEM_OFF => {
            log::info!("VM {}: SYSTEM_OFF from vCPU {vi}: stopped", vm.name());
            stop(vm, vi);
        }
        PSCI_SYSTEM_RESET => {
            log::info!("VM {}: SYSTEM_RESET from vCPU {vi}: restarting", vm.name());
            restart(vm, vi);
        }
        TESSERA_PING => 0,
        TESSERA_DOORBELL => doorbell(vm, frame.x[1]),
        _ => NOT_SUPPORTED,
    };
    frame.x[0] = ret;
}

/// The vCPU an MPIDR names in this VM (Aff0 = vCPU index, nothing above).
fn vcpu_of(vm: &VmState, mpidr: u64) -> Option<usize> {
    let t = (mpidr & 0xff_00ff_ffff) as usize;
    (t < vm.vcpus.len()).then_some(t)
}

fn cpu_on(vm: &VmState, target: u64, entry: u64, context: u64) -> u64 {
    let Some(t) = vcpu_of(vm, target) else {
        return INVALID_PARAMETERS;
    };
    if vm.cfg.ipa_to_pa(entry).is_none() {
        return (-9i64) as u64; // INVALID_ADDRESS
    }
    match vm.vcpus[t].request_on(entry, context) {
        Ok(()) => {
            gicv3::send_sgi(SGI_KICK, vm.vcpus[t].mpidr);
            0
        }
        Err(Power::OnPending) => ON_PENDING,
        Err(_) => ALREADY_ON,
    }
}

/// Rings shared region `index` of `vm`: every other peer gets its doorbell.
fn doorbell(vm: &VmState, index: u64) -> u64 {
    let Some((_, region)) = partition::shared_index(vm::plan(), vm.name()).nth(index as usize)
    else {
        log::warn!("VM {}: doorbell {index}: no such shared region", vm.name());
        return INVALID_PARAMETERS;
    };
    for peer in region.peers.iter().filter(|p| p.vm != vm.name()) {
        if let (Some(spi), Some(target)) = (peer.doorbell, vm::vm_by_name(peer.vm)) {
            if target.unrunnable.is_none() {
                inject(target, spi.intid(), 0);
            }
        }
    }
    0
}

fn is_emulated(vm: &VmState, ipa: u64) -> bool {
    let gicr_end = GICR_IPA + GICR_STRIDE * vm.vcpus.len() as u64;
    (GICD_IPA..GICD_IPA + 0x1_0000).contains(&ipa)
        || (GICR_IPA..gicr_end).contains(&ipa)
        || (UART_IPA..UART_IPA + 0x1000).contains(&ipa)
        || (CONTROL_IPA..CONTROL_IPA + 0x1000).contains(&ipa)
}

/// Emulated devices; false if nothing is at that address.
fn emulate(vm: &VmState, frame: &mut Frame, a: &mmio::Access) -> bool {
    let reg_value = if a.reg == 31 {
        0
    } else {
        frame.x[a.reg as usize]
    };
    let gicr_end = GICR_IPA + GICR_STRIDE * vm.vcpus.len() as u64;
    let result: Option<u64> = if (GICD_IPA..GICD_IPA + 0x1_0000).contains(&a.ipa) {
        let off = a.ipa - GICD_IPA;
        if a.write {
            let actions = vm
                .vgic
                .lock()
                .dist_write(off, a.size, a.store_value(reg_value));
            apply(vm, actions);
            None
        } else {
            Some(vm.vgic.lock().dist_read(off, a.size))
        }
    } else if (GICR_IPA..gicr_end).contains(&a.ipa) {
        let target = ((a.ipa - GICR_IPA) / GICR_STRIDE) as usize;
        let off = (a.ipa - GICR_IPA) % GICR_STRIDE;
        if a.write {
            let actions =
                vm.vgic
                    .lock()
                    .redist_write(target, off, a.size, a.store_value(reg_value));
            apply(vm, actions);
            None
        } else {
            Some(vm.vgic.lock().redist_read(target, off, a.size))
        }
    } else if (UART_IPA..UART_IPA + 0x1000).contains(&a.ipa) {
        let off = a.ipa - UART_IPA;
        if a.write {
            vm.uart.lock().write(off, a.store_value(reg_value));
            None
        } else {
            let (v, low) = {
                let mut u = vm.uart.lock();
                (u.read(off), !u.irq_level())
            };
            if low && off == 0 {
                let holder = vm
                    .vgic
                    .lock()
                    .retract(vm::plan().platform.uart.spi.intid(), 0);
                if let Some(t) = holder {
                    kick(vm, t);
                }
            }
            Some(v)
        }
    } else if (CONTROL_IPA..CONTROL_IPA + 0x1000).contains(&a.ipa) {
        if a.write && a.ipa == CONTROL_IPA {
            doorbell(vm, a.store_value(reg_value));
        }
        (!a.write).then_some(0)
    } else {
        return false;
    };
    if let Some(raw) = result {
        if a.reg != 31 {
            frame.x[a.reg as usize] = a.load_value(raw);
        }
    }
    true
}

enum FaultKind {
    Unmapped(u64, bool),
    /// An access to an emulated device by an instruction that gives no
    /// syndrome (load/store pair, writeback, SIMD): it cannot be emulated.
    NoSyndrome(u64),
    Fetch(u64),
    Trap,
    SError,
}

/// Contains a guest's fault to its VM: one log line, then stop or restart.
fn fault(vm: &'static VmState, vi: usize, frame: &Frame, esr: u64, kind: FaultKind) -> ! {
    let policy = match vm.cfg.fault {
        tessera_boards::FaultPolicy::Stop => "stopping it",
        tessera_boards::FaultPolicy::Restart => "restarting it",
    };
    // No heap here: this path never returns, so nothing it owns is dropped.
    let name = vm.name();
    let pc = frame.elr;
    match kind {
        FaultKind::Unmapped(ipa, w) => log::error!(
            "VM {name} vCPU {vi} fault: stage-2 fault: {} IPA {ipa:#x} outside its map; ESR {esr:#010x} PC {pc:#x}; {policy}",
            if w { "write to" } else { "read of" }
        ),
        FaultKind::NoSyndrome(ipa) => log::error!(
            "VM {name} vCPU {vi} fault: access to emulated device at IPA {ipa:#x} with an instruction that cannot be emulated (use single LDR/STR); ESR {esr:#010x} PC {pc:#x}; {policy}"
        ),
        FaultKind::Fetch(ipa) => log::error!(
            "VM {name} vCPU {vi} fault: stage-2 fault: instruction fetch from IPA {ipa:#x}; ESR {esr:#010x} PC {pc:#x}; {policy}"
        ),
        FaultKind::Trap => log::error!(
            "VM {name} vCPU {vi} fault: unhandled trap: {}; ESR {esr:#010x} PC {pc:#x}; {policy}",
            esr::class_name(esr::class(esr))
        ),
        FaultKind::SError => log::error!("VM {name} vCPU {vi} fault: SError; ESR {esr:#010x} PC {pc:#x}; {policy}"),
    }
    match vm.cfg.fault {
        tessera_boards::FaultPolicy::Stop => stop(vm, vi),
        tessera_boards::FaultPolicy::Restart if vm.note_quick_fault() >= QUICK_FAULT_LIMIT => {
            log::error!(
                "VM {name}: faulted {QUICK_FAULT_LIMIT} times in a row within 100 ms of starting: stopping it instead"
            );
            stop(vm, vi)
        }
        tessera_boards::FaultPolicy::Restart => restart(vm, vi),
    }
}

/// A VM that keeps faulting right after (re)start is stopped, not restarted
/// forever.
const QUICK_FAULT_LIMIT: u32 = 5;

/// Takes every other vCPU of `vm` out of its guest and waits until they are.
fn stop_others(vm: &VmState, vi: usize) {
    vm.stopping.store(true, Ordering::Release);
    for (i, v) in vm.vcpus.iter().enumerate() {
        if i != vi && v.power() != Power::Off {
            gicv3::send_sgi(SGI_STOP, v.mpidr);
        }
    }
    let give_up = timer::now() + timer::frequency() / 10;
    let all_off = || {
        vm.vcpus
            .iter()
            .enumerate()
            .all(|(i, v)| i == vi || v.power() == Power::Off)
    };
    if !timer::wait_until(give_up, all_off) {
        log::error!("VM {}: a vCPU did not leave within 100 ms", vm.name());
    }
}

fn stop(vm: &VmState, vi: usize) -> ! {
    stop_others(vm, vi);
    vm.vcpus[vi].set_power(Power::Off);
    park()
}

/// SYSTEM_RESET, or a fault under the restart policy: images and DTB
/// reloaded, virtual devices reset, vCPU 0 started again.
fn restart(vm: &VmState, vi: usize) -> ! {
    stop_others(vm, vi);
    vm.vcpus[vi].set_power(Power::Off);
    vm.boot_count.fetch_add(1, Ordering::Relaxed);
    *vm.vgic.lock() = vm.new_vgic();
    vm.uart.lock().reset();
    if let Err(e) = vm.load() {
        log::error!(
            "VM {}: reloading for restart failed: {e}; stopped",
            vm.name()
        );
        park();
    }
    vm.stopping.store(false, Ordering::Release);
    let v0 = &vm.vcpus[0];
    if v0.request_on(vm.cfg.entry, vm.dtb_ipa).is_ok() && v0.core != cpu::core_index() {
        gicv3::send_sgi(SGI_KICK, v0.mpidr);
    }
    park()
}

// ---- console input -------------------------------------------------------------

static INPUT: Mutex<tessera_hv::console_input::Router> =
    Mutex::new(tessera_hv::console_input::Router::new(0, 0));

/// The physical UART's INTID once input routing is on.
pub fn console_intid() -> Option<u32> {
    INPUT_ON
        .load(Ordering::Relaxed)
        .then(|| vm::plan().platform.uart.spi.intid())
}

static INPUT_ON: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Routes console input to the plan's first console VM, on this core.
pub fn start_console_input(gicd: &gicv3::Distributor) {
    let plan = vm::plan();
    let first = vm::vms()
        .iter()
        .position(|v| v.name() == plan.console.input_first)
        .unwrap_or(0);
    *INPUT.lock() = tessera_hv::console_input::Router::new(first, vm::vms().len());
    let intid = plan.platform.uart.spi.intid();
    gicd.route_spi(intid, cpu::mpidr());
    gicd.enable_spi(intid);
    crate::console::enable_rx_interrupt();
    INPUT_ON.store(true, Ordering::Relaxed);
    if let Some(v) = vm::vms().get(first) {
        log::info!(
            "console input goes to VM {} (Ctrl-T then a VM number 0-{} switches; Ctrl-T n: next)",
            v.name(),
            vm::vms().len().saturating_sub(1)
        );
    }
}

/// Bytes arrived on the physical console: to the focused VM's vUART.
pub fn console_input() {
    use tessera_hv::console_input::Input;
    while let Some(b) = crate::console::read_byte() {
        let mut router = INPUT.lock();
        match router.feed(b) {
            Input::Byte(b) => {
                let Some(target) = vm::vms().get(router.focus()) else {
                    continue;
                };
                drop(router);
                let raise = {
                    let mut u = target.uart.lock();
                    if !u.push_rx(b) {
                        log::warn!("VM {}: console input dropped (buffer full)", target.name());
                    }
                    u.irq_level()
                };
                if raise && target.unrunnable.is_none() {
                    inject(target, vm::plan().platform.uart.spi.intid(), 0);
                }
            }
            Input::Switch(n) => {
                drop(router);
                if let Some(v) = vm::vms().get(n) {
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
