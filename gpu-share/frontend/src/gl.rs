//! Hand-written front-end calls: the ones that keep shadow state or turn
//! client memory into heap payloads. The generated encoders
//! (`gpu_codec::enc`) cover everything else.

use crate::shadow::{Attrib, VertexArrayState, CONSTANT_PNAMES, MAX_ATTRIBS, MAX_INDEX_COPY};
use crate::Client;
use alloc::vec::Vec;
use gpu_codec::{enc, EncodeError, SizeCtx, Wire};
use gpu_wire::Doorbell;

pub const GL_INVALID_ENUM: u32 = 0x0500;
pub const GL_INVALID_VALUE: u32 = 0x0501;
pub const GL_OUT_OF_MEMORY: u32 = 0x0505;
const GL_ARRAY_BUFFER: u32 = 0x8892;
const GL_ELEMENT_ARRAY_BUFFER: u32 = 0x8893;
const GL_EXTENSIONS: u32 = 0x1F03;
const EGL_EXTENSIONS: i32 = 0x3055;
/// Platform extensions that describe what the server really offers.
const PLATFORMS_KEPT: &[&str] = &["EGL_EXT_platform_base", "EGL_MESA_platform_surfaceless"];

fn attrib_type_size(ty: u32) -> Option<usize> {
    Some(match ty {
        0x1400 | 0x1401 => 1,
        0x1402 | 0x1403 | 0x8D61 => 2,
        0x1406 | 0x140C => 4,
        _ => return None,
    })
}

/// Largest index among `bytes` read as indices of `isz` bytes.
fn max_index(bytes: &[u8], isz: usize) -> usize {
    bytes
        .chunks_exact(isz)
        .map(|c| match isz {
            1 => c[0] as usize,
            2 => u16::from_ne_bytes([c[0], c[1]]) as usize,
            _ => u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as usize,
        })
        .max()
        .unwrap_or(0)
}

/// Keeps the words of an extension string that are not in `hidden`.
pub fn filter_extensions(s: &[u8], hidden: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in s.split(|b| *b == b' ').filter(|w| !w.is_empty()) {
        let keep = core::str::from_utf8(w).is_ok_and(|w| hidden.binary_search(&w).is_err());
        if keep {
            if !out.is_empty() {
                out.push(b' ');
            }
            out.extend_from_slice(w);
        }
    }
    out
}

impl<D: Doorbell> Client<D> {
    /// Records a front-end GL error (the first one sticks, as in GL).
    pub fn set_gl_error(&mut self, e: u32) {
        if self.shadow.gl_error == 0 {
            self.shadow.gl_error = e;
        }
    }

    /// glGetError: a front-end error first; then, when no call has
    /// reached the server since it last answered GL_NO_ERROR, GL_NO_ERROR
    /// without asking (GL errors arise only from executing calls, and every
    /// call the server ran since would have been sent after that answer);
    /// else the server's answer.
    pub fn get_error(&mut self) -> Result<u32, EncodeError> {
        let e = core::mem::take(&mut self.shadow.gl_error);
        if e != 0 {
            return Ok(e);
        }
        if self.gl_clean {
            return Ok(0);
        }
        let e = enc::glGetError(self)?;
        self.gl_clean = e == 0;
        Ok(e)
    }

    /// glReadPixels. The driver writes the pixels into a heap chunk that
    /// comes back with the reply. When GL writes every byte of the area
    /// (no row padding, row length or skips), the chunk is not pre-filled
    /// with the caller's bytes, and the server says whether the driver
    /// wrote it (reply 1) or the call failed (0: nothing is copied back,
    /// so the caller's memory stays as it was, as natively).
    #[allow(clippy::too_many_arguments)]
    pub fn read_pixels(
        &mut self,
        x: i32,
        y: i32,
        width: i32,
        height: i32,
        format: u32,
        type_: u32,
        pixels: Option<&mut [u8]>,
    ) -> Result<(), EncodeError> {
        let need =
            gpu_codec::size_glReadPixels_pixels(&self.shadow, x, y, width, height, format, type_);
        let ps = self.shadow.pack;
        let row = gpu_codec::sizes::image_size(width as i64, 1, format as i64, type_ as i64, ps);
        let whole = ps.row_length == 0
            && ps.skip_rows == 0
            && ps.skip_pixels == 0
            && need > 0
            && need as i64 == row.saturating_mul(height as i64);
        let dst = match pixels {
            Some(p) if whole && p.len() >= need => p,
            pixels => return enc::glReadPixels(self, x, y, width, height, format, type_, pixels),
        };
        self.begin(gpu_codec::op::glReadPixels)?;
        for v in [
            x as i64 as u64,
            y as i64 as u64,
            width as i64 as u64,
            height as i64 as u64,
        ] {
            self.slot(v);
        }
        self.slot(format as u64);
        self.slot(type_ as u64);
        let d = self.output_unfilled(need)?;
        if self.finish_sync()?.ret == 1 {
            self.read_out(Some(d), Some(dst), need);
        }
        Ok(())
    }

    pub fn bind_buffer(&mut self, target: u32, buffer: u32) -> Result<(), EncodeError> {
        match target {
            GL_ARRAY_BUFFER => self.shadow.array_buffer = buffer,
            GL_ELEMENT_ARRAY_BUFFER => self.shadow.element_array_buffer = buffer,
            _ => {}
        }
        enc::glBindBuffer(self, target, buffer)
    }

    pub fn delete_buffers(&mut self, n: i32, names: &[u32]) -> Result<(), EncodeError> {
        for &b in names.iter().filter(|b| **b != 0) {
            if self.shadow.array_buffer == b {
                self.shadow.array_buffer = 0;
            }
            if self.shadow.element_array_buffer == b {
                self.shadow.element_array_buffer = 0;
            }
            self.shadow.buffer_copies.remove(&b);
        }
        enc::glDeleteBuffers(self, n, names)
    }

    /// The buffer bound to `target`, 0 for none or another target.
    fn bound_buffer(&self, target: u32) -> u32 {
        match target {
            GL_ARRAY_BUFFER => self.shadow.array_buffer,
            GL_ELEMENT_ARRAY_BUFFER => self.shadow.element_array_buffer,
            _ => 0,
        }
    }

    /// glBufferData; the contents are also copied into the shadow, whatever
    /// the target: a buffer filled as vertex data may later be bound as the
    /// element buffer of a draw from client arrays.
    pub fn buffer_data(
        &mut self,
        target: u32,
        size: isize,
        data: Option<&[u8]>,
        usage: u32,
    ) -> Result<(), EncodeError> {
        let b = self.bound_buffer(target);
        if b != 0 {
            match usize::try_from(size) {
                Ok(n) if n <= MAX_INDEX_COPY => {
                    let copy =
                        data.map_or_else(|| alloc::vec![0; n], |d| d[..n.min(d.len())].to_vec());
                    self.shadow.buffer_copies.insert(b, copy);
                }
                _ => {
                    self.shadow.buffer_copies.remove(&b);
                }
            }
        }
        enc::glBufferData(self, target, size, data, usage)
    }

    /// glBufferSubData, keeping buffer copies current.
    pub fn buffer_sub_data(
        &mut self,
        target: u32,
        offset: isize,
        size: isize,
        data: Option<&[u8]>,
    ) -> Result<(), EncodeError> {
        let b = self.bound_buffer(target);
        if let (Some(buf), Some(d)) = (self.shadow.buffer_copies.get_mut(&b), data) {
            if let (Ok(o), Ok(n)) = (usize::try_from(offset), usize::try_from(size)) {
                if o.checked_add(n).is_some_and(|e| e <= buf.len()) && n <= d.len() {
                    buf[o..o + n].copy_from_slice(&d[..n]);
                }
            }
        }
        enc::glBufferSubData(self, target, offset, size, data)
    }

    /// glGenVertexArraysOES: the new objects start with default state.
    pub fn gen_vertex_arrays(&mut self, n: i32, names: &mut [u32]) -> Result<(), EncodeError> {
        enc::glGenVertexArraysOES(self, n, names)?;
        for &v in names.iter() {
            self.shadow
                .vertex_arrays
                .insert(v, VertexArrayState::default());
        }
        Ok(())
    }

    /// glBindVertexArrayOES: the vertex arrays and the element buffer of
    /// the shadow become the bound object's. A name that was not generated
    /// (or was deleted) changes nothing; the driver reports the error.
    pub fn bind_vertex_array(&mut self, array: u32) -> Result<(), EncodeError> {
        let sh = &mut self.shadow;
        if array != sh.vertex_array && (array == 0 || sh.vertex_arrays.contains_key(&array)) {
            let cur = VertexArrayState {
                attribs: sh.attribs,
                element_array_buffer: sh.element_array_buffer,
            };
            sh.vertex_arrays.insert(sh.vertex_array, cur);
            self.load_vertex_array(array);
        }
        enc::glBindVertexArrayOES(self, array)
    }

    /// glDeleteVertexArraysOES: deleting the bound object binds the
    /// default one.
    pub fn delete_vertex_arrays(&mut self, n: i32, names: &[u32]) -> Result<(), EncodeError> {
        for &v in names.iter().filter(|v| **v != 0) {
            if v == self.shadow.vertex_array {
                self.load_vertex_array(0);
            }
            self.shadow.vertex_arrays.remove(&v);
        }
        enc::glDeleteVertexArraysOES(self, n, names)
    }

    /// Makes `array`'s state the shadow's (without saving the current one).
    fn load_vertex_array(&mut self, array: u32) {
        let sh = &mut self.shadow;
        let next = sh.vertex_arrays.remove(&array).unwrap_or_default();
        sh.attribs = next.attribs;
        sh.element_array_buffer = next.element_array_buffer;
        sh.vertex_array = array;
    }

    pub fn enable_attrib(&mut self, index: u32, on: bool) -> Result<(), EncodeError> {
        if let Some(a) = self.shadow.attribs.get_mut(index as usize) {
            a.enabled = on;
        }
        if on {
            enc::glEnableVertexAttribArray(self, index)
        } else {
            enc::glDisableVertexAttribArray(self, index)
        }
    }

    pub fn pixel_store(&mut self, pname: u32, param: i32) -> Result<(), EncodeError> {
        use gpu_codec::sizes::{
            PACK_ALIGNMENT, PACK_ROW_LENGTH, UNPACK_ALIGNMENT, UNPACK_ROW_LENGTH,
        };
        self.shadow
            .unpack
            .set(UNPACK_ROW_LENGTH, UNPACK_ALIGNMENT, pname, param);
        self.shadow
            .pack
            .set(PACK_ROW_LENGTH, PACK_ALIGNMENT, pname, param);
        enc::glPixelStorei(self, pname, param)
    }

    /// glVertexAttribPointer. With no buffer bound, `ptr` is client memory
    /// that is read at draw time.
    pub fn vertex_attrib_pointer(
        &mut self,
        index: u32,
        size: i32,
        ty: u32,
        normalized: u8,
        stride: i32,
        ptr: usize,
    ) -> Result<(), EncodeError> {
        let valid = (index as usize) < MAX_ATTRIBS
            && (1..=4).contains(&size)
            && stride >= 0
            && attrib_type_size(ty).is_some();
        if self.shadow.array_buffer != 0 || !valid {
            // Buffer offsets go to the server as they are; invalid arguments
            // too (with a NULL pointer), so that the driver reports the error.
            let off = if self.shadow.array_buffer != 0 {
                ptr as u64
            } else {
                0
            };
            if valid {
                self.shadow.attribs[index as usize] = Attrib {
                    client: false,
                    size,
                    ty,
                    normalized,
                    stride,
                    ptr,
                    ..self.shadow.attribs[index as usize]
                };
            }
            return enc::glVertexAttribPointer(self, index, size, ty, normalized, stride, off);
        }
        let a = &mut self.shadow.attribs[index as usize];
        *a = Attrib {
            client: true,
            size,
            ty,
            normalized,
            stride,
            ptr,
            enabled: a.enabled,
        };
        // The data travels at draw time; the format goes now, so that the
        // driver answers glGetVertexAttrib (size, type, stride, normalized)
        // as the application set it.
        enc::glVertexAttribPointer(self, index, size, ty, normalized, stride, 0)
    }

    pub fn vertex_attrib_pointer_of(&self, index: u32) -> usize {
        self.shadow.attribs.get(index as usize).map_or(0, |a| a.ptr)
    }

    /// Uploads enabled client arrays for vertices `0..=last`.
    ///
    /// # Safety
    /// Client pointers set with `vertex_attrib_pointer` must be readable for
    /// those vertices, as GL requires of the application.
    unsafe fn upload_client_arrays(&mut self, last: usize) -> Result<(), EncodeError> {
        for i in 0..MAX_ATTRIBS {
            let a = self.shadow.attribs[i];
            if !a.enabled || !a.client || a.ptr == 0 {
                continue;
            }
            let elem = a.size as usize * attrib_type_size(a.ty).unwrap_or(4);
            let stride = if a.stride == 0 {
                elem
            } else {
                a.stride as usize
            };
            let len = last
                .checked_mul(stride)
                .and_then(|x| x.checked_add(elem))
                .ok_or(EncodeError::TooLarge)?;
            // SAFETY: per this function's contract.
            let data = unsafe { core::slice::from_raw_parts(a.ptr as *const u8, len) };
            enc::tsVertexAttribData(
                self,
                i as u32,
                a.size,
                a.ty,
                a.normalized,
                a.stride,
                Some(data),
                len as i32,
            )?;
        }
        Ok(())
    }

    fn any_client_arrays(&self) -> bool {
        self.shadow
            .attribs
            .iter()
            .any(|a| a.enabled && a.client && a.ptr != 0)
    }

    /// # Safety
    /// See [`Client::vertex_attrib_pointer`].
    pub unsafe fn draw_arrays(
        &mut self,
        mode: u32,
        first: i32,
        count: i32,
    ) -> Result<(), EncodeError> {
        if first >= 0 && count > 0 && self.any_client_arrays() {
            // SAFETY: forwarded contract.
            unsafe { self.upload_client_arrays(first as usize + count as usize - 1)? };
        }
        enc::glDrawArrays(self, mode, first, count)
    }

    /// `indices` is an offset when an element buffer is bound, else client
    /// memory holding `count` indices.
    ///
    /// # Safety
    /// Client memory must be readable as GL requires.
    pub unsafe fn draw_elements(
        &mut self,
        mode: u32,
        count: i32,
        ty: u32,
        indices: usize,
    ) -> Result<(), EncodeError> {
        let isz = self.shadow.typesize(ty as i64) as usize;
        let eab = self.shadow.element_array_buffer;
        if eab != 0 || count <= 0 || indices == 0 || isz == 0 {
            // Indices in a buffer: client arrays (rare then) are sized from
            // the client's copy of that buffer, when it has one.
            if eab != 0 && count > 0 && isz != 0 && self.any_client_arrays() {
                let max = self.shadow.buffer_copies.get(&eab).and_then(|buf| {
                    let end = indices.checked_add(count as usize * isz)?;
                    Some(max_index(buf.get(indices..end)?, isz))
                });
                if let Some(max) = max {
                    // SAFETY: forwarded contract.
                    unsafe { self.upload_client_arrays(max)? };
                }
            }
            let off = if eab != 0 { indices as u64 } else { 0 };
            return enc::glDrawElements(self, mode, count, ty, off);
        }
        // SAFETY: the application promises `count` indices at `indices`.
        let bytes =
            unsafe { core::slice::from_raw_parts(indices as *const u8, count as usize * isz) };
        if self.any_client_arrays() {
            // SAFETY: forwarded contract.
            unsafe { self.upload_client_arrays(max_index(bytes, isz))? };
        }
        enc::tsDrawElementsData(self, mode, count, ty, Some(bytes))
    }

    /// glShaderSource: the strings travel as one blob of
    /// `count` little-endian u32 lengths followed by the bytes.
    pub fn shader_source(&mut self, shader: u32, strings: &[&[u8]]) -> Result<(), EncodeError> {
        let mut blob = Vec::new();
        for s in strings {
            blob.extend_from_slice(&(s.len() as u32).to_le_bytes());
        }
        for s in strings {
            blob.extend_from_slice(s);
        }
        let len = i32::try_from(blob.len()).map_err(|_| EncodeError::TooLarge)?;
        enc::tsShaderSource(self, shader, strings.len() as i32, Some(&blob), len)
    }

    /// glShaderSource with a negative count or no strings: sent without
    /// a blob (length -1) for the driver to report the error as it would
    /// for the application; the shader's source is not changed.
    pub fn shader_source_invalid(&mut self, shader: u32, count: i32) -> Result<(), EncodeError> {
        enc::tsShaderSource(self, shader, count.min(0), None, -1)
    }

    fn ensure_format_counts(&mut self, pname: u32) -> Result<(), EncodeError> {
        let (num_pname, cur) = match pname {
            0x86A3 => (0x86A2, self.shadow.num_compressed_formats),
            0x8DF8 => (0x8DF9, self.shadow.num_shader_binary_formats),
            _ => return Ok(()),
        };
        if cur.is_none() {
            let mut v = [0i32; 1];
            self.get_integerv(num_pname, &mut v)?;
            let n = v[0].max(0) as i64;
            if pname == 0x86A3 {
                self.shadow.num_compressed_formats = Some(n);
            } else {
                self.shadow.num_shader_binary_formats = Some(n);
            }
        }
        Ok(())
    }

    /// Values glGet* writes for `pname` (what the caller's array must hold).
    pub fn get_count(&mut self, pname: u32) -> Result<usize, EncodeError> {
        self.ensure_format_counts(pname)?;
        Ok(self.shadow.pname_count(pname as i64).max(0) as usize)
    }

    pub fn get_integerv(&mut self, pname: u32, out: &mut [i32]) -> Result<(), EncodeError> {
        let shadowed = match pname {
            0x0CF5 => Some(self.shadow.unpack.alignment as i32),
            0x0D05 => Some(self.shadow.pack.alignment as i32),
            0x8894 => Some(self.shadow.array_buffer as i32),
            0x8895 => Some(self.shadow.element_array_buffer as i32),
            _ => None,
        };
        if let (Some(v), Some(o)) = (shadowed, out.first_mut()) {
            *o = v;
            return Ok(());
        }
        if let Some(v) = self.shadow.limits.get(&pname) {
            let n = v.len().min(out.len());
            out[..n].copy_from_slice(&v[..n]);
            return Ok(());
        }
        let n = self.get_count(pname)?.min(out.len());
        let mut bytes = alloc::vec![0u8; n * 4];
        let err_before = self.shadow.gl_error;
        enc::glGetIntegerv(self, pname, Some(&mut bytes))?;
        for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        if CONSTANT_PNAMES.contains(&pname) && err_before == self.shadow.gl_error {
            self.shadow.limits.insert(pname, out[..n].to_vec());
        }
        Ok(())
    }

    pub fn get_floatv(&mut self, pname: u32, out: &mut [u8]) -> Result<(), EncodeError> {
        self.ensure_format_counts(pname)?;
        enc::glGetFloatv(self, pname, Some(out))
    }

    pub fn get_booleanv(&mut self, pname: u32, out: &mut [u8]) -> Result<(), EncodeError> {
        self.ensure_format_counts(pname)?;
        enc::glGetBooleanv(self, pname, Some(out))
    }

    /// glGetString, with extensions the front-end cannot carry removed.
    pub fn get_string(&mut self, name: u32) -> Result<Option<Vec<u8>>, EncodeError> {
        let s = enc::glGetString(self, name)?;
        Ok(s.map(|s| {
            if name == GL_EXTENSIONS {
                filter_extensions(&s, gpu_codec::GL_EXTENSIONS_WITH_COMMANDS)
            } else {
                s
            }
        }))
    }

    pub fn egl_query_string(
        &mut self,
        dpy: u64,
        name: i32,
    ) -> Result<Option<Vec<u8>>, EncodeError> {
        let s = enc::eglQueryString(self, dpy, name)?;
        Ok(s.map(|s| {
            if name == EGL_EXTENSIONS {
                // Only the surfaceless platform exists on the server side.
                let kept = filter_extensions(&s, gpu_codec::EGL_EXTENSIONS_WITH_COMMANDS);
                let platforms: Vec<&str> = core::str::from_utf8(&kept)
                    .unwrap_or("")
                    .split(' ')
                    .filter(|e| e.contains("_platform_") && !PLATFORMS_KEPT.contains(e))
                    .collect();
                let mut hidden = platforms;
                hidden.sort_unstable();
                filter_extensions(&kept, &hidden)
            } else {
                s
            }
        }))
    }

    pub fn egl_get_error(&mut self) -> Result<i32, EncodeError> {
        let e = core::mem::take(&mut self.shadow.egl_error);
        if e != 0 {
            return Ok(e);
        }
        enc::eglGetError(self)
    }

    pub fn egl_make_current(
        &mut self,
        dpy: u64,
        draw: u64,
        read: u64,
        ctx: u64,
    ) -> Result<u32, EncodeError> {
        let ok = enc::eglMakeCurrent(self, dpy, draw, read, ctx)?;
        if ok != 0 {
            self.shadow.current = if ctx == 0 {
                [0; 4]
            } else {
                [dpy, draw, read, ctx]
            };
        }
        Ok(ok)
    }

    pub fn egl_release_thread(&mut self) -> Result<u32, EncodeError> {
        let ok = enc::eglReleaseThread(self)?;
        self.shadow.current = [0; 4];
        Ok(ok)
    }

    /// A window surface of `width`x`height`: the server backs it with an
    /// off-screen surface and keeps each swapped frame.
    pub fn egl_create_window_surface(
        &mut self,
        dpy: u64,
        config: u64,
        width: u32,
        height: u32,
        attribs: Option<&[i32]>,
    ) -> Result<u64, EncodeError> {
        let win = width as u64 | (height as u64) << 32;
        enc::eglCreateWindowSurface(self, dpy, config, win, attribs)
    }
}

#[cfg(test)]
mod tests {
    use super::filter_extensions;

    #[test]
    fn hidden_extensions_are_removed_and_spacing_kept_tidy() {
        let s = b"GL_A  GL_B GL_C GL_D ";
        assert_eq!(
            filter_extensions(s, &["GL_B", "GL_D"]),
            b"GL_A GL_C".to_vec()
        );
        assert_eq!(filter_extensions(b"", &["GL_B"]), b"".to_vec());
    }
}
