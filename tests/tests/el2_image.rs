//! The EL2 image never touches a guest's FP/SIMD registers. Guests run with
//! FP/SIMD (and SVE) untrapped on cores of their own and EL2 saves none of
//! that state, so one EL2 instruction that reads or writes a vector register,
//! FPCR or FPSR would corrupt the guest. EL2 is built soft-float; this test
//! decodes every instruction of the linked image and fails on any that
//! belongs to the FP/SIMD, SVE or SME classes (Arm ARM C4.1), or that
//! accesses FPCR/FPSR.

use object::{Object, ObjectSection, ObjectSymbol, SectionKind};
use std::path::Path;

/// Why an instruction word touches FP/SIMD state, if it does.
fn fp_simd_class(insn: u32) -> Option<&'static str> {
    let op0 = (insn >> 25) & 0xf;
    if op0 & 0b0111 == 0b0111 {
        return Some("scalar FP / Advanced SIMD data processing");
    }
    if op0 & 0b0101 == 0b0100 && insn & (1 << 26) != 0 {
        return Some("load/store of a SIMD&FP register");
    }
    if op0 == 0b0010 {
        return Some("SVE");
    }
    if op0 == 0 && insn & (1 << 31) != 0 {
        return Some("SME");
    }
    // MRS/MSR with op0 3, op1 3, CRn 4, CRm 4, op2 0 (FPCR) or 1 (FPSR).
    match insn & 0xffdf_ffe0 {
        0xd51b_4400 => Some("FPCR access"),
        0xd51b_4420 => Some("FPSR access"),
        _ => None,
    }
}

/// Every instruction in the image's code sections that touches FP/SIMD, as
/// (address, word, class, nearest symbol). Data in code (literal pools,
/// marked by the `$d` mapping symbols) is skipped.
fn offenders(elf_path: &Path) -> Vec<(u64, u32, &'static str, String)> {
    let data = std::fs::read(elf_path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask build`)", elf_path.display()));
    let elf = object::File::parse(&*data).expect("an ELF file");
    let mut maps: Vec<(u64, bool)> = Vec::new(); // (address, is code)
    let mut funcs: Vec<(u64, String)> = Vec::new();
    for s in elf.symbols() {
        let name = s.name().unwrap_or("");
        if name == "$x" || name.starts_with("$x.") {
            maps.push((s.address(), true));
        } else if name == "$d" || name.starts_with("$d.") {
            maps.push((s.address(), false));
        } else if s.kind() == object::SymbolKind::Text {
            funcs.push((s.address(), name.to_string()));
        }
    }
    assert!(
        maps.iter().any(|m| m.1),
        "{}: no $x mapping symbols: the check cannot tell code from data",
        elf_path.display()
    );
    maps.sort();
    funcs.sort();
    let is_code = |addr: u64| match maps.partition_point(|m| m.0 <= addr) {
        0 => true,
        i => maps[i - 1].1,
    };
    let symbol = |addr: u64| match funcs.partition_point(|f| f.0 <= addr) {
        0 => String::from("?"),
        i => funcs[i - 1].1.clone(),
    };
    let mut found = Vec::new();
    let mut words = 0;
    for sec in elf.sections() {
        if sec.kind() != SectionKind::Text {
            continue;
        }
        let bytes = sec.data().expect("section data");
        for (i, w) in bytes.chunks_exact(4).enumerate() {
            let addr = sec.address() + 4 * i as u64;
            if !is_code(addr) {
                continue;
            }
            words += 1;
            let insn = u32::from_le_bytes(w.try_into().unwrap());
            if let Some(class) = fp_simd_class(insn) {
                found.push((addr, insn, class, symbol(addr)));
            }
        }
    }
    assert!(words > 1000, "only {words} instructions decoded");
    found
}

#[test]
fn decoder_knows_fp_simd_instructions() {
    // Encodings from the Arm ARM (as an assembler emits them).
    let fp = [
        (0x4f00_0400, "movi v0.4s, #0"),
        (0xad00_0000, "stp q0, q0, [x0]"),
        (0x3d80_0000, "str q0, [x0]"),
        (0x1e60_4020, "fmov d0, d1"),
        (0x9e67_0020, "fmov d0, x1"),
        (0x4c40_7000, "ld1 {v0.16b}, [x0]"),
        (0xd53b_4400, "mrs x0, fpcr"),
        (0xd51b_4421, "msr fpsr, x1"),
        (0x0460_3000, "SVE: mov z0.d, z0.d (orr)"),
        (0xc008_00ff, "SME: zero {za}"),
    ];
    for (insn, what) in fp {
        assert!(
            fp_simd_class(insn).is_some(),
            "{what} ({insn:#010x}) missed"
        );
    }
    let integer = [
        (0xa900_07e0, "stp x0, x1, [sp]"),
        (0xf940_0000, "ldr x0, [x0]"),
        (0x8b01_0000, "add x0, x0, x1"),
        (0xd503_201f, "nop"),
        (0xd51c_1100, "msr hcr_el2, x0"),
        (0xd53c_5200, "mrs x0, esr_el2"),
        (0x9400_0000, "bl ."),
        (0xd400_0002, "hvc #0"),
        (0xd51c_1200, "msr zcr_el2, x0"),
    ];
    for (insn, what) in integer {
        assert_eq!(fp_simd_class(insn), None, "{what} ({insn:#010x}) flagged");
    }
}

#[test]
fn el2_code_never_touches_fp_simd() {
    let dir = tessera_tests::images();
    for image in ["tessera.elf", "tessera-test-partition.elf"] {
        let found = offenders(&dir.join(image));
        let list: Vec<String> = found
            .iter()
            .take(20)
            .map(|(a, w, c, s)| format!("  {a:#x}: {w:#010x} {c} in {s}"))
            .collect();
        assert!(
            found.is_empty(),
            "{image}: {} instruction(s) touch FP/SIMD state:\n{}",
            found.len(),
            list.join("\n")
        );
    }
}
