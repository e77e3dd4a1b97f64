//! *Portable*: checking a Linux arm64 kernel `Image` and its initramfs
//! before a VM boots them, and where they go in the VM's RAM (the boot
//! protocol of Linux `Documentation/arch/arm64/booting.rst`). Nothing here
//! touches memory: the caller hands in the bytes the loader staged.

use core::fmt;

/// The arm64 Image header: code0/1, text_offset, image_size, flags, three
/// reserved words, the magic, and (EFI-stub kernels) the PE header offset.
pub const HEADER_SIZE: u64 = 64;
const MAGIC: &[u8; 4] = b"ARM\x64";
const MAGIC_AT: usize = 56;
const PE_OFFSET_AT: usize = 60;
/// Header flags bit 0: big-endian kernel.
const FLAG_BIG_ENDIAN: u64 = 1;
/// At most this many PE sections are read (the PE format's own limit).
const MAX_PE_SECTIONS: usize = 96;
const PAGE: u64 = 0x1000;

/// Why a VM's Linux images are refused; shown after the VM's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal<'a> {
    /// The loader did not say how many bytes of `file` it loaded.
    NotLoaded {
        file: &'a str,
    },
    Empty {
        file: &'a str,
    },
    /// More bytes than the file's slot in the staging area holds.
    OverSlot {
        file: &'a str,
        size: u64,
        max: u64,
    },
    ShortHeader {
        file: &'a str,
        size: u64,
    },
    BadMagic {
        file: &'a str,
        found: [u8; 4],
    },
    BigEndian {
        file: &'a str,
    },
    /// `image_size` 0: a kernel before 3.17, whose footprint is unknown.
    NoImageSize {
        file: &'a str,
    },
    /// Fewer bytes than the sections of its PE/COFF header cover.
    Truncated {
        file: &'a str,
        size: u64,
        expected: u64,
    },
    /// More bytes than the header's whole memory footprint.
    OverImageSize {
        file: &'a str,
        size: u64,
        image_size: u64,
    },
    /// text_offset + image_size does not fit below the VM's DTB.
    KernelTooBig {
        file: &'a str,
        need: u64,
        room: u64,
    },
    InitrdTooBig {
        file: &'a str,
        size: u64,
        room: u64,
    },
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            Refusal::NotLoaded { file } => write!(
                f,
                "\"{file}\" was not loaded (no tessera.loaded={file}:SIZE from the loader)"
            ),
            Refusal::Empty { file } => write!(f, "\"{file}\" is empty (0 bytes loaded)"),
            Refusal::OverSlot { file, size, max } => write!(
                f,
                "\"{file}\": {size:#x} bytes loaded, more than its {max:#x}-byte staging slot"
            ),
            Refusal::ShortHeader { file, size } => write!(
                f,
                "kernel \"{file}\" is truncated: {size} bytes, less than the 64-byte Image header"
            ),
            Refusal::BadMagic { file, found } => write!(
                f,
                "kernel \"{file}\" is not an arm64 Image (magic {:02x} {:02x} {:02x} {:02x} at 0x38, expected 41 52 4d 64)",
                found[0], found[1], found[2], found[3]
            ),
            Refusal::BigEndian { file } => {
                write!(f, "kernel \"{file}\" is a big-endian Image")
            }
            Refusal::NoImageSize { file } => write!(
                f,
                "kernel \"{file}\" has image_size 0 (a kernel before 3.17 is not supported)"
            ),
            Refusal::Truncated {
                file,
                size,
                expected,
            } => write!(
                f,
                "kernel \"{file}\" is truncated: {size:#x} bytes loaded, its PE/COFF header says {expected:#x}"
            ),
            Refusal::OverImageSize {
                file,
                size,
                image_size,
            } => write!(
                f,
                "kernel \"{file}\": {size:#x} bytes loaded, more than its image_size {image_size:#x}"
            ),
            Refusal::KernelTooBig { file, need, room } => write!(
                f,
                "kernel \"{file}\" needs {need:#x} bytes from the RAM base (text_offset + image_size); the VM has {room:#x} below its DTB"
            ),
            Refusal::InitrdTooBig { file, size, room } => write!(
                f,
                "initramfs \"{file}\" ({size:#x} bytes) does not fit: {room:#x} bytes between the kernel and the DTB"
            ),
        }
    }
}

/// The size the loader reported for a staged file, checked against its slot.
pub fn loaded_size(file: &str, reported: Option<u64>, max: u64) -> Result<u64, Refusal<'_>> {
    match reported {
        None => Err(Refusal::NotLoaded { file }),
        Some(0) => Err(Refusal::Empty { file }),
        Some(size) if size > max => Err(Refusal::OverSlot { file, size, max }),
        Some(size) => Ok(size),
    }
}

/// Where a VM's Linux goes, by guest-physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The kernel's first byte, which is also the entry point.
    pub kernel_ipa: u64,
    pub kernel_len: u64,
    /// The initramfs (address, length), just below the DTB.
    pub initrd: Option<(u64, u64)>,
}

/// The RAM a Linux VM boots in: its first region's base (2 MiB aligned, the
/// board checker makes sure) and the DTB's address near its end.
#[derive(Clone, Copy, Debug)]
pub struct Ram {
    pub base: u64,
    pub dtb_ipa: u64,
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// For an EFI-stub kernel (code0 is "MZ" and the header points at a PE
/// signature): the bytes its sections occupy in the file, so a truncated
/// copy is caught. `Err` carries the bytes needed just to read the headers.
fn pe_file_size(kernel: &[u8]) -> Option<Result<u64, u64>> {
    if kernel.get(..2) != Some(b"MZ") {
        return None;
    }
    let pe = le32(kernel, PE_OFFSET_AT)? as usize;
    if pe == 0 {
        return None;
    }
    let coff = pe + 4;
    let headers = || -> Option<(usize, usize)> {
        if kernel.get(pe..pe + 4)? != b"PE\0\0" {
            return None;
        }
        let sections = le16(kernel, coff + 2)? as usize;
        let optional = le16(kernel, coff + 16)? as usize;
        Some((sections.min(MAX_PE_SECTIONS), coff + 20 + optional))
    };
    let Some((sections, table)) = headers() else {
        // A PE signature beyond the loaded bytes is truncation; a wrong one
        // inside them means this is not an EFI stub: no PE check.
        return (kernel.len() < pe + 24).then_some(Err(pe as u64 + 24));
    };
    let table_end = table + sections * 40;
    if kernel.len() < table_end {
        return Some(Err(table_end as u64));
    }
    let end = (0..sections)
        .map(|i| {
            let s = table + i * 40;
            let raw = le32(kernel, s + 16).unwrap_or(0) as u64;
            let at = le32(kernel, s + 20).unwrap_or(0) as u64;
            if raw == 0 {
                0
            } else {
                at + raw
            }
        })
        .max()
        .unwrap_or(0);
    Some(Ok(end))
}

/// Checks the kernel (`kernel` = the bytes loaded) and the initramfs size,
/// and lays both out in `ram`.
pub fn layout<'a>(
    kernel_file: &'a str,
    kernel: &[u8],
    initrd: Option<(&'a str, u64)>,
    ram: Ram,
) -> Result<Layout, Refusal<'a>> {
    let file = kernel_file;
    let size = kernel.len() as u64;
    if size < HEADER_SIZE {
        return Err(Refusal::ShortHeader { file, size });
    }
    let magic: [u8; 4] = kernel[MAGIC_AT..MAGIC_AT + 4].try_into().unwrap_or([0; 4]);
    if &magic != MAGIC {
        return Err(Refusal::BadMagic { file, found: magic });
    }
    let (text_offset, image_size, flags) = (le64(kernel, 8), le64(kernel, 16), le64(kernel, 24));
    if flags & FLAG_BIG_ENDIAN != 0 {
        return Err(Refusal::BigEndian { file });
    }
    if image_size == 0 {
        return Err(Refusal::NoImageSize { file });
    }
    match pe_file_size(kernel) {
        Some(Err(expected)) | Some(Ok(expected)) if expected > size => {
            return Err(Refusal::Truncated {
                file,
                size,
                expected,
            });
        }
        _ => {}
    }
    if size > image_size {
        return Err(Refusal::OverImageSize {
            file,
            size,
            image_size,
        });
    }
    let room = ram.dtb_ipa.saturating_sub(ram.base);
    let need = text_offset.saturating_add(image_size);
    if need > room {
        return Err(Refusal::KernelTooBig { file, need, room });
    }
    let kernel_ipa = ram.base + text_offset;
    let kernel_end = (kernel_ipa + image_size).next_multiple_of(PAGE);
    let initrd = match initrd {
        None => None,
        Some((file, size)) => {
            let room = ram.dtb_ipa.saturating_sub(kernel_end);
            // Page-aligned, as high as it goes: below it Linux has the rest.
            let at = ram.dtb_ipa.saturating_sub(size) & !(PAGE - 1);
            if size > room || at < kernel_end {
                return Err(Refusal::InitrdTooBig { file, size, room });
            }
            Some((at, size))
        }
    };
    Ok(Layout {
        kernel_ipa,
        kernel_len: size,
        initrd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    const RAM: Ram = Ram {
        base: 0x4000_0000,
        dtb_ipa: 0x4000_0000 + (64 << 20) - (2 << 20),
    };

    /// A plain Image: header, then `len` bytes in all.
    fn image(text_offset: u64, image_size: u64, len: usize) -> Vec<u8> {
        let mut b = std::vec![0u8; len.max(64)];
        b[8..16].copy_from_slice(&text_offset.to_le_bytes());
        b[16..24].copy_from_slice(&image_size.to_le_bytes());
        b[24..32].copy_from_slice(&0xau64.to_le_bytes()); // LE, 4K, anywhere
        b[56..60].copy_from_slice(MAGIC);
        b.truncate(len);
        b
    }

    /// An EFI-stub Image whose two sections end at `file_len`.
    fn efi_image(file_len: usize) -> Vec<u8> {
        let mut b = image(0, 0x200_0000, file_len);
        b[0..2].copy_from_slice(b"MZ");
        b[60..64].copy_from_slice(&0x40u32.to_le_bytes());
        b[0x40..0x44].copy_from_slice(b"PE\0\0");
        b[0x46..0x48].copy_from_slice(&2u16.to_le_bytes()); // sections
        b[0x54..0x56].copy_from_slice(&0xa0u16.to_le_bytes()); // optional header
        let table = 0x40 + 24 + 0xa0;
        for (i, (at, raw)) in [(0x1000u32, 0x8000u32), (0x9000, file_len as u32 - 0x9000)]
            .into_iter()
            .enumerate()
        {
            let s = table + i * 40;
            b[s + 16..s + 20].copy_from_slice(&raw.to_le_bytes());
            b[s + 20..s + 24].copy_from_slice(&at.to_le_bytes());
        }
        b
    }

    #[test]
    fn plain_image_with_initrd_is_laid_out() {
        let k = image(0, 0x180_0000, 0x100_0000);
        let l = layout("Image", &k, Some(("i.cpio", 0x30_0123)), RAM).unwrap();
        assert_eq!(l.kernel_ipa, 0x4000_0000);
        assert_eq!(l.kernel_len, 0x100_0000);
        let (at, len) = l.initrd.unwrap();
        assert_eq!(len, 0x30_0123);
        assert_eq!(at % 0x1000, 0);
        assert!(at + len <= RAM.dtb_ipa && at >= 0x4180_0000);
        // An older kernel's text_offset moves the entry with it.
        let k = image(0x8_0000, 0x180_0000, 0x1000);
        assert_eq!(
            layout("Image", &k, None, RAM).unwrap().kernel_ipa,
            0x4008_0000
        );
    }

    #[test]
    fn loaded_sizes() {
        assert_eq!(loaded_size("f", Some(5), 8), Ok(5));
        assert_eq!(
            loaded_size("f", None, 8).unwrap_err().to_string(),
            "\"f\" was not loaded (no tessera.loaded=f:SIZE from the loader)"
        );
        assert_eq!(
            loaded_size("f", Some(0), 8).unwrap_err().to_string(),
            "\"f\" is empty (0 bytes loaded)"
        );
        assert_eq!(
            loaded_size("f", Some(9), 8).unwrap_err().to_string(),
            "\"f\": 0x9 bytes loaded, more than its 0x8-byte staging slot"
        );
    }

    #[test]
    fn wrong_magic_short_and_big_endian() {
        let mut k = image(0, 0x100_0000, 0x1000);
        k[56..60].copy_from_slice(b"\x7fELF");
        assert_eq!(
            layout("Image", &k, None, RAM).unwrap_err().to_string(),
            "kernel \"Image\" is not an arm64 Image (magic 7f 45 4c 46 at 0x38, expected 41 52 4d 64)"
        );
        assert_eq!(
            layout("Image", &k[..63], None, RAM)
                .unwrap_err()
                .to_string(),
            "kernel \"Image\" is truncated: 63 bytes, less than the 64-byte Image header"
        );
        let mut k = image(0, 0x100_0000, 0x1000);
        k[24] |= 1;
        assert_eq!(
            layout("Image", &k, None, RAM),
            Err(Refusal::BigEndian { file: "Image" })
        );
        let k = image(0, 0, 0x1000);
        assert_eq!(
            layout("Image", &k, None, RAM),
            Err(Refusal::NoImageSize { file: "Image" })
        );
    }

    #[test]
    fn efi_stub_truncation_is_caught() {
        let k = efi_image(0x2_0000);
        assert!(layout("Image", &k, None, RAM).is_ok());
        assert_eq!(
            layout("Image", &k[..0x1_8000], None, RAM)
                .unwrap_err()
                .to_string(),
            "kernel \"Image\" is truncated: 0x18000 bytes loaded, its PE/COFF header says 0x20000"
        );
        // Cut inside the section table, and before the PE signature.
        assert_eq!(
            layout("Image", &k[..0x100], None, RAM),
            Err(Refusal::Truncated {
                file: "Image",
                size: 0x100,
                expected: 0x40 + 24 + 0xa0 + 80
            })
        );
        assert_eq!(
            layout("Image", &k[..0x41], None, RAM),
            Err(Refusal::Truncated {
                file: "Image",
                size: 0x41,
                expected: 0x40 + 24
            })
        );
        // "MZ" without a PE signature where the header points: no PE check.
        let mut k = efi_image(0x2_0000);
        k[0x40] = b'X';
        assert!(layout("Image", &k[..0x1000], None, RAM).is_ok());
    }

    #[test]
    fn sizes_that_do_not_fit() {
        let k = image(0, 0x3f0_0000, 0x1000);
        assert_eq!(
            layout("Image", &k, None, RAM).unwrap_err().to_string(),
            "kernel \"Image\" needs 0x3f00000 bytes from the RAM base (text_offset + image_size); the VM has 0x3e00000 below its DTB"
        );
        let k = image(0, 0x1000, 0x2000);
        assert_eq!(
            layout("Image", &k, None, RAM),
            Err(Refusal::OverImageSize {
                file: "Image",
                size: 0x2000,
                image_size: 0x1000
            })
        );
        let k = image(0, 0x3000_0000, 0x1000);
        assert!(matches!(
            layout("Image", &k, None, RAM),
            Err(Refusal::KernelTooBig { .. })
        ));
        let k = image(0, 0x200_0000, 0x1000);
        assert_eq!(
            layout("Image", &k, Some(("i", 0x1e0_0001)), RAM).unwrap_err().to_string(),
            "initramfs \"i\" (0x1e00001 bytes) does not fit: 0x1e00000 bytes between the kernel and the DTB"
        );
        assert!(layout("Image", &k, Some(("i", 0x1e0_0000)), RAM).is_ok());
    }
}
