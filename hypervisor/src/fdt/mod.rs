//! Device trees, all portable: checking and reading the firmware's DTB, a
//! `no_std` writer, and each VM's guest DTB built with it.

pub mod firmware;
pub mod guest;
pub mod writer;
