//! The conformance tier: Khronos dEQP-GLES2 natively and through gpu-share
//! (gpu-share/ci/deqp.py does the running and comparing). The tier runs a
//! fixed sample; `conformance-full` runs the whole mustpass list and writes
//! docs/gpu-share-deqp.md.

use crate::{root, setup, test::show, Result};
use std::path::PathBuf;
use std::process::Command;

/// The variable that names the suite (its tarball or unpacked directory)
/// where ../shared/conformance/ does not hold it, as on a fresh CI clone.
pub const SUITE_VAR: &str = "TESSERA_DEQP";

/// Every Nth case of the mustpass goes into the sample.
const SAMPLE_EVERY: usize = 20;

pub enum Outcome {
    Passed,
    Skipped,
}

fn suite() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(SUITE_VAR) {
        return Some(PathBuf::from(p));
    }
    let shared = root()
        .parent()?
        .join("shared/conformance/deqp-gles2.tar.gz");
    shared.exists().then_some(shared)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Builds the front-end and the server and lays out the front-end under
/// every name a GLES2 program may load: the sonames and the development
/// names (dEQP `dlopen`s libEGL.so and libGLESv2.so).
fn build() -> Result<(PathBuf, PathBuf)> {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(root())
        .args(["build", "--release", "-p", "gpu-capi", "-p", "gpu-server"]);
    println!("$ {}", show(&c));
    let s = c.status().map_err(|e| e.to_string())?;
    if !s.success() {
        return Err(format!("`{}` failed ({s})", show(&c)));
    }
    let release = target_dir().join("release");
    let lib = target_dir().join("gpu-share/lib");
    std::fs::create_dir_all(&lib).map_err(|e| format!("{}: {e}", lib.display()))?;
    let so = "libtessera_gles.so";
    // Replaced, not overwritten: programs still running have it mapped.
    let tmp = lib.join(".libtessera_gles.so.new");
    std::fs::copy(release.join(so), &tmp).map_err(|e| format!("{so}: {e}"))?;
    std::fs::rename(&tmp, lib.join(so)).map_err(|e| format!("{so}: {e}"))?;
    for name in ["libEGL.so.1", "libGLESv2.so.2", "libEGL.so", "libGLESv2.so"] {
        let link = lib.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(so, &link).map_err(|e| format!("{}: {e}", link.display()))?;
    }
    Ok((lib, release.join("gpu-server")))
}

/// Runs the sample (or with `full`, the whole list) both ways.
pub fn run(full: bool) -> Result<Outcome> {
    let Some(suite) = suite() else {
        println!(
            "conformance: skipped: no dEQP-GLES2 suite (../shared/conformance/deqp-gles2.tar.gz \
             is absent; set {SUITE_VAR} to that tarball or to its unpacked directory)"
        );
        return Ok(Outcome::Skipped);
    };
    if !suite.exists() {
        return Err(format!("{SUITE_VAR}={}: no such file", suite.display()));
    }
    setup::conformance()?;
    let (lib, server) = build()?;
    let work = target_dir().join("gpu-share/deqp");
    let out = if full {
        root().join("docs/gpu-share-deqp.md")
    } else {
        work.join("sample.md")
    };
    // dEQP and llvmpipe take every core they are given; nice keeps a
    // shared machine usable.
    let mut c = Command::new("nice");
    c.current_dir(root())
        .args(["-n", "10", "python3", "gpu-share/ci/deqp.py", "--suite"])
        .arg(&suite)
        .arg("--work")
        .arg(&work)
        .arg("--lib")
        .arg(&lib)
        .arg("--server")
        .arg(&server)
        .arg("--out")
        .arg(&out);
    if full {
        c.arg("--full");
    } else {
        c.args(["--every", &SAMPLE_EVERY.to_string()]);
    }
    println!("$ {}", show(&c));
    let s = c.status().map_err(|e| e.to_string())?;
    if s.success() {
        Ok(Outcome::Passed)
    } else {
        Err(format!(
            "dEQP-GLES2 through gpu-share differs from native Mesa (see {})",
            out.display()
        ))
    }
}
