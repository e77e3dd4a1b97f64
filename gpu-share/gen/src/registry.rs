//! Reading commands out of the Khronos XML registry.

use std::collections::HashMap;

/// A C type as written in the registry: base type name, `const`, pointer depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CType {
    pub base: String,
    pub is_const: bool,
    pub ptr: u8,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub ty: CType,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub name: String,
    pub ret: CType,
    pub params: Vec<Param>,
}

/// Parses the text of a `<proto>` or `<param>` element minus its name:
/// "const GLchar *const*" -> base GLchar, const, depth 2.
pub fn parse_ctype(text: &str) -> CType {
    let is_const = text.contains("const");
    let ptr = text.matches('*').count() as u8;
    let base = text
        .replace('*', " ")
        .split_whitespace()
        .rfind(|w| *w != "const" && *w != "struct")
        .unwrap_or("void")
        .to_string();
    CType {
        base,
        is_const,
        ptr,
    }
}

fn text_without_name(node: roxmltree::Node) -> (String, String) {
    let mut ty = String::new();
    let mut name = String::new();
    for d in node.descendants().filter(|n| n.is_text()) {
        let t = d.text().unwrap_or("");
        if d.parent().is_some_and(|p| p.has_tag_name("name")) {
            name.push_str(t);
        } else {
            ty.push_str(t);
        }
    }
    (ty, name)
}

pub struct Registry {
    pub commands: HashMap<String, Command>,
    /// feature name ("GL_ES_VERSION_2_0") or extension name -> commands
    pub sets: HashMap<String, Vec<String>>,
}

pub fn parse(xml: &str) -> Result<Registry, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let mut commands = HashMap::new();
    let mut sets: HashMap<String, Vec<String>> = HashMap::new();
    for node in doc.root_element().descendants() {
        if node.has_tag_name("command") && node.parent().is_some_and(|p| p.has_tag_name("commands"))
        {
            let proto = node
                .children()
                .find(|c| c.has_tag_name("proto"))
                .ok_or("command without proto")?;
            let (rty, name) = text_without_name(proto);
            let params = node
                .children()
                .filter(|c| c.has_tag_name("param"))
                .map(|p| {
                    let (t, n) = text_without_name(p);
                    Param {
                        name: n,
                        ty: parse_ctype(&t),
                    }
                })
                .collect();
            commands.insert(
                name.clone(),
                Command {
                    name,
                    ret: parse_ctype(&rty),
                    params,
                },
            );
        }
        if node.has_tag_name("feature") || node.has_tag_name("extension") {
            let set = node.attribute("name").unwrap_or("").to_string();
            let list = sets.entry(set).or_default();
            for req in node.children().filter(|c| c.has_tag_name("require")) {
                for c in req.children().filter(|c| c.has_tag_name("command")) {
                    if let Some(n) = c.attribute("name") {
                        list.push(n.to_string());
                    }
                }
            }
        }
    }
    Ok(Registry { commands, sets })
}

pub fn gl() -> Result<Registry, String> {
    parse(std::str::from_utf8(khronos_api::GL_XML).map_err(|e| e.to_string())?)
}

pub fn egl() -> Result<Registry, String> {
    parse(std::str::from_utf8(khronos_api::EGL_XML).map_err(|e| e.to_string())?)
}

/// Parses a C prototype written in the annotation file for wire-only
/// commands: `void tsFoo(GLuint a, const void *b)`.
pub fn parse_signature(sig: &str) -> Result<Command, String> {
    let open = sig.find('(').ok_or_else(|| format!("no '(' in {sig}"))?;
    let close = sig.rfind(')').ok_or_else(|| format!("no ')' in {sig}"))?;
    let head = &sig[..open];
    let name = head.split_whitespace().last().ok_or("no name")?.to_string();
    let ret = parse_ctype(&head[..head.len() - name.len()]);
    let mut params = Vec::new();
    for p in sig[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "void")
    {
        let pname = p.rsplit([' ', '*']).next().ok_or("bad param")?.to_string();
        params.push(Param {
            name: pname.clone(),
            ty: parse_ctype(&p[..p.len() - pname.len()]),
        });
    }
    Ok(Command { name, ret, params })
}
