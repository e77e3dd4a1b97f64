// Generates the exported C entry points from the registry + annotations.
fn main() {
    gpu_gen::build_script(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../api/gles2-egl.annot"),
        gpu_gen::Output::Capi,
        "capi_gen.rs",
    );
}
