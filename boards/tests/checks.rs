//! One test per check: a small valid board, broken in one place, must fail
//! with exactly the message that names the file, the entry and the reason.

use tessera_boards::load_str;

const BASE: &str = r#"
[platform]
name = "mini"
ram = [{ base = 0x4000_0000, size = "256M" }]
hypervisor = { base = 0x4000_0000, size = "16M" }
cpus = [{ core = 0, mpidr = 0x0 }, { core = 1, mpidr = 0x1 }, { core = 2, mpidr = 0x2 }]
uart = { base = 0x0900_0000, size = "4K", spi = 1 }
gic = { distributor = 0x0800_0000, redistributor = 0x080A_0000, redistributor_stride = "128K" }
gpu = "pcie"

[[platform.device]]
name = "pcie"
mmio = [{ base = 0x1000_0000, size = "256M" }]
spis = [3, 4]

[[platform.device]]
name = "rtc"
mmio = [{ base = 0x0901_0000, size = "4K" }]
spis = [2]

[owners]
gpu = "b"
display = "b"

[[vm]]
name = "a"
cores = [0]
memory = [{ ipa = 0x4000_0000, size = "16M" }]

[[vm]]
name = "b"
cores = [1]
memory = [{ ipa = 0x4000_0000, size = "16M" }]
devices = ["pcie"]

[[shared]]
name = "ab"
size = "2M"
writers = ["a"]
peer = [{ vm = "a", ipa = 0x5000_0000, doorbell = 40 }, { vm = "b", ipa = 0x5000_0000, doorbell = 40 }]
"#;

/// BASE with each `(from, to)` replacement applied; `from` must occur.
fn board(edits: &[(&str, &str)]) -> String {
    let mut text = BASE.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "edit target {from:?} not in BASE");
        text = text.replacen(from, to, 1);
    }
    text
}

fn errors(edits: &[(&str, &str)]) -> Vec<String> {
    match load_str("t.toml", &board(edits)) {
        Ok(_) => panic!("board accepted after {edits:?}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

#[track_caller]
fn assert_error(edits: &[(&str, &str)], expected: &str) {
    let errs = errors(edits);
    assert!(
        errs.iter().any(|e| e == expected),
        "expected {expected:?} among {errs:#?}"
    );
}

/// Each of `expected` among the errors of one broken board.
#[track_caller]
fn assert_errors(edits: &[(&str, &str)], expected: &[&str]) {
    let errs = errors(edits);
    for e in expected {
        assert!(errs.iter().any(|x| x == e), "{e:?} not in {errs:#?}");
    }
}

const A_MEM: &str = r#"memory = [{ ipa = 0x4000_0000, size = "16M" }]
devices"#;

#[test]
fn base_board_is_valid_and_placed_after_the_hypervisor() {
    let plan = load_str("t.toml", BASE).unwrap().plan();
    let pa: Vec<u64> = plan.vms.iter().map(|v| v.memory[0].pa).collect();
    assert_eq!(pa, [0x4100_0000, 0x4200_0000]);
    assert_eq!(plan.shared[0].pa, 0x4300_0000);
    assert_eq!(plan.vm("b").unwrap().vmid, 2);
}

#[test]
fn explicit_phys_is_kept_and_avoided() {
    let b = load_str(
        "t.toml",
        &board(&[(
            r#"cores = [0]
memory = [{ ipa = 0x4000_0000, size = "16M" }]"#,
            r#"cores = [0]
memory = [{ ipa = 0x4000_0000, size = "16M", phys = 0x4100_0000 }]"#,
        )]),
    )
    .unwrap();
    let plan = b.plan();
    assert_eq!(plan.vm("a").unwrap().memory[0].pa, 0x4100_0000);
    assert_eq!(plan.vm("b").unwrap().memory[0].pa, 0x4200_0000);
}

#[test]
fn overlap_between_vms() {
    assert_error(
        &[
            (
                r#"cores = [0]
memory = [{ ipa = 0x4000_0000, size = "16M" }]"#,
                r#"cores = [0]
memory = [{ ipa = 0x4000_0000, size = "16M", phys = 0x4100_0000 }]"#,
            ),
            (
                A_MEM,
                r#"memory = [{ ipa = 0x4000_0000, size = "16M", phys = 0x4180_0000 }]
devices"#,
            ),
        ],
        "t.toml: vm \"b\" memory[0]: physical range 0x41800000..0x42800000 overlaps vm \"a\" memory[0] (0x41000000..0x42000000)",
    );
}

#[test]
fn overlap_with_shared_region() {
    assert_error(
        &[
            (A_MEM, r#"memory = [{ ipa = 0x4000_0000, size = "16M", phys = 0x4400_0000 }]
devices"#),
            (r#"size = "2M""#, r#"size = "2M"
phys = 0x4480_0000"#),
        ],
        "t.toml: shared \"ab\": physical range 0x44800000..0x44a00000 overlaps vm \"b\" memory[0] (0x44000000..0x45000000)",
    );
}

#[test]
fn overlap_with_hypervisor() {
    assert_error(
        &[(A_MEM, r#"memory = [{ ipa = 0x4000_0000, size = "16M", phys = 0x40f0_0000 }]
devices"#)],
        "t.toml: vm \"b\" memory[0]: physical range 0x40f00000..0x41f00000 overlaps platform.hypervisor (0x40000000..0x41000000)",
    );
}

#[test]
fn guest_physical_overlap_between_memory_regions() {
    assert_error(
        &[(
            A_MEM,
            r#"memory = [{ ipa = 0x4000_0000, size = "16M" }, { ipa = 0x40ff_f000, size = "4K" }]
devices"#,
        )],
        "t.toml: vm \"b\" memory[1]: guest-physical range 0x40fff000..0x41000000 overlaps vm \"b\" memory[0] (0x40000000..0x41000000)",
    );
}

#[test]
fn guest_physical_overlap_with_device() {
    assert_error(
        &[(A_MEM, r#"memory = [{ ipa = 0x1000_0000, size = "16M" }]
devices"#)],
        "t.toml: vm \"b\" device \"pcie\" mmio[0]: guest-physical range 0x10000000..0x20000000 overlaps vm \"b\" memory[0] (0x10000000..0x11000000)",
    );
}

#[test]
fn guest_physical_overlap_with_shared_window() {
    assert_error(
        &[(r#"{ vm = "a", ipa = 0x5000_0000"#, r#"{ vm = "a", ipa = 0x40ff_0000"#)],
        "t.toml: shared \"ab\" peer[0]: guest-physical range 0x40ff0000..0x411f0000 overlaps vm \"a\" memory[0] (0x40000000..0x41000000)",
    );
}

#[test]
fn guest_physical_overlap_with_virtual_gic() {
    assert_error(
        &[(A_MEM, r#"memory = [{ ipa = 0x0800_0000, size = "2M" }]
devices"#)],
        "t.toml: vm \"b\" emulated GIC distributor: guest-physical range 0x8000000..0x8010000 overlaps vm \"b\" memory[0] (0x8000000..0x8200000)",
    );
}

#[test]
fn core_in_two_vms() {
    assert_error(
        &[("cores = [1]", "cores = [0]")],
        "t.toml: vm \"b\": core 0 is already in vm \"a\"",
    );
}

#[test]
fn core_the_platform_lacks() {
    assert_error(
        &[("cores = [1]", "cores = [1, 7]")],
        "t.toml: vm \"b\": core 7 is not a core of platform \"mini\" (cores: 0, 1, 2)",
    );
}

#[test]
fn memory_outside_ram() {
    assert_error(
        &[(
            A_MEM,
            r#"memory = [{ ipa = 0x4000_0000, size = "16M", phys = 0x4f80_0000 }]
devices"#,
        )],
        "t.toml: vm \"b\" memory[0]: physical range 0x4f800000..0x50800000 is outside RAM",
    );
}

#[test]
fn memory_that_does_not_fit_in_ram() {
    assert_error(
        &[(A_MEM, r#"memory = [{ ipa = 0x4000_0000, size = "250M" }]
devices"#)],
        "t.toml: vm \"b\" memory[0]: no free 2 MiB-aligned RAM for 0xfa00000 bytes (free: 0x42000000..0x50000000)",
    );
}

#[test]
fn unaligned_size() {
    assert_error(
        &[(
            A_MEM,
            r#"memory = [{ ipa = 0x4000_0000, size = 0x1800 }]
devices"#,
        )],
        "t.toml: vm \"b\" memory[0]: size 0x1800 is not a multiple of 4 KiB",
    );
}

#[test]
fn unaligned_ipa_and_phys() {
    let errs = errors(&[(
        A_MEM,
        r#"memory = [{ ipa = 0x4000_0800, size = "16M", phys = 0x4400_0010 }]
devices"#,
    )]);
    assert!(
        errs.contains(&"t.toml: vm \"b\" memory[0]: ipa 0x40000800 is not 4 KiB aligned".into()),
        "{errs:#?}"
    );
    assert!(
        errs.contains(&"t.toml: vm \"b\" memory[0]: phys 0x44000010 is not 4 KiB aligned".into()),
        "{errs:#?}"
    );
}

#[test]
fn unaligned_shared_size() {
    assert_error(
        &[(r#"size = "2M""#, r#"size = 0x1401"#)],
        "t.toml: shared \"ab\": size 0x1401 is not a multiple of 4 KiB",
    );
}

#[test]
fn shared_region_naming_unknown_vm() {
    assert_error(
        &[(r#"{ vm = "b", ipa"#, r#"{ vm = "zz", ipa"#)],
        "t.toml: shared \"ab\" peer[1]: unknown vm \"zz\"",
    );
}

#[test]
fn writer_that_is_not_a_peer() {
    assert_error(
        &[(r#"writers = ["a"]"#, r#"writers = ["a", "c"]"#)],
        "t.toml: shared \"ab\": writer \"c\" is not a peer",
    );
}

#[test]
fn device_in_two_vms() {
    assert_error(
        &[("cores = [0]", "cores = [0]\ndevices = [\"pcie\"]")],
        "t.toml: vm \"b\": device \"pcie\" is already passed through to vm \"a\"",
    );
}

#[test]
fn unknown_device() {
    assert_error(
        &[(r#"devices = ["pcie"]"#, r#"devices = ["pcie", "nic"]"#)],
        "t.toml: vm \"b\": unknown device \"nic\" (platform devices: pcie, rtc)",
    );
}

#[test]
fn duplicate_vm_name() {
    assert_error(
        &[(r#"name = "b""#, r#"name = "a""#)],
        "t.toml: vm \"a\": duplicate vm name (vm[1] and vm[0])",
    );
}

#[test]
fn vm_without_cores() {
    assert_error(
        &[("cores = [1]", "cores = []")],
        "t.toml: vm \"b\": has no cores",
    );
}

#[test]
fn vm_without_memory() {
    assert_error(
        &[(A_MEM, "memory = []\ndevices")],
        "t.toml: vm \"b\": has no memory",
    );
}

#[test]
fn doorbell_colliding_with_passed_through_interrupt() {
    assert_error(
        &[(r#"ipa = 0x5000_0000, doorbell = 40 }]"#, r#"ipa = 0x5000_0000, doorbell = 4 }]"#)],
        "t.toml: shared \"ab\" peer[1]: doorbell SPI 4 collides with an interrupt passed through to vm \"b\"",
    );
}

#[test]
fn doorbell_colliding_with_another_doorbell() {
    let second = r#"
[[shared]]
name = "ab2"
size = "2M"
peer = [{ vm = "a", ipa = 0x6000_0000, doorbell = 40 }]
"#;
    let text = format!("{BASE}{second}");
    let errs: Vec<String> = load_str("t.toml", &text)
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        errs,
        ["t.toml: shared \"ab2\" peer[0]: doorbell SPI 40 is already the doorbell of shared \"ab\" in vm \"a\""]
    );
}

#[test]
fn gpu_and_display_owner_naming_unknown_vm() {
    let errs = errors(&[(
        "gpu = \"b\"\ndisplay = \"b\"",
        "gpu = \"x\"\ndisplay = \"y\"",
    )]);
    assert_eq!(
        errs,
        [
            "t.toml: owners.gpu: unknown vm \"x\"",
            "t.toml: owners.display: unknown vm \"y\""
        ]
    );
}

#[test]
fn gpu_owner_without_the_gpu_device() {
    assert_error(
        &[("gpu = \"b\"", "gpu = \"a\"")],
        "t.toml: owners.gpu: vm \"a\" owns the GPU but does not pass through device \"pcie\"",
    );
}

#[test]
fn vmid_overflow() {
    assert_error(
        &[(r#"name = "b""#, "name = \"b\"\nvmid = 256")],
        "t.toml: vm \"b\": vmid 256 overflows the 8-bit VMID (1..=255)",
    );
}

#[test]
fn automatic_vmid_overflow() {
    // 255 explicit VMIDs leave none for the automatic one; the extra VMs
    // also lack cores, which must not hide the VMID error.
    let mut text = BASE.replace(r#"name = "a""#, "name = \"a\"\nvmid = 1");
    for i in 3..=255 {
        text.push_str(&format!(
            "\n[[vm]]\nname = \"v{i}\"\nvmid = {i}\ncores = []\n"
        ));
    }
    text = text.replacen(r#"name = "b""#, "name = \"b\"\nvmid = 2", 1);
    text.push_str("\n[[vm]]\nname = \"last\"\ncores = []\n");
    let errs = load_str("t.toml", &text).unwrap_err().to_string();
    assert!(
        errs.contains(
            "t.toml: vm \"last\": automatic vmid 256 overflows the 8-bit VMID (at most 255 VMs)"
        ),
        "{errs}"
    );
}

#[test]
fn duplicate_vmid() {
    assert_error(
        &[
            (r#"name = "a""#, "name = \"a\"\nvmid = 7"),
            (r#"name = "b""#, "name = \"b\"\nvmid = 7"),
        ],
        "t.toml: vm \"b\": vmid 7 is already vm \"a\"'s",
    );
}

#[test]
fn unknown_key_is_an_error() {
    let errs = errors(&[("cores = [0]", "cores = [0]\ncolour = \"red\"")]);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("t.toml: TOML parse error at line "),
        "{}",
        errs[0]
    );
    assert!(errs[0].contains("unknown field `colour`"), "{}", errs[0]);
}

#[test]
fn bad_size_string_is_an_error() {
    let errs = errors(&[(r#"size = "2M""#, r#"size = "2Q""#)]);
    assert!(
        errs[0].contains("size \"2Q\": unknown unit `Q`"),
        "{}",
        errs[0]
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let errs = errors(&[
        ("cores = [1]", "cores = [0]"),
        (r#"devices = ["pcie"]"#, r#"devices = ["nic"]"#),
        (r#"writers = ["a"]"#, r#"writers = ["c"]"#),
    ]);
    assert_eq!(
        errs,
        [
            "t.toml: vm \"b\": core 0 is already in vm \"a\"",
            "t.toml: vm \"b\": unknown device \"nic\" (platform devices: pcie, rtc)",
            "t.toml: shared \"ab\": writer \"c\" is not a peer",
            "t.toml: owners.gpu: vm \"b\" owns the GPU but does not pass through device \"pcie\"",
        ]
    );
}

/// The checks beyond the ones above, one row each: (edits, exact message).
#[test]
fn further_checks() {
    let vm_a_mem = r#"cores = [0]
memory = [{ ipa = 0x4000_0000, size = "16M" }]"#;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[(vm_a_mem, "cores = [0]\nmemory = [{ ipa = 0x4000_0000, size = \"16M\" }]\nimage = [{ name = \"k\", ipa = 0x4100_0000 }]")],
            "t.toml: vm \"a\" image[0]: load address 0x41000000 of \"k\" is outside the VM's memory",
        ),
        (
            &[("cores = [0]", "cores = [0]\nentry = 0x1000")],
            "t.toml: vm \"a\": entry 0x1000 is outside the VM's memory",
        ),
        (
            &[("cores = [0]", "cores = [0]\ninterrupts = [3]")],
            "t.toml: vm \"b\": SPI 3 is already passed through to vm \"a\"",
        ),
        (
            &[("cores = [0]", "cores = [0]\ninterrupts = [1]")],
            "t.toml: vm \"a\": SPI 1 is the console UART's, which the hypervisor owns",
        ),
        (
            &[("cores = [0]", "cores = [0]\ninterrupts = [988]")],
            "t.toml: vm \"a\": SPI 988 is beyond the last GICv3 SPI (987)",
        ),
        (
            &[("cores = [0]", "cores = [0, 0]")],
            "t.toml: vm \"a\": core 0 is listed twice",
        ),
        (
            &[(r#"devices = ["pcie"]"#, r#"devices = ["pcie", "pcie"]"#)],
            "t.toml: vm \"b\": device \"pcie\" is listed twice",
        ),
        (
            &[(r#"name = "a""#, "name = \"a\"\nvmid = 0")],
            "t.toml: vm \"a\": vmid 0 is reserved (use 1..=255)",
        ),
        (
            &[("0x0901_0000, size = \"4K\" }]", "0x4800_0000, size = \"4K\" }]")],
            "t.toml: platform device \"rtc\" mmio[0]: physical range 0x48000000..0x48001000 overlaps platform.ram[0] (0x40000000..0x50000000)",
        ),
        (
            &[("0x0901_0000, size = \"4K\" }]", "0x0905_0000, size = \"4K\" }]"),
                ("gpu = \"pcie\"", "gpu = \"pcie\"\nsmmu = { base = 0x0905_0000, size = \"128K\" }")],
            "t.toml: platform device \"rtc\" mmio[0]: physical range 0x9050000..0x9051000 overlaps platform.smmu (0x9050000..0x9070000)",
        ),
        (
            &[("0x0901_0000, size = \"4K\" }]", "0x0800_0000, size = \"4K\" }]")],
            "t.toml: platform device \"rtc\" mmio[0]: physical range 0x8000000..0x8001000 overlaps platform.gic distributor (0x8000000..0x8010000)",
        ),
        (
            &[("hypervisor = { base = 0x4000_0000", "hypervisor = { base = 0x3000_0000")],
            "t.toml: platform.hypervisor: range 0x30000000..0x31000000 is outside RAM",
        ),
        (
            &[("{ core = 2, mpidr = 0x2 }", "{ core = 1, mpidr = 0x2 }")],
            "t.toml: platform.cpus[2]: core 1 is already cpus[1]",
        ),
        (
            &[("{ core = 2, mpidr = 0x2 }", "{ core = 2, mpidr = 0x1 }")],
            "t.toml: platform.cpus[2]: mpidr 0x1 is already cpus[1]",
        ),
        (
            &[(r#"name = "rtc""#, r#"name = "pcie""#)],
            "t.toml: platform device \"pcie\": duplicate device name",
        ),
        (
            &[("spis = [2]", "spis = [4]")],
            "t.toml: platform device \"rtc\": SPI 4 is already device \"pcie\"'s",
        ),
        (
            &[("spis = [2]", "spis = [1]")],
            "t.toml: platform device \"rtc\": SPI 1 is the console UART's",
        ),
        (
            &[("gpu = \"pcie\"", "gpu = \"gfx\"")],
            "t.toml: platform.gpu: unknown device \"gfx\"",
        ),
        (
            &[("display = \"b\"", "display = \"b\"\nconsole = \"q\"")],
            "t.toml: owners.console: unknown vm \"q\"",
        ),
        (
            &[(r#"{ vm = "b", ipa"#, r#"{ vm = "a", ipa"#)],
            "t.toml: shared \"ab\" peer[1]: vm \"a\" is a peer twice",
        ),
        (
            &[(r#"ipa = 0x5000_0000, doorbell = 40 }]"#, r#"ipa = 0x5000_0000, doorbell = 1 }]"#)],
            "t.toml: shared \"ab\" peer[1]: doorbell SPI 1 collides with the virtual UART's SPI",
        ),
        (
            &[(r#"size = "2M""#, "size = \"2M\"\nphys = 0x4400_0400")],
            "t.toml: shared \"ab\": phys 0x44000400 is not 4 KiB aligned",
        ),
        (
            &[(r#"{ vm = "a", ipa = 0x5000_0000"#, r#"{ vm = "a", ipa = 0x5000_0200"#)],
            "t.toml: shared \"ab\" peer[0]: ipa 0x50000200 is not 4 KiB aligned",
        ),
        (
            &[(r#"size = "2M""#, r#"size = "240M""#)],
            "t.toml: shared \"ab\": no free 2 MiB-aligned RAM for 0xf000000 bytes (free: 0x43000000..0x50000000)",
        ),
        (
            &[(r#"size = "2M""#, r#"size = 0"#)],
            "t.toml: shared \"ab\": size is zero",
        ),
    ];
    for (edits, expected) in cases {
        let errs = errors(edits);
        assert!(
            errs.iter().any(|e| e == expected),
            "expected {expected:?} among {errs:#?}"
        );
    }
}

#[test]
fn shared_region_without_peers_or_duplicated() {
    let extra = "\n[[shared]]\nname = \"ab\"\nsize = \"2M\"\npeer = []\n";
    let errs = load_str("t.toml", &format!("{BASE}{extra}"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        errs,
        "t.toml: shared \"ab\": duplicate shared region name\nt.toml: shared \"ab\": has no peers"
    );
}

/// The emulated GIC, UART and control page sit at fixed guest addresses
/// (the guest ABI), whatever the platform's physical ones: a board whose
/// physical GIC and UART are elsewhere must still keep RAM, devices and
/// shared windows off them.
const MOVED_HW: &[(&str, &str)] = &[
    ("uart = { base = 0x0900_0000", "uart = { base = 0x2c09_0000"),
    (
        "gic = { distributor = 0x0800_0000, redistributor = 0x080A_0000",
        "gic = { distributor = 0x2f00_0000, redistributor = 0x2f10_0000",
    ),
];

#[track_caller]
fn assert_error_moved(extra: &[(&str, &str)], expected: &str) {
    let mut edits = MOVED_HW.to_vec();
    edits.extend_from_slice(extra);
    assert_error(&edits, expected);
}

#[test]
fn memory_over_the_emulated_gic_distributor() {
    assert_error_moved(
        &[(A_MEM, "memory = [{ ipa = 0x0800_0000, size = \"64K\" }]\ndevices")],
        "t.toml: vm \"b\" emulated GIC distributor: guest-physical range 0x8000000..0x8010000 overlaps vm \"b\" memory[0] (0x8000000..0x8010000)",
    );
}

#[test]
fn shared_window_over_the_emulated_gic_redistributors() {
    assert_error_moved(
        &[(r#"{ vm = "a", ipa = 0x5000_0000"#, r#"{ vm = "a", ipa = 0x080A_0000"#)],
        "t.toml: vm \"a\" emulated GIC redistributors: guest-physical range 0x80a0000..0x80c0000 overlaps shared \"ab\" peer[0] (0x80a0000..0x82a0000)",
    );
}

#[test]
fn device_over_the_emulated_uart() {
    assert_error_moved(
        &[
            ("mmio = [{ base = 0x0901_0000", "mmio = [{ base = 0x0900_0000"),
            ("cores = [0]", "cores = [0]\ndevices = [\"rtc\"]"),
        ],
        "t.toml: vm \"a\" emulated UART: guest-physical range 0x9000000..0x9001000 overlaps vm \"a\" device \"rtc\" mmio[0] (0x9000000..0x9001000)",
    );
}

#[test]
fn memory_over_the_control_page() {
    assert_error(
        &[(A_MEM, "memory = [{ ipa = 0x0B00_0000, size = \"16M\" }]\ndevices")],
        "t.toml: vm \"b\" control page: guest-physical range 0xb000000..0xb001000 overlaps vm \"b\" memory[0] (0xb000000..0xc000000)",
    );
}

#[test]
fn more_vcpus_than_a_vm_can_have() {
    let cpus =
        "cpus = [{ core = 0, mpidr = 0x0 }, { core = 1, mpidr = 0x1 }, { core = 2, mpidr = 0x2 }]";
    let five = "cpus = [{ core = 0, mpidr = 0x0 }, { core = 1, mpidr = 0x1 }, { core = 2, mpidr = 0x2 }, { core = 3, mpidr = 0x3 }, { core = 4, mpidr = 0x4 }, { core = 5, mpidr = 0x5 }]";
    assert_error(
        &[(cpus, five), ("cores = [1]", "cores = [1, 2, 3, 4, 5]")],
        "t.toml: vm \"b\": 5 cores, but a VM has at most 4 vCPUs",
    );
}

#[test]
fn shared_region_without_room_after_its_header() {
    assert_error(
        &[("size = \"2M\"\nwriters", "size = \"4K\"\nwriters")],
        "t.toml: shared \"ab\": size 0x1000 leaves no room for data after the 4 KiB header page",
    );
}

const PCIE_SPIS: &str = "spis = [3, 4]\n";
const B_DEVICES: &str = r#"devices = ["pcie"]"#;

#[test]
fn pci_host_without_smmu_is_refused() {
    assert_error(
        &[(PCIE_SPIS, "spis = [3, 4]\npci_host = true\n")],
        "t.toml: vm \"b\": PCIe host \"pcie\" is a bus master: passing it through needs platform.smmu to confine its DMA to the VM's memory (no SMMU on this board)",
    );
}

#[test]
fn pci_functions_are_checked() {
    let smmu = (
        "gpu = \"pcie\"\n",
        "gpu = \"pcie\"\nsmmu = { base = 0x0905_0000, size = \"128K\" }\n",
    );
    let host = (PCIE_SPIS, "spis = [3, 4]\npci_host = true\n");
    // Valid: functions listed for the VM that owns the host.
    let ok = board(&[
        smmu,
        host,
        (
            B_DEVICES,
            "devices = [\"pcie\"]\npci = [\"00:02.0\", \"01:00.1\"]",
        ),
    ]);
    let plan = load_str("t.toml", &ok).unwrap().plan();
    let b = plan.vm("b").unwrap();
    assert_eq!(
        b.pci.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        ["00:02.0", "01:00.1"]
    );
    assert!(b.devices[0].pci_host);
    assert_error(
        &[
            smmu,
            host,
            (B_DEVICES, "devices = [\"pcie\"]\ndma_fault = \"fault\""),
        ],
        "t.toml: vm \"b\": dma_fault = \"fault\" but the VM lists no PCI functions (pci = [...])",
    );
    let contained = board(&[
        smmu,
        host,
        (
            B_DEVICES,
            "devices = [\"pcie\"]\npci = [\"00:02.0\"]\ndma_fault = \"fault\"",
        ),
    ]);
    assert!(
        load_str("t.toml", &contained)
            .unwrap()
            .plan()
            .vm("b")
            .unwrap()
            .dma_fault_is_fault
    );
    assert!(
        !plan.vm("b").unwrap().dma_fault_is_fault,
        "log is the default"
    );
    assert_error(
        &[smmu, host, (B_DEVICES, "devices = [\"pcie\"]\npci = [\"00:20.0\"]")],
        "t.toml: vm \"b\": pci[0] \"00:20.0\" is not a PCI function (\"bus:device.function\", hex, e.g. \"00:02.0\")",
    );
    assert_error(
        &[
            smmu,
            host,
            (
                B_DEVICES,
                "devices = [\"pcie\"]\npci = [\"00:02.0\", \"00:02.0\"]",
            ),
        ],
        "t.toml: vm \"b\": pci[1] 00:02.0 is already vm \"b\"'s",
    );
    assert_error(
        &[smmu, host, ("name = \"a\"\ncores = [0]\n", "name = \"a\"\ncores = [0]\npci = [\"00:03.0\"]\n")],
        "t.toml: vm \"a\": pci[0] 00:03.0: the VM owns no PCIe host (a device with pci_host = true)",
    );
}

// Linux VMs and the staging area.

const STAGING: (&str, &str) = (
    "gpu = \"pcie\"",
    "gpu = \"pcie\"\nstaging = { base = 0x4800_0000, size = \"64M\" }",
);
const A_LINUX: &str = r#"memory = [{ ipa = 0x4000_0000, size = "16M" }]
linux = { kernel = { file = "Image", at = 0x4800_0000, max = "32M" }, initrd = { file = "a.cpio", at = 0x4A00_0000, max = "16M" }, bootargs = "console=ttyAMA0" }

[[vm]]
name = "b""#;
const A_MEMORY_B: &str = r#"memory = [{ ipa = 0x4000_0000, size = "16M" }]

[[vm]]
name = "b""#;

#[test]
fn linux_vm_is_staged_and_placed_around_the_staging_area() {
    let text = board(&[STAGING, (A_MEMORY_B, A_LINUX)]);
    let plan = load_str("t.toml", &text).unwrap().plan();
    let st = plan.platform.staging.unwrap();
    assert_eq!((st.base, st.size), (0x4800_0000, 64 << 20));
    let a = plan.vm("a").unwrap();
    let l = a.linux.unwrap();
    assert_eq!(
        (l.kernel.file, l.kernel.pa, l.kernel.max),
        ("Image", 0x4800_0000, 32 << 20)
    );
    assert_eq!(l.initrd.unwrap().file, "a.cpio");
    assert_eq!(l.bootargs, "console=ttyAMA0");
    assert_eq!(a.entry, 0x4000_0000);
    assert!(plan.vm("b").unwrap().linux.is_none());
    for vm in plan.vms {
        for m in vm.memory {
            assert!(
                !m.pa_range().overlaps(&st),
                "{} placed over staging",
                vm.name
            );
        }
    }
}

#[test]
fn linux_without_staging_area() {
    assert_error(
        &[(A_MEMORY_B, A_LINUX)],
        "t.toml: vm \"a\" linux.kernel: needs platform.staging to be loaded into",
    );
}

#[test]
fn staging_outside_ram_or_over_the_hypervisor() {
    let outside = (
        "gpu = \"pcie\"",
        "gpu = \"pcie\"\nstaging = { base = 0x8000_0000, size = \"64M\" }",
    );
    assert_error(
        &[outside],
        "t.toml: platform.staging: range 0x80000000..0x84000000 is outside RAM",
    );
    let over = (
        "gpu = \"pcie\"",
        "gpu = \"pcie\"\nstaging = { base = 0x4000_0000, size = \"64M\" }",
    );
    assert_error(
        &[over],
        "t.toml: platform.staging: physical range 0x40000000..0x44000000 overlaps platform.hypervisor (0x40000000..0x41000000)",
    );
}

#[test]
fn staged_slot_outside_the_staging_area() {
    let text = A_LINUX.replace(
        "at = 0x4A00_0000, max = \"16M\"",
        "at = 0x4B00_0000, max = \"32M\"",
    );
    assert_error(
        &[STAGING, (A_MEMORY_B, &text)],
        "t.toml: vm \"a\" linux.initrd: slot 0x4b000000..0x4d000000 is outside platform.staging (0x48000000..0x4c000000)",
    );
}

#[test]
fn staged_slots_overlap() {
    let text = A_LINUX.replace("at = 0x4A00_0000", "at = 0x4900_0000");
    assert_error(
        &[STAGING, (A_MEMORY_B, &text)],
        "t.toml: vm \"a\" linux.initrd (\"a.cpio\"): staging range 0x49000000..0x4a000000 overlaps vm \"a\" linux.kernel (\"Image\") (0x48000000..0x4a000000)",
    );
}

#[test]
fn same_file_two_slots() {
    let b_linux = (
        "devices = [\"pcie\"]",
        "devices = [\"pcie\"]\nlinux = { kernel = { file = \"Image\", at = 0x4A00_0000, max = \"16M\" } }",
    );
    assert_error(
        &[STAGING, (A_MEMORY_B, A_LINUX), b_linux],
        "t.toml: vm \"b\" linux.kernel: file \"Image\" is already loaded at 0x48000000..0x4a000000 by vm \"a\" linux.kernel",
    );
    // The same file from the same slot is how two VMs share a kernel.
    let shared = (
        "devices = [\"pcie\"]",
        "devices = [\"pcie\"]\nlinux = { kernel = { file = \"Image\", at = 0x4800_0000, max = \"32M\" } }",
    );
    load_str("t.toml", &board(&[STAGING, (A_MEMORY_B, A_LINUX), shared])).unwrap();
}

#[test]
fn linux_vm_with_image_entry_or_unaligned_ram() {
    let with_image = A_LINUX.replace(
        "linux = {",
        "image = [{ name = \"x.bin\", ipa = 0x4000_0000 }]\nentry = 0x4000_0000\nlinux = {",
    );
    assert_errors(
        &[STAGING, (A_MEMORY_B, &with_image)],
        &[
            "t.toml: vm \"a\": boots Linux, so it takes no `image` (its files come from platform.staging)",
            "t.toml: vm \"a\": boots Linux, so it takes no `entry` (RAM base + the Image's text_offset)",
        ],
    );
    let unaligned = A_LINUX.replace("ipa = 0x4000_0000, size", "ipa = 0x4010_0000, size");
    assert_error(
        &[STAGING, (A_MEMORY_B, &unaligned)],
        "t.toml: vm \"a\" memory[0]: ipa 0x40100000 is not 2 MiB aligned, as a Linux kernel's RAM base must be",
    );
}

#[test]
fn staged_file_names_and_sizes() {
    let bad = A_LINUX
        .replace("file = \"a.cpio\"", "file = \"a b/c\"")
        .replace("max = \"32M\"", "max = 0x1800");
    assert_errors(
        &[STAGING, (A_MEMORY_B, &bad)],
        &[
            "t.toml: vm \"a\" linux.initrd: file name \"a b/c\" must be 1 to 31 characters of A-Z a-z 0-9 . _ + -",
            "t.toml: vm \"a\" linux.kernel: size 0x1800 is not a multiple of 4 KiB",
        ],
    );
    let nul = A_LINUX.replace("console=ttyAMA0", "a\\u0000b");
    assert_error(
        &[STAGING, (A_MEMORY_B, &nul)],
        "t.toml: vm \"a\" linux.bootargs: contains a NUL byte",
    );
}

const COCKPIT: &str = r#"
[cockpit]
output = { width = 512, height = 256 }
no_signal_ms = 1000
[[cockpit.area]]
shared = "ab"
x = 0
y = 0
width = 256
height = 256
cluster = true
"#;

fn cockpit_errors(edits: &[(&str, &str)]) -> Vec<String> {
    let mut text = BASE.to_string() + COCKPIT;
    for (from, to) in edits {
        assert!(text.contains(from), "edit target {from:?} not in the board");
        text = text.replacen(from, to, 1);
    }
    match load_str("t.toml", &text) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn cockpit_layout_is_checked() {
    assert_eq!(cockpit_errors(&[]), Vec::<String>::new());
    let one = |edits: &[(&str, &str)], want: &str| {
        let errs = cockpit_errors(edits);
        assert!(
            errs.iter().any(|e| e == want),
            "expected {want:?} among {errs:#?}"
        );
    };
    one(
        &[("x = 0", "x = 300")],
        "t.toml: cockpit.area[0] (ab): 256x256 at (300, 0) is not inside the 512x256 output",
    );
    one(
        &[("shared = \"ab\"", "shared = \"nope\"")],
        "t.toml: cockpit.area[0] (nope): no shared region of that name",
    );
    one(
        &[("gpu = \"b\"", "gpu = \"c\"")],
        "t.toml: cockpit.area[0] (ab): the GPU owner is not a peer of this region",
    );
    let two = COCKPIT.to_string()
        + "[[cockpit.area]]\nshared = \"ab\"\nx = 100\ny = 0\nwidth = 10\nheight = 10\n";
    one(
        &[(COCKPIT, &two)],
        "t.toml: cockpit.area[0] (ab): overlaps cockpit.area[1] (ab)",
    );
    one(
        &[("no_signal_ms = 1000", "no_signal_ms = 0")],
        "t.toml: cockpit: no_signal_ms must be more than 0",
    );
}
