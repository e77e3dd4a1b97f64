//! Tessera's EL2 image. Built for `aarch64-unknown-none` by `cargo xtask build`;
//! on the host this binary only explains that. Everything, the entry point
//! included, lives in the library (`lib.rs`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use tessera_hv as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "tessera is an EL2 image for aarch64-unknown-none: build it with `cargo xtask build`"
    );
    std::process::exit(2);
}
