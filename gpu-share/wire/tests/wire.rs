//! Ring, heap and header behaviour on an ordinary heap-allocated region.

use gpu_wire::{HeapDesc, HeapError, Layout, Region, RegionError, RingError};

struct Mem(Vec<u64>);
impl Mem {
    fn new(l: Layout) -> Mem {
        let mut m = Mem(vec![0u64; l.region_size() / 8]);
        unsafe { l.init(m.ptr(), m.len()).unwrap() };
        m
    }
    fn ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr() as *mut u8
    }
    fn len(&self) -> usize {
        self.0.len() * 8
    }
    fn region(&mut self) -> Region {
        unsafe { Region::new(self.ptr(), self.len()).unwrap() }
    }
}

const SMALL: Layout = Layout {
    cmd_size: 4096,
    reply_size: 4096,
    heap_size: 4096,
};

#[test]
fn header_round_trip_and_rejects() {
    let mut m = Mem::new(SMALL);
    assert_eq!(unsafe { Layout::check(m.ptr(), m.len()) }, Ok(SMALL));
    assert_eq!(
        unsafe { Layout::check(m.ptr(), 100) },
        Err(RegionError::TooSmall)
    );
    assert!(matches!(
        unsafe { Layout::check(m.ptr(), 8192) },
        Err(RegionError::SizeMismatch { .. })
    ));
    m.0[0] ^= 1; // magic
    assert!(matches!(
        unsafe { Layout::check(m.ptr(), m.len()) },
        Err(RegionError::BadMagic(_))
    ));
    m.0[0] ^= 1;
    m.0[0] += 1 << 32; // version
    assert!(matches!(
        unsafe { Layout::check(m.ptr(), m.len()) },
        Err(RegionError::BadVersion(v)) if v == gpu_wire::VERSION + 1
    ));
    m.0[0] -= 1 << 32;
    m.0[2] = 4097 | (4096u64 << 32); // cmd_size word
    assert!(unsafe { Layout::check(m.ptr(), m.len()) }.is_err());
    let bad = Layout {
        cmd_size: 3000,
        ..SMALL
    };
    assert_eq!(
        unsafe { bad.init(m.ptr(), m.len()) },
        Err(RegionError::BadSize)
    );
}

#[test]
fn ring_wraps_and_applies_back_pressure() {
    let mut m = Mem::new(SMALL);
    let r = m.region();
    let mut p = r.cmd_producer();
    let mut c = r.cmd_consumer();
    let mut out = [0u8; 4096];
    let mut sent = 0u32;
    let mut got = 0u32;
    // Many odd-sized records force pads at the end many times over.
    for round in 0..2000u32 {
        let len = (round * 37 % 300) as usize;
        let data: Vec<u8> = (0..len).map(|i| (i as u32 + round) as u8).collect();
        loop {
            match p.push(round, &[&data]) {
                Ok(()) => break,
                Err(RingError::Full) => {
                    let rec = c.pop(&mut out).unwrap().unwrap();
                    assert_eq!(rec.tag, got);
                    let l = (got * 37 % 300) as usize;
                    assert_eq!(rec.len, l);
                    assert!(out[..l]
                        .iter()
                        .enumerate()
                        .all(|(i, b)| *b == (i as u32 + got) as u8));
                    got += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        sent += 1;
    }
    while let Some(rec) = c.pop(&mut out).unwrap() {
        assert_eq!(rec.tag, got);
        got += 1;
    }
    assert_eq!(got, sent);
    assert!(p.is_drained());
    assert_eq!(p.push(1, &[&[0u8; 3000]]), Err(RingError::TooLarge));
}

#[test]
fn ring_reports_corruption() {
    let mut m = Mem::new(SMALL);
    let r = m.region();
    let mut p = r.cmd_producer();
    p.push(7, &[&[1, 2, 3]]).unwrap();
    let base = m.ptr();
    // The length and tag word of the record at `off` in the command ring.
    let len_tag = |off: usize, len: u32| unsafe {
        *(base.add(gpu_wire::header::HEADER_SIZE as usize + off + 4) as *mut u32) = len | 7 << 16
    };
    let mut c = r.cmd_consumer();
    let mut out = [0u8; 64];
    // Record length past the end of the ring.
    len_tag(0, 4000);
    assert!(matches!(c.pop(&mut out), Err(RingError::Corrupt(_))));
    // Shorter than its header.
    len_tag(0, 4);
    assert!(matches!(c.pop(&mut out), Err(RingError::Corrupt(_))));
    len_tag(0, 11);
    assert_eq!(c.pop(&mut out[..2]), Err(RingError::BufferTooSmall(3)));
    assert_eq!(c.pop(&mut out).unwrap().unwrap().len, 3);
    assert_eq!(c.pop(&mut out), Ok(None));
    // A record longer than what was published is copied out like any
    // other (it lies in the ring), and the tail it left past head is caught
    // as soon as the ring looks empty.
    p.push(7, &[&[1, 2, 3]]).unwrap();
    len_tag(16, 64);
    assert_eq!(c.pop(&mut out).unwrap().unwrap().len, 56);
    assert!(matches!(c.pop(&mut out), Err(RingError::Corrupt(_))));
    // Head far beyond the ring.
    let mut m = Mem::new(SMALL);
    let r = m.region();
    let mut c = r.cmd_consumer();
    assert_eq!(c.pop(&mut out), Ok(None));
    r.cmd_producer()
        .head_word()
        .store(1 << 20, core::sync::atomic::Ordering::Release);
    assert!(matches!(c.pop(&mut out), Err(RingError::Corrupt(_))));
}

#[test]
fn a_region_set_up_again_holds_no_records_of_the_last_session() {
    let mut m = Mem::new(SMALL);
    let mut out = [0u8; 64];
    {
        let r = m.region();
        r.cmd_producer().push(5, &[&[1, 2, 3]]).unwrap();
        r.reply_producer().push(5, &[&[1, 2, 3]]).unwrap();
    }
    // The next session on the same memory (a restarted peer).
    unsafe { SMALL.init(m.ptr(), m.len()) }.unwrap();
    let r = m.region();
    assert_eq!(r.cmd_consumer().pop(&mut out), Ok(None));
    assert_eq!(r.reply_consumer().pop(&mut out), Ok(None));
}

#[test]
fn consumer_sleeps_on_the_word_the_producer_rings() {
    let mut m = Mem::new(SMALL);
    let r = m.region();
    let mut p = r.cmd_producer();
    let mut c = r.cmd_consumer();
    let mut out = [0u8; 64];
    for i in 0..500u32 {
        let (w, v) = c.next_word();
        assert!(core::ptr::eq(w, p.waiter_word()));
        assert!(!c.ready());
        p.push(i % 7, &[&[0u8; 40][..(i % 41) as usize]]).unwrap();
        // The push changed the word the consumer would sleep on.
        assert_ne!(w.load(core::sync::atomic::Ordering::Acquire), v);
        assert!(c.ready());
        assert!(c.pop(&mut out).unwrap().is_some());
    }
}

#[test]
fn ring_ignores_stale_bytes_where_the_next_record_goes() {
    let mut m = Mem::new(SMALL);
    let r = m.region();
    let mut p = r.cmd_producer();
    let mut c = r.cmd_consumer();
    let mut out = [0u8; 4096];
    // Payloads whose words are what the stamp at their place will be one
    // lap later, so that a consumer trusting old bytes at the next
    // record's place would take them for a record.
    let size = SMALL.cmd_size;
    for round in 0..3000u32 {
        let len = (round * 29 % 200) as usize & !3;
        let head = p.head_word().load(core::sync::atomic::Ordering::Relaxed);
        let total = (8 + len as u32 + 7) & !7;
        let contig = size - (head & (size - 1));
        let pos = if total > contig { head + contig } else { head };
        let data: Vec<u8> = (0..len as u32 / 4)
            .flat_map(|i| (pos + 8 + 4 * i + size + 1).to_le_bytes())
            .collect();
        p.push(round % 1000, &[&data]).unwrap();
        let rec = c.pop(&mut out).unwrap().unwrap();
        assert_eq!((rec.tag, rec.len), (round % 1000, len));
        assert_eq!(c.pop(&mut out), Ok(None), "round {round}");
        assert!(!c.ready());
    }
}

#[test]
fn heap_alloc_validate_release() {
    let mut m = Mem::new(SMALL);
    let r = m.region();
    let mut w = r.heap_writer();
    let mut rd = r.heap_reader();
    let a = w.alloc(1000).unwrap();
    w.write(a, &[5u8; 1000]);
    // Not yet published: the reader must refuse it.
    assert!(matches!(rd.get(a.pack()), Err(HeapError::BadDesc(_))));
    w.publish();
    let (p, n) = rd.get(a.pack()).unwrap().unwrap();
    assert_eq!(n, 1000);
    assert_eq!(unsafe { *p.add(999) }, 5);
    assert_eq!(rd.get(HeapDesc::NULL).unwrap(), None);
    let b = w.alloc(3000).unwrap();
    assert_eq!(w.alloc(200), Err(HeapError::Full));
    w.publish();
    rd.release_to(a.end()).unwrap();
    assert!(matches!(rd.get(a.pack()), Err(HeapError::BadDesc(_))));
    rd.release_to(b.end()).unwrap();
    // Wraps: this chunk cannot fit at the end and goes to offset 0.
    let c = w.alloc(2000).unwrap();
    assert_eq!(c.off % 4096, 0);
    w.publish();
    assert!(rd.get(c.pack()).unwrap().is_some());
    // Lengths running past the end or past head are rejected.
    assert!(rd
        .get(
            HeapDesc {
                off: c.off,
                len: 5000
            }
            .pack()
        )
        .is_err());
    assert!(rd
        .get(
            HeapDesc {
                off: c.off + 4000,
                len: 200
            }
            .pack()
        )
        .is_err());
    assert_eq!(w.alloc(5000), Err(HeapError::TooLarge));
    assert!(rd.release_to(c.end() + 4096).is_err());
}

#[test]
fn idle_heap_restarts_at_offset_zero() {
    let mut m = Mem::new(SMALL);
    let r = m.region();
    let mut w = r.heap_writer();
    let mut rd = r.heap_reader();
    let a = w.alloc(100).unwrap();
    let b = w.alloc(100).unwrap();
    assert_eq!((a.off, b.off), (0, 104));
    w.publish();
    // b still in use: no restart, allocation continues after it.
    rd.release_to(a.end()).unwrap();
    let c = w.alloc(8).unwrap();
    assert_eq!(c.off, 208);
    w.publish();
    rd.release_to(c.end()).unwrap();
    // All released: the next chunk starts at offset 0 of the next lap, and
    // the reader accepts it.
    let d = w.alloc(64).unwrap();
    assert_eq!(d.off, 4096);
    w.publish();
    assert!(rd.get(d.pack()).unwrap().is_some());
    rd.release_to(d.end()).unwrap();
    // Idle again, but a chunk larger than the bytes before it must not
    // restart (the gap and the chunk would exceed one lap and the writer
    // would wait for space that never comes).
    let e = w.alloc(4000).unwrap();
    assert_eq!(e.off, 4096 + 64);
}

#[test]
fn reply_slot_hands_over_only_the_awaited_reply() {
    let mut m = Mem::new(SMALL);
    let r = m.region();
    let slot = r.reply_slot();
    // A fresh header holds no reply: the first one awaited is number 1.
    assert_eq!(slot.seq(), 0);
    assert_eq!(slot.take(1), None);
    slot.post(1, 42 | gpu_wire::RING_BYTES, 0x1234_5678_9abc_def0);
    assert_eq!(slot.take(2), None);
    let got = slot.take(1).unwrap();
    assert_eq!(got.tag, 42 | gpu_wire::RING_BYTES);
    assert_eq!(got.value, 0x1234_5678_9abc_def0);
    // The slot is a line of its own after the ring indices and before the
    // command ring, so it shares a line with nothing else that moves.
    let base = m.ptr() as usize;
    let w = slot.seq_word() as *const _ as usize - base;
    assert_eq!(w % 64, 0);
    assert!(w >= 512 && w + 64 <= r.layout().cmd_off() as usize);
}

#[test]
fn idle_heap_restarts_at_zero_for_inputs_only() {
    let mut m = Mem::new(SMALL);
    let r = m.region();
    let mut w = r.heap_writer();
    let mut rd = r.heap_reader();
    let a = w.alloc(1000).unwrap();
    w.publish();
    rd.release_to(a.end()).unwrap();
    // Idle: an input chunk starts again at offset 0 (cache-warm bytes).
    let b = w.alloc(1000).unwrap();
    assert_eq!(b.off % 4096, 0);
    assert_ne!(b.off, a.off);
    w.publish();
    rd.release_to(b.end()).unwrap();
    // An output chunk goes on round the heap instead.
    let c = w.alloc_output(1000).unwrap();
    assert_eq!(c.off, b.off + 1000);
    w.publish();
    rd.release_to(c.end()).unwrap();
    let d = w.alloc_output(100).unwrap();
    assert_eq!(d.off, c.off + 1000);
}
