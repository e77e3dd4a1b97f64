//! Prints one generated file, for reading and diffing:
//! `gpu-gen codec|server|capi [ANNOTATIONS]`.
fn main() {
    let mut a = std::env::args().skip(1);
    let which = match a.next().as_deref() {
        Some("codec") => gpu_gen::Output::Codec,
        Some("server") => gpu_gen::Output::Server,
        Some("capi") => gpu_gen::Output::Capi,
        _ => {
            eprintln!("usage: gpu-gen codec|server|capi [annotations]");
            std::process::exit(2);
        }
    };
    let path = a
        .next()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../api/gles2-egl.annot").into());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2)
    });
    match gpu_gen::generate(&text, which) {
        Ok(s) => print!("{s}"),
        Err(e) => {
            eprintln!("gpu-gen: {e}");
            std::process::exit(1)
        }
    }
}
