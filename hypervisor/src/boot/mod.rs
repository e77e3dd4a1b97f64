//! The top of the tree: the boot core's sequence from entry to "boot
//! complete", the other cores' start, the heap, and what happens when EL2
//! itself faults or panics.

/// Portable: the boot options on the command line.
pub mod args;

#[cfg(target_os = "none")]
mod crash;
#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
mod sequence;
