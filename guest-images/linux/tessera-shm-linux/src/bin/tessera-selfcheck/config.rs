//! What to check, from the kernel command line (`/proc/cmdline`) and the
//! initramfs's role (`/etc/tessera-role`). Keys:
//!
//! - `tessera.checks=a,b,...`: the checks (default per role, below);
//! - `tessera.cpus=N`: CPUs that must be online (default: all possible);
//! - `tessera.shm=NAME:SIZE:rw|ro,...`: the regions that must be there;
//! - `tessera.pingpong=NAME:a|b[:N],...`: exchange N (10,000) messages each
//!   way over region NAME as side a (starts) or b (answers); several
//!   regions (comma-separated) one after the other, a PASS line each;
//! - `tessera.rtt=NAME:a|b[:N]`: N (1,000) doorbell round trips over NAME,
//!   one message at a time; side a reports the mean in counter ticks
//!   (after `tessera.pingpong` when both are given, on the same region);
//! - `tessera.rofault=NAME[:stage2]`: a write to read-only region NAME
//!   must fault; with `:stage2` (and `tessera_shm.stage2_test=1`) one
//!   write then goes past Linux to the hypervisor, which must stop or
//!   restart the VM.
//! - `tessera.crash=pingpong:N`: on the VM's first boot only (`/chosen`
//!   `tessera,boot-count` 0), crash the kernel (`echo c >
//!   /proc/sysrq-trigger`) once N messages have arrived, so the peer sees a
//!   restart mid-exchange (boot with `panic=-1` so the crash resets the VM).

use tessera_shm_linux::pingpong::Side;

pub const ALL: &[&str] = &[
    "cpus", "hotplug", "sleep", "fpsimd", "devices", "pingpong", "rtt", "rofault",
];

#[derive(Debug, PartialEq)]
pub struct Shm {
    pub name: String,
    pub size: u64,
    pub writable: bool,
}

#[derive(Debug, PartialEq)]
pub struct Config {
    pub checks: Vec<String>,
    pub cpus: Option<usize>,
    pub shm: Vec<Shm>,
    /// Exchanges, in order.
    pub pingpong: Vec<(String, Side, u32)>,
    pub rtt: Option<(String, Side, u32)>,
    pub rofault: Option<(String, bool)>,
    /// Crash after this many ping-pong messages (first boot only).
    pub crash_after: Option<u32>,
}

fn number(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("'{s}' is not a number"))
}

pub fn parse(cmdline: &str, role: &str) -> Result<Config, String> {
    let mut c = Config {
        checks: Vec::new(),
        cpus: None,
        shm: Vec::new(),
        pingpong: Vec::new(),
        rtt: None,
        rofault: None,
        crash_after: None,
    };
    let mut checks = None;
    for arg in cmdline.split_whitespace() {
        let Some((key, value)) = arg.split_once('=') else {
            continue;
        };
        match key {
            "tessera.checks" => checks = Some(value.to_string()),
            "tessera.cpus" => c.cpus = Some(number(value)? as usize),
            "tessera.shm" => {
                for s in value.split(',').filter(|s| !s.is_empty()) {
                    let f: Vec<&str> = s.split(':').collect();
                    let [name, size, access] = f[..] else {
                        return Err(format!("tessera.shm: '{s}' is not NAME:SIZE:rw|ro"));
                    };
                    let writable = match access {
                        "rw" => true,
                        "ro" => false,
                        _ => return Err(format!("tessera.shm: '{access}' is not rw or ro")),
                    };
                    c.shm.push(Shm {
                        name: name.into(),
                        size: number(size)?,
                        writable,
                    });
                }
            }
            "tessera.pingpong" => {
                for e in value.split(',') {
                    c.pingpong.push(exchange(key, e, 10_000)?);
                }
            }
            "tessera.rtt" => c.rtt = Some(exchange(key, value, 1_000)?),
            "tessera.rofault" => {
                let (name, stage2) = match value.split_once(':') {
                    Some((n, "stage2")) => (n, true),
                    None => (value, false),
                    _ => return Err(format!("tessera.rofault: '{value}' is not NAME[:stage2]")),
                };
                c.rofault = Some((name.into(), stage2));
            }
            "tessera.crash" => match value.strip_prefix("pingpong:") {
                Some(n) => c.crash_after = Some(number(n)? as u32),
                None => return Err(format!("tessera.crash: '{value}' is not pingpong:N")),
            },
            _ => {}
        }
    }
    let checks = checks.unwrap_or_else(|| {
        let mut d = match role {
            "gpu" => "cpus,hotplug,sleep,fpsimd,devices",
            _ => "cpus,sleep,fpsimd,devices",
        }
        .to_string();
        if !c.pingpong.is_empty() {
            d.push_str(",pingpong");
        }
        if c.rtt.is_some() {
            d.push_str(",rtt");
        }
        if c.rofault.is_some() {
            d.push_str(",rofault");
        }
        d
    });
    for ch in checks.split(',').filter(|s| !s.is_empty()) {
        if !ALL.contains(&ch) {
            return Err(format!(
                "tessera.checks: unknown check '{ch}' (known: {})",
                ALL.join(", ")
            ));
        }
        c.checks.push(ch.into());
    }
    if c.checks.iter().any(|x| x == "pingpong") && c.pingpong.is_empty() {
        return Err("the pingpong check needs tessera.pingpong=NAME:a|b".into());
    }
    if c.checks.iter().any(|x| x == "rtt") && c.rtt.is_none() {
        return Err("the rtt check needs tessera.rtt=NAME:a|b".into());
    }
    if c.checks.iter().any(|x| x == "rofault") && c.rofault.is_none() {
        return Err("the rofault check needs tessera.rofault=NAME".into());
    }
    Ok(c)
}

/// `NAME:a|b[:N]` of `tessera.pingpong` and `tessera.rtt`.
fn exchange(key: &str, value: &str, default: u32) -> Result<(String, Side, u32), String> {
    let bad = || format!("{key}: '{value}' is not NAME:a|b[:N]");
    let f: Vec<&str> = value.split(':').collect();
    let side = match f.get(1) {
        Some(&"a") => Side::A,
        Some(&"b") => Side::B,
        _ => return Err(bad()),
    };
    let n = match f.get(2) {
        Some(n) => number(n)? as u32,
        None => default,
    };
    if f.len() > 3 || f[0].is_empty() || n == 0 {
        return Err(bad());
    }
    Ok((f[0].into(), side, n))
}

/// `0-1,3` (sysfs CPU lists) to a count.
pub fn cpu_count(list: &str) -> Result<usize, String> {
    let mut n = 0;
    for part in list.trim().split(',').filter(|s| !s.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (number(a)?, number(b)?);
        if b < a {
            return Err(format!("bad CPU range '{part}'"));
        }
        n += (b - a + 1) as usize;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_by_role() {
        let c = parse("console=ttyAMA0 quiet", "gpu").unwrap();
        assert_eq!(c.checks, ["cpus", "hotplug", "sleep", "fpsimd", "devices"]);
        let c = parse("", "ivi").unwrap();
        assert_eq!(c.checks, ["cpus", "sleep", "fpsimd", "devices"]);
    }

    #[test]
    fn everything_the_tier_can_say() {
        let c = parse(
            "tessera.cpus=2 tessera.shm=ivi-gpu:0x100000:rw,ro-buf:65536:ro \
             tessera.pingpong=ivi-gpu:b:500 tessera.rofault=ro-buf:stage2",
            "ivi",
        )
        .unwrap();
        assert_eq!(c.cpus, Some(2));
        assert_eq!(
            c.shm,
            [
                Shm {
                    name: "ivi-gpu".into(),
                    size: 0x10_0000,
                    writable: true
                },
                Shm {
                    name: "ro-buf".into(),
                    size: 65536,
                    writable: false
                },
            ]
        );
        assert_eq!(c.pingpong, [("ivi-gpu".into(), Side::B, 500)]);
        assert_eq!(c.rofault, Some(("ro-buf".into(), true)));
        assert_eq!(c.crash_after, None);
        assert_eq!(
            c.checks,
            ["cpus", "sleep", "fpsimd", "devices", "pingpong", "rofault"]
        );
        let c = parse("tessera.checks=sleep tessera.pingpong=x:a", "gpu").unwrap();
        assert_eq!(c.checks, ["sleep"]);
        assert_eq!(c.pingpong, [("x".into(), Side::A, 10_000)]);
        let c = parse("tessera.pingpong=bm-ivi:b,ivi-gpu:a:7", "ivi").unwrap();
        assert_eq!(
            c.pingpong,
            [
                ("bm-ivi".into(), Side::B, 10_000),
                ("ivi-gpu".into(), Side::A, 7)
            ]
        );
        let c = parse("tessera.pingpong=x:a tessera.crash=pingpong:3000", "ivi").unwrap();
        assert_eq!(c.crash_after, Some(3000));
        let c = parse("tessera.pingpong=x:b:50 tessera.rtt=x:b", "ivi").unwrap();
        assert_eq!(c.rtt, Some(("x".into(), Side::B, 1_000)));
        assert_eq!(
            c.checks,
            ["cpus", "sleep", "fpsimd", "devices", "pingpong", "rtt"]
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        assert!(parse("tessera.checks=cpus,nope", "ivi")
            .unwrap_err()
            .contains("nope"));
        assert!(parse("tessera.shm=a:1:wx", "ivi")
            .unwrap_err()
            .contains("wx"));
        assert!(parse("tessera.shm=a:1", "ivi").is_err());
        assert!(parse("tessera.pingpong=a:c", "ivi").is_err());
        assert!(parse("tessera.pingpong=a:a,", "ivi").is_err());
        assert!(parse("tessera.rtt=a:b:0", "ivi").is_err());
        assert!(parse("tessera.checks=rtt", "ivi")
            .unwrap_err()
            .contains("needs"));
        assert!(parse("tessera.checks=pingpong", "ivi")
            .unwrap_err()
            .contains("needs"));
        assert!(parse("tessera.cpus=two", "ivi")
            .unwrap_err()
            .contains("two"));
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_count("0-1\n"), Ok(2));
        assert_eq!(cpu_count("0"), Ok(1));
        assert_eq!(cpu_count("0,2-3"), Ok(3));
        assert!(cpu_count("3-1").is_err());
    }
}
