//! The physical devices Tessera owns: the GICv3 (distributor,
//! redistributors, CPU interface), the PL011 and the console built on it,
//! with the console's per-source buffers and the rate limiter for log lines
//! guests can trigger.

#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod gicv3;
pub mod outbox;
#[cfg(target_os = "none")]
pub mod pl011;
pub mod ratelimit;
pub mod smmuv3;
