//! The cluster image wakes on its region's doorbell (partition tier,
//! `boards/test-cluster-bell.toml`): the test guest `bell` times a strict
//! ping-pong (one message in flight, so each is a doorbell round trip)
//! that the cluster image answers asleep in WFI; the cluster says what
//! ended its waits. Without its doorbell interrupt every wait sleeps to
//! its 200 ms timeout and the exchange cannot finish in time.

use qemu_virt::Boot;
use std::time::Duration;
use tessera_tests::run_image;

/// The cluster's line and the test guest's, each once.
fn finished(out: &str) -> bool {
    out.contains("cluster | cluster: doorbell check")
        && out.contains("bell | check cluster-pingpong")
}

/// The number after `key` in `line`.
fn number(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

#[test]
fn cluster_wakes_on_its_doorbell() {
    let mut r = run_image(
        "tessera-test-cluster-bell.bin",
        Boot::Direct,
        "cluster-bell",
    );
    // Virtual time = instructions (1 ns each): the round trip in
    // instructions, whatever the host's load.
    r.icount = true;
    // About 20 s on 2 shared cores; without the doorbell it never ends.
    let limit = Duration::from_secs(180);
    let out = r.run(limit, finished).expect("QEMU runs");
    let text = &out.output;
    assert!(!out.timed_out, "did not finish within {limit:?}:\n{text}");
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line:\n{text}"))
            .trim()
            .to_string()
    };
    let bell = line("bell | check cluster-pingpong");
    let cluster = line("cluster | cluster: doorbell check");
    println!("{bell}\n{cluster}");
    assert!(bell.contains(": pass"), "the ping-pong failed:\n{text}");
    let messages = number(&cluster, "check:").expect("message count");
    let by_bell = number(&cluster, "by the doorbell").expect("doorbell wakes");
    let by_timeout = number(&cluster, "by their timeout").expect("timeout wakes");
    // Strictly one message in flight: the cluster waits about once per
    // message, and only the doorbell can end such a wait in time; the
    // few timeouts are its waits for the test guest to be ready.
    assert_eq!(messages, 2000, "{cluster}");
    assert!(
        by_bell >= messages / 2 && by_timeout < 50,
        "the doorbell ended {by_bell} waits, the timeout {by_timeout}:\n{text}"
    );
    let ns = number(&bell, "ms (").expect("ns a message");
    println!("doorbell round trip to the cluster image: {ns} ns of virtual time (-icount shift=0: instructions)");
}
