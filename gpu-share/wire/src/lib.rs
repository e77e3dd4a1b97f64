//! gpu-share wire protocol.
//!
//! One shared-memory region per client holds a fixed header, a command ring
//! (client to server), a reply ring (server to client) and a bulk heap for
//! large payloads. Everything here is `no_std` and allocation free so that the
//! same code runs in a bare-metal guest, a Linux guest and the server.
//!
//! Neither side trusts the other: every index read from shared memory is
//! checked before it is used, and a bad value is reported as an error.
#![no_std]

pub mod doorbell;
pub mod header;
pub mod heap;
pub mod ring;
pub mod slot;

pub use doorbell::{Doorbell, SpinDoorbell, Wait};
pub use header::{Layout, Region, RegionError, MAGIC, VERSION};
pub use heap::{HeapDesc, HeapError, HeapReader, HeapWriter};
pub use ring::{Consumer, Producer, Record, RingError};
pub use slot::{ReplySlot, SlotReply, RING_BYTES};
