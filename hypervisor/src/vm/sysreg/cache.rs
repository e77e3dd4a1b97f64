//! Data-cache maintenance by set/way (DC ISW, CSW, CISW; HCR_EL2.TSW).
//! Set/way operations act on whole cache levels, the shared ones included:
//! a guest's DC ISW could discard another VM's dirty lines. They are
//! trapped and completed as no-ops. A guest loses nothing by that: it
//! starts with its RAM cleaned and invalidated to the point of coherency,
//! and the architecture makes by-address maintenance (which guests keep)
//! the only way to reach coherency with caches on.

use super::Outcome;

pub fn set_way() -> Outcome {
    Outcome::Done
}
