//! `tessera.*` options from `/chosen/bootargs`.
//!
//! Options let a test ask the hypervisor to end a run itself (`tessera.exit=poweroff`)
//! or to exercise a failure path (`tessera.test=crash`). Unknown `tessera.` options
//! are reported, not ignored, so a typo does not silently change a test.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnBootComplete {
    /// Stay up (the cores idle).
    #[default]
    Idle,
    /// PSCI SYSTEM_OFF: QEMU exits by itself.
    PowerOff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SelfTest {
    #[default]
    None,
    /// Touch an unmapped address at EL2 to show the crash report.
    Crash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options<'a> {
    pub on_complete: OnBootComplete,
    pub self_test: SelfTest,
    /// `tessera.test=firmware-traps`: every core sets the debug and PMU trap
    /// bits of MDCR_EL2 before the VMs start, as a careless firmware might
    /// leave them, so tests prove Tessera sets its own policy.
    pub firmware_traps: bool,
    /// The first `tessera.` option that was not understood.
    pub unknown: Option<&'a str>,
}

pub fn parse(bootargs: &str) -> Options<'_> {
    let mut o = Options::default();
    for word in bootargs.split_ascii_whitespace() {
        match word {
            "tessera.exit=poweroff" => o.on_complete = OnBootComplete::PowerOff,
            "tessera.exit=idle" => o.on_complete = OnBootComplete::Idle,
            "tessera.test=crash" => o.self_test = SelfTest::Crash,
            "tessera.test=firmware-traps" => o.firmware_traps = true,
            w if w.starts_with(LOADED) && parse_loaded(w).is_some() => {}
            w if w.starts_with("tessera.") && o.unknown.is_none() => o.unknown = Some(w),
            _ => {}
        }
    }
    o
}

const LOADED: &str = "tessera.loaded=";

/// `tessera.loaded=FILE:SIZE` (SIZE `0x` hex, as U-Boot's `0x${filesize}`,
/// or decimal): how many bytes of a staged file the loader placed.
fn parse_loaded(word: &str) -> Option<(&str, u64)> {
    let (file, size) = word.strip_prefix(LOADED)?.rsplit_once(':')?;
    let size = match size.strip_prefix("0x").or(size.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => size.parse().ok()?,
    };
    (!file.is_empty()).then_some((file, size))
}

/// The size the loader reported for `file` (the last report wins).
pub fn loaded(bootargs: &str, file: &str) -> Option<u64> {
    bootargs
        .split_ascii_whitespace()
        .rev()
        .filter_map(parse_loaded)
        .find(|(f, _)| *f == file)
        .map(|(_, size)| size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o = parse("console=ttyAMA0 tessera.exit=poweroff  tessera.test=crash");
        assert_eq!(o.on_complete, OnBootComplete::PowerOff);
        assert_eq!(o.self_test, SelfTest::Crash);
        assert_eq!(o.unknown, None);
        assert_eq!(parse("").on_complete, OnBootComplete::Idle);
        assert_eq!(parse("tessera.exit=off").unknown, Some("tessera.exit=off"));
    }

    #[test]
    fn loaded_sizes() {
        let a = "tessera.loaded=Image:0x1f2e000 tessera.loaded=ivi.cpio:4096 x";
        assert_eq!(parse(a).unknown, None);
        assert_eq!(loaded(a, "Image"), Some(0x1f2_e000));
        assert_eq!(loaded(a, "ivi.cpio"), Some(4096));
        assert_eq!(loaded(a, "gpu.cpio"), None);
        assert_eq!(
            loaded("tessera.loaded=a:1 tessera.loaded=a:0x2", "a"),
            Some(2)
        );
        for bad in [
            "tessera.loaded=Image",
            "tessera.loaded=Image:0xZZ",
            "tessera.loaded=:5",
        ] {
            assert_eq!(parse(bad).unknown, Some(bad));
            assert_eq!(loaded(bad, "Image"), None);
        }
    }
}
