//! The dma tier (`boards/test-dma.toml`): d0 drives two QEMU `edu` devices
//! behind the SMMUv3, one listed for it in the board file and one listed
//! for no VM; d1 keeps a canary where d0's stray DMA aims. The guests check
//! their own memory; this test checks Tessera's log names each blocked DMA.

use qemu_virt::Boot;
use std::time::Duration;
use tessera_tests::run_image;

const CHECKS: &[(&str, &str)] = &[
    ("d0", "dma-roundtrip"),
    ("d0", "dma-outside"),
    ("d0", "dma-unlisted"),
    ("d0", "dma-restart"),
    ("d0", "dma-after-restart"),
    ("d1", "dma-canary"),
];

fn finished(out: &str) -> bool {
    let done = |vm: &str| {
        out.lines()
            .any(|l| l.trim_start().starts_with(&format!("{vm} | done")))
    };
    done("d1") && done("d0") || out.contains("FAIL")
}

/// A run of a DMA board's image with two `edu` devices, at 00:02.0 and
/// 00:03.0. edu's DMA engine needs a mask wide enough for RAM at
/// 0x4000_0000 (its default is 28 bits); it is a conventional PCI device,
/// which QEMU's SMMUv3 translates like any other.
fn run_with_edus(image: &str, name: &str) -> qemu_virt::Run {
    let mut r = run_image(image, Boot::Direct, name);
    for slot in [2, 3] {
        r.extra_args.extend([
            "-device".to_string(),
            format!("edu,addr={slot},dma_mask=0xffffffffff"),
        ]);
    }
    r
}

#[test]
fn device_dma_stays_in_its_owners_memory() {
    let r = run_with_edus("tessera-test-dma.bin", "dma");
    let limit = Duration::from_secs(240);
    let out = r.run(limit, finished).expect("QEMU runs");
    let text = &out.output;
    assert!(!out.timed_out, "did not finish within {limit:?}:\n{text}");
    let mut problems = Vec::new();
    for (vm, check) in CHECKS {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("{vm} | check {check}:")));
        match line {
            Some(l) if l.contains(": pass") => println!("{}", l.trim()),
            Some(l) => problems.push(l.trim().to_string()),
            None => problems.push(format!("{vm} {check}: missing")),
        }
    }
    for want in [
        "SMMUv3 on: global bypass aborts",
        "VM d0: DMA of PCI 00:02.0 through the SMMU with its stage 2 (VMID 1)",
        // The stray write, named by VM, function, address and direction.
        "SMMU: VM d0, PCI 00:02.0 (stream 0x10): DMA write at 0x49000000 blocked: translation fault",
        // The function no VM owns.
        "SMMU: no VM owns PCI 00:03.0 (stream 0x18): DMA blocked: stream has no valid entry (C_BAD_STE)",
        "VM d0: SYSTEM_RESET from vCPU 0: restarting",
    ] {
        if !text.contains(want) {
            problems.push(format!("no log line {want:?}"));
        }
    }
    // A DMA faults once per 4-byte beat under QEMU: a thousand events per
    // transfer, which the log sums up per stream and fault type.
    let smmu_lines = text.lines().filter(|l| l.contains("SMMU: ")).count();
    if smmu_lines > 60 {
        problems.push(format!("{smmu_lines} SMMU fault lines: not summed up"));
    }
    if !text
        .lines()
        .any(|l| l.contains("SMMU: VM d0, PCI 00:02.0") && l.contains("more like it)"))
    {
        problems.push("no count of d0's faults like the first".into());
    }
    assert!(
        problems.is_empty(),
        "{}\n\noutput:\n{text}",
        problems.join("\n")
    );
}

/// `dma_fault = "fault"`: d0's stray DMA stops d0 (its fault policy), and
/// its check never completes.
#[test]
fn dma_fault_policy_stops_the_owner() {
    let r = run_with_edus("tessera-test-dma-contain.bin", "dma-contain");
    let stopped =
        "VM d0: its device's DMA was blocked by the SMMU (dma_fault = \"fault\"): stopping it";
    let limit = Duration::from_secs(240);
    let out = r
        .run(limit, |o| o.contains(stopped) || o.contains("FAIL"))
        .expect("QEMU runs");
    let text = &out.output;
    assert!(!out.timed_out, "no stop within {limit:?}:\n{text}");
    assert!(
        text.contains("d0 | check dma-roundtrip: pass"),
        "the owner's own DMA works first:\n{text}"
    );
    let fault = text
        .find("SMMU: VM d0, PCI 00:02.0 (stream 0x10): DMA write at 0x49000000 blocked")
        .expect("the blocked DMA is logged");
    assert!(
        text.find(stopped).unwrap() > fault,
        "stopped after the fault line:\n{text}"
    );
    assert!(
        !text.contains("d0 | check dma-outside"),
        "d0 ran on past its stray DMA:\n{text}"
    );
}
