//! The partition tier: three bare-metal test guests side by side
//! (`boards/test-partition.toml`), each checking its own results. The test
//! prints the table of checks and fails on any failed or missing check.

use qemu_virt::Boot;
use std::collections::BTreeMap;
use std::time::Duration;
use tessera_tests::run_image;

/// Checks each VM must report as passed.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "t0",
        &[
            "memory",
            "timer",
            "psci",
            "lr-overflow",
            "hypercall",
            "devices",
            "gic-ownership",
            "smccc",
            "psci32",
            "doorbell",
            "doorbell-storm",
            "flood-bound",
            "shm-restart",
        ],
    ),
    (
        "t1",
        &[
            "memory",
            "timer",
            "psci",
            "lr-overflow",
            "fp-state",
            "cpu-features",
            "traps",
            "hypercall",
            "devices",
            "gic-ownership",
            "smccc",
            "psci32",
            "restart",
            "irq-after-fault",
            "trap-contained",
            "reset",
            "irq-after-reset",
        ],
    ),
    (
        "t2",
        &[
            "memory",
            "timer",
            "psci",
            "sgi",
            "cpu-off-on",
            "lr-overflow",
            "hypercall",
            "devices",
            "gic-ownership",
            "smccc",
            "psci32",
            "cpu-on-race",
            "doorbell",
            "doorbell-storm",
            "flood",
            "console-flood",
            "restart-once",
        ],
    ),
];

fn finished(out: &str) -> bool {
    let line = |vm: &str, text: &str| {
        out.lines()
            .any(|l| l.trim_start().starts_with(&format!("{vm} |")) && l.contains(text))
    };
    line("t0", "done") && line("t2", "check restart-once") && out.contains("VM t1: SYSTEM_OFF")
}

#[test]
fn three_guests_check_themselves() {
    let mut r = run_image("tessera-test-partition.bin", Boot::Direct, "partition");
    // Virtual time = instructions: timer checks and bounds do not depend on
    // how loaded the host is.
    r.icount = true;
    // Each core leaves MDCR_EL2 trapping debug and PMU, as a careless
    // firmware might: Tessera must set its own policy (`traps` check).
    r.bootargs = "tessera.test=firmware-traps".into();
    // Console input goes to t0 first (the board file); Ctrl-T 2 moves it to t2.
    r.input = vec![
        ("t0 | heartbeat 2".into(), b"hello-t0\r".to_vec()),
        ("t0 | input: hello-t0".into(), b"\x142hello-t2\r".to_vec()),
    ];
    // One host thread runs all four vCPUs under -icount; with the doorbell
    // storm (a million trapped writes) a run on a loaded 2-core host has
    // come within seconds of 300 s.
    let limit = Duration::from_secs(480);
    let out = r.run(limit, finished).expect("QEMU runs");
    let text = &out.output;

    // vm -> check -> result line
    let mut table: BTreeMap<(String, String), String> = BTreeMap::new();
    for l in text.lines() {
        let Some((vm, rest)) = l.split_once(" | ") else {
            continue;
        };
        let Some(check) = rest.strip_prefix("check ") else {
            continue;
        };
        let Some((name, result)) = check.split_once(':') else {
            continue;
        };
        table.insert(
            (vm.trim().to_string(), name.trim().to_string()),
            result.trim().to_string(),
        );
    }
    println!("\n{:<4} {:<14} result", "VM", "check");
    for ((vm, check), result) in &table {
        println!("{vm:<4} {check:<14} {result}");
    }
    for l in text.lines().filter(|l| l.contains(" | bench ")) {
        println!("{}", l.trim());
    }

    assert!(
        !out.timed_out,
        "did not finish within {limit:?}; output:\n{text}"
    );
    let mut problems = Vec::new();
    for (vm, checks) in EXPECTED {
        for c in *checks {
            match table.get(&(vm.to_string(), c.to_string())) {
                Some(r) if r.starts_with("pass") => {}
                Some(r) => problems.push(format!("{vm} {c}: {r}")),
                None => problems.push(format!("{vm} {c}: missing")),
            }
        }
    }
    for ((vm, check), r) in &table {
        if !r.starts_with("pass") {
            problems.push(format!("{vm} {check}: {r}"));
        }
    }
    // Fault containment: one line naming the VM, the address, ESR and PC.
    let fault = text
        .lines()
        .find(|l| l.contains("VM t1 vCPU 0 fault: stage-2 fault"));
    match fault {
        Some(l)
            if l.contains("IPA 0x")
                && l.contains("ESR 0x")
                && l.contains("PC 0x")
                && l.contains("restarting") => {}
        _ => problems.push("no fault line for t1 naming IPA, ESR, PC and the restart".into()),
    }
    // An unhandled trap is contained too, and SYSTEM_OFF stops t1 alone.
    for want in [
        "VM t1 vCPU 0 fault: unhandled trap: Trapped MSR/MRS/system instruction",
        "VM t1: SYSTEM_OFF from vCPU 0: stopped",
    ] {
        if !text.contains(want) {
            problems.push(format!("no {want:?}"));
        }
    }
    // t2 rang invalid doorbells for 1 s: the hypervisor's line about them is
    // rate-limited (a burst of 10, then one per 100 ms) and says how many it
    // held back.
    let bad_doorbell: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("VM t2: doorbell 7: no such shared region"))
        .collect();
    if bad_doorbell.is_empty() || bad_doorbell.len() > 40 {
        problems.push(format!(
            "{} lines about t2's invalid doorbells: want 1-40 (rate-limited)",
            bad_doorbell.len()
        ));
    } else if !bad_doorbell
        .iter()
        .any(|l| l.contains("similar lines suppressed]"))
    {
        problems.push("no count of t2's suppressed invalid-doorbell lines".into());
    }
    // t2's console flood overflows its buffer (lines are made far faster
    // than the drain's 160 KB/s): whole lines are dropped and counted.
    if !text
        .lines()
        .any(|l| l.trim().starts_with("t2 | [") && l.trim().ends_with(" bytes dropped]"))
    {
        problems.push("no '[N bytes dropped]' line from t2's console flood".into());
    }
    // The others kept running while t1 was restarted.
    let fault_at = text.find("VM t1 vCPU 0 fault").unwrap_or(usize::MAX);
    for vm in ["t0", "t2"] {
        if !text[fault_at.min(text.len())..].contains(&format!("{vm} | heartbeat")) {
            problems.push(format!("{vm}: no heartbeat after t1's fault"));
        }
    }
    assert!(
        problems.is_empty(),
        "problems:\n  {}\noutput:\n{text}",
        problems.join("\n  ")
    );
}
