//! The newest frame each client presented with eglSwapBuffers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    /// RGBA, bottom row first (as glReadPixels returns it).
    pub rgba: Vec<u8>,
    pub seq: u64,
}

/// Each client's newest frame and when it came (the compositor's "no
/// signal" timeout).
#[derive(Clone, Default)]
pub struct Frames(Arc<Mutex<HashMap<u64, (Frame, Instant)>>>);

impl Frames {
    pub fn put(&self, client: u64, mut f: Frame) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f.seq = m.get(&client).map_or(1, |o| o.0.seq + 1);
        m.insert(client, (f, Instant::now()));
    }
    /// Forgets a client's frame (its session ended).
    pub fn remove(&self, client: u64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&client);
    }
    /// Number of clients with a frame kept.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, client: u64) -> Option<Frame> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client)
            .map(|f| f.0.clone())
    }
    /// The newest frame of `client` and how long ago it came.
    pub fn get_with_age(&self, client: u64) -> Option<(Frame, Duration)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client)
            .map(|(f, at)| (f.clone(), at.elapsed()))
    }
    /// Writes the newest frame of `client` as `dir/client-N.png`.
    pub fn write_png(
        &self,
        client: u64,
        dir: &std::path::Path,
    ) -> std::io::Result<Option<std::path::PathBuf>> {
        let Some(f) = self.get(client) else {
            return Ok(None);
        };
        let path = dir.join(format!("client-{client}.png"));
        std::fs::write(
            &path,
            crate::png::encode_rgba_flipped(f.width, f.height, &f.rgba),
        )?;
        Ok(Some(path))
    }
}
