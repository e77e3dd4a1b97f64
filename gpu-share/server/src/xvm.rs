//! Serving a client across VMs: one thread per shared region waits for the
//! client's hello on the region's link page (`gpu_xvm::link`), then runs an
//! ordinary session on the gpu-share region behind it, with every check of
//! the hostile-client hardening. When the client restarts (a new hello, or
//! its VM's boot count moves) the session ends as if its socket had closed
//! and the next hello starts a fresh one.

use crate::compositor::Shown;
use crate::frames::Frames;
use crate::session::Session;
use gpu_xvm::link::{ServerLink, BEAT_MS};
use gpu_xvm::{Port, ServerBell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the sessions of one region need.
pub struct RegionServer<P: Port + Sync + 'static> {
    pub name: String,
    pub port: &'static P,
    /// The cluster's region: its sessions are served first.
    pub cluster: bool,
    pub drv: &'static crate::driver::Driver,
    pub limits: crate::limits::Limits,
    pub frames: Frames,
    pub shown: Shown,
    pub next_id: Arc<AtomicU64>,
}

impl<P: Port + Sync + 'static> RegionServer<P> {
    /// Serves the region for as long as the process lives.
    pub fn run(self) -> ! {
        let link = match ServerLink::start(self.port) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("gpu-server: region {}: {e}", self.name);
                // Nothing to serve; the heartbeat stays still, so clients
                // report "no server" rather than hang.
                loop {
                    std::thread::park();
                }
            }
        };
        let beat = ServerLink {
            port: self.port,
            header: link.header,
        };
        std::thread::spawn(move || loop {
            beat.beat();
            std::thread::sleep(Duration::from_millis(BEAT_MS));
        });
        eprintln!(
            "gpu-server: serving region {}{}",
            self.name,
            if self.cluster { " (cluster)" } else { "" }
        );
        loop {
            let Some(hello) = link.poll_hello(1000) else {
                continue;
            };
            let (attached, gpu, len) = match link.accept(hello) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("gpu-server: region {}: refused: {e}", self.name);
                    continue;
                }
            };
            // SAFETY: the port keeps the region mapped for the process's
            // life; the layout was checked by accept.
            let region = match unsafe { gpu_wire::Region::new(gpu, len) } {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("gpu-server: region {}: {e}", self.name);
                    continue;
                }
            };
            let id = self.next_id.fetch_add(1, Ordering::SeqCst);
            self.shown
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(self.name.clone(), id);
            eprintln!("gpu-server: client {id}: connected on region {}", self.name);
            let bell = ServerBell {
                link: &link,
                attached,
            };
            let mut s = Session::new(id, self.drv, self.frames.clone());
            s.limits = self.limits;
            s.sched.cluster = self.cluster;
            let r = crate::serve::run(&mut s, &region, &bell);
            self.frames.remove(id);
            let why = if link.client_alive(&attached) {
                "ended"
            } else {
                "restarted or gone"
            };
            match r {
                Ok(_) => eprintln!("gpu-server: client {id}: disconnected ({why})"),
                Err(_) => eprintln!("gpu-server: client {id}: session over ({why})"),
            }
        }
    }
}
