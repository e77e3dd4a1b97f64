// Generates the driver table and the call dispatcher.
fn main() {
    gpu_gen::build_script(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../api/gles2-egl.annot"),
        gpu_gen::Output::Server,
        "server_gen.rs",
    );
}
