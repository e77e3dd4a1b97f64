// Generates the plans the way the hypervisor's build.rs does, so that the
// emitted source is compiled (against the no_std crate) on every test run.
use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let boards = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (file, module) in [
        ("qemu-virt.toml", "qemu_virt.rs"),
        ("test-partition.toml", "test_partition.rs"),
    ] {
        let board = boards.join(file);
        println!("cargo::rerun-if-changed={}", board.display());
        if let Err(errors) = tessera_boards::generate(&board, &out.join(module)) {
            eprintln!("{errors}");
            std::process::exit(1);
        }
    }
}
