//! The two U-Boot artefacts a board needs to boot Tessera: a legacy `script`
//! image (`boot.scr`, what `mkimage -T script` makes) and an environment
//! image for U-Boot's environment flash (what `mkenvimage` makes).

/// CRC-32 (IEEE 802.3), as U-Boot checks images and environments.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

const IH_MAGIC: u32 = 0x2705_1956;
const IH_OS_LINUX: u8 = 5;
const IH_ARCH_ARM64: u8 = 22;
const IH_TYPE_SCRIPT: u8 = 6;

/// A `boot.scr`: 64-byte legacy header, then the script's length table
/// (one length, then 0), then the script text.
pub fn script_image(name: &str, script: &str) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(&(script.len() as u32).to_be_bytes());
    data.extend_from_slice(&0u32.to_be_bytes());
    data.extend_from_slice(script.as_bytes());
    let mut h = [0u8; 64];
    h[0..4].copy_from_slice(&IH_MAGIC.to_be_bytes());
    // h[4..8] header CRC, h[8..12] timestamp 0 (reproducible), load and entry 0.
    h[12..16].copy_from_slice(&(data.len() as u32).to_be_bytes());
    h[24..28].copy_from_slice(&crc32(&data).to_be_bytes());
    h[28] = IH_OS_LINUX;
    h[29] = IH_ARCH_ARM64;
    h[30] = IH_TYPE_SCRIPT;
    h[31] = 0; // no compression
    let n = name.len().min(31);
    h[32..32 + n].copy_from_slice(&name.as_bytes()[..n]);
    let hcrc = crc32(&h);
    h[4..8].copy_from_slice(&hcrc.to_be_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(&data);
    out
}

/// An environment block of `size` bytes: CRC-32 of the rest, then
/// `name=value\0` pairs, then zeroes.
pub fn env_image(vars: &[(&str, &str)], size: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    for (k, v) in vars {
        if k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(format!("bad U-Boot environment variable {k:?}"));
        }
        body.extend_from_slice(format!("{k}={v}\0").as_bytes());
    }
    body.push(0);
    if body.len() > size - 4 {
        return Err(format!(
            "U-Boot environment needs {} bytes, more than {size}",
            body.len() + 4
        ));
    }
    body.resize(size - 4, 0);
    let mut out = crc32(&body).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

/// Where the boot medium's script loads `tessera.bin` (any free RAM outside
/// the staging area; `booti` moves it to its link address).
pub const MEDIUM_TESSERA_ADDR: u64 = 0x4800_0000;

/// The boot medium's `boot.scr` source: loads `tessera.bin` and each staged
/// file (name, physical address) from the partition U-Boot found the script
/// on (`devtype`, `devnum`, `distro_bootpart`: distro boot and standard boot
/// set them, from `mmc` on a board as from `virtio` on QEMU), reports each
/// loaded size to Tessera as `tessera.loaded=FILE:0xSIZE`, and boots.
/// A file that does not load is left out of the report, so Tessera refuses
/// its VM by name instead of booting a stale size.
pub fn medium_script(board: &str, staged: &[(&str, u64)]) -> String {
    let mut s = format!(
        "# Tessera boot script for U-Boot, made by `cargo xtask image` for {board}.\n\
         # Optional: set tessera_args in the environment for Tessera's own options.\n\
         setenv tessera_dev \"${{devtype}} ${{devnum}}:${{distro_bootpart}}\"\n\
         setenv tessera_loaded\n"
    );
    for (file, at) in staged {
        s.push_str(&format!(
            "if load ${{tessera_dev}} {at:#x} {file}; then \
             setenv tessera_loaded \"${{tessera_loaded}} tessera.loaded={file}:0x${{filesize}}\"; \
             else echo \"Tessera: {file} did not load; its VM will not start\"; fi\n"
        ));
    }
    s.push_str(&format!(
        "load ${{tessera_dev}} {MEDIUM_TESSERA_ADDR:#x} tessera.bin\n\
         setenv bootargs \"${{tessera_args}}${{tessera_loaded}}\"\n\
         echo \"Tessera: booting with bootargs ${{bootargs}}\"\n\
         booti {MEDIUM_TESSERA_ADDR:#x} - ${{fdtcontroladdr}}\n"
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn script_header() {
        let img = script_image("tessera", "echo hi\n");
        assert_eq!(&img[0..4], &IH_MAGIC.to_be_bytes());
        assert_eq!(u32::from_be_bytes(img[12..16].try_into().unwrap()), 16);
        let mut h = img[..64].to_vec();
        let hcrc = u32::from_be_bytes(h[4..8].try_into().unwrap());
        h[4..8].fill(0);
        assert_eq!(crc32(&h), hcrc);
        assert_eq!(&img[72..], b"echo hi\n");
        assert_eq!(
            u32::from_be_bytes(img[24..28].try_into().unwrap()),
            crc32(&img[64..])
        );
    }

    #[test]
    fn medium_script_loads_and_reports_each_file() {
        let s = medium_script("b.toml", &[("Image", 0xa000_0000), ("i.cpio", 0xa400_0000)]);
        assert!(s.contains(
            "if load ${tessera_dev} 0xa0000000 Image; then setenv tessera_loaded \"${tessera_loaded} tessera.loaded=Image:0x${filesize}\"; else"
        ));
        assert!(s.contains("load ${tessera_dev} 0xa4000000 i.cpio;"));
        assert!(s.contains("load ${tessera_dev} 0x48000000 tessera.bin\n"));
        assert!(s.ends_with("booti 0x48000000 - ${fdtcontroladdr}\n"));
    }

    #[test]
    fn environment() {
        let env = env_image(
            &[("bootdelay", "0"), ("bootcmd", "source 0x40100000")],
            0x40000,
        )
        .unwrap();
        assert_eq!(env.len(), 0x40000);
        assert_eq!(
            u32::from_le_bytes(env[..4].try_into().unwrap()),
            crc32(&env[4..])
        );
        assert!(env[4..].starts_with(b"bootdelay=0\0bootcmd=source 0x40100000\0\0"));
        assert!(env_image(&[("a=b", "c")], 64).is_err());
        assert!(env_image(&[("k", &"v".repeat(100))], 64).is_err());
    }
}
