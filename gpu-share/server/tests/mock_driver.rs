//! The server against a fake driver: what reaches the driver, and from
//! where. Each test has its own fake entry points (tests run in parallel).

use core::ffi::c_void;
use gpu_codec::{Call, Chunk, SizeCtx};
use gpu_server::driver::Driver;
use gpu_server::exec::gen::execute;
use gpu_server::frames::Frames;
use gpu_server::session::Session;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn driver(table: &[(&str, *mut c_void)]) -> &'static Driver {
    let table: Vec<(String, usize)> = table
        .iter()
        .map(|(n, p)| (n.to_string(), *p as usize))
        .collect();
    let d = Driver::load(&mut |name: &str| {
        table
            .iter()
            .find(|(n, _)| n == name)
            .map_or(core::ptr::null_mut(), |(_, p)| *p as *mut c_void)
    });
    Box::leak(Box::new(d))
}

unsafe extern "C" fn get_integerv_zero(_pname: u32, out: *mut c_void) {
    unsafe { *(out as *mut i32) = 0 };
}
unsafe extern "C" fn bind_buffer(_t: u32, _b: u32) {}
unsafe extern "C" fn get_attrib_zero(_i: u32, _pname: u32, out: *mut c_void) {
    unsafe { *(out as *mut i32) = 0 };
}

/// What a fake draw or upload saw: its pointer and the bytes there.
static SEEN: Mutex<(usize, Vec<u8>)> = Mutex::new((0, Vec::new()));

unsafe extern "C" fn draw_elements(_m: u32, count: i32, _t: u32, p: *const c_void) {
    let b = unsafe { core::slice::from_raw_parts(p as *const u8, count as usize * 2) }.to_vec();
    *SEEN.lock().unwrap() = (p as usize, b);
}

/// Finding 9: indices the driver parses are read from a private copy, not
/// from the heap the client can still write.
#[test]
fn client_indices_are_copied_before_the_driver_reads_them() {
    let drv = driver(&[
        ("glDrawElements", draw_elements as *mut c_void),
        ("glBindBuffer", bind_buffer as *mut c_void),
        ("glGetIntegerv", get_integerv_zero as *mut c_void),
        ("glGetVertexAttribiv", get_attrib_zero as *mut c_void),
    ]);
    let mut s = Session::new(1, drv, Frames::default());
    let mut heap = vec![1u8, 0, 2, 0, 3, 0];
    let c = Chunk {
        ptr: heap.as_mut_ptr(),
        len: heap.len(),
    };
    execute(
        &mut s,
        Call::tsDrawElementsData {
            mode: 4,
            count: 3,
            type_: 0x1403,
            indices: Some(c),
        },
    )
    .unwrap();
    let (p, bytes) = SEEN.lock().unwrap().clone();
    assert_eq!(bytes, heap, "the driver saw other indices");
    assert_ne!(
        p,
        heap.as_ptr() as usize,
        "the driver read the indices in place in the heap"
    );
}

static COMPRESSED: AtomicUsize = AtomicUsize::new(0);
unsafe extern "C" fn compressed(
    _: u32,
    _: i32,
    _: u32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    p: *const c_void,
) {
    COMPRESSED.store(p as usize, Ordering::SeqCst);
}
static BINARY: AtomicUsize = AtomicUsize::new(0);
unsafe extern "C" fn shader_binary(_: i32, _: *const c_void, _: u32, p: *const c_void, _: i32) {
    BINARY.store(p as usize, Ordering::SeqCst);
}

/// Finding 9: compressed blocks and shader binaries too.
#[test]
fn compressed_data_and_shader_binaries_are_copied() {
    let drv = driver(&[
        ("glCompressedTexImage2D", compressed as *mut c_void),
        ("glShaderBinary", shader_binary as *mut c_void),
    ]);
    let mut s = Session::new(1, drv, Frames::default());
    let mut heap = vec![7u8; 64];
    let c = Chunk {
        ptr: heap.as_mut_ptr(),
        len: 64,
    };
    execute(
        &mut s,
        Call::glCompressedTexImage2D {
            target: 0x0DE1,
            level: 0,
            internalformat: 0x8D64,
            width: 8,
            height: 8,
            border: 0,
            imageSize: 64,
            data: Some(c),
        },
    )
    .unwrap();
    let p = COMPRESSED.load(Ordering::SeqCst);
    assert!(
        p != 0 && p != heap.as_ptr() as usize,
        "compressed data read in place"
    );
    execute(
        &mut s,
        Call::glShaderBinary {
            count: 0,
            shaders: None,
            binaryformat: 1,
            binary: Some(c),
            length: 64,
        },
    )
    .unwrap();
    let p = BINARY.load(Ordering::SeqCst);
    assert!(
        p != 0 && p != heap.as_ptr() as usize,
        "shader binary read in place"
    );
}

static QUERIED: AtomicUsize = AtomicUsize::new(0);
unsafe extern "C" fn query_surface(_: *mut c_void, _: *mut c_void, _: i32, _: *mut c_void) -> u32 {
    QUERIED.fetch_add(1, Ordering::SeqCst);
    1
}
unsafe extern "C" fn egl_get_error() -> i32 {
    0x3000
}

/// Finding 10: an EGL handle the client was never given does not reach
/// the driver; the call fails with the error Mesa gives.
#[test]
fn unknown_egl_handles_never_reach_the_driver() {
    let drv = driver(&[
        ("eglQuerySurface", query_surface as *mut c_void),
        ("eglGetError", egl_get_error as *mut c_void),
    ]);
    let mut s = Session::new(1, drv, Frames::default());
    let mut v = [0u8; 4];
    let out = Chunk {
        ptr: v.as_mut_ptr(),
        len: 4,
    };
    let bogus_display = (1u64 << 24) | 77;
    let r = execute(
        &mut s,
        Call::eglQuerySurface {
            dpy: bogus_display,
            surface: 5,
            attribute: 0x3057,
            value: Some(out),
        },
    )
    .unwrap();
    assert!(matches!(r, gpu_server::exec::Ret::Value(0)), "{r:?}");
    assert_eq!(
        QUERIED.load(Ordering::SeqCst),
        0,
        "the driver got an unknown handle"
    );
    let e = execute(&mut s, Call::eglGetError {}).unwrap();
    assert!(matches!(e, gpu_server::exec::Ret::Value(0x3008)), "{e:?}");
}

static ROW_LENGTH: AtomicUsize = AtomicUsize::new(0);
unsafe extern "C" fn get_string_no_ext(name: u32) -> *const u8 {
    match name {
        0x1F03 => c"".as_ptr() as *const u8,
        _ => c"OpenGL ES 2.0 fake".as_ptr() as *const u8,
    }
}
/// Honours GL_PACK_ROW_LENGTH without advertising NV_pack_subimage.
unsafe extern "C" fn get_integerv_pack(pname: u32, out: *mut c_void) {
    let v = match pname {
        0x0D02 => ROW_LENGTH.load(Ordering::SeqCst) as i32,
        0x0D05 => 4,
        _ => 0,
    };
    unsafe { *(out as *mut i32) = v };
}
unsafe extern "C" fn gl_no_error() -> u32 {
    0
}

/// Finding 10: pack row length and skips are counted whenever the driver
/// accepts them, advertised or not, so glReadPixels' chunk holds what
/// such a driver writes.
#[test]
fn pack_row_length_counts_when_the_driver_accepts_it_unadvertised() {
    ROW_LENGTH.store(100, Ordering::SeqCst);
    let drv = driver(&[
        ("glGetString", get_string_no_ext as *mut c_void),
        ("glGetIntegerv", get_integerv_pack as *mut c_void),
        ("glGetError", gl_no_error as *mut c_void),
    ]);
    let mut s = Session::new(1, drv, Frames::default());
    let support = gpu_server::serve::pixel_store_support(&mut s).expect("a context is current");
    let st = gpu_server::serve::DriverState(drv, support);
    assert_eq!(
        st.pack().row_length,
        100,
        "row length the driver honours was not counted"
    );
    // 2x2 RGBA rows of 100 pixels: the driver writes 100*4 + 2*4 bytes.
    assert_eq!(st.pack_image(2, 2, 0x1908, 0x1401), 408);
}
