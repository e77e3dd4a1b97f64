//! Joins registry and annotations into the list of functions to generate,
//! and refuses anything the annotations do not fully describe.

use crate::annot::{self, Annotation, Mode, RetRule, Rule};
use crate::registry::{self, CType, Command};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Gl,
    Egl,
    /// Wire-only helper commands declared in the annotation file.
    Extra,
}

#[derive(Debug, Clone)]
pub struct P {
    /// Name in the registry.
    pub name: String,
    /// Name usable as a Rust identifier.
    pub ident: String,
    pub ty: CType,
    pub rule: Option<Rule>,
}

#[derive(Debug, Clone)]
pub struct Func {
    pub name: String,
    pub family: Family,
    /// 0 for local commands (never on the wire).
    pub opcode: u32,
    pub ret: CType,
    pub params: Vec<P>,
    pub a: Annotation,
}

impl Func {
    pub fn is_local(&self) -> bool {
        self.a.mode == Mode::Local
    }
    pub fn is_sync(&self) -> bool {
        self.a.mode == Mode::Sync
    }
    /// Number of u64 slots in the record.
    pub fn slots(&self) -> usize {
        self.params.len() + usize::from(matches!(self.a.ret, RetRule::Name(_)))
    }
}

pub struct Api {
    pub funcs: Vec<Func>,
    /// Extensions that add entry points; the front-end hides them from the
    /// extension strings unless it implements them (sorted).
    pub gl_ext_with_commands: Vec<String>,
    pub egl_ext_with_commands: Vec<String>,
}

impl Api {
    pub fn wire(&self) -> impl Iterator<Item = &Func> {
        self.funcs.iter().filter(|f| !f.is_local())
    }
}

// Rust keywords plus identifiers the generated code uses itself.
const KEYWORDS: &[&str] = &[
    "type", "ref", "fn", "in", "match", "mod", "move", "box", "use", "impl", "w", "s", "f", "r",
    "c", "ctx", "heap", "end", "call", "opcode", "want", "name",
];

pub fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// Base C types that are opaque EGL handles (pointer-sized, translated).
pub fn is_handle_type(base: &str) -> bool {
    matches!(
        base,
        "EGLDisplay"
            | "EGLConfig"
            | "EGLSurface"
            | "EGLContext"
            | "EGLClientBuffer"
            | "EGLNativeDisplayType"
            | "EGLNativeWindowType"
            | "EGLNativePixmapType"
    )
}

/// Rust type of a scalar C type, or None if the generator does not know it.
pub fn scalar_rust(base: &str) -> Option<&'static str> {
    Some(match base {
        "GLenum" | "GLbitfield" | "GLuint" | "EGLenum" | "EGLBoolean" => "u32",
        "GLboolean" | "GLubyte" => "u8",
        "GLbyte" | "GLchar" => "i8",
        "GLshort" => "i16",
        "GLushort" => "u16",
        "GLint" | "GLsizei" | "GLfixed" | "EGLint" => "i32",
        "GLfloat" | "GLclampf" => "f32",
        "GLintptr" | "GLsizeiptr" | "EGLAttrib" => "isize",
        _ => return None,
    })
}

pub const NAMESPACES: &[&str] = &[
    "buffer",
    "texture",
    "framebuffer",
    "renderbuffer",
    "program",
    "vertexArray",
];
pub const HANDLE_KINDS: &[&str] = &["display", "config", "surface", "context"];

/// GL extensions with entry points that gpu-share carries, beyond ES 2.0
/// (each entry point needs its line in the annotation file). The others
/// are hidden from the extension string. EXT_draw_buffers: the driver's
/// GLSL compiler offers it whatever the string says (gl_MaxDrawBuffers is
/// the driver's MAX_DRAW_BUFFERS), so hiding it left shaders and queries
/// disagreeing. EXT_clip_control: dEQP-GLES2 tests it (one scalar call).
/// OES_vertex_array_object: dEQP-GLES2's clip_control cases use it without
/// asking; the front-end keeps its shadow of vertex arrays and the element
/// buffer per vertex array object.
pub const GL_EXTENSIONS_CARRIED: &[&str] = &[
    "GL_EXT_clip_control",
    "GL_EXT_draw_buffers",
    "GL_OES_vertex_array_object",
];

fn covered(
    gl: &registry::Registry,
    egl: &registry::Registry,
) -> Result<Vec<(Family, Command)>, String> {
    let mut out = Vec::new();
    let set = |r: &registry::Registry, s: &str| {
        r.sets
            .get(s)
            .cloned()
            .ok_or_else(|| format!("registry has no {s}"))
    };
    for n in set(gl, "GL_ES_VERSION_2_0")? {
        out.push((Family::Gl, gl.commands[&n].clone()));
    }
    for e in GL_EXTENSIONS_CARRIED {
        for n in set(gl, e)? {
            out.push((Family::Gl, gl.commands[&n].clone()));
        }
    }
    let mut egl_names = Vec::new();
    for v in [
        "EGL_VERSION_1_0",
        "EGL_VERSION_1_1",
        "EGL_VERSION_1_2",
        "EGL_VERSION_1_3",
        "EGL_VERSION_1_4",
    ] {
        egl_names.extend(set(egl, v)?);
    }
    // Surfaceless start-up: the 1.5 entry point and EXT_platform_base.
    egl_names.push("eglGetPlatformDisplay".into());
    egl_names.extend(set(egl, "EGL_EXT_platform_base")?);
    for n in egl_names {
        let c = egl
            .commands
            .get(&n)
            .ok_or_else(|| format!("registry lacks {n}"))?;
        out.push((Family::Egl, c.clone()));
    }
    Ok(out)
}

fn check_expr(f: &str, expr: &str, params: &[P]) -> Result<(), String> {
    // Every identifier must be a parameter, `ctx`, or a method after `ctx.`.
    let mut prev_dot = false;
    let mut chars = expr.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_alphabetic() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let id = &expr[i..end];
            if !prev_dot && id != "ctx" && !params.iter().any(|p| p.ident == id && p.ty.ptr == 0) {
                return Err(format!(
                    "{f}: size expression `{expr}` uses `{id}`, not a scalar parameter"
                ));
            }
            prev_dot = false;
        } else {
            prev_dot = c == '.';
        }
    }
    Ok(())
}

fn check(f: &Func) -> Result<(), String> {
    let n = &f.name;
    for p in &f.a.rules.keys().cloned().collect::<Vec<_>>() {
        if !f.params.iter().any(|q| &q.name == p) {
            return Err(format!("{n}: annotation names unknown parameter `{p}`"));
        }
    }
    if f.is_local() {
        return Ok(());
    }
    let needs_sync = |why: &str| -> Result<(), String> {
        if f.is_sync() {
            Ok(())
        } else {
            Err(format!("{n}: {why}, so it must be sync"))
        }
    };
    for p in &f.params {
        let is_handle = is_handle_type(&p.ty.base);
        match (&p.rule, p.ty.ptr) {
            (None, 0) if is_handle => {
                return Err(format!("{n}: handle `{}` needs handle() or opaque", p.name))
            }
            (None, 0) => {
                scalar_rust(&p.ty.base)
                    .ok_or_else(|| format!("{n}: unknown scalar type {}", p.ty.base))?;
            }
            (None, _) => return Err(format!("{n}: pointer `{}` has no length rule", p.name)),
            (Some(Rule::Name(ns) | Rule::Lookup(ns)), 0) if NAMESPACES.contains(&ns.as_str()) => {}
            (Some(Rule::Handle(k)), 0) if HANDLE_KINDS.contains(&k.as_str()) => {}
            (Some(Rule::Opaque), _) => {
                if !f.a.hook {
                    return Err(format!(
                        "{n}: opaque `{}` only makes sense with a server hook",
                        p.name
                    ));
                }
            }
            (Some(Rule::Offset), 1) => {}
            (Some(Rule::In(e)), 1) => check_expr(n, e, &f.params)?,
            (Some(Rule::Out(e) | Rule::OutN(e)), 1) => {
                check_expr(n, e, &f.params)?;
                needs_sync("it has an output")?;
            }
            (Some(Rule::CStr), 1) if p.ty.is_const => {}
            (Some(Rule::Attribs | Rule::Attribs64), 1) if p.ty.is_const => {}
            (Some(Rule::Gen(ns, cnt) | Rule::Del(ns, cnt)), 1) => {
                if !NAMESPACES.contains(&ns.as_str()) {
                    return Err(format!("{n}: unknown name space `{ns}`"));
                }
                if !f.params.iter().any(|q| &q.name == cnt && q.ty.ptr == 0) {
                    return Err(format!("{n}: count `{cnt}` is not a scalar parameter"));
                }
            }
            (Some(r), _) => {
                return Err(format!(
                    "{n}: rule {r:?} does not fit parameter `{}`",
                    p.name
                ))
            }
        }
    }
    match &f.a.ret {
        RetRule::Value if f.ret.ptr > 0 || is_handle_type(&f.ret.base) => {
            return Err(format!(
                "{n}: returns a pointer or handle; needs ret=string or ret=handle()"
            ))
        }
        RetRule::Value if f.ret.base != "void" => needs_sync("it returns a value")?,
        RetRule::Name(ns) if !NAMESPACES.contains(&ns.as_str()) => {
            return Err(format!("{n}: unknown name space `{ns}`"))
        }
        RetRule::Handle(_) | RetRule::String => needs_sync("it returns data")?,
        _ => {}
    }
    if f.family == Family::Extra && (!f.a.hook || f.a.custom) {
        return Err(format!(
            "{n}: wire-only commands need a server hook and no C entry point"
        ));
    }
    Ok(())
}

pub fn build(annotations: &str) -> Result<Api, String> {
    let gl = registry::gl()?;
    let egl = registry::egl()?;
    let mut ann = annot::parse(annotations)?;
    let mut funcs = Vec::new();
    let mut missing = Vec::new();
    let mut list = covered(&gl, &egl)?;
    // Wire-only commands go between GL and EGL.
    let extras: Vec<(Family, Command)> = ann
        .values()
        .filter_map(|a| a.extra_sig.as_ref())
        .map(|s| registry::parse_signature(s).map(|c| (Family::Extra, c)))
        .collect::<Result<_, _>>()?;
    let egl_at = list
        .iter()
        .position(|(f, _)| *f == Family::Egl)
        .unwrap_or(list.len());
    for (i, e) in extras.into_iter().enumerate() {
        list.insert(egl_at + i, e);
    }
    let mut opcode = 0;
    for (family, c) in list {
        let Some(a) = ann.remove(&c.name) else {
            missing.push(c.name.clone());
            continue;
        };
        let params = c
            .params
            .iter()
            .map(|p| P {
                name: p.name.clone(),
                ident: ident(&p.name),
                ty: p.ty.clone(),
                rule: a.rules.get(&p.name).cloned(),
            })
            .collect();
        let local = a.mode == Mode::Local;
        if !local {
            opcode += 1;
        }
        let f = Func {
            name: c.name.clone(),
            family,
            opcode: if local { 0 } else { opcode },
            ret: c.ret.clone(),
            params,
            a,
        };
        check(&f)?;
        funcs.push(f);
    }
    if !missing.is_empty() {
        return Err(format!("no annotation for: {}", missing.join(", ")));
    }
    if let Some((name, a)) = ann.iter().next() {
        return Err(format!(
            "annotations line {}: `{name}` is not a covered command",
            a.line
        ));
    }
    let with_cmds = |r: &registry::Registry, prefix: &str, version: &str| {
        let mut v: Vec<String> = r
            .sets
            .iter()
            .filter(|(k, c)| k.starts_with(prefix) && !k.contains(version) && !c.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    };
    let mut egl_ext = with_cmds(&egl, "EGL_", "_VERSION_");
    egl_ext.retain(|e| e != "EGL_EXT_platform_base");
    Ok(Api {
        funcs,
        gl_ext_with_commands: with_cmds(&gl, "GL_", "_VERSION_")
            .into_iter()
            .filter(|e| !GL_EXTENSIONS_CARRIED.contains(&e.as_str()))
            .collect(),
        egl_ext_with_commands: egl_ext,
    })
}
