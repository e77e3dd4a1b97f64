//! Per-client translation of GL object names and EGL handles.

use gpu_codec::{Kind, Ns};
use std::collections::HashMap;

/// A driver name no object ever gets: unknown client names map to it so that
/// the driver reports the error the application would have seen.
pub const INVALID_NAME: u32 = 0xFFFF_FFF0;
/// A handle the driver does not know (Mesa checks handles against its lists
/// before use, so this only ever produces an EGL_BAD_* error).
pub const INVALID_HANDLE: usize = usize::MAX & !0xFFF;

#[derive(Default)]
pub struct NameMap {
    fwd: HashMap<(Ns, u32), u32>,
    rev: HashMap<(Ns, u32), u32>,
}

impl NameMap {
    pub fn get(&self, ns: Ns, client: u32) -> Option<u32> {
        if client == 0 {
            return Some(0);
        }
        self.fwd.get(&(ns, client)).copied()
    }
    pub fn insert(&mut self, ns: Ns, client: u32, real: u32) {
        if client == 0 || real == 0 {
            return;
        }
        if let Some(old) = self.fwd.insert((ns, client), real) {
            self.rev.remove(&(ns, old));
        }
        self.rev.insert((ns, real), client);
    }
    /// Forgets a deleted client name. Its reverse entry stays: an object
    /// deleted while attached elsewhere (a texture or renderbuffer of a
    /// framebuffer that is not bound, a shader of a program, the current
    /// program) lives on in the driver under its old name, and queries
    /// still report that name. The entry goes when the driver hands the
    /// name to a new object (see `insert`).
    pub fn remove(&mut self, ns: Ns, client: u32) -> Option<u32> {
        self.fwd.remove(&(ns, client))
    }
    /// Names mapped, all name spaces together.
    pub fn len(&self) -> usize {
        self.fwd.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fwd.is_empty()
    }
    /// Driver name back to the client's (0 if the client never saw it).
    pub fn reverse(&self, ns: Ns, real: u32) -> u32 {
        self.rev.get(&(ns, real)).copied().unwrap_or(0)
    }
}

/// EGL handles: the client sees small ids tagged with their kind.
#[derive(Default)]
pub struct Handles {
    real: HashMap<u64, usize>,
    ids: HashMap<(Kind, usize), u64>,
    next: u64,
}

fn tag(k: Kind) -> u64 {
    (k as u64 + 1) << 24
}

impl Handles {
    pub fn get(&self, k: Kind, id: u64) -> Option<usize> {
        if id == 0 {
            return Some(0);
        }
        if id & !0xFF_FFFF != tag(k) {
            return None;
        }
        self.real.get(&id).copied()
    }
    pub fn id(&mut self, k: Kind, real: usize) -> u64 {
        if real == 0 {
            return 0;
        }
        if let Some(id) = self.ids.get(&(k, real)) {
            return *id;
        }
        self.next += 1;
        let id = tag(k) | (self.next & 0xFF_FFFF);
        self.real.insert(id, real);
        self.ids.insert((k, real), id);
        id
    }
    pub fn forget(&mut self, k: Kind, id: u64) -> Option<usize> {
        let real = self.get(k, id).filter(|r| *r != 0)?;
        self.real.remove(&id);
        self.ids.remove(&(k, real));
        Some(real)
    }
    pub fn count(&self, k: Kind) -> usize {
        self.ids.keys().filter(|(kk, _)| *kk == k).count()
    }
    pub fn all(&self, k: Kind) -> Vec<(u64, usize)> {
        self.ids
            .iter()
            .filter(|((kk, _), _)| *kk == k)
            .map(|((_, r), id)| (*id, *r))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_names_still_reverse_until_reused() {
        let mut m = NameMap::default();
        m.insert(Ns::Renderbuffer, 5, 1);
        assert_eq!(m.remove(Ns::Renderbuffer, 5), Some(1));
        assert_eq!(m.get(Ns::Renderbuffer, 5), None);
        // Still attached somewhere: reported under the client's old name.
        assert_eq!(m.reverse(Ns::Renderbuffer, 1), 5);
        // The driver reuses its name for a new object of the client's.
        m.insert(Ns::Renderbuffer, 6, 1);
        assert_eq!(m.reverse(Ns::Renderbuffer, 1), 6);
        assert_eq!(m.reverse(Ns::Texture, 1), 0);
    }
}
