//! The test guest run natively on QEMU virt (EL1 entry, no hypervisor, QEMU's
//! own PSCI over HVC): every check that applies there must pass. This keeps
//! the guest itself honest before it is used to judge the hypervisor.
//!
//! Needs `cargo xtask guest` first (the image goes to
//! `$TESSERA_IMAGES/guests/test-guest.bin`).

use qemu_virt::{Boot, Run};
use std::path::PathBuf;
use tessera_tests::{boot_until, expect_all};

fn guest_image() -> PathBuf {
    let dir = std::env::var_os("TESSERA_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/images"));
    let image = dir.join("guests/test-guest.bin");
    assert!(
        image.exists(),
        "no {}: run `cargo xtask guest` first",
        image.display()
    );
    image
}

#[test]
fn native_checks_pass() {
    let image = guest_image();
    let work = image.parent().unwrap().join("test-runs/native");
    let mut r = Run::new(Boot::Direct, &image, &work);
    r.virtualization = false;
    r.smp = 2;
    r.memory = "256M".into();
    let out = boot_until(&r, "summary:");
    expect_all(
        &out,
        &[
            "test-guest: VM native boot 0, 2 vCPU(s)",
            "check memory: pass",
            "check timer: pass",
            "check fp-state: pass",
            "bench vtimer-latency: mean ",
            "check psci: pass",
            "check sgi: pass",
            "check lr-overflow: pass",
            "summary: 6 passed, 0 failed",
        ],
    );
    assert!(!out.output.contains("FAIL"), "{}", out.output);
    // Natively there is no hypervisor to ping.
    assert!(
        !out.output.contains("bench hvc-roundtrip"),
        "{}",
        out.output
    );
}
