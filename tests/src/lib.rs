//! Shared pieces of the QEMU system tests: where the images are, and a run
//! with a time limit whose output is shown in full when a check fails.

use qemu_virt::{Boot, Outcome, Run};
use std::path::PathBuf;
use std::time::Duration;

/// Generous: TCG on a loaded 2-core machine is slow, and a hang must still
/// end the test with the output so far.
pub const LIMIT: Duration = Duration::from_secs(120);

pub fn images() -> PathBuf {
    let dir = std::env::var_os("TESSERA_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/images"));
    assert!(
        dir.join("tessera.bin").exists(),
        "no tessera.bin in {}: run `cargo xtask test boot` (it builds the images first)",
        dir.display()
    );
    dir
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../hypervisor/tests/data")
        .join(name)
}

/// A run of the built image, with scratch files in a directory of its own.
pub fn run(boot: Boot, test_name: &str) -> Run {
    run_image("tessera.bin", boot, test_name)
}

/// A run of another image in `target/images/` (e.g. a test board's build).
pub fn run_image(image: &str, boot: Boot, test_name: &str) -> Run {
    let dir = images();
    let mut r = Run::new(
        boot,
        &dir.join(image),
        &dir.join("test-runs").join(test_name),
    );
    r.boot_script = Some(dir.join("boot.scr"));
    r
}

/// Runs until QEMU exits or a line containing `stop_at` appears.
pub fn boot_until(r: &Run, stop_at: &str) -> Outcome {
    let out = r.run(LIMIT, |o| o.contains(stop_at)).expect("QEMU runs");
    assert!(
        !out.timed_out,
        "timed out after {:?}; output so far:\n{}",
        LIMIT, out.output
    );
    out
}

/// Asserts that every needle appears, showing the whole output if not.
#[track_caller]
pub fn expect_all(out: &Outcome, needles: &[&str]) {
    for n in needles {
        assert!(
            out.output.contains(n),
            "expected {n:?} in the output:\n{}",
            out.output
        );
    }
}
