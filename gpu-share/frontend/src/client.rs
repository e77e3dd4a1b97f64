//! The connection: record building, heap use, batching and waiting.

use crate::shadow::Shadow;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};
use gpu_codec::{EncodeError, Ns, Reply, SizeCtx, Wire};
use gpu_wire::{
    Consumer, Doorbell, HeapDesc, HeapError, HeapWriter, Producer, Region, RingError, Wait,
};

/// Wake the server after this many heap bytes too: a large upload is worth
/// starting while the client goes on.
const BATCH_BYTES: usize = 32 * 1024;
/// Wake the server after this many queued records even without a sync point,
/// so it works in parallel with a long batch.
const BATCH: u32 = 64;
/// How long one wait sleeps before checking that the server is alive.
const WAIT_MS: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientError {
    /// The server closed the session; the code it left in the header.
    Closed(u32),
    PeerGone,
}

pub struct Client<D: Doorbell> {
    region: &'static Region,
    cmd: Producer<'static>,
    reply: Consumer<'static>,
    heap: HeapWriter<'static>,
    bell: D,
    rec: Vec<u64>,
    op: u32,
    queued: u32,
    /// Heap bytes queued since the last wake-up.
    queued_bytes: usize,
    reply_buf: Vec<u8>,
    reply_len: usize,
    next_name: u32,
    closed: Option<ClientError>,
    /// The server's GL error flags are known to be clear: its last
    /// glGetError answered GL_NO_ERROR and no call has reached it since.
    pub(crate) gl_clean: bool,
    pub shadow: Shadow,
    /// Statistics for benchmarks.
    pub sent: u64,
    pub sent_bytes: u64,
}

impl<D: Doorbell> Client<D> {
    pub fn new(region: &'static Region, bell: D) -> Self {
        let reply_cap = region.layout().reply_size as usize / 2;
        Client {
            region,
            cmd: region.cmd_producer(),
            reply: region.reply_consumer(),
            heap: region.heap_writer(),
            bell,
            rec: Vec::with_capacity(16),
            op: 0,
            queued: 0,
            queued_bytes: 0,
            reply_buf: alloc::vec![0u8; reply_cap],
            reply_len: 0,
            next_name: 1,
            closed: None,
            gl_clean: false,
            shadow: Shadow::default(),
            sent: 0,
            sent_bytes: 0,
        }
    }

    pub fn closed(&self) -> Option<ClientError> {
        self.closed
    }

    fn check_open(&mut self) -> Result<(), EncodeError> {
        if self.closed.is_none() {
            let st = self
                .region
                .state()
                .load(core::sync::atomic::Ordering::Acquire);
            if st != 0 {
                self.closed = Some(ClientError::Closed(st));
            }
        }
        if self.closed.is_some() {
            Err(EncodeError::Closed)
        } else {
            Ok(())
        }
    }

    /// Waits until `word` (a peer's counter) moves past `seen`, looking at
    /// it only between yields, then sleeping on it: a ring's tail moves with
    /// every record the server takes, and a core that keeps reading it takes
    /// its cache line away from the server each time.
    fn wait_on(
        &mut self,
        word: &core::sync::atomic::AtomicU32,
        seen: u32,
    ) -> Result<(), EncodeError> {
        for _ in 0..gpu_wire::doorbell::POLLS {
            if word.load(Ordering::Acquire) != seen {
                return Ok(());
            }
            self.bell.relax();
        }
        if word.load(Ordering::SeqCst) == seen
            && self.bell.wait(word, seen, WAIT_MS) == Wait::TimedOut
            && !self.bell.peer_alive()
        {
            self.closed = Some(ClientError::PeerGone);
        }
        self.check_open()
    }

    /// Waits for the next reply: polls the reply ring's head (on the H200
    /// polling the line the reply arrives in made sync calls slower: the
    /// server's writes to it kept losing the line to the poller), then
    /// sleeps on the reply's stamp word with the "client sleeping" flag
    /// raised, so that the server rings only then.
    fn wait_reply(&mut self) -> Result<(), EncodeError> {
        let head = self.reply.head_word();
        let seen = head.load(Ordering::Acquire);
        if self.reply.ready() {
            return Ok(());
        }
        if self.bell.poll(head, seen) {
            // The stamp follows head within a few stores; a server
            // preempted between them is waited for below.
            for _ in 0..1000 {
                if self.reply.ready() {
                    return Ok(());
                }
            }
        }
        let flag = self.region.client_sleeping();
        flag.store(1, Ordering::SeqCst);
        // Pairs with the server's fence after publishing a reply.
        fence(Ordering::SeqCst);
        let (next, now) = self.reply.next_word();
        if !self.reply.ready()
            && self.bell.wait(next, now, WAIT_MS) == Wait::TimedOut
            && !self.bell.peer_alive()
        {
            self.closed = Some(ClientError::PeerGone);
        }
        flag.store(0, Ordering::SeqCst);
        self.check_open()
    }

    /// Wakes the server for everything queued so far, if it sleeps.
    pub fn flush(&mut self) {
        // Pairs with the server's fence between raising its flag and
        // re-reading head: one of the two sides sees the other.
        fence(Ordering::SeqCst);
        if self.region.server_sleeping().load(Ordering::SeqCst) != 0 {
            self.bell.notify(self.cmd.waiter_word());
        }
        self.queued = 0;
        self.queued_bytes = 0;
    }

    /// Waits for the server to free at least `amount` bytes of ring or heap
    /// space (a consumer counter moving past `seen`). Waiting for a good
    /// amount, not one record, avoids a wake-up per record when full.
    fn wait_for_space(
        &mut self,
        word: &'static core::sync::atomic::AtomicU32,
        seen: u32,
        amount: u32,
    ) -> Result<(), EncodeError> {
        self.region.client_waiting().store(1, Ordering::SeqCst);
        self.flush();
        let mut r = Ok(());
        loop {
            let cur = word.load(Ordering::Acquire);
            if cur.wrapping_sub(seen) >= amount {
                break;
            }
            r = self.wait_on(word, cur);
            if r.is_err() {
                break;
            }
        }
        self.region.client_waiting().store(0, Ordering::SeqCst);
        r
    }

    fn heap_alloc(&mut self, len: usize) -> Result<HeapDesc, EncodeError> {
        loop {
            let tail = self.heap.tail_word();
            let seen = tail.load(core::sync::atomic::Ordering::Acquire);
            match self.heap.alloc(len) {
                Ok(d) => return Ok(d),
                Err(HeapError::Full) => {
                    // Back-pressure: let the server drain and free chunks.
                    self.heap.publish();
                    let amount = (len as u32).clamp(1, self.heap.size() as u32 / 8);
                    self.wait_for_space(tail, seen, amount)?;
                }
                Err(_) => return Err(EncodeError::TooLarge),
            }
        }
    }

    /// An output chunk the driver overwrites completely (every byte GL
    /// writes, no gaps between rows): not pre-filled with the caller's
    /// bytes, since none of them would survive.
    pub(crate) fn output_unfilled(&mut self, len: usize) -> Result<HeapDesc, EncodeError> {
        if len > self.heap.size() {
            return Err(EncodeError::TooLarge);
        }
        let d = self.heap_alloc(len)?;
        self.rec.push(d.pack());
        Ok(d)
    }

    /// Sends the record built since `begin` (which checked that the
    /// session is open).
    fn push(&mut self) -> Result<(), EncodeError> {
        self.heap.publish();
        let n = self.rec.len() * 8;
        if n > 8 * 16 {
            return Err(EncodeError::TooLarge);
        }
        #[cfg(target_endian = "little")]
        // SAFETY: the slots' own bytes are their little-endian encoding;
        // nothing below touches `rec` (waiting for space does not).
        let bytes = unsafe { core::slice::from_raw_parts(self.rec.as_ptr() as *const u8, n) };
        #[cfg(not(target_endian = "little"))]
        let le: Vec<u8> = self.rec.iter().flat_map(|v| v.to_le_bytes()).collect();
        #[cfg(not(target_endian = "little"))]
        let bytes = &le[..];
        loop {
            let tail = self.cmd.tail_word();
            let seen = tail.load(core::sync::atomic::Ordering::Acquire);
            match self.cmd.push(self.op, &[bytes]) {
                Ok(()) => break,
                Err(RingError::Full) => {
                    let amount = self.region.layout().cmd_size / 8;
                    self.wait_for_space(tail, seen, amount)?
                }
                Err(_) => return Err(EncodeError::TooLarge),
            }
        }
        // Any call but glGetError itself may raise an error in the server
        // (GL_OUT_OF_MEMORY may come from any call that runs).
        if self.op != gpu_codec::op::glGetError {
            self.gl_clean = false;
        }
        self.sent += 1;
        self.sent_bytes += n as u64 + 8;
        self.queued += 1;
        Ok(())
    }
}

impl<D: Doorbell> Wire for Client<D> {
    fn ctx(&self) -> &dyn SizeCtx {
        &self.shadow
    }
    fn begin(&mut self, opcode: u32) -> Result<(), EncodeError> {
        self.check_open()?;
        self.rec.clear();
        self.op = opcode;
        Ok(())
    }
    fn slot(&mut self, v: u64) {
        self.rec.push(v);
    }
    fn input(&mut self, data: Option<&[u8]>, need: usize) -> Result<(), EncodeError> {
        let data = match data {
            Some(d) if need > 0 => d,
            _ => {
                self.rec.push(HeapDesc::NULL);
                return Ok(());
            }
        };
        if data.len() < need {
            return Err(EncodeError::BadArg);
        }
        if need > self.heap.size() {
            // Never NULL in its place: the server would read through it (or
            // create the object empty). The caller sees GL_OUT_OF_MEMORY.
            return Err(EncodeError::TooLarge);
        }
        let d = self.heap_alloc(need)?;
        self.heap.write(d, &data[..need]);
        self.queued_bytes += need;
        self.rec.push(d.pack());
        Ok(())
    }
    fn output(&mut self, init: Option<&[u8]>, len: usize) -> Result<Option<HeapDesc>, EncodeError> {
        let Some(init) = init.filter(|_| len > 0) else {
            self.rec.push(HeapDesc::NULL);
            return Ok(None);
        };
        let d = self.heap_alloc(len)?;
        self.heap.write(d, &init[..len.min(init.len())]);
        self.rec.push(d.pack());
        Ok(Some(d))
    }
    fn read_out(&mut self, ticket: Option<HeapDesc>, dst: Option<&mut [u8]>, len: usize) {
        if let (Some(d), Some(dst)) = (ticket, dst) {
            let n = len.min(dst.len());
            self.heap.read(d, &mut dst[..n]);
        }
    }
    fn alloc_names(&mut self, _ns: Ns, out: &mut [u32]) {
        for n in out {
            *n = self.next_name;
            self.next_name += 1;
        }
    }
    fn alloc_name(&mut self, _ns: Ns) -> u32 {
        let n = self.next_name;
        self.next_name += 1;
        n
    }
    fn note_name(&mut self, _ns: Ns, name: u32) {
        // One counter for all name spaces keeps every name unique.
        if name >= self.next_name && name < u32::MAX - 1 {
            self.next_name = name + 1;
        }
    }
    fn finish_async(&mut self) -> Result<(), EncodeError> {
        self.push()?;
        if self.queued >= BATCH || self.queued_bytes >= BATCH_BYTES {
            self.flush();
        }
        Ok(())
    }
    fn finish_sync(&mut self) -> Result<Reply, EncodeError> {
        self.push()?;
        self.flush();
        loop {
            match self.reply.pop(&mut self.reply_buf) {
                Ok(Some(rec)) if rec.len >= 8 && rec.tag == self.op => {
                    let mut r = [0u8; 8];
                    r.copy_from_slice(&self.reply_buf[..8]);
                    self.reply_len = rec.len;
                    return Ok(Reply {
                        ret: u64::from_le_bytes(r),
                    });
                }
                Ok(Some(_)) | Err(_) => {
                    // A reply we did not ask for means the streams are out of
                    // step; nothing after this can be trusted.
                    self.closed = Some(ClientError::PeerGone);
                    return Err(EncodeError::Closed);
                }
                Ok(None) => self.wait_reply()?,
            }
        }
    }
    fn reply_bytes(&mut self) -> Vec<u8> {
        self.reply_buf[8..self.reply_len].to_vec()
    }
}
