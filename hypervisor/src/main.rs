//! Tessera's EL2 image. Built for `aarch64-unknown-none` by `cargo xtask build`;
//! on the host this binary only explains that.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod crash;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod irq;
#[cfg(target_os = "none")]
mod pl011;
#[cfg(target_os = "none")]
mod vcpu;
#[cfg(target_os = "none")]
mod vm;
#[cfg(target_os = "none")]
mod vuart;

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "tessera is an EL2 image for aarch64-unknown-none: build it with `cargo xtask build`"
    );
    std::process::exit(2);
}
