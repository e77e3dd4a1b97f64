//! Deterministic physical placement: every VM memory region and shared
//! region without an explicit `phys` is carved out of RAM, first fit from the
//! lowest address, 2 MiB aligned (so stage-2 can use block mappings), in
//! file order: all VM memory (VM by VM), then the shared regions. The
//! hypervisor's range, the staging area and explicit `phys` regions are
//! taken out first.

use std::prelude::rust_2021::*;

use crate::check::fmt_range;
use crate::error::{Errors, Sink};
use crate::model::Range;
use crate::parse::Board;

pub const BLOCK: u64 = 2 << 20;

/// Free physical space as sorted, disjoint `[start, end)` pairs.
struct Free(Vec<(u64, u64)>);

impl Free {
    fn take(&mut self, r: Range) {
        let (s, e) = (r.base, r.end());
        self.0 = self
            .0
            .iter()
            .flat_map(|&(a, b)| [(a, b.min(s)), (a.max(e), b)])
            .filter(|(a, b)| a < b)
            .collect();
    }

    fn alloc(&mut self, size: u64) -> Option<u64> {
        let base = self.0.iter().find_map(|&(a, b)| {
            let base = a.checked_next_multiple_of(BLOCK)?;
            (base.checked_add(size)? <= b).then_some(base)
        })?;
        self.take(Range::new(base, size));
        Some(base)
    }
}

pub fn assign(board: &mut Board, errors: &mut Errors) {
    let p = &board.platform;
    let mut ram: Vec<(u64, u64)> = p
        .ram
        .iter()
        .map(|r| (r.base, r.base.saturating_add(r.size.0)))
        .collect();
    ram.sort_unstable();
    let mut free = Free(ram);
    free.take(Range::new(p.hypervisor.base, p.hypervisor.size.0));
    if let Some(st) = &p.staging {
        free.take(Range::new(st.base, st.size.0));
    }
    let explicit = board
        .vms
        .iter()
        .flat_map(|v| v.memory.iter().filter_map(|m| Some((m.phys?, m.size.0))))
        .chain(
            board
                .shared
                .iter()
                .filter_map(|s| Some((s.phys?, s.size.0))),
        );
    for (base, size) in explicit {
        free.take(Range::new(base, size));
    }

    let mut s = Sink {
        file: &board.file,
        errors,
    };
    // Reports a region that does not fit, with what is left, so the fix
    // (smaller regions or an explicit `phys`) is obvious.
    let mut place = |free: &mut Free, entry: &str, size: u64| {
        let pa = free.alloc(size);
        if pa.is_none() {
            let left: Vec<_> = free
                .0
                .iter()
                .map(|&(a, b)| fmt_range(&Range::new(a, b - a)))
                .collect();
            s.err(
                entry,
                format!(
                    "no free 2 MiB-aligned RAM for {size:#x} bytes (free: {})",
                    if left.is_empty() {
                        "none".into()
                    } else {
                        left.join(", ")
                    }
                ),
            );
        }
        pa
    };
    for vm in &mut board.vms {
        for (j, m) in vm.memory.iter_mut().enumerate() {
            if m.phys.is_none() {
                m.phys = place(
                    &mut free,
                    &format!("vm \"{}\" memory[{j}]", vm.name),
                    m.size.0,
                );
            }
        }
    }
    for sh in board.shared.iter_mut().filter(|s| s.phys.is_none()) {
        sh.phys = place(&mut free, &format!("shared \"{}\"", sh.name), sh.size.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_list_carves_and_aligns() {
        let mut f = Free(vec![(0x1000, 0x80_0000)]);
        f.take(Range::new(0x20_0000, 0x1000));
        // 0x200000 is taken by one page, so the next block starts at 4 MiB.
        assert_eq!(f.alloc(0x20_0000), Some(0x40_0000));
        assert_eq!(f.alloc(0x20_0000), Some(0x60_0000));
        assert_eq!(f.alloc(0x20_0000), None);
        assert_eq!(f.0, vec![(0x1000, 0x20_0000), (0x20_1000, 0x40_0000)]);
    }
}
