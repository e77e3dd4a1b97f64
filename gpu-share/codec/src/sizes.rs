//! Size rules used by the annotations' length expressions.
//!
//! Both ends evaluate the same rules: the client against its shadow state to
//! know how many bytes to send, the server against the driver's state to know
//! how many bytes the driver will touch. Unknown enums count as zero bytes
//! (the driver rejects them), except where noted.

/// State the size rules depend on.
pub trait SizeCtx {
    fn unpack_alignment(&self) -> i64;
    fn pack_alignment(&self) -> i64;
    /// GL_NUM_COMPRESSED_TEXTURE_FORMATS.
    fn num_compressed_formats(&self) -> i64;
    /// GL_NUM_SHADER_BINARY_FORMATS.
    fn num_shader_binary_formats(&self) -> i64;

    fn unpack_image(&self, w: i64, h: i64, format: i64, ty: i64) -> i64 {
        image_size(w, h, format, ty, self.unpack_alignment())
    }
    fn pack_image(&self, w: i64, h: i64, format: i64, ty: i64) -> i64 {
        image_size(w, h, format, ty, self.pack_alignment())
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
        0x1400 | 0x1401 => c,                  // BYTE, UNSIGNED_BYTE
        0x1402 | 0x1403 | 0x8D61 | 0x140B => c * 2, // SHORT, UNSIGNED_SHORT, HALF_FLOAT(_OES)
        0x1404 | 0x1405 | 0x1406 => c * 4,     // INT, UNSIGNED_INT, FLOAT
        0x8363 | 0x8033 | 0x8034 | 0x8365 | 0x8366 => 2, // packed 16-bit types
        0x84FA | 0x8368 => 4,                  // UNSIGNED_INT_24_8, 2_10_10_10_REV
        _ => return None,
    })
}

/// Bytes of a `w`x`h` image with rows padded to `align`.
pub fn image_size(w: i64, h: i64, format: i64, ty: i64, align: i64) -> i64 {
    if w <= 0 || h <= 0 {
        return 0;
    }
    let Some(px) = pixel_size(format, ty) else { return 0 };
    let align = if matches!(align, 1 | 2 | 4 | 8) { align } else { 4 };
    let row = w.saturating_mul(px);
    let stride = row.saturating_add(align - 1) / align * align;
    stride.saturating_mul(h - 1).saturating_add(row)
}
