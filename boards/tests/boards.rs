//! The checked-in board files pass, generate deterministic Rust, and the
//! `check-board` tool reports as documented.

use std::path::{Path, PathBuf};
use std::process::Command;

fn path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(file)
}

#[test]
fn real_board_files_pass() {
    for f in ["qemu-virt.toml", "test-partition.toml"] {
        if let Err(e) = tessera_boards::load(&path(f)) {
            panic!("{e}");
        }
    }
}

#[test]
fn qemu_virt_places_the_cockpit_after_the_hypervisor() {
    let plan = tessera_boards::load(&path("qemu-virt.toml"))
        .unwrap()
        .plan();
    let placed: Vec<(&str, u64, u64)> = plan
        .vms
        .iter()
        .map(|v| (v.name, v.memory[0].pa, v.memory[0].size))
        .chain(plan.shared.iter().map(|s| (s.name, s.pa, s.size)))
        .collect();
    assert_eq!(
        placed,
        [
            ("cluster", 0x4400_0000, 64 << 20),
            ("ivi", 0x4800_0000, 512 << 20),
            ("gpu", 0x6800_0000, 768 << 20),
            ("gpu-cluster", 0x9800_0000, 16 << 20),
            ("gpu-ivi", 0x9900_0000, 64 << 20),
        ]
    );
}

#[test]
fn generate_writes_the_emitted_source_deterministically() {
    let dir = std::env::temp_dir().join(format!("tessera-boards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("plan.rs");
    tessera_boards::generate(&path("qemu-virt.toml"), &out).unwrap();
    let first = std::fs::read_to_string(&out).unwrap();
    let board = tessera_boards::load(&path("qemu-virt.toml")).unwrap();
    assert_eq!(first, tessera_boards::emit(&board));
    assert!(first.contains("pub static PLAN: ::tessera_boards::Plan = {"));
    assert!(first.contains("name: \"gpu-ivi\","));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn generate_reports_missing_file() {
    let e = tessera_boards::generate(Path::new("no/such.toml"), Path::new("unused.rs"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("no/such.toml: cannot read: "), "{e}");
}

#[test]
fn check_board_prints_summary_or_errors() {
    let exe = env!("CARGO_BIN_EXE_check-board");
    let ok = Command::new(exe)
        .arg(path("qemu-virt.toml"))
        .output()
        .unwrap();
    assert!(ok.status.success());
    let out = String::from_utf8(ok.stdout).unwrap();
    assert!(
        out.contains("memory ipa 0x40000000..0x44000000 -> pa 0x44000000..0x48000000 (64 MiB)"),
        "{out}"
    );

    let dir = std::env::temp_dir().join(format!("tessera-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    let text = std::fs::read_to_string(path("test-partition.toml"))
        .unwrap()
        .replace("cores = [1]", "cores = [0]");
    std::fs::write(&bad, text).unwrap();
    let fail = Command::new(exe).arg(&bad).output().unwrap();
    assert_eq!(fail.status.code(), Some(1));
    let err = String::from_utf8(fail.stderr).unwrap();
    assert!(
        err.contains("bad.toml: vm \"t1\": core 0 is already in vm \"t0\""),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
