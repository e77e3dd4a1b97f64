//! The real front-end against the real server loop and a fake driver:
//! which calls the front-end answers itself (glGetError), and glReadPixels
//! without a pre-filled chunk (issue 13).

use core::ffi::c_void;
use gpu_codec::enc;
use gpu_frontend::Client;
use gpu_server::driver::Driver;
use gpu_server::frames::Frames;
use gpu_server::session::Session;
use gpu_transport::FutexBell;
use gpu_wire::{Doorbell, Layout, Region, Wait};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const GL_INVALID_ENUM: u32 = 0x0500;
const GL_INVALID_VALUE: u32 = 0x0501;
const GL_INVALID_OPERATION: u32 = 0x0502;
const GL_RGBA: u32 = 0x1908;
const GL_UNSIGNED_SHORT_4_4_4_4: u32 = 0x8033;
const GL_UNSIGNED_BYTE: u32 = 0x1401;

/// The fake driver's error flags and how often glGetError was called.
static ERRORS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static GET_ERROR_CALLS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn get_error() -> u32 {
    GET_ERROR_CALLS.fetch_add(1, Ordering::SeqCst);
    let mut e = ERRORS.lock().unwrap();
    if e.is_empty() {
        0
    } else {
        e.remove(0)
    }
}
/// glEnable(0) raises GL_INVALID_ENUM, as a driver would for a bad cap.
unsafe extern "C" fn enable(cap: u32) {
    if cap == 0 {
        ERRORS.lock().unwrap().push(GL_INVALID_ENUM);
    }
}
/// Writes 0x5a over every pixel, or raises GL_INVALID_OPERATION (and
/// writes nothing) for anything but RGBA / UNSIGNED_BYTE.
unsafe extern "C" fn read_pixels(_: i32, _: i32, w: i32, h: i32, f: u32, t: u32, p: *mut c_void) {
    if f != GL_RGBA || t != GL_UNSIGNED_BYTE {
        ERRORS.lock().unwrap().push(GL_INVALID_OPERATION);
        return;
    }
    // SAFETY: the server sized the buffer for w x h RGBA bytes.
    unsafe { core::ptr::write_bytes(p as *mut u8, 0x5a, (w * h * 4) as usize) };
}
unsafe extern "C" fn get_integerv(pname: u32, out: *mut c_void) {
    let v = if pname == 0x0D05 || pname == 0x0CF5 {
        4
    } else {
        0
    };
    // SAFETY: room for one value.
    unsafe { *(out as *mut i32) = v };
}

fn driver() -> &'static Driver {
    let table: &[(&str, *mut c_void)] = &[
        ("glGetError", get_error as *mut c_void),
        ("glEnable", enable as *mut c_void),
        ("glReadPixels", read_pixels as *mut c_void),
        ("glGetIntegerv", get_integerv as *mut c_void),
    ];
    gpu_server::driver::from_table(table)
}

/// The server's doorbell: futexes, and a stop flag that ends the session.
struct Bell(Arc<AtomicBool>);
impl Doorbell for Bell {
    fn notify(&self, w: &AtomicU32) {
        FutexBell::in_process().notify(w)
    }
    fn wait(&self, w: &AtomicU32, seen: u32, _ms: u32) -> Wait {
        if self.0.load(Ordering::SeqCst) {
            return Wait::TimedOut;
        }
        FutexBell::in_process().wait(w, seen, 5)
    }
    fn peer_alive(&self) -> bool {
        !self.0.load(Ordering::SeqCst)
    }
}

/// One test at a time: the fake driver's state is global.
static SERIAL: Mutex<()> = Mutex::new(());

fn with_server(f: impl FnOnce(&mut Client<FutexBell>)) {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    ERRORS.lock().unwrap().clear();
    GET_ERROR_CALLS.store(0, Ordering::SeqCst);
    let layout = Layout::DEFAULT;
    let mem: &'static mut [u64] =
        Box::leak(vec![0u64; layout.region_size() / 8].into_boxed_slice());
    let base = mem.as_mut_ptr() as *mut u8;
    // SAFETY: a fresh, leaked, 8-aligned allocation of region_size bytes.
    unsafe { layout.init(base, layout.region_size()).unwrap() };
    // SAFETY: as above; it lives for the whole process.
    let region: &'static Region = Box::leak(Box::new(
        unsafe { Region::new(base, layout.region_size()) }.unwrap(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let bell = Bell(stop.clone());
    let th = std::thread::spawn(move || {
        let mut s = Session::new(1, driver(), Frames::default());
        gpu_server::serve::serve(&mut s, region, &bell).map(|_| ())
    });
    let mut c = Client::new(region, FutexBell::in_process());
    f(&mut c);
    stop.store(true, Ordering::SeqCst);
    FutexBell::in_process().notify(region.cmd_producer().waiter_word());
    th.join().unwrap().expect("session ended with an error");
}

#[test]
fn get_error_is_local_only_while_nothing_reached_the_server() {
    with_server(|c| {
        assert_eq!(c.get_error().unwrap(), 0);
        let asked = GET_ERROR_CALLS.load(Ordering::SeqCst);
        assert!(asked >= 1, "the first glGetError must ask the server");
        // Nothing was sent since GL_NO_ERROR: answered locally.
        assert_eq!(c.get_error().unwrap(), 0);
        assert_eq!(c.get_error().unwrap(), 0);
        assert_eq!(GET_ERROR_CALLS.load(Ordering::SeqCst), asked);
        // A call that fails in the driver: the next glGetError must ask.
        enc::glEnable(c, 0).unwrap();
        assert_eq!(c.get_error().unwrap(), GL_INVALID_ENUM);
        assert_eq!(c.get_error().unwrap(), 0);
        // A call that succeeds still makes the next one ask (any call may
        // fail in the server, GL_OUT_OF_MEMORY included).
        let before = GET_ERROR_CALLS.load(Ordering::SeqCst);
        enc::glEnable(c, 0x0B71).unwrap();
        assert_eq!(c.get_error().unwrap(), 0);
        assert!(GET_ERROR_CALLS.load(Ordering::SeqCst) > before);
    });
}

#[test]
fn read_pixels_without_prefill_keeps_memory_on_error_and_keeps_old_errors() {
    with_server(|c| {
        // An error raised before the read stays for glGetError.
        ERRORS.lock().unwrap().push(GL_INVALID_VALUE);
        enc::glEnable(c, 0x0B71).unwrap();
        let mut px = [1u8; 16];
        c.read_pixels(0, 0, 2, 2, GL_RGBA, GL_UNSIGNED_BYTE, Some(&mut px))
            .unwrap();
        assert_eq!(px, [0x5a; 16], "pixels of a good read");
        // A failed read leaves the caller's memory as it was (2x2 pixels
        // of 2 bytes: rows need no padding, so the chunk is not pre-filled).
        let mut px = [1u8; 8];
        c.read_pixels(
            0,
            0,
            2,
            2,
            GL_RGBA,
            GL_UNSIGNED_SHORT_4_4_4_4,
            Some(&mut px),
        )
        .unwrap();
        assert_eq!(
            px, [1u8; 8],
            "a failed glReadPixels wrote the caller's memory"
        );
        let mut errs = vec![c.get_error().unwrap(), c.get_error().unwrap()];
        errs.sort();
        assert_eq!(errs, [GL_INVALID_VALUE, GL_INVALID_OPERATION]);
        assert_eq!(c.get_error().unwrap(), 0);
    });
}
