//! The cockpit compositor: each client's newest presented frame, placed
//! unscaled in its area of one output by the board file's `[cockpit]`
//! layout. A client with no frame, or none for `no_signal_ms`, gets the
//! "no signal" tile, never its last frame frozen.

use crate::frames::Frames;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shared region name to the id of the session now served on it.
pub type Shown = Arc<Mutex<HashMap<String, u64>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    pub shared: String,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub cluster: bool,
}

#[derive(Debug, Clone)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub no_signal: Duration,
    pub areas: Vec<Area>,
}

impl Layout {
    /// The `[cockpit]` section of a board file, checked by the boards crate.
    pub fn from_board(path: &Path) -> Result<Layout, String> {
        let board = tessera_boards::load(path).map_err(|e| e.to_string())?;
        let c = board
            .cockpit
            .ok_or_else(|| format!("{}: no [cockpit] section", path.display()))?;
        Ok(Layout {
            width: c.output.width,
            height: c.output.height,
            no_signal: Duration::from_millis(c.no_signal_ms),
            areas: c
                .areas
                .into_iter()
                .map(|a| Area {
                    shared: a.shared,
                    x: a.x,
                    y: a.y,
                    width: a.width,
                    height: a.height,
                    cluster: a.cluster,
                })
                .collect(),
        })
    }
}

/// The "no signal" tile at (x, y) of an area: magenta diagonal stripes on
/// dark grey, which no frozen frame looks like.
pub fn no_signal(x: u32, y: u32) -> [u8; 4] {
    if ((x + y) / 16).is_multiple_of(4) {
        [255, 0, 255, 255]
    } else {
        [40, 40, 40, 255]
    }
}

/// What one area showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Showing {
    /// Frame number `seq` of session `session`.
    Frame {
        session: u64,
        seq: u64,
    },
    NoSignal,
}

pub struct Compositor {
    pub layout: Layout,
    frames: Frames,
    shown: Shown,
}

impl Compositor {
    pub fn new(layout: Layout, frames: Frames, shown: Shown) -> Self {
        Compositor {
            layout,
            frames,
            shown,
        }
    }

    /// One output picture, RGBA, top row first, and what each area shows.
    pub fn compose(&self) -> (Vec<u8>, Vec<Showing>) {
        let (w, h) = (self.layout.width as usize, self.layout.height as usize);
        let mut out = vec![0u8; w * h * 4];
        for px in out.chunks_exact_mut(4) {
            px[3] = 255;
        }
        let mut showing = Vec::new();
        for a in &self.layout.areas {
            let session = self
                .shown
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&a.shared)
                .copied();
            let frame = session
                .and_then(|s| self.frames.get_with_age(s))
                .filter(|(_, age)| *age <= self.layout.no_signal);
            for y in 0..a.height {
                let row = (a.y + y) as usize * w;
                for x in 0..a.width {
                    let o = (row + (a.x + x) as usize) * 4;
                    let px = match &frame {
                        Some((f, _)) if x < f.width && y < f.height => {
                            // Frames come bottom row first, as GL reads them.
                            let i = (((f.height - 1 - y) * f.width + x) * 4) as usize;
                            f.rgba
                                .get(i..i + 4)
                                .and_then(|p| p.try_into().ok())
                                .unwrap_or([0, 0, 0, 255])
                        }
                        Some(_) => [0, 0, 0, 255],
                        None => no_signal(x, y),
                    };
                    out[o..o + 4].copy_from_slice(&px);
                }
            }
            showing.push(match (session, frame) {
                (Some(session), Some((f, _))) => Showing::Frame {
                    session,
                    seq: f.seq,
                },
                _ => Showing::NoSignal,
            });
        }
        (out, showing)
    }
}

/// Where composed pictures go.
pub trait Output {
    /// Shows `rgba` (`width`x`height`, top row first).
    fn show(&mut self, rgba: &[u8], width: u32, height: u32) -> std::io::Result<()>;
}

/// Screenshots: the newest picture as `DIR/screen.png`, replaced whole
/// (written aside, then renamed) so a reader never sees half a file.
pub struct PngSink {
    pub dir: PathBuf,
    pub written: u64,
}

impl Output for PngSink {
    fn show(&mut self, rgba: &[u8], width: u32, height: u32) -> std::io::Result<()> {
        // The PNG writer takes GL's bottom-first order.
        let row = width as usize * 4;
        let flipped: Vec<u8> = rgba.chunks_exact(row).rev().flatten().copied().collect();
        let png = crate::png::encode_rgba_flipped(width, height, &flipped);
        let tmp = self.dir.join(".screen.png.new");
        std::fs::write(&tmp, png)?;
        std::fs::rename(&tmp, self.dir.join("screen.png"))?;
        self.written += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::Frame;

    fn layout() -> Layout {
        let area = |shared: &str, x| Area {
            shared: shared.into(),
            x,
            y: 0,
            width: 4,
            height: 2,
            cluster: false,
        };
        Layout {
            width: 8,
            height: 2,
            no_signal: Duration::from_millis(100),
            areas: vec![area("a", 0), area("b", 4)],
        }
    }

    #[test]
    fn frames_land_in_their_area_upright_and_silence_shows_no_signal() {
        let frames = Frames::default();
        let shown = Shown::default();
        shown.lock().unwrap().insert("a".into(), 7);
        // 2x2 frame, bottom row first: bottom = 1,2; top = 3,4.
        let px = |v: u8| [v, v, v, 255];
        let rgba = [px(1), px(2), px(3), px(4)].concat();
        frames.put(
            7,
            Frame {
                width: 2,
                height: 2,
                rgba,
                seq: 0,
            },
        );
        let c = Compositor::new(layout(), frames, shown);
        let (out, showing) = c.compose();
        let at = |x: usize, y: usize| out[(y * 8 + x) * 4];
        assert_eq!([at(0, 0), at(1, 0), at(0, 1), at(1, 1)], [3, 4, 1, 2]);
        assert_eq!(at(2, 0), 0, "outside the frame, inside the area: black");
        assert_eq!(&out[(4 * 4)..(4 * 4 + 4)], &no_signal(0, 0));
        assert_eq!(
            showing,
            [Showing::Frame { session: 7, seq: 1 }, Showing::NoSignal]
        );
        std::thread::sleep(Duration::from_millis(150));
        let (out, showing) = c.compose();
        assert_eq!(
            showing[0],
            Showing::NoSignal,
            "a silent client is not frozen"
        );
        assert_eq!(&out[..4], &no_signal(0, 0));
    }
}
