//! The link protocol over the host emulation: connect, restarts noticed on
//! both sides, a refused region, and gpu-share records crossing it.

use gpu_wire::{Doorbell, Region};
use gpu_xvm::host::{HostPort, HostShm};
use gpu_xvm::link::{self, ServerLink};
use gpu_xvm::{ClientBell, Port, ServerBell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn region(name: &str) -> (String, HostShm) {
    let dir = std::env::temp_dir().join(format!("gpu-xvm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = dir.join(name).display().to_string();
    let shm = HostShm::create(&prefix, 1 << 20, 2).unwrap();
    (prefix, shm)
}

/// A server heartbeat thread, as gpu-server runs one per region.
fn beating(port: &'static HostPort) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let l = ServerLink::start(port).unwrap();
        while !s.load(Ordering::SeqCst) {
            l.beat();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (stop, h)
}

fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

#[test]
fn no_server_is_an_error_not_a_hang() {
    let (prefix, _shm) = region("none");
    let c = HostPort::open(&prefix, 0).unwrap();
    let t = std::time::Instant::now();
    assert_eq!(
        link::connect(&c, 300).err(),
        Some(gpu_xvm::XvmError::NoServer)
    );
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn header_page_is_checked() {
    let dir = std::env::temp_dir().join(format!("gpu-xvm-raw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = dir.join("raw").display().to_string();
    std::fs::write(format!("{prefix}.shm"), vec![0u8; 1 << 16]).unwrap();
    std::fs::write(format!("{prefix}.irq"), vec![0u8; 4096]).unwrap();
    let c = HostPort::open(&prefix, 0).unwrap();
    assert_eq!(
        gpu_xvm::ShmHeader::read(&c).err(),
        Some(gpu_xvm::XvmError::NoHeader(0))
    );
}

#[test]
fn records_cross_and_restarts_are_noticed_on_both_sides() {
    let (prefix, shm) = region("both");
    let sp: &'static HostPort = leak(HostPort::open(&prefix, 1).unwrap());
    let cp: &'static HostPort = leak(HostPort::open(&prefix, 0).unwrap());
    let (stop, beat) = beating(sp);
    std::thread::sleep(Duration::from_millis(50));
    let server = std::thread::spawn(move || {
        let l = ServerLink::start(sp).unwrap();
        let h = l.poll_hello(5000).expect("hello");
        let (a, gpu, len) = l.accept(h).unwrap();
        // SAFETY: the region stays mapped (leaked port).
        let r = unsafe { Region::new(gpu, len) }.unwrap();
        let bell = ServerBell {
            link: &l,
            attached: a,
        };
        let mut c = r.cmd_consumer();
        let mut buf = [0u8; 64];
        let rec = loop {
            let seen = c.head_word().load(Ordering::Acquire);
            if let Some(rec) = c.pop(&mut buf).unwrap() {
                break rec;
            }
            bell.wait(c.head_word(), seen, 200);
        };
        assert_eq!((rec.tag, &buf[..4]), (7, &b"ping"[..]));
        // The client's VM restarts: noticed within one wait.
        assert!(bell.peer_alive());
        let a = bell.attached;
        (l, a)
    });
    let (a, gpu, len) = link::connect(cp, 5000).unwrap();
    // SAFETY: as above.
    let r = unsafe { Region::new(gpu, len) }.unwrap();
    let mut p = r.cmd_producer();
    p.push(7, &[b"ping"]).unwrap();
    cp.ring();
    let (l, sa) = server.join().unwrap();
    let bell = ClientBell::new(cp, a);
    assert!(bell.peer_alive());
    shm.restarted(0);
    assert!(
        !l.client_alive(&sa),
        "server must notice the client's restart"
    );
    // The server restarts: the client notices, by boot count ...
    shm.restarted(1);
    assert!(
        !bell.peer_alive(),
        "client must notice the server's restart"
    );
    // ... and by a new server instance even without one (a process restart).
    let (a2, _, _) = {
        let t = std::thread::spawn(move || {
            let l = ServerLink::start(sp).unwrap();
            let h = l.poll_hello(5000).unwrap();
            l.accept(h).unwrap();
        });
        let r = link::connect(cp, 5000).unwrap();
        t.join().unwrap();
        r
    };
    let bell2 = ClientBell::new(cp, a2);
    assert!(bell2.peer_alive());
    ServerLink::start(sp).unwrap();
    assert!(
        !bell2.peer_alive(),
        "a new server instance ends the session"
    );
    // Heartbeat stops: the server is gone after BEAT_DEAD_MS.
    let (a3, _, _) = {
        let t = std::thread::spawn(move || {
            let l = ServerLink::start(sp).unwrap();
            let h = l.poll_hello(5000).unwrap();
            l.accept(h).unwrap();
        });
        let r = link::connect(cp, 5000).unwrap();
        t.join().unwrap();
        r
    };
    let bell3 = ClientBell::new(cp, a3);
    assert!(bell3.peer_alive());
    stop.store(true, Ordering::SeqCst);
    beat.join().unwrap();
    std::thread::sleep(Duration::from_millis(link::BEAT_DEAD_MS + 200));
    assert!(
        !bell3.peer_alive(),
        "a stopped heartbeat means the server is gone"
    );
}

#[test]
fn a_bad_region_header_is_refused() {
    let (prefix, _shm) = region("bad");
    let sp: &'static HostPort = leak(HostPort::open(&prefix, 1).unwrap());
    let cp: &'static HostPort = leak(HostPort::open(&prefix, 0).unwrap());
    let (stop, beat) = beating(sp);
    let server = std::thread::spawn(move || {
        let l = ServerLink::start(sp).unwrap();
        let h = l.poll_hello(5000).unwrap();
        // A client that lied in its gpu-share header after saying hello.
        let hdr = gpu_xvm::ShmHeader::read(sp).unwrap();
        let (gpu, _) = link::gpu_area(sp, &hdr);
        // SAFETY: the region's data part (the test plays the hostile client).
        unsafe { core::ptr::write_volatile(gpu.add(20) as *mut u32, 12345) };
        l.accept(h).err()
    });
    let r = link::connect(cp, 5000).err();
    assert_eq!(
        server.join().unwrap(),
        Some(gpu_xvm::XvmError::Refused(link::REFUSED_LAYOUT))
    );
    assert_eq!(r, Some(gpu_xvm::XvmError::Refused(link::REFUSED_LAYOUT)));
    stop.store(true, Ordering::SeqCst);
    beat.join().unwrap();
}

#[test]
fn layouts_fit_their_regions() {
    for len in [16 << 20, (64 << 20) - 8192, 1 << 20, 40000] {
        let l = link::layout_for(len).unwrap();
        assert!(l.region_size() <= len && l.valid(), "{len}: {l:?}");
    }
    assert_eq!(link::layout_for(1000), None);
    assert_eq!(
        link::layout_for((16 << 20) - 8192).unwrap().heap_size,
        8 << 20
    );
}
