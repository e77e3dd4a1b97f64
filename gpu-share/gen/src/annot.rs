//! Parsing the annotation file (format documented at its top).

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Async,
    Sync,
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    In(String),
    Out(String),
    OutN(String),
    CStr,
    Gen(String, String),
    Del(String, String),
    Attribs,
    Attribs64,
    Offset,
    Name(String),
    Lookup(String),
    Handle(String),
    Opaque,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetRule {
    Value,
    Name(String),
    Handle(String),
    String,
}

#[derive(Debug, Clone)]
pub struct Annotation {
    pub line: usize,
    pub mode: Mode,
    pub custom: bool,
    pub hook: bool,
    pub rules: BTreeMap<String, Rule>,
    /// Pointer parameters where NULL is meaningful (`PARAM=RULE?`): NULL is
    /// passed on. Elsewhere NULL where the size rule says bytes are needed
    /// ends the session.
    pub nullable: BTreeSet<String>,
    pub ret: RetRule,
    /// Set for wire-only commands: their C prototype.
    pub extra_sig: Option<String>,
}

fn args(s: &str) -> Vec<String> {
    // Splits "a,b" at top-level commas only (expressions may contain calls).
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    out
}

fn call(rule: &str) -> Option<(&str, &str)> {
    let open = rule.find('(')?;
    if !rule.ends_with(')') {
        return None;
    }
    Some((&rule[..open], &rule[open + 1..rule.len() - 1]))
}

pub fn parse_rule(r: &str) -> Result<Rule, String> {
    Ok(match r {
        "cstr" => Rule::CStr,
        "attribs" => Rule::Attribs,
        "attribs64" => Rule::Attribs64,
        "offset" => Rule::Offset,
        "opaque" => Rule::Opaque,
        _ => {
            let (f, a) = call(r).ok_or_else(|| format!("unknown rule `{r}`"))?;
            let a1 = || a.to_string();
            let two = || {
                let v = args(a);
                if v.len() == 2 {
                    Ok((v[0].clone(), v[1].clone()))
                } else {
                    Err(format!("`{r}` needs two arguments"))
                }
            };
            match f {
                "in" => Rule::In(a1()),
                "out" => Rule::Out(a1()),
                "outn" => Rule::OutN(a1()),
                "gen" => two().map(|(a, b)| Rule::Gen(a, b))?,
                "del" => two().map(|(a, b)| Rule::Del(a, b))?,
                "name" => Rule::Name(a1()),
                "lookup" => Rule::Lookup(a1()),
                "handle" => Rule::Handle(a1()),
                _ => return Err(format!("unknown rule `{r}`")),
            }
        }
    })
}

/// Splits a line into words, keeping parenthesised groups together.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in line.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub fn parse(text: &str) -> Result<BTreeMap<String, Annotation>, String> {
    let mut map = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |m: String| format!("annotations line {line_no}: {m}");
        let (name, extra_sig, rest) = if let Some(sig) = line.strip_prefix("extra ") {
            let close = sig
                .find(')')
                .ok_or_else(|| err("extra without ')'".into()))?;
            let proto = &sig[..=close];
            let name = proto[..proto.find('(').unwrap()]
                .split_whitespace()
                .last()
                .unwrap_or("")
                .to_string();
            (name, Some(proto.to_string()), words(&sig[close + 1..]))
        } else {
            let w = words(line);
            (w[0].clone(), None, w[1..].to_vec())
        };
        let mut mode = None;
        let mut a = Annotation {
            line: line_no,
            mode: Mode::Async,
            custom: false,
            hook: false,
            rules: BTreeMap::new(),
            nullable: BTreeSet::new(),
            ret: RetRule::Value,
            extra_sig,
        };
        for w in rest {
            match w.as_str() {
                "async" => mode = Some(Mode::Async),
                "sync" => mode = Some(Mode::Sync),
                "local" => mode = Some(Mode::Local),
                "custom" => a.custom = true,
                "hook" => a.hook = true,
                _ => {
                    let (p, r) = w
                        .split_once('=')
                        .ok_or_else(|| err(format!("expected PARAM=RULE, got `{w}`")))?;
                    if p == "ret" {
                        a.ret = match r {
                            "string" => RetRule::String,
                            _ => match call(r) {
                                Some(("name", ns)) => RetRule::Name(ns.into()),
                                Some(("handle", k)) => RetRule::Handle(k.into()),
                                _ => return Err(err(format!("unknown return rule `{r}`"))),
                            },
                        };
                    } else {
                        let (r, nullable) = match r.strip_suffix('?') {
                            Some(r) => (r, true),
                            None => (r, false),
                        };
                        let rule = parse_rule(r).map_err(err)?;
                        if nullable {
                            if !matches!(rule, Rule::In(_) | Rule::Out(_) | Rule::OutN(_)) {
                                return Err(err(format!("`{p}`: only in/out/outn can be `?`")));
                            }
                            a.nullable.insert(p.to_string());
                        }
                        if a.rules.insert(p.to_string(), rule).is_some() {
                            return Err(err(format!("parameter `{p}` annotated twice")));
                        }
                    }
                }
            }
        }
        a.mode = mode.ok_or_else(|| err(format!("{name}: missing mode (async, sync or local)")))?;
        if map.insert(name.clone(), a).is_some() {
            return Err(err(format!("{name} annotated twice")));
        }
    }
    Ok(map)
}
