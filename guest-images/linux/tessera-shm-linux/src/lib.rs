//! Tessera shared regions from Linux user space (docs/guest-abi.md,
//! "Linux user space"): find a region by name, map it, ring the other
//! peers, wait for their doorbells, see their restarts.
//!
//! ```no_run
//! use tessera_shm_linux::{header::RestartWatch, Region};
//! let r = Region::open("ivi-gpu")?;
//! let mut watch = RestartWatch::new(r.peer_index(), r.header()?);
//! r.ring()?;
//! if r.wait(Some(std::time::Duration::from_secs(1)))?.is_some() {
//!     if let Some(restart) = watch.check(r.header()?) {
//!         println!("peers {:?} restarted: start over", restart.peers);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `header` is plain logic (host-tested); `region` talks to the
//! `tessera_shm` kernel module; `ring` and `pingpong` are the protocol
//! shared with bare-metal guests (`tessera-shm-proto`, no_std).

pub mod header;
#[cfg(target_os = "linux")]
pub mod region;
pub use tessera_shm_proto::{pingpong, ring};

#[cfg(target_os = "linux")]
pub use region::{list, Region};
