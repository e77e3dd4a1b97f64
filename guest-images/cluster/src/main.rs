//! The cockpit's cluster VM (DESIGN.md section 1, core 0): a bare-metal
//! image that finds its shared region `gpu-cluster` in its DTB, connects
//! to gpu-share's server in the GPU service VM over it (`gpu-xvm`), and
//! draws `cockpit-cluster`'s frames every 33 ms by the virtual counter,
//! connecting again whenever the server restarts. Built for
//! `aarch64-unknown-none`; the host build is an empty stub.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod bell;
#[cfg(target_os = "none")]
mod guest;
#[cfg(target_os = "none")]
mod sleep;
