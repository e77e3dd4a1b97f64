//! The compositor's display output in the service VM: DRM/KMS with one
//! dumb buffer (no GPU needed to scan out), the first connected
//! connector's preferred mode, and a copy of each composed picture into
//! the buffer (top-left, cut to the mode). Legacy mode setting: the
//! display is the service VM's alone.

use crate::compositor::Output;
use drm::buffer::DrmFourcc;
use drm::control::{connector, dumbbuffer::DumbBuffer, framebuffer, Device as Control, Mode};
use std::os::fd::{AsFd, BorrowedFd};

struct Card(std::fs::File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl drm::Device for Card {}
impl Control for Card {}

pub struct KmsOutput {
    card: Card,
    buffer: DumbBuffer,
    fb: framebuffer::Handle,
    mode: Mode,
}

impl KmsOutput {
    /// Takes over the display of `path` (e.g. `/dev/dri/card0`).
    pub fn open(path: &str) -> Result<KmsOutput, String> {
        let err = |what: &'static str| move |e: std::io::Error| format!("{path}: {what}: {e}");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(err("open"))?;
        let card = Card(file);
        let res = card.resource_handles().map_err(err("resources"))?;
        let con = res
            .connectors()
            .iter()
            .filter_map(|h| card.get_connector(*h, true).ok())
            .find(|c| c.state() == connector::State::Connected && !c.modes().is_empty())
            .ok_or_else(|| format!("{path}: no connected display"))?;
        let mode = con.modes()[0];
        let crtc = *res
            .crtcs()
            .first()
            .ok_or_else(|| format!("{path}: no CRTC"))?;
        let (w, h) = mode.size();
        let buffer = card
            .create_dumb_buffer((w as u32, h as u32), DrmFourcc::Xrgb8888, 32)
            .map_err(err("dumb buffer"))?;
        let fb = card
            .add_framebuffer(&buffer, 24, 32)
            .map_err(err("framebuffer"))?;
        card.set_crtc(crtc, Some(fb), (0, 0), &[con.handle()], Some(mode))
            .map_err(err("mode set"))?;
        eprintln!("gpu-server: display {path}: {w}x{h}");
        Ok(KmsOutput {
            card,
            buffer,
            fb,
            mode,
        })
    }
}

/// Copies an RGBA picture (`w`x`h`, top row first) into an XRGB8888
/// buffer of `dw`x`dh` pixels, `pitch` bytes a row: top-left, cut to the
/// buffer; the rest stays as it was.
pub fn to_xrgb(rgba: &[u8], w: u32, h: u32, dst: &mut [u8], pitch: usize, dw: u32, dh: u32) {
    for y in 0..h.min(dh) as usize {
        let src = &rgba[y * w as usize * 4..][..w.min(dw) as usize * 4];
        let Some(row) = dst.get_mut(y * pitch..y * pitch + w.min(dw) as usize * 4) else {
            return;
        };
        for (d, s) in row.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
            // Little-endian XRGB8888: bytes B, G, R, X.
            d.copy_from_slice(&[s[2], s[1], s[0], 0xFF]);
        }
    }
}

impl Output for KmsOutput {
    fn show(&mut self, rgba: &[u8], width: u32, height: u32) -> std::io::Result<()> {
        let (dw, dh) = self.mode.size();
        let pitch = drm::buffer::Buffer::pitch(&self.buffer) as usize;
        let mut map = self.card.map_dumb_buffer(&mut self.buffer)?;
        to_xrgb(
            rgba,
            width,
            height,
            map.as_mut(),
            pitch,
            dw as u32,
            dh as u32,
        );
        drop(map);
        // Drivers that scan out from a copy (virtio-gpu) need to be told;
        // the others answer "not supported" (ENOSYS), which is fine. The
        // clip is not optional: an empty list arrives as a count of 0 with
        // a non-null pointer, which the kernel refuses (EINVAL), and the
        // display never changed after the mode set.
        let clip = dirty_clip(width, height, dw as u32, dh as u32);
        match self.card.dirty_framebuffer(self.fb, &[clip]) {
            Err(e) if e.raw_os_error() != Some(libc::ENOSYS) => Err(e),
            _ => Ok(()),
        }
    }
}

/// The part of the buffer [`to_xrgb`] wrote: the picture cut to the
/// buffer.
pub fn dirty_clip(w: u32, h: u32, dw: u32, dh: u32) -> drm::control::ClipRect {
    let x2 = w.min(dw).min(u16::MAX as u32) as u16;
    let y2 = h.min(dh).min(u16::MAX as u32) as u16;
    drm::control::ClipRect::new(0, 0, x2, y2)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_dirty_clip_is_the_picture_cut_to_the_buffer() {
        let c = super::dirty_clip(512, 256, 1280, 200);
        assert_eq!((c.x1(), c.y1(), c.x2(), c.y2()), (0, 0, 512, 200));
    }

    #[test]
    fn pixels_become_xrgb_and_are_cut_to_the_buffer() {
        // 3x2 picture into a 2x1 buffer with a padded pitch.
        let px = |v: u8| [v, v + 1, v + 2, 255];
        let rgba: Vec<u8> = [px(0), px(10), px(20), px(30), px(40), px(50)].concat();
        let mut dst = vec![7u8; 12];
        super::to_xrgb(&rgba, 3, 2, &mut dst, 12, 2, 1);
        assert_eq!(dst, [2, 1, 0, 255, 12, 11, 10, 255, 7, 7, 7, 7]);
    }
}
