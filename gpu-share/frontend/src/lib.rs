//! gpu-share front-end: the client side of a connection, usable from a
//! `no_std` guest (with `alloc`) and from the Linux C ABI library.
//!
//! Calls are encoded into the command ring as they come; the server is woken
//! only when the client must wait (a call that returns data), when a batch
//! grows large, or on flush and swap. Object names are chosen here, so
//! `glGen*` and `glCreate*` never wait. State the client can know (pixel
//! store alignment, buffer bindings, client-side vertex arrays, limits once
//! queried, strings) is answered from a shadow copy.
#![no_std]

extern crate alloc;

pub mod client;
pub mod gl;
pub mod shadow;

pub use client::{Client, ClientError};
pub use gpu_codec as codec;
