//! Server hooks: calls marked `hook` in the annotations, where the server
//! must do more than translate and forward (surfaceless EGL, window surfaces,
//! names inside query results, client-memory vertex data).

#![allow(non_snake_case, clippy::too_many_arguments)]

use crate::exec::{c_string, ptr_opt, OutBuf, Ret};
use crate::frames::Frame;
use crate::session::{need, Session, SessionError};
use core::ffi::c_void;
use gpu_codec::{Chunk, Kind, Ns};

type R = Result<Ret, SessionError>;

const EGL_NONE: i32 = 0x3038;
/// Largest window side: each swap reads a window back into memory, so a
/// client must not make the server allocate gigabytes per frame.
const MAX_WINDOW: u32 = 4096;
const EGL_SURFACE_TYPE: i32 = 0x3033;
const EGL_WINDOW_BIT: i32 = 0x4;
const EGL_PIXMAP_BIT: i32 = 0x2;
const EGL_PBUFFER_BIT: i32 = 0x1;
const EGL_WIDTH: i32 = 0x3057;
const EGL_HEIGHT: i32 = 0x3056;
const EGL_DRAW: i32 = 0x3059;
const EGL_PLATFORM_SURFACELESS_MESA: u32 = 0x31DD;
const EGL_BAD_PARAMETER: i32 = 0x300C;
const EGL_BAD_NATIVE_PIXMAP: i32 = 0x300A;

fn put_i32(c: &Option<Chunk>, i: usize, v: i32) {
    if let Some(c) = c {
        if (i + 1) * 4 <= c.len {
            // SAFETY: inside a checked heap chunk.
            unsafe {
                core::ptr::copy_nonoverlapping(v.to_le_bytes().as_ptr(), c.ptr.add(i * 4), 4)
            };
        }
    }
}

fn put_u64(c: &Option<Chunk>, i: usize, v: u64) {
    if let Some(c) = c {
        if (i + 1) * 8 <= c.len {
            // SAFETY: inside a checked heap chunk.
            unsafe {
                core::ptr::copy_nonoverlapping(v.to_le_bytes().as_ptr(), c.ptr.add(i * 8), 8)
            };
        }
    }
}

fn get_int(s: &Session, pname: u32) -> Result<i32, SessionError> {
    let f = need(s.drv.glGetIntegerv, "glGetIntegerv")?;
    let mut v = [0i32; 4];
    // SAFETY: room for the single value these pnames return.
    unsafe { f(pname, v.as_mut_ptr() as *mut c_void) };
    Ok(v[0])
}

/// Name space of the object a binding query returns.
fn binding_ns(pname: u32) -> Option<Ns> {
    Some(match pname {
        0x8894 | 0x8895 => Ns::Buffer,
        0x8B8D => Ns::Program,
        0x8069 | 0x8514 => Ns::Texture,
        0x8CA6 => Ns::Framebuffer,
        0x8CA7 => Ns::Renderbuffer,
        0x85B5 => Ns::VertexArray,
        _ => return None,
    })
}

fn reverse_first_i32(s: &Session, o: &mut OutBuf, ns: Ns) {
    let b = o.bytes();
    if b.len() >= 4 {
        let real = i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u32;
        b[..4].copy_from_slice(&(s.names.reverse(ns, real) as i32).to_le_bytes());
    }
}

fn reverse_first_f32(s: &Session, o: &mut OutBuf, ns: Ns) {
    let b = o.bytes();
    if b.len() >= 4 {
        let real = f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u32;
        b[..4].copy_from_slice(&(s.names.reverse(ns, real) as f32).to_le_bytes());
    }
}

pub fn glGetIntegerv(s: &mut Session, pname: u32, data: Option<Chunk>) -> R {
    let f = need(s.drv.glGetIntegerv, "glGetIntegerv")?;
    let mut o = OutBuf::new(data);
    // SAFETY: o holds the computed count plus slack.
    unsafe { f(pname, o.ptr()) };
    if let Some(ns) = binding_ns(pname) {
        reverse_first_i32(s, &mut o, ns);
    }
    o.finish();
    Ok(Ret::Void)
}

pub fn glGetFloatv(s: &mut Session, pname: u32, data: Option<Chunk>) -> R {
    let f = need(s.drv.glGetFloatv, "glGetFloatv")?;
    let mut o = OutBuf::new(data);
    // SAFETY: as for glGetIntegerv.
    unsafe { f(pname, o.ptr()) };
    if let Some(ns) = binding_ns(pname) {
        reverse_first_f32(s, &mut o, ns);
    }
    o.finish();
    Ok(Ret::Void)
}

const VERTEX_ATTRIB_ARRAY_BUFFER_BINDING: u32 = 0x889F;

pub fn glGetVertexAttribiv(s: &mut Session, index: u32, pname: u32, params: Option<Chunk>) -> R {
    let f = need(s.drv.glGetVertexAttribiv, "glGetVertexAttribiv")?;
    let mut o = OutBuf::new(params);
    // SAFETY: o holds four values plus slack.
    unsafe { f(index, pname, o.ptr()) };
    if pname == VERTEX_ATTRIB_ARRAY_BUFFER_BINDING {
        reverse_first_i32(s, &mut o, Ns::Buffer);
    }
    o.finish();
    Ok(Ret::Void)
}

pub fn glGetVertexAttribfv(s: &mut Session, index: u32, pname: u32, params: Option<Chunk>) -> R {
    let f = need(s.drv.glGetVertexAttribfv, "glGetVertexAttribfv")?;
    let mut o = OutBuf::new(params);
    // SAFETY: as above.
    unsafe { f(index, pname, o.ptr()) };
    if pname == VERTEX_ATTRIB_ARRAY_BUFFER_BINDING {
        reverse_first_f32(s, &mut o, Ns::Buffer);
    }
    o.finish();
    Ok(Ret::Void)
}

pub fn glGetFramebufferAttachmentParameteriv(
    s: &mut Session,
    target: u32,
    attachment: u32,
    pname: u32,
    params: Option<Chunk>,
) -> R {
    let f = need(
        s.drv.glGetFramebufferAttachmentParameteriv,
        "glGetFramebufferAttachmentParameteriv",
    )?;
    let mut o = OutBuf::new(params);
    // SAFETY: o holds one value plus slack.
    unsafe { f(target, attachment, pname, o.ptr()) };
    if pname == 0x8CD1 {
        // OBJECT_NAME: its name space depends on OBJECT_TYPE.
        let mut ty = [0i32; 4];
        // SAFETY: room for one value.
        unsafe { f(target, attachment, 0x8CD0, ty.as_mut_ptr() as *mut c_void) };
        match ty[0] {
            0x1702 => reverse_first_i32(s, &mut o, Ns::Texture),
            0x8D41 => reverse_first_i32(s, &mut o, Ns::Renderbuffer),
            _ => {}
        }
    }
    o.finish();
    Ok(Ret::Void)
}

pub fn glGetAttachedShaders(
    s: &mut Session,
    program: u32,
    maxCount: i32,
    count: Option<Chunk>,
    shaders: Option<Chunk>,
) -> R {
    let f = need(s.drv.glGetAttachedShaders, "glGetAttachedShaders")?;
    let program = s.name(Ns::Program, program)?;
    let mut c = OutBuf::new(count);
    let mut sh = OutBuf::new(shaders);
    // SAFETY: sh holds maxCount names (checked by the decoder), c one value.
    unsafe { f(program, maxCount, c.ptr(), sh.ptr()) };
    for w in sh.bytes().chunks_exact_mut(4) {
        let real = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        w.copy_from_slice(&s.names.reverse(Ns::Program, real).to_le_bytes());
    }
    c.finish();
    sh.finish();
    Ok(Ret::Void)
}

/// Components of a uniform of GL type `ty`.
fn uniform_components(ty: u32) -> usize {
    match ty {
        0x1406 | 0x1404 | 0x8B56 | 0x8B5E | 0x8B60 => 1, // FLOAT INT BOOL SAMPLER_2D SAMPLER_CUBE
        0x8B50 | 0x8B53 | 0x8B57 => 2,
        0x8B51 | 0x8B54 | 0x8B58 => 3,
        0x8B52 | 0x8B55 | 0x8B59 | 0x8B5A => 4, // vec4, ivec4, bvec4, mat2
        0x8B5B => 9,
        0x8B5C => 16,
        _ => 16,
    }
}

/// Components of the uniform at `location` of `program`, found through the
/// active uniform list (GL offers no direct query).
fn uniform_size(s: &Session, program: u32, location: i32) -> Option<usize> {
    let gpi = s.drv.glGetProgramiv?;
    let gau = s.drv.glGetActiveUniform?;
    let gul = s.drv.glGetUniformLocation?;
    let mut n = 0i32;
    // SAFETY: one value out.
    unsafe { gpi(program, 0x8B86, &mut n as *mut i32 as *mut c_void) };
    for i in 0..n.clamp(0, 4096) as u32 {
        let mut name = [0u8; 256];
        let (mut len, mut size, mut ty) = (0i32, 0i32, 0u32);
        // SAFETY: buffers sized as passed.
        unsafe {
            gau(
                program,
                i,
                255,
                &mut len as *mut i32 as *mut c_void,
                &mut size as *mut i32 as *mut c_void,
                &mut ty as *mut u32 as *mut c_void,
                name.as_mut_ptr() as *mut c_void,
            )
        };
        let len = (len.clamp(0, 255)) as usize;
        let base = name[..len]
            .strip_suffix(b"[0]")
            .unwrap_or(&name[..len])
            .to_vec();
        for k in 0..size.clamp(1, 1024) {
            let mut q = base.clone();
            if size > 1 {
                q.extend_from_slice(format!("[{k}]").as_bytes());
            }
            q.push(0);
            // SAFETY: NUL-terminated name.
            if unsafe { gul(program, q.as_ptr() as *const c_void) } == location {
                return Some(uniform_components(ty));
            }
        }
    }
    None
}

fn get_uniform(
    s: &mut Session,
    program: u32,
    location: i32,
    params: Option<Chunk>,
    f: unsafe extern "C" fn(u32, i32, *mut c_void),
) -> R {
    let program = s.name(Ns::Program, program)?;
    let n = uniform_size(s, program, location).unwrap_or(0);
    let mut o = OutBuf::new(params);
    // SAFETY: o holds 16 values plus slack, the most any uniform has.
    unsafe { f(program, location, o.ptr()) };
    o.finish();
    Ok(Ret::Value((n * 4) as u64))
}

pub fn glGetUniformfv(s: &mut Session, program: u32, location: i32, params: Option<Chunk>) -> R {
    let f = need(s.drv.glGetUniformfv, "glGetUniformfv")?;
    get_uniform(s, program, location, params, f)
}

pub fn glGetUniformiv(s: &mut Session, program: u32, location: i32, params: Option<Chunk>) -> R {
    let f = need(s.drv.glGetUniformiv, "glGetUniformiv")?;
    get_uniform(s, program, location, params, f)
}

/// The blob is `count` u32 lengths followed by the strings' bytes.
pub fn tsShaderSource(
    s: &mut Session,
    shader: u32,
    count: i32,
    blob: Option<Chunk>,
    len: i32,
) -> R {
    let f = need(s.drv.glShaderSource, "glShaderSource")?;
    let shader = s.name(Ns::Program, shader)?;
    if len < 0 {
        // The application passed a negative count or no strings: the driver
        // reports that with its own order of checks and changes nothing.
        // (A count of 0 or less with no strings never reads memory.)
        // SAFETY: no strings are read for a count of 0 or less.
        unsafe { f(shader, count.min(0), core::ptr::null(), core::ptr::null()) };
        return Ok(Ret::Void);
    }
    let bytes: Vec<u8> = match blob {
        Some(c) => {
            // SAFETY: a checked chunk; copied so the client cannot change it
            // during the call.
            let all = unsafe { core::slice::from_raw_parts(c.ptr, c.len) };
            all[..(len.max(0) as usize).min(c.len)].to_vec()
        }
        None => Vec::new(),
    };
    let n = count.max(0) as usize;
    if n.saturating_mul(4) > bytes.len() {
        return Err(SessionError::Protocol(format!(
            "shader source blob of {} bytes for {n} strings",
            bytes.len()
        )));
    }
    let mut ptrs = Vec::with_capacity(n);
    let mut lens = Vec::with_capacity(n);
    let mut at = n * 4;
    for i in 0..n {
        let l = u32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap_or([0; 4])) as usize;
        if at + l > bytes.len() {
            return Err(SessionError::Protocol(
                "shader source string runs past its blob".into(),
            ));
        }
        ptrs.push(bytes[at..].as_ptr());
        lens.push(l as i32);
        at += l;
    }
    // SAFETY: n pointers and lengths into `bytes`, alive for the call.
    unsafe {
        f(
            shader,
            n as i32,
            ptrs.as_ptr() as *const c_void,
            lens.as_ptr() as *const c_void,
        )
    };
    Ok(Ret::Void)
}

/// Client-memory vertex data: kept in a per-attribute buffer object.
pub fn tsVertexAttribData(
    s: &mut Session,
    index: u32,
    size: i32,
    type_: u32,
    normalized: u8,
    stride: i32,
    data: Option<Chunk>,
    len: i32,
) -> R {
    if index as usize >= s.array_vbos.len() {
        return Err(SessionError::Protocol(format!(
            "vertex data for attribute {index}"
        )));
    }
    let d = s.drv;
    let (gen, bind, data_fn, ptr_fn) = (
        need(d.glGenBuffers, "glGenBuffers")?,
        need(d.glBindBuffer, "glBindBuffer")?,
        need(d.glBufferData, "glBufferData")?,
        need(d.glVertexAttribPointer, "glVertexAttribPointer")?,
    );
    let prev = get_int(s, 0x8894)? as u32;
    let vbo = &mut s.array_vbos[index as usize];
    // SAFETY: driver calls on this session's context with checked data.
    unsafe {
        if *vbo == 0 {
            gen(1, vbo as *mut u32 as *mut c_void);
        }
        bind(0x8892, *vbo);
        data_fn(
            0x8892,
            len.max(0) as isize,
            crate::exec::ptr_in(&data),
            0x88E0,
        );
        ptr_fn(index, size, type_, normalized, stride, core::ptr::null());
        bind(0x8892, prev);
    }
    Ok(Ret::Void)
}

/// A private copy of a heap payload that the driver parses (indices,
/// compressed blocks, shader binaries): the client can write the heap at
/// any time, and a driver that reads such data twice (once to validate or
/// size it, once to use it) must see the same bytes both times.
fn private(c: &Option<Chunk>) -> Option<Vec<u8>> {
    // SAFETY: a checked heap chunk of c.len bytes.
    c.map(|c| unsafe { core::slice::from_raw_parts(c.ptr, c.len) }.to_vec())
}

/// Indices from client memory: drawn with no element buffer bound, from a
/// private copy.
pub fn tsDrawElementsData(
    s: &mut Session,
    mode: u32,
    count: i32,
    type_: u32,
    indices: Option<Chunk>,
) -> R {
    let draw = need(s.drv.glDrawElements, "glDrawElements")?;
    let bind = need(s.drv.glBindBuffer, "glBindBuffer")?;
    if count > 0 {
        check_arrays(s)?;
    }
    let indices = private(&indices);
    let prev = get_int(s, 0x8895)? as u32;
    // SAFETY: indices is a private copy of count * type size bytes.
    unsafe {
        if prev != 0 {
            bind(0x8893, 0);
        }
        draw(mode, count, type_, ptr_opt(&indices));
        if prev != 0 {
            bind(0x8893, prev);
        }
    }
    Ok(Ret::Void)
}

const GL_CURRENT_PROGRAM: u32 = 0x8B8D;
const GL_VERTEX_ATTRIB_ARRAY_ENABLED: u32 = 0x8622;

fn gl_int(f: unsafe extern "C" fn(u32, u32, *mut c_void), a: u32, pname: u32) -> i32 {
    let mut v = [0i32; 4];
    // SAFETY: room for the one value these queries return.
    unsafe { f(a, pname, v.as_mut_ptr() as *mut c_void) };
    v[0]
}

/// Attribute locations the current program reads.
fn program_reads(s: &Session, program: u32, loc: u32) -> Result<bool, SessionError> {
    let gpi = need(s.drv.glGetProgramiv, "glGetProgramiv")?;
    let gaa = need(s.drv.glGetActiveAttrib, "glGetActiveAttrib")?;
    let gal = need(s.drv.glGetAttribLocation, "glGetAttribLocation")?;
    for i in 0..gl_int(gpi, program, 0x8B89).clamp(0, 256) as u32 {
        let mut name = [0u8; 256];
        let (mut len, mut size, mut ty) = (0i32, 0i32, 0u32);
        // SAFETY: buffers sized as passed; the name ends in NUL.
        let at = unsafe {
            gaa(
                program,
                i,
                255,
                &mut len as *mut i32 as *mut c_void,
                &mut size as *mut i32 as *mut c_void,
                &mut ty as *mut u32 as *mut c_void,
                name.as_mut_ptr() as *mut c_void,
            );
            gal(program, name.as_ptr() as *const c_void)
        };
        // Matrices take one location per column.
        let cols = match ty {
            0x8B5A => 2,
            0x8B5B => 3,
            0x8B5C => 4,
            _ => 1,
        };
        if at >= 0 && (at as u32..at as u32 + cols * size.max(1) as u32).contains(&loc) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A draw reads every enabled attribute array the program uses: each must
/// be backed by a buffer (client arrays arrive in the session's own
/// buffers), or its pointer is an address the client chose in the server.
fn check_arrays(s: &mut Session) -> Result<(), SessionError> {
    if s.arrays_ok {
        return Ok(());
    }
    let gva = need(s.drv.glGetVertexAttribiv, "glGetVertexAttribiv")?;
    let max = match s.max_attribs {
        Some(m) => m,
        None => {
            let m = get_int(s, 0x8869)?.clamp(0, 64) as u32;
            s.max_attribs = Some(m);
            m
        }
    };
    let mut program = None;
    for i in 0..max {
        if gl_int(gva, i, GL_VERTEX_ATTRIB_ARRAY_ENABLED) == 0
            || gl_int(gva, i, VERTEX_ATTRIB_ARRAY_BUFFER_BINDING) != 0
        {
            continue;
        }
        // Enabled without a buffer: harmless unless the program reads it.
        let p = match program {
            Some(p) => p,
            None => *program.insert(get_int(s, GL_CURRENT_PROGRAM)? as u32),
        };
        if p != 0 && program_reads(s, p, i)? {
            return Err(SessionError::Protocol(format!(
                "draw reads vertex attribute {i}, enabled with no buffer: its pointer is an address in the server"
            )));
        }
    }
    s.arrays_ok = true;
    Ok(())
}

fn index_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0x1401 => 1,
        0x1403 => 2,
        0x1405 => 4,
        _ => return None,
    })
}

pub fn glDrawArrays(s: &mut Session, mode: u32, first: i32, count: i32) -> R {
    let f = need(s.drv.glDrawArrays, "glDrawArrays")?;
    if count > 0 {
        check_arrays(s)?;
    }
    // SAFETY: every array the draw reads is in a buffer (checked above).
    unsafe { f(mode, first, count) };
    Ok(Ret::Void)
}

/// Indices are an offset into the bound element buffer: one must be bound
/// and hold them all (without one the offset is a server address).
pub fn glDrawElements(s: &mut Session, mode: u32, count: i32, type_: u32, indices: u64) -> R {
    let f = need(s.drv.glDrawElements, "glDrawElements")?;
    if let (true, Some(isz)) = (count > 0, index_size(type_)) {
        check_arrays(s)?;
        if get_int(s, 0x8895)? == 0 {
            return Err(SessionError::Protocol(format!(
                "glDrawElements with no element buffer: indices at address {indices:#x} in the server"
            )));
        }
        let gbp = need(s.drv.glGetBufferParameteriv, "glGetBufferParameteriv")?;
        let size = gl_int(gbp, 0x8893, 0x8764).max(0) as u64;
        if indices.saturating_add(count as u64 * isz) > size {
            return Err(SessionError::Protocol(format!(
                "glDrawElements reads {count} indices at {indices:#x}, past the end of its {size}-byte element buffer"
            )));
        }
    }
    // SAFETY: the indices lie in the bound element buffer (checked above).
    unsafe { f(mode, count, type_, indices as usize as *const c_void) };
    Ok(Ret::Void)
}

pub fn glGetError(s: &mut Session) -> R {
    if !s.gl_errors.is_empty() {
        return Ok(Ret::Value(s.gl_errors.remove(0) as u64));
    }
    let f = need(s.drv.glGetError, "glGetError")?;
    // SAFETY: no arguments.
    Ok(Ret::Value(unsafe { f() } as u64))
}

/// glReadPixels, answering whether the driver wrote the pixels (1) or
/// raised an error (0), so that a client that did not pre-fill its chunk
/// copies nothing back after a failed call. Errors already pending are
/// taken first (kept for glGetError), so the error seen after the call is
/// the call's own.
#[allow(clippy::too_many_arguments)]
pub fn glReadPixels(
    s: &mut Session,
    x: i32,
    y: i32,
    width: i32,
    height: i32,
    format: u32,
    type_: u32,
    pixels: Option<Chunk>,
) -> R {
    let f = need(s.drv.glReadPixels, "glReadPixels")?;
    let ge = need(s.drv.glGetError, "glGetError")?;
    s.drain_gl_errors();
    let mut out = crate::exec::OutBuf::new(pixels);
    // SAFETY: the buffer holds what the driver's pack state makes it write
    // (checked by the size rule; small outputs have slack).
    unsafe { f(x, y, width, height, format, type_, out.ptr()) };
    out.finish();
    // SAFETY: no arguments.
    let e = unsafe { ge() };
    s.keep_gl_error(e);
    Ok(Ret::Value((e == 0) as u64))
}

pub fn glCompressedTexImage2D(
    s: &mut Session,
    target: u32,
    level: i32,
    internalformat: u32,
    width: i32,
    height: i32,
    border: i32,
    imageSize: i32,
    data: Option<Chunk>,
) -> R {
    let f = need(s.drv.glCompressedTexImage2D, "glCompressedTexImage2D")?;
    let data = private(&data);
    // SAFETY: a private copy of imageSize bytes (or NULL, meaningful here).
    unsafe {
        f(
            target,
            level,
            internalformat,
            width,
            height,
            border,
            imageSize,
            ptr_opt(&data),
        )
    };
    Ok(Ret::Void)
}

pub fn glCompressedTexSubImage2D(
    s: &mut Session,
    target: u32,
    level: i32,
    xoffset: i32,
    yoffset: i32,
    width: i32,
    height: i32,
    format: u32,
    imageSize: i32,
    data: Option<Chunk>,
) -> R {
    let f = need(s.drv.glCompressedTexSubImage2D, "glCompressedTexSubImage2D")?;
    let data = private(&data);
    // SAFETY: as for glCompressedTexImage2D.
    unsafe {
        f(
            target,
            level,
            xoffset,
            yoffset,
            width,
            height,
            format,
            imageSize,
            ptr_opt(&data),
        )
    };
    Ok(Ret::Void)
}

pub fn glShaderBinary(
    s: &mut Session,
    count: i32,
    shaders: Option<Chunk>,
    binaryformat: u32,
    binary: Option<Chunk>,
    length: i32,
) -> R {
    let f = need(s.drv.glShaderBinary, "glShaderBinary")?;
    let mut names: Vec<u32> = private(&shaders)
        .unwrap_or_default()
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    for n in names.iter_mut() {
        *n = s.lookup(Ns::Program, *n);
    }
    let binary = private(&binary);
    let names_ptr = if shaders.is_some() {
        names.as_ptr() as *const c_void
    } else {
        crate::exec::ptr_in(&None)
    };
    // SAFETY: private copies of the names (translated) and the binary.
    unsafe {
        f(
            count,
            names_ptr,
            binaryformat,
            binary
                .as_ref()
                .map_or(crate::exec::ptr_in(&None), |b| b.as_ptr() as *const c_void),
            length,
        )
    };
    Ok(Ret::Void)
}

// ---- EGL ----

fn surfaceless_display(s: &mut Session) -> Result<*mut c_void, SessionError> {
    let real = if let Some(f) = s.drv.eglGetPlatformDisplayEXT {
        // SAFETY: valid platform enum, default native display, no attributes.
        unsafe {
            f(
                EGL_PLATFORM_SURFACELESS_MESA,
                core::ptr::null_mut(),
                core::ptr::null(),
            )
        }
    } else {
        let f = need(s.drv.eglGetPlatformDisplay, "eglGetPlatformDisplay")?;
        // SAFETY: as above.
        unsafe {
            f(
                EGL_PLATFORM_SURFACELESS_MESA,
                core::ptr::null_mut(),
                core::ptr::null(),
            )
        }
    };
    s.display = real as usize;
    Ok(real)
}

/// Any native display of the client means the server's surfaceless one.
pub fn eglGetDisplay(s: &mut Session, _display_id: u64) -> R {
    let real = surfaceless_display(s)?;
    Ok(Ret::Value(s.new_handle(Kind::Display, real)))
}

fn platform_display(s: &mut Session, platform: u32) -> R {
    if platform != EGL_PLATFORM_SURFACELESS_MESA {
        s.egl_error = EGL_BAD_PARAMETER;
        return Ok(Ret::Value(0));
    }
    let real = surfaceless_display(s)?;
    Ok(Ret::Value(s.new_handle(Kind::Display, real)))
}

pub fn eglGetPlatformDisplay(
    s: &mut Session,
    platform: u32,
    _native: u64,
    _attrib_list: Option<Vec<isize>>,
) -> R {
    platform_display(s, platform)
}

pub fn eglGetPlatformDisplayEXT(
    s: &mut Session,
    platform: u32,
    _native: u64,
    _attrib_list: Option<Vec<i32>>,
) -> R {
    platform_display(s, platform)
}

/// The display is shared by all clients, so the version reported is the
/// one gpu-share implements (1.4) and eglTerminate only ends this client's
/// use of it.
pub fn eglInitialize(s: &mut Session, dpy: u64, major: Option<Chunk>, minor: Option<Chunk>) -> R {
    let f = need(s.drv.eglInitialize, "eglInitialize")?;
    let (mut ma, mut mi) = (0i32, 0i32);
    // SAFETY: translated display, two ints out.
    let ok = unsafe {
        f(
            s.handle(Kind::Display, dpy),
            &mut ma as *mut i32 as *mut c_void,
            &mut mi as *mut i32 as *mut c_void,
        )
    };
    if ok != 0 {
        put_i32(&major, 0, 1);
        put_i32(&minor, 0, 4);
    }
    Ok(Ret::Value(ok as u64))
}

pub fn eglTerminate(s: &mut Session, dpy: u64) -> R {
    let real = s.handle(Kind::Display, dpy);
    if real as usize != s.display || real.is_null() {
        let f = need(s.drv.eglTerminate, "eglTerminate")?;
        // SAFETY: a handle the driver does not know only yields an error.
        return Ok(Ret::Value(unsafe { f(real) } as u64));
    }
    s.cleanup();
    for (id, _) in s
        .handles
        .all(Kind::Surface)
        .into_iter()
        .chain(s.handles.all(Kind::Context))
    {
        let k = if id >> 24 == Kind::Surface as u64 + 1 {
            Kind::Surface
        } else {
            Kind::Context
        };
        s.handles.forget(k, id);
    }
    s.windows.clear();
    s.first_context = 0;
    Ok(Ret::Value(1))
}

pub fn eglQueryString(s: &mut Session, dpy: u64, name: i32) -> R {
    let f = need(s.drv.eglQueryString, "eglQueryString")?;
    // SAFETY: translated display (or NULL for client extensions).
    Ok(c_string(unsafe { f(s.handle(Kind::Display, dpy), name) }))
}

pub fn eglGetError(s: &mut Session) -> R {
    let e = core::mem::take(&mut s.egl_error);
    if e != 0 {
        return Ok(Ret::Value(e as u64));
    }
    let f = need(s.drv.eglGetError, "eglGetError")?;
    // SAFETY: no arguments.
    Ok(Ret::Value(unsafe { f() } as u64))
}

/// Window surfaces are pbuffers on the server, so configs that can do
/// pbuffers also answer for windows.
fn window_to_pbuffer(attribs: &Option<Vec<i32>>) -> Option<Vec<i32>> {
    attribs.as_ref().map(|a| {
        let mut a = a.clone();
        let mut i = 0;
        while i + 1 < a.len() && a[i] != EGL_NONE {
            if a[i] == EGL_SURFACE_TYPE
                && a[i + 1] != -1
                && a[i + 1] & (EGL_WINDOW_BIT | EGL_PIXMAP_BIT) != 0
            {
                a[i + 1] = (a[i + 1] & !(EGL_WINDOW_BIT | EGL_PIXMAP_BIT)) | EGL_PBUFFER_BIT;
            }
            i += 2;
        }
        a
    })
}

fn configs_out(s: &mut Session, real: &[*mut c_void], n: i32, configs: &Option<Chunk>) {
    for (i, c) in real.iter().take(n.max(0) as usize).enumerate() {
        let id = s.new_handle(Kind::Config, *c);
        put_u64(configs, i, id);
    }
}

/// eglChooseConfig and eglGetConfigs: the driver fills driver handles into a
/// local array, the client gets config ids. `call` receives the array (or
/// NULL), its capacity and where to put the count (or NULL).
fn query_configs(
    s: &mut Session,
    configs: Option<Chunk>,
    config_size: i32,
    num_config: Option<Chunk>,
    call: impl FnOnce(*mut c_void, i32, *mut c_void) -> u32,
) -> R {
    let mut real = vec![core::ptr::null_mut::<c_void>(); config_size.clamp(0, 4096) as usize];
    let mut n = 0i32;
    let out = if configs.is_some() {
        real.as_mut_ptr() as *mut c_void
    } else {
        core::ptr::null_mut()
    };
    let np = if num_config.is_some() {
        &mut n as *mut i32 as *mut c_void
    } else {
        core::ptr::null_mut()
    };
    let ok = call(out, config_size.min(4096), np);
    if ok != 0 && configs.is_some() {
        configs_out(s, &real, n.min(real.len() as i32), &configs);
    }
    put_i32(&num_config, 0, n);
    Ok(Ret::Value(ok as u64))
}

pub fn eglChooseConfig(
    s: &mut Session,
    dpy: u64,
    attrib_list: Option<Vec<i32>>,
    configs: Option<Chunk>,
    config_size: i32,
    num_config: Option<Chunk>,
) -> R {
    let f = need(s.drv.eglChooseConfig, "eglChooseConfig")?;
    let attrs = window_to_pbuffer(&attrib_list);
    let d = s.handle(Kind::Display, dpy);
    // SAFETY: the array holds `size` handles (clamped); the list is terminated.
    query_configs(
        s,
        configs,
        config_size,
        num_config,
        |out, size, np| unsafe { f(d, ptr_opt(&attrs), out, size, np) },
    )
}

pub fn eglGetConfigs(
    s: &mut Session,
    dpy: u64,
    configs: Option<Chunk>,
    config_size: i32,
    num_config: Option<Chunk>,
) -> R {
    let f = need(s.drv.eglGetConfigs, "eglGetConfigs")?;
    let d = s.handle(Kind::Display, dpy);
    // SAFETY: as for eglChooseConfig.
    query_configs(
        s,
        configs,
        config_size,
        num_config,
        |out, size, np| unsafe { f(d, out, size, np) },
    )
}

pub fn eglGetConfigAttrib(
    s: &mut Session,
    dpy: u64,
    config: u64,
    attribute: i32,
    value: Option<Chunk>,
) -> R {
    let f = need(s.drv.eglGetConfigAttrib, "eglGetConfigAttrib")?;
    let mut v = 0i32;
    let vp = if value.is_some() {
        &mut v as *mut i32 as *mut c_void
    } else {
        core::ptr::null_mut()
    };
    // SAFETY: translated handles, one int out.
    let ok = unsafe {
        f(
            s.handle(Kind::Display, dpy),
            s.handle(Kind::Config, config),
            attribute,
            vp,
        )
    };
    if ok != 0 && attribute == EGL_SURFACE_TYPE && v & EGL_PBUFFER_BIT != 0 {
        v |= EGL_WINDOW_BIT;
    }
    if ok != 0 {
        put_i32(&value, 0, v);
    }
    Ok(Ret::Value(ok as u64))
}

const EGL_CONTEXT_PRIORITY_LEVEL_IMG: i32 = 0x3100;
const EGL_CONTEXT_PRIORITY_HIGH_IMG: i32 = 0x3101;

/// Whether the driver's display has EGL_IMG_context_priority.
fn has_context_priority(s: &Session, dpy: *mut c_void) -> bool {
    let Some(q) = s.drv.eglQueryString else {
        return false;
    };
    // SAFETY: a display of this session; EGL_EXTENSIONS.
    match c_string(unsafe { q(dpy, 0x3055) }) {
        Ret::Str(Some(e)) => e
            .split(|b| *b == b' ')
            .any(|w| w == b"EGL_IMG_context_priority"),
        _ => false,
    }
}

/// The client's attributes with a high context priority (the cluster's).
fn with_high_priority(list: Option<Vec<i32>>) -> Vec<i32> {
    let mut a: Vec<i32> = list
        .unwrap_or_default()
        .chunks_exact(2)
        .filter(|p| p[0] != EGL_CONTEXT_PRIORITY_LEVEL_IMG)
        .flat_map(|p| [p[0], p[1]])
        .collect();
    a.extend_from_slice(&[
        EGL_CONTEXT_PRIORITY_LEVEL_IMG,
        EGL_CONTEXT_PRIORITY_HIGH_IMG,
        EGL_NONE,
    ]);
    a
}

pub fn eglCreateContext(
    s: &mut Session,
    dpy: u64,
    config: u64,
    share_context: u64,
    attrib_list: Option<Vec<i32>>,
) -> R {
    let f = need(s.drv.eglCreateContext, "eglCreateContext")?;
    let d = s.handle(Kind::Display, dpy);
    let c = s.handle(Kind::Config, config);
    let attrib_list = if s.sched.cluster && has_context_priority(s, d) {
        Some(with_high_priority(attrib_list))
    } else {
        attrib_list
    };
    let attrs = ptr_opt(&attrib_list);
    let share = s.handle(Kind::Context, share_context);
    let implicit = share.is_null() && s.first_context != 0;
    let first = s.first_context as *mut c_void;
    // SAFETY: translated handles and a terminated attribute list.
    let mut ctx = unsafe { f(d, c, if implicit { first } else { share }, attrs) };
    if ctx.is_null() && implicit {
        // Sharing is our addition; if the driver refuses it, do without.
        // SAFETY: as above.
        ctx = unsafe { f(d, c, core::ptr::null_mut(), attrs) };
        if !ctx.is_null() {
            // Clear the error of the refused attempt.
            if let Some(e) = s.drv.eglGetError {
                // SAFETY: no arguments.
                unsafe { e() };
            }
        }
    }
    if !ctx.is_null() && s.first_context == 0 {
        s.first_context = ctx as usize;
    }
    Ok(Ret::Value(s.new_handle(Kind::Context, ctx)))
}

pub fn eglDestroyContext(s: &mut Session, dpy: u64, ctx_: u64) -> R {
    let f = need(s.drv.eglDestroyContext, "eglDestroyContext")?;
    let real = s.handle(Kind::Context, ctx_);
    // SAFETY: translated handles.
    let ok = unsafe { f(s.handle(Kind::Display, dpy), real) };
    if ok != 0 {
        s.handles.forget(Kind::Context, ctx_);
        if s.first_context == real as usize {
            s.first_context = 0;
        }
    }
    Ok(Ret::Value(ok as u64))
}

pub fn eglDestroySurface(s: &mut Session, dpy: u64, surface: u64) -> R {
    let f = need(s.drv.eglDestroySurface, "eglDestroySurface")?;
    let real = s.handle(Kind::Surface, surface);
    // SAFETY: translated handles.
    let ok = unsafe { f(s.handle(Kind::Display, dpy), real) };
    if ok != 0 {
        s.handles.forget(Kind::Surface, surface);
        s.windows.remove(&(real as usize));
    }
    Ok(Ret::Value(ok as u64))
}

fn window_surface(s: &mut Session, dpy: u64, config: u64, win: u64) -> R {
    let f = need(s.drv.eglCreatePbufferSurface, "eglCreatePbufferSurface")?;
    let (w, h) = (win as u32, (win >> 32) as u32);
    let attrs = [
        EGL_WIDTH,
        w.min(MAX_WINDOW) as i32,
        EGL_HEIGHT,
        h.min(MAX_WINDOW) as i32,
        EGL_NONE,
    ];
    // SAFETY: translated handles and a terminated attribute list.
    let surf = unsafe {
        f(
            s.handle(Kind::Display, dpy),
            s.handle(Kind::Config, config),
            attrs.as_ptr() as *const c_void,
        )
    };
    if !surf.is_null() {
        s.windows
            .insert(surf as usize, (w.min(MAX_WINDOW), h.min(MAX_WINDOW)));
    }
    Ok(Ret::Value(s.new_handle(Kind::Surface, surf)))
}

pub fn eglCreateWindowSurface(
    s: &mut Session,
    dpy: u64,
    config: u64,
    win: u64,
    _attrib_list: Option<Vec<i32>>,
) -> R {
    window_surface(s, dpy, config, win)
}

pub fn eglCreatePlatformWindowSurfaceEXT(
    s: &mut Session,
    dpy: u64,
    config: u64,
    native_window: u64,
    _attrib_list: Option<Vec<i32>>,
) -> R {
    window_surface(s, dpy, config, native_window)
}

fn no_pixmaps(s: &mut Session) -> R {
    s.egl_error = EGL_BAD_NATIVE_PIXMAP;
    Ok(Ret::Value(0))
}

pub fn eglCreatePixmapSurface(
    s: &mut Session,
    _dpy: u64,
    _config: u64,
    _pixmap: u64,
    _attrib_list: Option<Vec<i32>>,
) -> R {
    no_pixmaps(s)
}

pub fn eglCreatePlatformPixmapSurfaceEXT(
    s: &mut Session,
    _dpy: u64,
    _config: u64,
    _pixmap: u64,
    _attrib_list: Option<Vec<i32>>,
) -> R {
    no_pixmaps(s)
}

pub fn eglCopyBuffers(s: &mut Session, _dpy: u64, _surface: u64, _target: u64) -> R {
    no_pixmaps(s)
}

pub fn eglCreatePbufferFromClientBuffer(
    s: &mut Session,
    _dpy: u64,
    _buftype: u32,
    _buffer: u64,
    _config: u64,
    _attrib_list: Option<Vec<i32>>,
) -> R {
    // No client buffer types (OpenVG images) exist on this path.
    s.egl_error = EGL_BAD_PARAMETER;
    Ok(Ret::Value(0))
}

/// Swap: a window surface's frame is read back and kept as the client's
/// newest frame.
pub fn eglSwapBuffers(s: &mut Session, dpy: u64, surface: u64) -> R {
    let f = need(s.drv.eglSwapBuffers, "eglSwapBuffers")?;
    let real = s.handle(Kind::Surface, surface);
    // SAFETY: translated handles.
    let ok = unsafe { f(s.handle(Kind::Display, dpy), real) };
    let cur = s.drv.eglGetCurrentSurface.map(|g| {
        // SAFETY: no pointers involved.
        unsafe { g(EGL_DRAW) }
    });
    if let (1, Some((w, h)), Some(c)) = (ok, s.windows.get(&(real as usize)).copied(), cur) {
        if c == real {
            capture(s, w, h)?;
        }
    }
    Ok(Ret::Value(ok as u64))
}

fn capture(s: &mut Session, w: u32, h: u32) -> Result<(), SessionError> {
    let d = s.drv;
    let (read, bind, store) = (
        need(d.glReadPixels, "glReadPixels")?,
        need(d.glBindFramebuffer, "glBindFramebuffer")?,
        need(d.glPixelStorei, "glPixelStorei")?,
    );
    let fb = get_int(s, 0x8CA6)? as u32;
    // Every pack parameter the driver honours is set to its default for
    // the read and restored after: the client's row length and skips must
    // not size a read into the server's buffer.
    let mut saved = vec![(0x0D05, get_int(s, 0x0D05)?, 1)];
    if s.subimage.is_some_and(|a| a[1]) {
        for p in [0x0D02, 0x0D03, 0x0D04] {
            saved.push((p, get_int(s, p)?, 0));
        }
    }
    let mut rgba = vec![0u8; w as usize * h as usize * 4];
    // SAFETY: rgba holds w*h RGBA pixels with default packing; state restored.
    unsafe {
        bind(0x8D40, 0);
        for (p, _, v) in &saved {
            store(*p, *v);
        }
        read(
            0,
            0,
            w as i32,
            h as i32,
            0x1908,
            0x1401,
            rgba.as_mut_ptr() as *mut c_void,
        );
        for (p, v, _) in &saved {
            store(*p, *v);
        }
        bind(0x8D40, fb);
    }
    s.frames.put(
        s.id,
        Frame {
            width: w,
            height: h,
            rgba,
            seq: 0,
        },
    );
    Ok(())
}
