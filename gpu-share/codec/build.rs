// Generates the codec from the Khronos registry and the annotations; a
// command the annotations do not cover fails the build here.
fn main() {
    gpu_gen::build_script(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../api/gles2-egl.annot"),
        gpu_gen::Output::Codec,
        "codec_gen.rs",
    );
}
