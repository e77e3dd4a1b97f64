//! `tshm`: the shared regions from a shell.
//!
//! ```text
//! tshm list                 regions, sizes, access, header generation
//! tshm ring NAME            ring the other peers of NAME
//! tshm wait NAME [SECONDS]  wait for NAME's doorbell; prints the count
//! ```

use std::time::Duration;
use tessera_shm_linux::{list, Region};

const USAGE: &str = "usage: tshm list | tshm ring NAME | tshm wait NAME [SECONDS]";

fn run(args: &[String]) -> Result<(), String> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a[..] {
        ["list"] => {
            for name in list().map_err(|e| e.to_string())? {
                let r = Region::open(&name).map_err(|e| e.to_string())?;
                let h = r.header().map_err(|e| e.to_string())?;
                println!(
                    "{name}: {:#x} bytes, {}, index {}, peer {}, generation {}, boot counts {:?}",
                    r.size(),
                    if r.writable() {
                        "read-write"
                    } else {
                        "read-only"
                    },
                    r.index(),
                    r.peer_index(),
                    h.generation,
                    h.boot_counts
                );
            }
            Ok(())
        }
        ["ring", name] => Region::open(name)
            .and_then(|r| r.ring())
            .map_err(|e| e.to_string()),
        ["wait", name] | ["wait", name, _] => {
            let timeout = match a.get(2) {
                Some(s) => Some(Duration::from_secs_f64(
                    s.parse().map_err(|_| format!("'{s}' is not seconds"))?,
                )),
                None => None,
            };
            let r = Region::open(name).map_err(|e| e.to_string())?;
            match r.wait(timeout).map_err(|e| e.to_string())? {
                Some(n) => {
                    println!("{n}");
                    Ok(())
                }
                None => Err("timed out".into()),
            }
        }
        _ => Err(USAGE.into()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    if let Err(e) = run(&args) {
        eprintln!("tshm: {e}");
        std::process::exit(1);
    }
}
