//! The per-session loop: pop a record, decode and check it, run it, reply.

use crate::exec::{
    gen::{execute, execute_fast},
    Ret,
};
use crate::session::{Session, SessionError, CLOSED_LIMIT, CLOSED_PROTOCOL};
use gpu_codec::{decode, op, PixelStore, SizeCtx, SYNC};
use gpu_wire::{Consumer, Doorbell, HeapReader, Producer, Region, Wait};
use std::sync::atomic::{fence, Ordering};

/// How long to sleep before checking that the client still exists.
const IDLE_MS: u32 = 200;

/// Size rules evaluated against the driver's current state. The flags say
/// whether the driver accepts unpack and pack row length and skips, so that
/// they are counted wherever the driver honours them (advertised or not)
/// and never queried where they would raise an error.
pub struct DriverState<'a>(pub &'a crate::driver::Driver, pub [bool; 2]);

const GL_VERSION: u32 = 0x1F02;
pub const GL_UNPACK_ROW_LENGTH: u32 = 0x0CF2;
pub const GL_PACK_ROW_LENGTH: u32 = 0x0D02;

/// Whether the current context accepts unpack / pack row length (and so
/// skips); None without a current context. Asks the driver itself rather
/// than trusting the extension string: a driver that honours
/// GL_PACK_ROW_LENGTH without advertising NV_pack_subimage would otherwise
/// write past the client's chunk. An error the client had pending is kept
/// for its next glGetError.
pub fn pixel_store_support(s: &mut Session) -> Option<[bool; 2]> {
    let d = s.drv;
    let (gs, ge, gi) = (d.glGetString?, d.glGetError?, d.glGetIntegerv?);
    // SAFETY: glGetString returns NULL without a current context.
    if unsafe { gs(GL_VERSION) }.is_null() {
        return None;
    }
    // SAFETY: no arguments / room for one value.
    let pending = unsafe { ge() };
    let accepted = |pname: u32| {
        let mut v = [0i32; 4];
        // SAFETY: as above.
        unsafe {
            gi(pname, v.as_mut_ptr() as *mut core::ffi::c_void);
            ge() == 0
        }
    };
    let r = [accepted(GL_UNPACK_ROW_LENGTH), accepted(GL_PACK_ROW_LENGTH)];
    s.keep_gl_error(pending);
    Some(r)
}

impl DriverState<'_> {
    fn get(&self, pname: u32) -> i64 {
        let mut v = [0i32; 4];
        if let Some(f) = self.0.glGetIntegerv {
            // SAFETY: room for any single-valued pname.
            unsafe { f(pname, v.as_mut_ptr() as *mut core::ffi::c_void) };
        }
        v[0] as i64
    }

    fn store(&self, align: u32, row_length: u32, sub: bool) -> PixelStore {
        let mut ps = PixelStore {
            alignment: self.get(align),
            ..PixelStore::default()
        };
        if sub {
            ps.row_length = self.get(row_length);
            ps.skip_rows = self.get(row_length + 1);
            ps.skip_pixels = self.get(row_length + 2);
        }
        ps
    }
}

impl SizeCtx for DriverState<'_> {
    fn unpack(&self) -> PixelStore {
        self.store(0x0CF5, 0x0CF2, self.1[0])
    }
    fn pack(&self) -> PixelStore {
        self.store(0x0D05, 0x0D02, self.1[1])
    }
    fn num_compressed_formats(&self) -> i64 {
        self.get(0x86A2)
    }
    fn num_shader_binary_formats(&self) -> i64 {
        self.get(0x8DF9)
    }
}

/// Answers sync call number `seq`: bytes (strings) go to the reply ring
/// first, then the value to the reply slot, which the client polls.
fn reply(
    region: &Region,
    p: &mut Producer,
    bell: &dyn Doorbell,
    seq: u32,
    opcode: u32,
    ret: Ret,
) -> Result<(), SessionError> {
    let (v, bytes) = match ret {
        Ret::Void => (0, None),
        Ret::Value(v) => (v, None),
        Ret::Str(None) => (0, None),
        Ret::Str(Some(b)) => (1, Some(b)),
    };
    let mut tag = opcode;
    if let Some(bytes) = bytes {
        let max = p.max_payload();
        let bytes = &bytes[..bytes.len().min(max)];
        loop {
            let seen = p.tail_word().load(Ordering::Acquire);
            match p.push(opcode, &[bytes]) {
                Ok(()) => break,
                Err(gpu_wire::RingError::Full) => {
                    if bell.wait(p.tail_word(), seen, IDLE_MS) == Wait::TimedOut
                        && !bell.peer_alive()
                    {
                        return Err(SessionError::Protocol(
                            "client gone while a reply was pending".into(),
                        ));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        tag |= gpu_wire::RING_BYTES;
    }
    let slot = region.reply_slot();
    slot.post(seq, tag, v);
    // Pairs with the client's fence between raising its flag and looking
    // at the slot again: one of the two sides sees the other. A client
    // still polling needs no system call.
    fence(Ordering::SeqCst);
    if region.client_sleeping().load(Ordering::SeqCst) != 0 {
        bell.notify(slot.seq_word());
    }
    Ok(())
}

/// Calls after which the vertex arrays a draw reads must be checked again.
const CHANGES_ARRAYS: &[u32] = &[
    op::glVertexAttribPointer,
    op::glEnableVertexAttribArray,
    op::glDisableVertexAttribArray,
    op::glDeleteBuffers,
    op::glUseProgram,
    op::glLinkProgram,
    op::tsVertexAttribData,
    op::eglMakeCurrent,
    op::eglReleaseThread,
    op::eglTerminate,
];

/// Opcode -> whether it is one of `ops`: one load per record instead of a
/// scan of the list.
pub const fn op_set(ops: &[u32]) -> [bool; gpu_codec::OPCODES] {
    let mut t = [false; gpu_codec::OPCODES];
    let mut i = 0;
    while i < ops.len() {
        t[ops[i] as usize] = true;
        i += 1;
    }
    t
}

static CHANGES_ARRAYS_SET: [bool; gpu_codec::OPCODES] = op_set(CHANGES_ARRAYS);

/// Calls that may take the fast path: numbers only, and none the limits
/// count.
static FAST_SET: [bool; gpu_codec::OPCODES] = {
    let mut t = op_set(crate::exec::gen::FAST_OPS);
    let mut i = 0;
    while i < crate::limits::COUNTED_SCALAR_CALLS.len() {
        t[crate::limits::COUNTED_SCALAR_CALLS[i] as usize] = false;
        i += 1;
    }
    t
};

/// Why a session ended normally.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    ClientGone,
}

/// Serves one client until it goes away or sends something invalid.
pub fn serve(s: &mut Session, region: &Region, bell: &dyn Doorbell) -> Result<End, SessionError> {
    let mut cmd = region.cmd_consumer();
    let mut rep = region.reply_producer();
    let mut heap = region.heap_reader();
    let mut buf = [0u8; 8 * 16];
    let mut slots = [0u64; 16];
    let mut done: u64 = 0;
    // Sync calls answered: the reply slot's sequence number (the header
    // starts zeroed; the client counts the same way).
    let mut answered: u32 = 0;
    let mut prof = crate::profile::Profile::from_env();
    let r = loop {
        let t0 = prof.now();
        let Some(rec) = cmd.pop(&mut buf)? else {
            s.sched.set_busy(false);
            notify_space(region, &cmd, &heap, bell);
            prof.idle_start();
            let gone = idle(region, &cmd, bell, &mut prof);
            prof.idle_end();
            if gone {
                break Ok(End::ClientGone);
            }
            continue;
        };
        s.sched.set_busy(true);
        if rec.len % 8 != 0 {
            return Err(SessionError::Protocol(format!(
                "record of {} bytes is not whole slots",
                rec.len
            )));
        }
        let n = rec.len / 8;
        for (i, s) in slots[..n].iter_mut().enumerate() {
            *s = u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        }
        let mut end = None;
        if s.subimage.is_none() {
            s.subimage = pixel_store_support(s);
        }
        if CHANGES_ARRAYS_SET.get(rec.tag as usize) == Some(&true) {
            s.arrays_ok = false;
        }
        let t1 = prof.now();
        // Calls of numbers only need no decoding, limits or translation.
        let fast = match FAST_SET.get(rec.tag as usize) {
            Some(true) => execute_fast(s, rec.tag, &slots[..n]),
            _ => None,
        };
        if let Some(r) = fast {
            r?;
            prof.record(t0, t1, prof.now());
        } else {
            let st = DriverState(s.drv, s.subimage.unwrap_or([false; 2]));
            let call = decode(rec.tag, &slots[..n], &heap, &st, &mut end).map_err(|err| {
                SessionError::Decode {
                    opcode: rec.tag,
                    err,
                }
            })?;
            s.within_limits(&call)?;
            let t1 = prof.now();
            let ret = execute(s, call)?;
            // The client waits for nothing below: answer first.
            if SYNC[rec.tag as usize] {
                answered = answered.wrapping_add(1);
                reply(region, &mut rep, bell, answered, rec.tag, ret)?;
            }
            prof.record(t0, t1, prof.now());
            if let Some(e) = end {
                heap.release_to(e)?;
            }
        }
        let fences = s.sched.fences;
        crate::sched::after_call(s, rec.tag)?;
        // A client that left has its queued work dropped at the next fence.
        if s.sched.fences != fences && !bell.peer_alive() {
            break Ok(End::ClientGone);
        }
        done += 1;
        if done.is_multiple_of(256) {
            notify_space(region, &cmd, &heap, bell);
        }
    };
    prof.report(s.id);
    r
}

/// Wakes a client waiting for space, if it waits: a futex wake costs a
/// system call, the flag check does not. The client waits for a good amount
/// of space, so waking it once per record would only make it re-check.
pub fn notify_space(region: &Region, cmd: &Consumer, heap: &HeapReader, bell: &dyn Doorbell) {
    if region.client_waiting().load(Ordering::SeqCst) != 0 {
        bell.notify(cmd.tail_word());
        bell.notify(heap.tail_word());
    }
}

/// Waits for the client's next record. Returns true if the client is gone.
/// Polls the command ring's head before sleeping: a client in the middle of
/// a batch, or between a reply and its next call, usually pushes again
/// within microseconds. (Polling the line the record arrives in instead
/// made sync calls slower on the H200: the client's writes to it kept
/// losing the line to the poller.) Sleeps on the next record's stamp word.
pub fn idle(
    region: &Region,
    cmd: &Consumer,
    bell: &dyn Doorbell,
    prof: &mut crate::profile::Profile,
) -> bool {
    let head = cmd.head_word();
    let seen = head.load(Ordering::Acquire);
    if cmd.ready() {
        return false;
    }
    if bell.poll(head, seen) {
        // The stamp follows head within a few stores; a client preempted
        // between them is waited for below.
        for _ in 0..1000 {
            if cmd.ready() {
                return false;
            }
        }
    }
    prof.sleeps += 1;
    // Raise the flag, then look again: a client that published before it
    // saw the flag is caught by the re-check (the futex compares the stamp
    // word too); one that publishes later sees the flag and rings it.
    region.server_sleeping().store(1, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    let (next, now) = cmd.next_word();
    let gone =
        !cmd.ready() && bell.wait(next, now, IDLE_MS) == Wait::TimedOut && !bell.peer_alive();
    region.server_sleeping().store(0, Ordering::SeqCst);
    gone
}

/// Runs a session to its end and records why it ended.
pub fn run(s: &mut Session, region: &Region, bell: &dyn Doorbell) -> Result<End, SessionError> {
    let r = serve(s, region, bell);
    if let Err(e) = &r {
        let code = match e {
            SessionError::Limit(_) => CLOSED_LIMIT,
            _ => CLOSED_PROTOCOL,
        };
        region.state().store(code, Ordering::Release);
        // Wake the client wherever it waits so it sees the closed state.
        bell.notify(region.reply_slot().seq_word());
        bell.notify(region.cmd_consumer().tail_word());
        bell.notify(region.heap_reader().tail_word());
        eprintln!("gpu-server: client {}: session ended: {e}", s.id);
    }
    s.cleanup();
    r
}
