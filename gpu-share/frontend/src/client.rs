//! The connection: record building, heap use, batching and waiting.

use crate::shadow::Shadow;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};
use gpu_codec::{EncodeError, Ns, Reply, SizeCtx, Wire};
use gpu_wire::{
    Consumer, Doorbell, HeapDesc, HeapError, HeapWriter, Producer, Region, RingError, SlotReply,
    Wait, RING_BYTES,
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
    /// Sync calls answered so far (the reply slot's sequence number).
    answered: u32,
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
            answered: 0,
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

    /// Waits for the answer to sync call number `seq` in the reply slot:
    /// polls its line alone (the server writes it with three stores in a
    /// row; the doorbell's poll backs off between looks so as not to take
    /// the line back while they land), then sleeps on its sequence word
    /// with the "client sleeping" flag raised, so that the server rings
    /// only then.
    fn wait_slot(&mut self, seq: u32) -> Result<SlotReply, EncodeError> {
        let slot = self.region.reply_slot();
        let word = slot.seq_word();
        loop {
            if let Some(r) = slot.take(seq) {
                return Ok(r);
            }
            let seen = word.load(Ordering::Acquire);
            if self.bell.poll(word, seen) {
                continue;
            }
            let flag = self.region.client_sleeping();
            flag.store(1, Ordering::SeqCst);
            // Pairs with the server's fence after posting a reply.
            fence(Ordering::SeqCst);
            if word.load(Ordering::SeqCst) == seen
                && self.bell.wait(word, seen, WAIT_MS) == Wait::TimedOut
                && !self.bell.peer_alive()
            {
                self.closed = Some(ClientError::PeerGone);
            }
            flag.store(0, Ordering::SeqCst);
            self.check_open()?;
        }
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

    /// A heap chunk for the client to fill (`output` false) or for the
    /// server to fill.
    fn heap_alloc(&mut self, len: usize, output: bool) -> Result<HeapDesc, EncodeError> {
        loop {
            let tail = self.heap.tail_word();
            let seen = tail.load(core::sync::atomic::Ordering::Acquire);
            let r = if output {
                self.heap.alloc_output(len)
            } else {
                self.heap.alloc(len)
            };
            match r {
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
        let d = self.heap_alloc(len, true)?;
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
        let d = self.heap_alloc(need, false)?;
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
        let d = self.heap_alloc(len, true)?;
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
        self.answered = self.answered.wrapping_add(1);
        let r = self.wait_slot(self.answered)?;
        self.reply_len = 0;
        // An answer to another call means the streams are out of step;
        // nothing after this can be trusted.
        let in_step = match r.tag {
            t if t == self.op => true,
            t if t == self.op | RING_BYTES => match self.reply.pop(&mut self.reply_buf) {
                Ok(Some(rec)) if rec.tag == self.op => {
                    self.reply_len = rec.len;
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if !in_step {
            self.closed = Some(ClientError::PeerGone);
            return Err(EncodeError::Closed);
        }
        Ok(Reply { ret: r.value })
    }
    fn reply_bytes(&mut self) -> Vec<u8> {
        self.reply_buf[..self.reply_len].to_vec()
    }
}
