//! Client-side copies of state the client can know without asking.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use gpu_codec::{PixelStore, SizeCtx};

pub const MAX_ATTRIBS: usize = 16;
/// Largest buffer the client keeps a copy of.
pub const MAX_INDEX_COPY: usize = 16 << 20;

/// One vertex attribute array as the application set it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attrib {
    pub enabled: bool,
    /// True when the pointer is client memory (no buffer was bound).
    pub client: bool,
    pub size: i32,
    pub ty: u32,
    pub normalized: u8,
    pub stride: i32,
    /// Client address, or offset into the bound buffer.
    pub ptr: usize,
}

/// What a vertex array object holds of the shadow state.
#[derive(Debug, Clone, Copy, Default)]
pub struct VertexArrayState {
    pub attribs: [Attrib; MAX_ATTRIBS],
    pub element_array_buffer: u32,
}

#[derive(Debug)]
pub struct Shadow {
    pub unpack: PixelStore,
    pub pack: PixelStore,
    pub num_compressed_formats: Option<i64>,
    pub num_shader_binary_formats: Option<i64>,
    pub array_buffer: u32,
    pub element_array_buffer: u32,
    /// Copies of buffers' contents (up to [`MAX_INDEX_COPY`] bytes each),
    /// so that draws from client arrays with indices in a buffer know how
    /// many vertices to send. Kept for buffers filled through either
    /// target, since any buffer may be bound as the element buffer later.
    pub buffer_copies: BTreeMap<u32, Vec<u8>>,
    pub attribs: [Attrib; MAX_ATTRIBS],
    /// The bound vertex array object (OES_vertex_array_object; 0 is the
    /// default one). `attribs` and `element_array_buffer` are its state.
    pub vertex_array: u32,
    /// The state of the other vertex array objects the application
    /// generated (and of the default one while another is bound).
    pub vertex_arrays: BTreeMap<u32, VertexArrayState>,
    /// Results of glGetIntegerv for limits that never change.
    pub limits: BTreeMap<u32, Vec<i32>>,
    /// A GL error raised by the front-end itself, reported first.
    pub gl_error: u32,
    pub egl_error: i32,
    /// Current EGL display, draw, read surface and context (client handles).
    pub current: [u64; 4],
}

impl Default for Shadow {
    fn default() -> Self {
        Shadow {
            unpack: PixelStore::default(),
            pack: PixelStore::default(),
            num_compressed_formats: None,
            num_shader_binary_formats: None,
            array_buffer: 0,
            element_array_buffer: 0,
            buffer_copies: BTreeMap::new(),
            attribs: [Attrib::default(); MAX_ATTRIBS],
            vertex_array: 0,
            vertex_arrays: BTreeMap::new(),
            limits: BTreeMap::new(),
            gl_error: 0,
            egl_error: 0,
            current: [0; 4],
        }
    }
}

impl SizeCtx for Shadow {
    fn unpack(&self) -> PixelStore {
        self.unpack
    }
    fn pack(&self) -> PixelStore {
        self.pack
    }
    fn num_compressed_formats(&self) -> i64 {
        self.num_compressed_formats.unwrap_or(0)
    }
    fn num_shader_binary_formats(&self) -> i64 {
        self.num_shader_binary_formats.unwrap_or(0)
    }
}

/// Limits that cannot change during a context's life, so one query serves.
pub const CONSTANT_PNAMES: &[u32] = &[
    0x0D33, // MAX_TEXTURE_SIZE
    0x8869, // MAX_VERTEX_ATTRIBS
    0x8872, // MAX_TEXTURE_IMAGE_UNITS
    0x8B4D, // MAX_COMBINED_TEXTURE_IMAGE_UNITS
    0x8B4C, // MAX_VERTEX_TEXTURE_IMAGE_UNITS
    0x851C, // MAX_CUBE_MAP_TEXTURE_SIZE
    0x84E8, // MAX_RENDERBUFFER_SIZE
    0x0D3A, // MAX_VIEWPORT_DIMS
    0x8DFB, // MAX_VERTEX_UNIFORM_VECTORS
    0x8DFD, // MAX_FRAGMENT_UNIFORM_VECTORS
    0x8DFC, // MAX_VARYING_VECTORS
    0x86A2, // NUM_COMPRESSED_TEXTURE_FORMATS
    0x8DF9, // NUM_SHADER_BINARY_FORMATS
    0x0D50, // SUBPIXEL_BITS
];
