//! Links the image at the cluster VM's image IPA (boards/qemu-virt.toml);
//! host builds compile the empty stub.
fn main() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("image.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
