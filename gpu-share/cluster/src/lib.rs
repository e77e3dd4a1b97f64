//! The cockpit's instrument cluster: a speedometer and a rev counter whose
//! needles move, and two telltales that blink, drawn with OpenGL ES 2.0
//! through gpu-share's `no_std` front-end. Everything about the picture
//! depends on the frame number only, so a reference rendering of any frame
//! can be made again outside the VMs.
//!
//! Each frame carries its number in a stamp a test reads back: in the top
//! left corner a black band with [`STAMP_BLOCKS`] white-or-black squares of
//! [`STAMP_SIZE`] pixels, [`STAMP_PITCH`] apart from x = [`STAMP_X`],
//! y = [`STAMP_Y`] from the top: a white start block, the 16 low bits of
//! the frame number (most significant first, white = 1), a white end
//! block. Drawn by scissored clears, so its pixels are exact.
#![no_std]

extern crate alloc;

pub mod stats;

use gpu_codec::{enc, EncodeError};
use gpu_frontend::Client;
use gpu_wire::Doorbell;

pub const WIDTH: u32 = 256;
pub const HEIGHT: u32 = 256;
pub const STAMP_X: u32 = 4;
pub const STAMP_Y: u32 = 4;
pub const STAMP_SIZE: u32 = 8;
pub const STAMP_PITCH: u32 = 10;
pub const STAMP_BLOCKS: u32 = 18;

const GL_ARRAY_BUFFER: u32 = 0x8892;
const GL_STATIC_DRAW: u32 = 0x88E4;
const GL_FLOAT: u32 = 0x1406;
const GL_TRIANGLE_STRIP: u32 = 5;
const GL_COLOR_BUFFER_BIT: u32 = 0x4000;
const GL_SCISSOR_TEST: u32 = 0x0C11;
const GL_VERTEX_SHADER: u32 = 0x8B31;
const GL_FRAGMENT_SHADER: u32 = 0x8B30;
const GL_LINK_STATUS: u32 = 0x8B82;
const GL_FRAMEBUFFER: u32 = 0x8D40;
const GL_FRAMEBUFFER_COMPLETE: u32 = 0x8CD5;

const VS: &[u8] = b"attribute vec2 pos; varying vec2 v;
void main() { v = pos; gl_Position = vec4(pos, 0.0, 1.0); }";

/// Two dials (ring, ticks, needle) and two telltales, from uniforms.
const FS: &[u8] = b"precision highp float; varying vec2 v;
uniform vec2 needle; uniform float blink;
float seg(vec2 p, vec2 a, vec2 b) {
  vec2 pa = p - a, ba = b - a;
  float h = clamp(dot(pa, ba) / dot(ba, ba), 0.0, 1.0);
  return length(pa - ba * h);
}
vec3 dial(vec2 p, vec2 c, float ang, vec3 col) {
  float r = 0.42; vec2 d = p - c; float l = length(d);
  vec3 o = vec3(0.0);
  if (abs(l - r) < 0.015) o = vec3(0.6);
  float a = atan(d.y, d.x);
  if (l > r - 0.07 && l < r - 0.02 && abs(fract(a / 0.3927 + 0.5) - 0.5) < 0.08) o = vec3(0.8);
  if (seg(p, c, c + 0.9 * r * vec2(cos(ang), sin(ang))) < 0.014) o = col;
  if (l < 0.03) o = vec3(0.9);
  return o;
}
void main() {
  vec3 col = vec3(0.03, 0.03, 0.08);
  col += dial(v, vec2(-0.5, -0.05), needle.x, vec3(1.0, 0.45, 0.0));
  col += dial(v, vec2(0.5, -0.05), needle.y, vec3(0.2, 0.8, 1.0));
  if (v.y < -0.7 && v.y > -0.85) {
    if (abs(v.x + 0.3) < 0.08 && blink > 0.5) col = vec3(0.0, 0.9, 0.1);
    if (abs(v.x - 0.3) < 0.08 && blink < 0.5) col = vec3(1.0, 0.7, 0.0);
  }
  gl_FragColor = vec4(col, 1.0);
}";

/// Needle angles (radians) and telltale phase of frame `n`.
pub fn instruments(n: u32) -> (f32, f32, f32) {
    // Integer arithmetic first, so every build gives the same floats.
    let speed = (n % 240) as f32 / 240.0;
    let rpm = ((n * 7) % 180) as f32 / 180.0;
    let sweep = |t: f32| 3.75 - t * 4.3;
    (sweep(speed), sweep(rpm), ((n / 15) % 2) as f32)
}

/// The cluster's GL session: context, window surface, program, quad.
pub struct Cluster<D: Doorbell> {
    pub c: Client<D>,
    dpy: u64,
    surf: u64,
    u_needle: i32,
    u_blink: i32,
}

fn check(ok: bool) -> Result<(), EncodeError> {
    if ok {
        Ok(())
    } else {
        Err(EncodeError::BadArg)
    }
}

impl<D: Doorbell> Cluster<D> {
    /// Sets up EGL (surfaceless display, a [`WIDTH`]x[`HEIGHT`] window
    /// surface) and the program on a connected client.
    pub fn new(mut c: Client<D>) -> Result<Self, EncodeError> {
        let dpy = enc::eglGetPlatformDisplayEXT(&mut c, 0x31DD, 0, None)?;
        check(enc::eglInitialize(&mut c, dpy, None, None)? == 1)?;
        enc::eglBindAPI(&mut c, 0x30A0)?;
        let attrs = [
            0x3033, 0x4, 0x3024, 8, 0x3023, 8, 0x3022, 8, 0x3040, 4, 0x3038,
        ];
        let (mut cfg, mut n) = ([0u8; 8], [0u8; 4]);
        enc::eglChooseConfig(&mut c, dpy, Some(&attrs), Some(&mut cfg), 1, Some(&mut n))?;
        let cfg = u64::from_le_bytes(cfg);
        let ctx = enc::eglCreateContext(&mut c, dpy, cfg, 0, Some(&[0x3098, 2, 0x3038]))?;
        let surf = c.egl_create_window_surface(dpy, cfg, WIDTH, HEIGHT, None)?;
        check(ctx != 0 && surf != 0)?;
        check(c.egl_make_current(dpy, surf, surf, ctx)? == 1)?;
        let p = program(&mut c, FS)?;
        let u_needle = enc::glGetUniformLocation(&mut c, p, Some(b"needle\0"))?;
        let u_blink = enc::glGetUniformLocation(&mut c, p, Some(b"blink\0"))?;
        let mut vbo = [0u32];
        enc::glGenBuffers(&mut c, 1, &mut vbo)?;
        c.bind_buffer(GL_ARRAY_BUFFER, vbo[0])?;
        let quad: [f32; 8] = [-1.0, -1.0, 1.0, -1.0, -1.0, 1.0, 1.0, 1.0];
        let mut bytes = [0u8; 32];
        for (i, f) in quad.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&f.to_le_bytes());
        }
        c.buffer_data(GL_ARRAY_BUFFER, 32, Some(&bytes), GL_STATIC_DRAW)?;
        c.vertex_attrib_pointer(0, 2, GL_FLOAT, 0, 0, 0)?;
        c.enable_attrib(0, true)?;
        enc::glViewport(&mut c, 0, 0, WIDTH as i32, HEIGHT as i32)?;
        Ok(Cluster {
            c,
            dpy,
            surf,
            u_needle,
            u_blink,
        })
    }

    /// Draws frame `n` and presents it (eglSwapBuffers).
    pub fn draw(&mut self, n: u32) -> Result<(), EncodeError> {
        self.render(n)?;
        self.present()
    }

    /// Presents what was rendered: the frame's one synchronous call (the
    /// calls before it are queued), so it waits for the server to run them.
    pub fn present(&mut self) -> Result<(), EncodeError> {
        check(enc::eglSwapBuffers(&mut self.c, self.dpy, self.surf)? == 1)
    }

    /// One synchronous call that must reach the server and changes
    /// nothing (glCheckFramebufferStatus): a round trip to measure.
    pub fn sync_call(&mut self) -> Result<(), EncodeError> {
        check(
            enc::glCheckFramebufferStatus(&mut self.c, GL_FRAMEBUFFER)? == GL_FRAMEBUFFER_COMPLETE,
        )
    }

    /// Draws frame `n` without presenting it.
    pub fn render(&mut self, n: u32) -> Result<(), EncodeError> {
        let c = &mut self.c;
        let (speed, rpm, blink) = instruments(n);
        enc::glUniform2f(c, self.u_needle, speed, rpm)?;
        enc::glUniform1f(c, self.u_blink, blink)?;
        enc::glDrawArrays(c, GL_TRIANGLE_STRIP, 0, 4)?;
        stamp(c, n, HEIGHT)
    }

    /// Reads the drawn picture back: RGBA, bottom row first.
    pub fn read_back(&mut self, out: &mut [u8]) -> Result<(), EncodeError> {
        let (w, h) = (WIDTH as i32, HEIGHT as i32);
        enc::glReadPixels(&mut self.c, 0, 0, w, h, 0x1908, 0x1401, Some(out))
    }
}

/// Links the quad's vertex shader (attribute 0 `pos`, varying `v`) with
/// fragment shader `fs` and makes it current.
pub fn program<D: Doorbell>(c: &mut Client<D>, fs: &[u8]) -> Result<u32, EncodeError> {
    let p = enc::glCreateProgram(c)?;
    for (ty, src) in [(GL_VERTEX_SHADER, VS), (GL_FRAGMENT_SHADER, fs)] {
        let s = enc::glCreateShader(c, ty)?;
        c.shader_source(s, &[src])?;
        enc::glCompileShader(c, s)?;
        enc::glAttachShader(c, p, s)?;
    }
    enc::glBindAttribLocation(c, p, 0, Some(b"pos\0"))?;
    enc::glLinkProgram(c, p)?;
    let mut ok = [0u8; 4];
    enc::glGetProgramiv(c, p, GL_LINK_STATUS, Some(&mut ok))?;
    check(ok == [1, 0, 0, 0])?;
    enc::glUseProgram(c, p)?;
    Ok(p)
}

/// Draws the quad with the current program (a flood's heavy draw).
pub fn quad<D: Doorbell>(c: &mut Client<D>) -> Result<(), EncodeError> {
    enc::glDrawArrays(c, GL_TRIANGLE_STRIP, 0, 4)
}

/// Draws the frame-number stamp (module comment) into a surface
/// `height` pixels high; leaves the scissor test off.
pub fn stamp<D: Doorbell>(c: &mut Client<D>, n: u32, height: u32) -> Result<(), EncodeError> {
    let clear = |c: &mut Client<D>, x: u32, y: u32, w: u32, h: u32, v: f32| {
        // GL counts rows from the bottom.
        enc::glScissor(c, x as i32, (height - y - h) as i32, w as i32, h as i32)?;
        enc::glClearColor(c, v, v, v, 1.0)?;
        enc::glClear(c, GL_COLOR_BUFFER_BIT)
    };
    enc::glEnable(c, GL_SCISSOR_TEST)?;
    let band = STAMP_X + STAMP_BLOCKS * STAMP_PITCH;
    clear(c, 0, 0, band, STAMP_Y * 2 + STAMP_SIZE, 0.0)?;
    for i in 0..STAMP_BLOCKS {
        let on = i == 0 || i == STAMP_BLOCKS - 1 || (n >> (16 - i)) & 1 == 1;
        if on {
            let x = STAMP_X + i * STAMP_PITCH;
            clear(c, x, STAMP_Y, STAMP_SIZE, STAMP_SIZE, 1.0)?;
        }
    }
    enc::glDisable(c, GL_SCISSOR_TEST)
}
