//! The `[cockpit]` section: what the GPU service VM's compositor shows.
//! Only the compositor reads it (through this crate, on the host or in the
//! service VM); the hypervisor's tables do not carry it.

use crate::error::{Errors, Sink};
use crate::parse::Board;
use serde::Deserialize;
use std::prelude::rust_2021::*;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CockpitCfg {
    pub output: OutputCfg,
    /// A client that presented nothing for this long gets the "no signal"
    /// tile instead of its last frame.
    pub no_signal_ms: u64,
    #[serde(rename = "area")]
    pub areas: Vec<AreaCfg>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputCfg {
    pub width: u32,
    pub height: u32,
}

/// Where one client's frames go: the client is whoever talks gpu-share on
/// the shared region `shared`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaCfg {
    pub shared: String,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// The cluster's session: served first (gpu-share's cluster priority).
    #[serde(default)]
    pub cluster: bool,
}

impl AreaCfg {
    fn overlaps(&self, o: &AreaCfg) -> bool {
        let (ax, ay) = (self.x as u64, self.y as u64);
        let (bx, by) = (o.x as u64, o.y as u64);
        ax < bx + o.width as u64
            && bx < ax + self.width as u64
            && ay < by + o.height as u64
            && by < ay + self.height as u64
    }
}

pub(crate) fn check(board: &Board, errors: &mut Errors) {
    let Some(c) = &board.cockpit else { return };
    let mut s = Sink {
        file: &board.file,
        errors,
    };
    let (w, h) = (c.output.width, c.output.height);
    if w == 0 || h == 0 || w > 8192 || h > 8192 {
        s.err(
            "cockpit.output",
            format!("{w}x{h}: each side must be 1 to 8192"),
        );
    }
    if c.no_signal_ms == 0 {
        s.err("cockpit", "no_signal_ms must be more than 0");
    }
    if c.areas.iter().filter(|a| a.cluster).count() > 1 {
        s.err("cockpit", "at most one area is the cluster's");
    }
    for (i, a) in c.areas.iter().enumerate() {
        let entry = format!("cockpit.area[{i}] ({})", a.shared);
        match board.shared.iter().find(|r| r.name == a.shared) {
            None => s.err(&entry, "no shared region of that name"),
            Some(r) => {
                let gpu = board.owners.gpu.as_deref();
                if gpu.is_none_or(|g| !r.peers.iter().any(|p| p.vm == g)) {
                    s.err(&entry, "the GPU owner is not a peer of this region");
                }
            }
        }
        if a.width == 0
            || a.height == 0
            || a.x as u64 + a.width as u64 > w as u64
            || a.y as u64 + a.height as u64 > h as u64
        {
            s.err(
                &entry,
                format!(
                    "{}x{} at ({}, {}) is not inside the {w}x{h} output",
                    a.width, a.height, a.x, a.y
                ),
            );
        }
        for (j, b) in c.areas.iter().enumerate().skip(i + 1) {
            if a.overlaps(b) {
                s.err(&entry, format!("overlaps cockpit.area[{j}] ({})", b.shared));
            }
            if a.shared == b.shared {
                s.err(&entry, format!("region also shown by cockpit.area[{j}]"));
            }
        }
    }
}
