//! The generator refuses incomplete or inconsistent annotations.

const ANNOT: &str = include_str!("../../api/gles2-egl.annot");

fn without(line_start: &str) -> String {
    ANNOT
        .lines()
        .filter(|l| !l.starts_with(line_start))
        .collect::<Vec<_>>()
        .join("\n")
}

fn replace(from: &str, to: &str) -> String {
    assert!(ANNOT.contains(from), "{from} not in annotations");
    ANNOT.replace(from, to)
}

fn err(text: &str) -> String {
    gpu_gen::generate(text, gpu_gen::Output::Codec).expect_err("generator should refuse")
}

#[test]
fn shipped_annotations_cover_everything() {
    let api = gpu_gen::model::build(ANNOT).unwrap();
    let names: Vec<&str> = api.funcs.iter().map(|f| f.name.as_str()).collect();
    // All of GLES 2.0 (142 entry points), the carried extensions'
    // (EXT_clip_control 1, EXT_draw_buffers 1, OES_vertex_array_object 4)
    // and the EGL set are present.
    assert_eq!(names.iter().filter(|n| n.starts_with("gl")).count(), 148);
    assert!(names.contains(&"glClipControlEXT"));
    assert!(names.contains(&"glBindVertexArrayOES"));
    assert!(names.contains(&"glDrawBuffersEXT"));
    assert!(!api
        .gl_ext_with_commands
        .contains(&"GL_EXT_draw_buffers".to_string()));
    assert!(api
        .gl_ext_with_commands
        .contains(&"GL_KHR_debug".to_string()));
    for n in [
        "eglGetPlatformDisplayEXT",
        "eglGetPlatformDisplay",
        "eglGetProcAddress",
        "eglSwapBuffers",
        "eglCreateWindowSurface",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    for o in [
        gpu_gen::Output::Codec,
        gpu_gen::Output::Server,
        gpu_gen::Output::Capi,
    ] {
        assert!(gpu_gen::generate(ANNOT, o).unwrap().len() > 10_000);
    }
}

#[test]
fn missing_annotation_fails_the_generator() {
    let e = err(&without("glBufferData "));
    assert!(e.contains("no annotation for: glBufferData"), "{e}");
}

#[test]
fn pointer_without_length_rule_fails() {
    let e = err(&replace(
        "glBufferData async custom data=in(size)?",
        "glBufferData async custom",
    ));
    assert!(e.contains("pointer `data` has no length rule"), "{e}");
}

#[test]
fn nullable_only_on_pointer_rules() {
    let e = err(&replace(
        "glBindAttribLocation async program=name(program) name=cstr",
        "glBindAttribLocation async program=name(program) name=cstr?",
    ));
    assert!(e.contains("only in/out/outn can be `?`"), "{e}");
}

#[test]
fn output_on_async_call_fails() {
    let e = err(&replace("glReadPixels sync", "glReadPixels async"));
    assert!(e.contains("must be sync"), "{e}");
}

#[test]
fn unknown_parameter_and_command_fail() {
    let e = err(&replace(
        "glBufferData async custom data=in(size)?",
        "glBufferData async custom data=in(size)? bogus=cstr",
    ));
    assert!(e.contains("unknown parameter `bogus`"), "{e}");
    let e = err(&format!("{ANNOT}\nglNotACommand async\n"));
    assert!(e.contains("glNotACommand"), "{e}");
    let e = err(&replace("data=in(size)?", "data=in(size * wat)?"));
    assert!(e.contains("`wat`"), "{e}");
}

#[test]
fn returned_value_needs_sync() {
    let e = err(&replace("glGetError sync", "glGetError async"));
    assert!(e.contains("returns a value"), "{e}");
}
