//! *Portable*: one console source's pending output (a VM's lines, or the
//! hypervisor's log), filled by whoever produces lines without waiting for
//! the UART and emptied by the core that drains the console.
//!
//! Lines go in whole or not at all. When one does not fit it is dropped and
//! its bytes are counted; the next line that fits is preceded by a marker
//! line `[N bytes dropped]` (with the source's tag), so a reader sees where
//! output is missing and how much.

use core::fmt::Write;
use heapless::Deque;

/// Bytes of pending output per source: at 115200 baud about 0.35 s.
pub const CAPACITY: usize = 4096;

pub struct Outbox {
    bytes: Deque<u8, CAPACITY>,
    /// Bytes dropped since the last marker was queued.
    dropped: u64,
    /// Printed before `| ` on the marker line, as VM lines are tagged.
    tag: Option<&'static str>,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbox {
    pub const fn new() -> Outbox {
        Outbox {
            bytes: Deque::new(),
            dropped: 0,
            tag: None,
        }
    }

    /// The tag of this source's lines (a VM's name), for the drop marker.
    pub fn set_tag(&mut self, tag: &'static str) {
        self.tag = Some(tag);
    }

    fn free(&self) -> usize {
        CAPACITY - self.bytes.len()
    }

    fn marker(&self) -> heapless::String<64> {
        let mut m = heapless::String::new();
        let _ = match self.tag {
            Some(t) => write!(m, "{t:>8} | [{} bytes dropped]\r\n", self.dropped),
            None => write!(m, "[{} bytes dropped]\r\n", self.dropped),
        };
        m
    }

    fn put(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // Room was checked by the caller.
            let _ = self.bytes.push_back(b);
        }
    }

    /// Queues `line` (which should end in `\r\n`) whole, after the marker
    /// of earlier drops if there were any; false if it was dropped.
    pub fn push(&mut self, line: &[u8]) -> bool {
        let marker = (self.dropped > 0).then(|| self.marker());
        let need = line.len() + marker.as_ref().map_or(0, |m| m.len());
        if need > self.free() {
            self.dropped += line.len() as u64;
            return false;
        }
        if let Some(m) = marker {
            self.put(m.as_bytes());
            self.dropped = 0;
        }
        self.put(line);
        true
    }

    /// Bytes dropped and not yet reported by a marker.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// With nothing left to send, queues the marker of drops that no later
    /// line has reported (the producer may have gone quiet).
    pub fn flush_marker(&mut self) {
        if self.bytes.is_empty() && self.dropped > 0 {
            let m = self.marker();
            self.put(m.as_bytes());
            self.dropped = 0;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Copies up to `out.len()` pending bytes into `out`, stopping after
    /// the first `\n` (one line at a time), without taking them.
    pub fn peek_line(&self, out: &mut [u8]) -> usize {
        let mut n = 0;
        for &b in self.bytes.iter().take(out.len()) {
            out[n] = b;
            n += 1;
            if b == b'\n' {
                break;
            }
        }
        n
    }

    /// Takes `n` bytes that [`peek_line`](Self::peek_line) showed and that
    /// have been sent.
    pub fn consume(&mut self, n: usize) {
        for _ in 0..n {
            self.bytes.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn drain(o: &mut Outbox) -> String {
        let mut all = Vec::new();
        let mut buf = [0u8; 16];
        loop {
            let n = o.peek_line(&mut buf);
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            o.consume(n);
        }
        String::from_utf8(all).unwrap()
    }

    #[test]
    fn lines_come_out_whole_and_in_order() {
        let mut o = Outbox::new();
        assert!(o.push(b"one\r\n"));
        assert!(o.push(b"two\r\n"));
        assert_eq!(drain(&mut o), "one\r\ntwo\r\n");
        assert!(o.is_empty());
    }

    #[test]
    fn peek_stops_at_the_end_of_a_line() {
        let mut o = Outbox::new();
        o.push(b"ab\r\ncd\r\n");
        let mut buf = [0u8; 16];
        assert_eq!(o.peek_line(&mut buf), 4);
        assert_eq!(&buf[..4], b"ab\r\n");
        // Nothing is taken until consumed.
        assert_eq!(o.peek_line(&mut buf), 4);
        o.consume(2);
        assert_eq!(o.peek_line(&mut buf), 2);
    }

    #[test]
    fn a_line_that_does_not_fit_is_dropped_whole_and_counted() {
        let mut o = Outbox::new();
        o.set_tag("t2");
        let line = [b'x'; 1000];
        for _ in 0..4 {
            assert!(o.push(&line));
        }
        // 96 bytes left: a 1000-byte line does not fit, nor does a short
        // one after it (the marker must go first and does, with it).
        assert!(!o.push(&line));
        assert!(!o.push(&line));
        assert_eq!(o.dropped(), 2000);
        let out = drain(&mut o);
        assert_eq!(out.len(), 4000, "no partial line queued");
        assert!(o.push(b"after\r\n"));
        assert_eq!(
            drain(&mut o),
            "      t2 | [2000 bytes dropped]\r\nafter\r\n"
        );
        assert_eq!(o.dropped(), 0);
    }

    #[test]
    fn the_marker_is_queued_when_the_producer_goes_quiet() {
        let mut o = Outbox::new();
        assert!(o.push(&[b'y'; CAPACITY]));
        assert!(!o.push(b"lost\r\n"));
        o.flush_marker();
        assert_eq!(drain(&mut o).len(), CAPACITY, "not while bytes wait");
        o.flush_marker();
        assert_eq!(drain(&mut o), "[6 bytes dropped]\r\n");
        o.flush_marker();
        assert!(o.is_empty(), "reported once");
    }
}
