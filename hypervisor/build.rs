//! Links the EL2 image with the project's linker script; host builds of the
//! library need nothing.
fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../linker/hypervisor.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    if target_os == "none" {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
