//! gpu-share back-end: runs each client's calls on the machine's real EGL and
//! GLES (loaded at run time, so nothing links against a GL library).
//!
//! One thread per client session. Every record is decoded and validated
//! before use; a bad record ends that session with a logged reason and a
//! reason code in the region header, and the server carries on.

extern crate alloc;

pub mod compositor;
pub mod driver;
pub mod exec;
pub mod frames;
pub mod hooks;
pub mod kms;
pub mod limits;
pub mod names;
pub mod png;
pub mod profile;
pub mod sched;
pub mod serve;
pub mod session;
pub mod xvm;

pub use session::{Session, SessionError};
