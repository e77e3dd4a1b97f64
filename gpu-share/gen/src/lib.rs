//! Generator for gpu-share: reads the Khronos registry (`gl.xml`, `egl.xml`
//! from the `khronos_api` crate) and the annotation file, checks that every
//! covered command is fully described, and emits Rust source for the codec
//! (opcodes, encoders, validating decoder), the server dispatch and the C ABI.
//!
//! Build scripts call [`generate`]; any gap in the annotations is an error
//! there, so an unannotated call can never reach a running program.

pub mod annot;
pub mod emit;
pub mod model;
pub mod registry;

pub use model::{Api, Func};

/// Which generated file a build script wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Codec,
    Server,
    Capi,
}

/// Loads the registry and annotations and emits one output.
pub fn generate(annotations: &str, out: Output) -> Result<String, String> {
    let api = model::build(annotations)?;
    Ok(match out {
        Output::Codec => emit::codec(&api),
        Output::Server => emit::server(&api),
        Output::Capi => emit::capi(&api),
    })
}

/// Build-script helper: reads the annotation file at `annot_path`, writes
/// `out_dir/name`, and fails the build with the generator's message.
pub fn build_script(annot_path: &str, out: Output, name: &str) {
    println!("cargo:rerun-if-changed={annot_path}");
    let text = std::fs::read_to_string(annot_path).unwrap_or_else(|e| panic!("{annot_path}: {e}"));
    match generate(&text, out) {
        Ok(src) => {
            let dir = std::env::var("OUT_DIR").expect("OUT_DIR");
            std::fs::write(std::path::Path::new(&dir).join(name), src)
                .expect("write generated file");
        }
        Err(e) => {
            eprintln!("gpu-gen: {e}");
            std::process::exit(1);
        }
    }
}
