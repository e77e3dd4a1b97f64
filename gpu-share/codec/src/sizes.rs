//! Size rules used by the annotations' length expressions.
//!
//! Both ends evaluate the same rules: the client against its shadow state to
//! know how many bytes to send, the server against the driver's state to know
//! how many bytes the driver will touch. Unknown enums count as zero bytes
//! (the driver rejects them), except where noted.

/// Pixel store state of one direction (unpack = to GL, pack = from GL).
/// Row length and skips come from EXT_unpack_subimage / NV_pack_subimage,
/// which drivers offer on GLES 2; they change how many bytes GL touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelStore {
    pub alignment: i64,
    pub row_length: i64,
    pub skip_rows: i64,
    pub skip_pixels: i64,
}

impl Default for PixelStore {
    fn default() -> Self {
        PixelStore {
            alignment: 4,
            row_length: 0,
            skip_rows: 0,
            skip_pixels: 0,
        }
    }
}

impl PixelStore {
    /// Applies glPixelStorei(pname, v) if pname belongs to this direction
    /// (`base` is the direction's ROW_LENGTH enum) and the value is legal.
    pub fn set(&mut self, base: u32, align_pname: u32, pname: u32, v: i32) {
        let v = v as i64;
        match pname {
            p if p == align_pname && matches!(v, 1 | 2 | 4 | 8) => self.alignment = v,
            p if p == base && v >= 0 => self.row_length = v,
            p if p == base + 1 && v >= 0 => self.skip_rows = v,
            p if p == base + 2 && v >= 0 => self.skip_pixels = v,
            _ => {}
        }
    }
}

pub const UNPACK_ROW_LENGTH: u32 = 0x0CF2;
pub const UNPACK_ALIGNMENT: u32 = 0x0CF5;
pub const PACK_ROW_LENGTH: u32 = 0x0D02;
pub const PACK_ALIGNMENT: u32 = 0x0D05;

/// State the size rules depend on.
pub trait SizeCtx {
    fn unpack(&self) -> PixelStore;
    fn pack(&self) -> PixelStore;
    /// GL_NUM_COMPRESSED_TEXTURE_FORMATS.
    fn num_compressed_formats(&self) -> i64;
    /// GL_NUM_SHADER_BINARY_FORMATS.
    fn num_shader_binary_formats(&self) -> i64;

    fn unpack_image(&self, w: i64, h: i64, format: i64, ty: i64) -> i64 {
        image_size(w, h, format, ty, self.unpack())
    }
    fn pack_image(&self, w: i64, h: i64, format: i64, ty: i64) -> i64 {
        image_size(w, h, format, ty, self.pack())
    }
    /// Values returned by glGet{Integer,Float,Boolean}v for `pname`.
    fn pname_count(&self, pname: i64) -> i64 {
        match pname {
            0x86A3 => self.num_compressed_formats(),
            0x8DF8 => self.num_shader_binary_formats(),
            _ => pname_count(pname),
        }
    }
    /// Values of a texture parameter (border colour has four).
    fn tex_pname_count(&self, pname: i64) -> i64 {
        if pname == 0x1004 {
            4
        } else {
            1
        }
    }
    /// Bytes of one index of a glDrawElements type.
    fn typesize(&self, ty: i64) -> i64 {
        match ty {
            0x1401 => 1,
            0x1403 => 2,
            0x1405 => 4,
            _ => 0,
        }
    }
}

/// Fixed counts of the GLES 2.0 glGet pnames that return more than one value.
pub fn pname_count(pname: i64) -> i64 {
    match pname {
        0x846D | 0x846E | 0x0B70 | 0x0D3A => 2,
        0x8005 | 0x0C22 | 0x0C23 | 0x0C10 | 0x0BA2 => 4,
        _ => 1,
    }
}

fn components(format: i64) -> Option<i64> {
    Some(match format {
        0x1906 | 0x1909 | 0x1902 | 0x1903 | 0x1901 | 0x84F9 => 1, // ALPHA LUMINANCE DEPTH RED STENCIL DEPTH_STENCIL
        0x190A | 0x8227 => 2,                                     // LUMINANCE_ALPHA RG
        0x1907 => 3,                                              // RGB
        0x1908 | 0x80E1 => 4,                                     // RGBA BGRA
        _ => return None,
    })
}

/// Bytes per pixel of a (format, type) pair, None if either is unknown.
pub fn pixel_size(format: i64, ty: i64) -> Option<i64> {
    let c = components(format)?;
    Some(match ty {
        0x1400 | 0x1401 => c,                            // BYTE, UNSIGNED_BYTE
        0x1402 | 0x1403 | 0x8D61 | 0x140B => c * 2,      // SHORT, UNSIGNED_SHORT, HALF_FLOAT(_OES)
        0x1404..=0x1406 => c * 4,                        // INT, UNSIGNED_INT, FLOAT
        0x8363 | 0x8033 | 0x8034 | 0x8365 | 0x8366 => 2, // packed 16-bit types
        0x84FA | 0x8368 => 4,                            // UNSIGNED_INT_24_8, 2_10_10_10_REV
        _ => return None,
    })
}

/// Bytes GL touches for a `w`x`h` image under pixel store state `ps`: rows
/// of `row_length` (or `w`) pixels padded to the alignment, starting after
/// the skipped rows and pixels.
pub fn image_size(w: i64, h: i64, format: i64, ty: i64, ps: PixelStore) -> i64 {
    if w <= 0 || h <= 0 {
        return 0;
    }
    let Some(px) = pixel_size(format, ty) else {
        return 0;
    };
    let align = if matches!(ps.alignment, 1 | 2 | 4 | 8) {
        ps.alignment
    } else {
        4
    };
    let row_px = if ps.row_length > 0 { ps.row_length } else { w };
    let stride = row_px.saturating_mul(px).saturating_add(align - 1) / align * align;
    let rows = ps.skip_rows.max(0).saturating_add(h - 1);
    let last = ps.skip_pixels.max(0).saturating_add(w).saturating_mul(px);
    stride.saturating_mul(rows).saturating_add(last)
}
