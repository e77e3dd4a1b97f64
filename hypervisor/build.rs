//! Build-time inputs of the EL2 image:
//! - the board file (`TESSERA_BOARD`, default `boards/qemu-virt.toml`), checked
//!   and turned into static tables (`plan.rs`) by `tessera-boards`;
//! - the guest images the plan names, embedded from `TESSERA_GUEST_IMAGES`
//!   (default `target/images/guests/`); a missing one is reported at boot.
//! - the linker script, for the EL2 binary.
use std::path::{Path, PathBuf};

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("..");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let script = root.join("linker/hypervisor.ld");
    println!("cargo::rerun-if-changed={}", script.display());
    if target_os == "none" {
        println!("cargo::rustc-link-arg-bins=-T{}", script.display());
    }

    println!("cargo::rerun-if-env-changed=TESSERA_BOARD");
    println!("cargo::rerun-if-env-changed=TESSERA_GUEST_IMAGES");
    let board = std::env::var_os("TESSERA_BOARD")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("boards/qemu-virt.toml"));
    println!("cargo::rerun-if-changed={}", board.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    if let Err(errors) = tessera_boards::generate(&board, &out.join("plan.rs")) {
        eprintln!("{errors}");
        std::process::exit(1);
    }
    let loaded = tessera_boards::load(&board).expect("just generated");
    let plan = loaded.plan();
    let guest_dir = std::env::var_os("TESSERA_GUEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/images/guests"));
    let mut names: Vec<&str> = plan
        .vms
        .iter()
        .flat_map(|v| v.images.iter().map(|i| i.name))
        .collect();
    names.sort();
    names.dedup();
    let mut src = String::from("/// Guest images embedded at build time, by the name the board file uses.\npub static GUEST_IMAGES: &[(&str, &[u8])] = &[\n");
    for name in names {
        let path = guest_dir.join(name);
        println!("cargo::rerun-if-changed={}", path.display());
        if path.exists() {
            src.push_str(&format!(
                "    ({name:?}, include_bytes!({:?})),\n",
                path.display().to_string()
            ));
        } else {
            println!(
                "cargo::warning=guest image {name} not found in {}; its VM will not start",
                guest_dir.display()
            );
        }
    }
    src.push_str("];\n");
    std::fs::write(out.join("images.rs"), src).unwrap();
}
