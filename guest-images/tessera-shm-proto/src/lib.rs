//! The message ring and the ping-pong exchange over a Tessera shared
//! region (docs/guest-abi.md), free of any OS: no allocation, no clock of
//! its own. The Linux library (`tessera-shm-linux`) and the bare-metal test
//! guest each give [`pingpong::Link`] their region, doorbell and clock.

#![no_std]

#[cfg(test)]
extern crate std;

pub mod pingpong;
pub mod ring;
