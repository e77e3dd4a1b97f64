//! Implementation-defined registers (op0 3, CRn 11 or 15; HCR_EL2.TIDCP):
//! they control the core's microarchitecture (prefetchers, errata
//! workarounds, power), which a guest must not change under the others'
//! feet. The guest sees them as absent: an Undefined Instruction exception.

use super::Outcome;

pub fn access() -> Outcome {
    Outcome::Undefined
}
