//! The physical devices Tessera owns: the GICv3 (distributor,
//! redistributors, CPU interface), the PL011 and the console built on it.

pub mod console;
pub mod gicv3;
pub mod pl011;
