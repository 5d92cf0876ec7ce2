//! `inspect --format`: the subset of Go's `text/template` that scripts use
//! with skopeo, printed as Go prints it.
//!
//! Why hand-written: the one Rust implementation of Go templates on
//! crates.io (`gtmpl` 0.7) prints lists and maps with Rust's `Debug`
//! (`[String("a")]`, not Go's `[a]`) and keeps maps in a `HashMap`, so
//! `{{.Layers}}`, `{{.Labels}}` and `{{range .Labels}}` would neither match
//! skopeo nor be stable. What is here: text and actions with `{{-`/`-}}`
//! trimming and `{{/* comments */}}`; `.`, field chains (`.Labels.k`,
//! `$v.Digest`, `(index .LayersData 0).Size`), variables (`$x := …`,
//! `$x = …`, `range $i, $v := …`), string (Go escapes), raw string,
//! integer, `true`/`false`/`nil` literals, pipelines `a | f b`; `if`/`else
//! if`/`else`, `range … else`, `with … else`; functions `index`, `len`,
//! `json`, `printf` (`%s %v %d %q %%`), `print`, `println`, `eq`, `ne`,
//! `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`, and containers/common's
//! `lower`, `upper`, `join`. Values print as Go's `fmt` does: lists
//! `[a b]`, maps `map[k:v]` in key order, structs `{a b}`, a time as
//! `2023-11-14 22:13:20 +0000 UTC`, a missing map key as `<no value>`.
//! `json` marshals as Go's `encoding/json` (compact, `<>&` escaped).
//! Not here: `define`/`template`/`block`, method calls, `break`/`continue`.
//!
//! As skopeo: `\n` and `\t` written in the format's text become a newline
//! and a tab, and a newline ends the output when the format does not end
//! with one. (skopeo 1.9 also rewrites them inside string literals, so its
//! `{{"\n"}}` fails as an unterminated string; here it is a newline.)

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A value as a template sees it (Go's types, reduced to what inspect holds).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    /// A missing map key reached with field syntax: prints `<no value>`.
    Missing,
    Bool(bool),
    Int(i64),
    Str(String),
    /// A slice; `nil` prints `[]` and marshals as `null`.
    List {
        items: Vec<Value>,
        nil: bool,
    },
    /// A `map[string]string`; `nil` prints `map[]` and marshals as `null`.
    Map {
        entries: BTreeMap<String, Value>,
        nil: bool,
    },
    /// A struct: fields in declaration order.
    Struct(Vec<(&'static str, Value)>),
    /// A `time.Time`, kept as its RFC 3339 text.
    Time(String),
}

impl Value {
    pub fn list(items: Vec<Value>) -> Value {
        Value::List { items, nil: false }
    }

    pub fn strings(items: &[String]) -> Value {
        Value::list(items.iter().cloned().map(Value::Str).collect())
    }

    pub fn opt_strings(items: &Option<Vec<String>>) -> Value {
        match items {
            Some(v) => Value::strings(v),
            None => Value::List {
                items: Vec::new(),
                nil: true,
            },
        }
    }

    pub fn string_map(m: &Option<BTreeMap<String, String>>) -> Value {
        Value::Map {
            entries: m
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                .collect(),
            nil: m.is_none(),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Value::Nil | Value::Missing => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Str(s) => !s.is_empty(),
            Value::List { items, .. } => !items.is_empty(),
            Value::Map { entries, .. } => !entries.is_empty(),
            Value::Struct(_) | Value::Time(_) => true,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Nil | Value::Missing => "interface {}",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Str(_) => "string",
            Value::List { .. } => "[]string",
            Value::Map { .. } => "map[string]string",
            Value::Struct(_) => "struct",
            Value::Time(_) => "time.Time",
        }
    }
}

/// Go's `%v`.
fn go_print(v: &Value, out: &mut String) {
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::Missing => out.push_str("<no value>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Str(s) => out.push_str(s),
        Value::List { items, .. } => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_print(x, out);
            }
            out.push(']');
        }
        Value::Map { entries, .. } => {
            out.push_str("map[");
            for (i, (k, x)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                go_print(x, out);
            }
            out.push(']');
        }
        Value::Struct(fields) => {
            out.push('{');
            for (i, (_, x)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_print(x, out);
            }
            out.push('}');
        }
        Value::Time(t) => out.push_str(&go_time(t)),
    }
}

fn display(v: &Value) -> String {
    let mut s = String::new();
    go_print(v, &mut s);
    s
}

/// RFC 3339 text as Go's `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
fn go_time(t: &str) -> String {
    let Some((date, rest)) = t.split_once('T') else {
        return t.to_string();
    };
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let clock = match clock.split_once('.') {
        Some((hms, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                hms.to_string()
            } else {
                format!("{hms}.{frac}")
            }
        }
        None => clock.to_string(),
    };
    let zone = match zone {
        "" | "Z" | "z" => "+0000 UTC".to_string(),
        z => {
            let z = z.replace(':', "");
            format!("{z} {z}")
        }
    };
    format!("{date} {clock} {zone}")
}

/// Go's `encoding/json` (compact, HTML-safe).
fn go_json(v: &Value, out: &mut String) {
    let string = |s: &str, out: &mut String| {
        let quoted = serde_json::to_string(s).unwrap_or_default();
        out.push_str(
            &quoted
                .replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('&', "\\u0026")
                .replace('\u{2028}', "\\u2028")
                .replace('\u{2029}', "\\u2029"),
        );
    };
    match v {
        Value::Nil | Value::Missing => out.push_str("null"),
        Value::Bool(_) | Value::Int(_) => go_print(v, out),
        Value::Str(s) => string(s, out),
        Value::Time(t) => string(t, out),
        Value::List { nil: true, .. } | Value::Map { nil: true, .. } => out.push_str("null"),
        Value::List { items, .. } => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(x, out);
            }
            out.push(']');
        }
        Value::Map { entries, .. } => {
            out.push('{');
            for (i, (k, x)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(k, out);
                out.push(':');
                go_json(x, out);
            }
            out.push('}');
        }
        Value::Struct(fields) => {
            out.push('{');
            for (i, (k, x)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(k, out);
                out.push(':');
                go_json(x, out);
            }
            out.push('}');
        }
    }
}

/// A template error, worded as Go's (`template: NAME:LINE: …`).
#[derive(Debug, thiserror::Error)]
#[error("template: {name}:{line}: {message}")]
pub struct TemplateError {
    name: String,
    line: usize,
    message: String,
}

#[derive(Debug, Clone)]
enum Arg {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    Pipe(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Pipe {
    /// Variables declared (`:=`) or assigned (`=`).
    vars: Vec<String>,
    assign: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe, usize),
    /// `if` / `range` / `with`: the pipe, the body, the `else` branch.
    Block(&'static str, Pipe, Vec<Node>, Vec<Node>, usize),
}

/// A parsed template.
pub struct Template {
    name: String,
    nodes: Vec<Node>,
}

/// The pieces of the source: text, or an action's inside with its line.
enum Piece {
    Text(String),
    Action(String, usize),
}

fn split(name: &str, src: &str) -> Result<Vec<Piece>, TemplateError> {
    let err = |line, message: String| TemplateError {
        name: name.into(),
        line,
        message,
    };
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let trim_before =
            after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_before {
            text = text.trim_end();
        }
        line += rest[..open].matches('\n').count();
        pieces.push(Piece::Text(text.to_string()));
        let body_start = if trim_before { 1 } else { 0 };
        // Find the closing braces outside quotes.
        let bytes = after.as_bytes();
        let mut i = body_start;
        let mut close = None;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        if bytes[i] == b'\\' {
                            i += 1;
                        }
                        if i < bytes.len() && bytes[i] == b'\n' {
                            return Err(err(line, "unterminated quoted string".into()));
                        }
                        i += 1;
                    }
                }
                b'`' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'`' {
                        i += 1;
                    }
                }
                b'}' if after[i..].starts_with("}}") => {
                    close = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let Some(close) = close else {
            return Err(err(line, "unclosed action".into()));
        };
        let mut body = &after[body_start..close];
        trim_next = false;
        if let Some(b) = body
            .strip_suffix(" -")
            .or_else(|| body.strip_suffix("\t-"))
            .or_else(|| body.strip_suffix("\n-"))
        {
            body = b;
            trim_next = true;
        }
        pieces.push(Piece::Action(body.to_string(), line));
        line += body.matches('\n').count();
        rest = &after[close + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    pieces.push(Piece::Text(text.to_string()));
    Ok(pieces)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `.A.B`: a field chain written without spaces.
    Field(Vec<String>),
    Dot,
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    // `.A.B` right after the current position.
    let chain = |i: &mut usize| {
        let mut f = Vec::new();
        while *i + 1 < chars.len()
            && chars[*i] == '.'
            && (chars[*i + 1].is_alphabetic() || chars[*i + 1] == '_')
        {
            *i += 1;
            f.push(word(i));
        }
        f
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                toks.push(Tok::LParen);
                i += 1
            }
            ')' => {
                i += 1;
                toks.push(Tok::RParen);
                let f = chain(&mut i);
                if !f.is_empty() {
                    toks.push(Tok::Field(f));
                }
            }
            '|' => {
                toks.push(Tok::Pipe);
                i += 1
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1
            }
            '.' => {
                let f = chain(&mut i);
                if f.is_empty() {
                    i += 1;
                    toks.push(Tok::Dot);
                } else {
                    toks.push(Tok::Field(f));
                }
            }
            '$' => {
                i += 1;
                let name = format!("${}", word(&mut i));
                toks.push(Tok::Var(name, chain(&mut i)));
            }
            '"' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated quoted string".into());
                }
                i += 1;
                let lit: String = chars[start..i].iter().collect();
                let s: String = serde_json::from_str(&lit)
                    .map_err(|_| format!("invalid quoted string {lit}"))?;
                toks.push(Tok::Str(s));
            }
            '`' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated raw quoted string".into());
                }
                toks.push(Tok::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let n: String = chars[start..i].iter().collect();
                toks.push(Tok::Int(n.parse().map_err(|_| format!("bad number {n}"))?));
            }
            c if c.is_alphabetic() || c == '_' => toks.push(Tok::Ident(word(&mut i))),
            c => return Err(format!("unexpected {c:?} in command")),
        }
    }
    Ok(toks)
}

const FUNCS: &[&str] = &[
    "index", "len", "json", "printf", "print", "println", "eq", "ne", "lt", "le", "gt", "ge",
    "and", "or", "not", "lower", "upper", "join",
];

struct PipeParser {
    toks: Vec<Tok>,
    at: usize,
}

impl PipeParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn pipe(&mut self, nested: bool) -> Result<Pipe, String> {
        let mut vars = Vec::new();
        let mut assign = false;
        // `$x :=`, `$i, $v :=`, `$x =`
        let mut look = self.at;
        let mut names = Vec::new();
        while let Some(Tok::Var(v, f)) = self.toks.get(look)
            && f.is_empty()
        {
            names.push(v.clone());
            look += 1;
            match self.toks.get(look) {
                Some(Tok::Comma) => look += 1,
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    assign = self.toks[look] == Tok::Assign;
                    vars = std::mem::take(&mut names);
                    self.at = look + 1;
                    break;
                }
                _ => break,
            }
        }
        let mut cmds = Vec::new();
        let mut cmd = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some(Tok::RParen) if nested => break,
                Some(Tok::Pipe) => {
                    self.at += 1;
                    if cmd.is_empty() {
                        return Err("missing command".into());
                    }
                    cmds.push(std::mem::take(&mut cmd));
                }
                _ => cmd.push(self.operand()?),
            }
        }
        if cmd.is_empty() {
            return Err("missing value for command".into());
        }
        cmds.push(cmd);
        Ok(Pipe { vars, assign, cmds })
    }

    fn operand(&mut self) -> Result<Arg, String> {
        Ok(match self.next() {
            Some(Tok::Dot) => Arg::Dot(Vec::new()),
            Some(Tok::Field(f)) => Arg::Dot(f),
            Some(Tok::Var(v, f)) => Arg::Var(v, f),
            Some(Tok::Str(s)) => Arg::Lit(Value::Str(s)),
            Some(Tok::Int(i)) => Arg::Lit(Value::Int(i)),
            Some(Tok::Ident(id)) => match id.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Lit(Value::Nil),
                f if FUNCS.contains(&f) => Arg::Func(id),
                _ => return Err(format!("function {id:?} not defined")),
            },
            Some(Tok::LParen) => {
                let p = self.pipe(true)?;
                if self.next() != Some(Tok::RParen) {
                    return Err("unclosed left paren".into());
                }
                let fields = match self.peek() {
                    Some(Tok::Field(f)) => {
                        let f = f.clone();
                        self.at += 1;
                        f
                    }
                    _ => Vec::new(),
                };
                Arg::Pipe(Box::new(p), fields)
            }
            Some(t) => return Err(format!("unexpected {t:?} in operand")),
            None => return Err("missing value".into()),
        })
    }
}

fn parse_pipe(src: &str) -> Result<Pipe, String> {
    let mut p = PipeParser {
        toks: lex(src)?,
        at: 0,
    };
    let pipe = p.pipe(false)?;
    if p.at < p.toks.len() {
        return Err("unexpected right paren".into());
    }
    Ok(pipe)
}

impl Template {
    /// Parse `src`, a format as a user gives it to `--format`.
    pub fn parse(name: &str, src: &str) -> Result<Template, TemplateError> {
        let pieces = split(name, src)?;
        let mut it = pieces.into_iter().peekable();
        let (nodes, end) = Self::nodes(name, &mut it)?;
        if let Some((word, line)) = end {
            return Err(TemplateError {
                name: name.into(),
                line,
                message: format!("unexpected {{{{{word}}}}}"),
            });
        }
        Ok(Template {
            name: name.into(),
            nodes,
        })
    }

    /// Nodes up to an `end` / `else…` (returned with its line) or the end of input.
    #[allow(clippy::type_complexity)]
    fn nodes(
        name: &str,
        it: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
    ) -> Result<(Vec<Node>, Option<(String, usize)>), TemplateError> {
        let err = |line, message: String| TemplateError {
            name: name.into(),
            line,
            message,
        };
        let mut nodes = Vec::new();
        while let Some(piece) = it.next() {
            let (body, line) = match piece {
                Piece::Text(t) => {
                    if !t.is_empty() {
                        nodes.push(Node::Text(t.replace("\\n", "\n").replace("\\t", "\t")));
                    }
                    continue;
                }
                Piece::Action(b, l) => (b, l),
            };
            let body = body.trim();
            if body.starts_with("/*") && body.ends_with("*/") {
                continue;
            }
            let (word, rest) = match body.split_once(char::is_whitespace) {
                Some((w, r)) => (w, r.trim()),
                None => (body, ""),
            };
            match word {
                "end" | "else" => return Ok((nodes, Some((body.to_string(), line)))),
                "if" | "range" | "with" => {
                    nodes.push(Self::block(name, word, rest, line, it)?);
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(err(
                        line,
                        format!("{{{{{word}}}}} is not supported by kubemirror's --format"),
                    ));
                }
                _ => {
                    let pipe = parse_pipe(body).map_err(|m| err(line, m))?;
                    nodes.push(Node::Action(pipe, line));
                }
            }
        }
        Ok((nodes, None))
    }

    fn block(
        name: &str,
        word: &str,
        rest: &str,
        line: usize,
        it: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
    ) -> Result<Node, TemplateError> {
        let err = |line, message: String| TemplateError {
            name: name.into(),
            line,
            message,
        };
        let kind: &'static str = match word {
            "if" => "if",
            "range" => "range",
            _ => "with",
        };
        let pipe = parse_pipe(rest).map_err(|m| err(line, m))?;
        let (body, end) = Self::nodes(name, it)?;
        let (end, end_line) = end.ok_or_else(|| err(line, format!("unexpected EOF in {kind}")))?;
        let otherwise = if end == "end" {
            Vec::new()
        } else if end == "else" {
            let (e, close) = Self::nodes(name, it)?;
            match close {
                Some((w, _)) if w == "end" => e,
                _ => return Err(err(end_line, format!("expected end after else in {kind}"))),
            }
        } else if let Some(cond) = end.strip_prefix("else ").map(str::trim) {
            // `else if …` / `else with …`: a nested block sharing our `end`.
            let (w, r) = cond.split_once(char::is_whitespace).unwrap_or((cond, ""));
            if w != kind || kind == "range" {
                return Err(err(end_line, format!("unexpected {{{{{end}}}}}")));
            }
            vec![Self::block(name, w, r.trim(), end_line, it)?]
        } else {
            return Err(err(end_line, format!("unexpected {{{{{end}}}}}")));
        };
        Ok(Node::Block(kind, pipe, body, otherwise, line))
    }

    /// Run the template on `data`; the output ends with a newline, as skopeo's.
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut vars = vec![("$".to_string(), data.clone())];
        self.run(&self.nodes, data, &mut vars, &mut out)?;
        if !out.ends_with('\n') {
            out.push('\n');
        }
        Ok(out)
    }

    fn run(
        &self,
        nodes: &[Node],
        dot: &Value,
        vars: &mut Vec<(String, Value)>,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(pipe, line) => {
                    let v = self.pipe(pipe, dot, vars, *line, true)?;
                    if pipe.vars.is_empty() {
                        go_print(&v, out);
                    }
                }
                Node::Block(kind, pipe, body, otherwise, line) => {
                    let mark = vars.len();
                    let v = self.pipe(pipe, dot, vars, *line, *kind != "range")?;
                    match *kind {
                        "if" => {
                            let branch = if v.truthy() { body } else { otherwise };
                            self.run(branch, dot, vars, out)?;
                        }
                        "with" => {
                            if v.truthy() {
                                self.run(body, &v, vars, out)?;
                            } else {
                                self.run(otherwise, dot, vars, out)?;
                            }
                        }
                        _ => {
                            let items: Vec<(Value, Value)> = match &v {
                                Value::List { items, .. } => items
                                    .iter()
                                    .enumerate()
                                    .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                                    .collect(),
                                Value::Map { entries, .. } => entries
                                    .iter()
                                    .map(|(k, x)| (Value::Str(k.clone()), x.clone()))
                                    .collect(),
                                Value::Nil | Value::Missing => Vec::new(),
                                Value::Int(n) => {
                                    (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect()
                                }
                                other => {
                                    return Err(self.err(
                                        *line,
                                        format!("range can't iterate over {}", display(other)),
                                    ));
                                }
                            };
                            if items.is_empty() {
                                self.run(otherwise, dot, vars, out)?;
                            }
                            for (k, x) in items {
                                // `range $v := …` binds the element; `$k, $v` both.
                                match pipe.vars.as_slice() {
                                    [one] => set(vars, mark, one, x.clone()),
                                    [a, b] => {
                                        set(vars, mark, a, k);
                                        set(vars, mark, b, x.clone());
                                    }
                                    _ => {}
                                }
                                self.run(body, &x, vars, out)?;
                            }
                        }
                    }
                    vars.truncate(mark.max(1));
                }
            }
        }
        Ok(())
    }

    fn err(&self, line: usize, message: String) -> TemplateError {
        TemplateError {
            name: self.name.clone(),
            line,
            message,
        }
    }

    fn pipe(
        &self,
        pipe: &Pipe,
        dot: &Value,
        vars: &mut Vec<(String, Value)>,
        line: usize,
        bind: bool,
    ) -> Result<Value, TemplateError> {
        let mut piped: Option<Value> = None;
        for cmd in &pipe.cmds {
            piped = Some(self.command(cmd, dot, vars, piped, line)?);
        }
        let v = piped.unwrap_or(Value::Missing);
        // A range's variables are bound per element by the caller.
        if bind && !pipe.vars.is_empty() {
            let name = &pipe.vars[0];
            if pipe.assign {
                match vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(self.err(line, format!("undefined variable: {name}"))),
                }
            } else {
                vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn command(
        &self,
        cmd: &[Arg],
        dot: &Value,
        vars: &mut Vec<(String, Value)>,
        piped: Option<Value>,
        line: usize,
    ) -> Result<Value, TemplateError> {
        if let Some(Arg::Func(name)) = cmd.first() {
            let mut args = Vec::new();
            for a in &cmd[1..] {
                args.push(self.operand(a, dot, vars, line)?);
            }
            args.extend(piped);
            return call(name, &args)
                .map_err(|m| self.err(line, format!("executing at <{name}>: {m}")));
        }
        if cmd.len() > 1 || piped.is_some() {
            return Err(self.err(line, "can't give argument to non-function".into()));
        }
        self.operand(&cmd[0], dot, vars, line)
    }

    fn operand(
        &self,
        arg: &Arg,
        dot: &Value,
        vars: &mut Vec<(String, Value)>,
        line: usize,
    ) -> Result<Value, TemplateError> {
        let (base, fields) = match arg {
            Arg::Dot(f) => (dot.clone(), f),
            Arg::Var(name, f) => {
                let v = vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| self.err(line, format!("undefined variable \"{name}\"")))?;
                (v, f)
            }
            Arg::Lit(v) => return Ok(v.clone()),
            Arg::Func(name) => return call(name, &[]).map_err(|m| self.err(line, m)),
            Arg::Pipe(p, f) => (self.pipe(p, dot, vars, line, true)?, f),
        };
        let mut v = base;
        for f in fields {
            v = match v {
                Value::Struct(fs) => match fs.into_iter().find(|(n, _)| n == f) {
                    Some((_, x)) => x,
                    None => {
                        return Err(self.err(
                            line,
                            format!("executing at <.{f}>: can't evaluate field {f} in type struct"),
                        ));
                    }
                },
                Value::Map { entries, .. } => entries.get(f).cloned().unwrap_or(Value::Missing),
                other => {
                    return Err(self.err(
                        line,
                        format!(
                            "executing at <.{f}>: can't evaluate field {f} in type {}",
                            other.type_name()
                        ),
                    ));
                }
            };
        }
        Ok(v)
    }
}

fn set(vars: &mut Vec<(String, Value)>, mark: usize, name: &str, v: Value) {
    match vars[mark..].iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = v,
        None => vars.push((name.to_string(), v)),
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn call(name: &str, args: &[Value]) -> Result<Value, String> {
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ))
        }
    };
    Ok(match name {
        "len" => {
            want(1)?;
            Value::Int(match &args[0] {
                Value::Str(s) => s.len(),
                Value::List { items, .. } => items.len(),
                Value::Map { entries, .. } => entries.len(),
                other => return Err(format!("len of type {}", other.type_name())),
            } as i64)
        }
        "index" => {
            let Some((first, keys)) = args.split_first() else {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            };
            let mut v = first.clone();
            for k in keys {
                v = match (&v, k) {
                    (Value::List { items, .. }, Value::Int(i)) => items
                        .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                        .cloned()
                        .ok_or_else(|| format!("error calling index: index out of range: {i}"))?,
                    // A missing key gives the element type's zero value (maps here hold strings).
                    (Value::Map { entries, .. }, Value::Str(s)) => {
                        entries.get(s).cloned().unwrap_or(Value::Str(String::new()))
                    }
                    (Value::Nil, _) => return Err("index of untyped nil".into()),
                    (c, _) => return Err(format!("can't index item of type {}", c.type_name())),
                };
            }
            v
        }
        "json" => {
            want(1)?;
            let mut s = String::new();
            go_json(&args[0], &mut s);
            Value::Str(s)
        }
        "print" | "println" => {
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                // Go's Sprint adds spaces between operands when neither is a string.
                let both_non_string =
                    i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_));
                if (name == "println" && i > 0) || (name == "print" && both_non_string) {
                    s.push(' ');
                }
                go_print(a, &mut s);
            }
            if name == "println" {
                s.push('\n');
            }
            Value::Str(s)
        }
        "printf" => {
            let Some((Value::Str(f), rest)) = args.split_first() else {
                return Err("printf needs a format string".into());
            };
            Value::Str(printf(f, rest))
        }
        "eq" | "ne" => {
            if args.len() < 2 {
                return Err(format!("missing argument for {name}"));
            }
            let eq = args[1..].iter().any(|b| &args[0] == b);
            Value::Bool(if name == "eq" { eq } else { !eq })
        }
        "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let o = compare(&args[0], &args[1])?;
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "and" => args
            .iter()
            .find(|a| !a.truthy())
            .or(args.last())
            .cloned()
            .ok_or("missing argument for and")?,
        "or" => args
            .iter()
            .find(|a| a.truthy())
            .or(args.last())
            .cloned()
            .ok_or("missing argument for or")?,
        "not" => {
            want(1)?;
            Value::Bool(!args[0].truthy())
        }
        "lower" | "upper" => {
            want(1)?;
            let s = display(&args[0]);
            Value::Str(if name == "lower" {
                s.to_lowercase()
            } else {
                s.to_uppercase()
            })
        }
        "join" => {
            want(2)?;
            match (&args[0], &args[1]) {
                (Value::List { items, .. }, Value::Str(sep)) => {
                    Value::Str(items.iter().map(display).collect::<Vec<_>>().join(sep))
                }
                _ => return Err("join takes a list and a separator".into()),
            }
        }
        _ => return Err(format!("function {name:?} not defined")),
    })
}

/// Go's `Sprintf` for `%s %v %d %q %%` (flags and widths are not supported).
fn printf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next();
        if verb == Some('%') {
            out.push('%');
            continue;
        }
        let Some(verb) = verb else {
            out.push_str("%!(NOVERB)");
            break;
        };
        match args.next() {
            None => {
                let _ = write!(out, "%!{verb}(MISSING)");
            }
            Some(a) => match verb {
                'q' => out.push_str(&serde_json::to_string(&display(a)).unwrap_or_default()),
                _ => go_print(a, &mut out),
            },
        }
    }
    for extra in args {
        let _ = write!(out, "%!(EXTRA {}={})", extra.type_name(), display(extra));
    }
    out
}

/// Whether `format` asks for the whole output as JSON, as skopeo recognises
/// it: `json` or `{{json .}}` (spaces allowed) alone.
pub fn is_json(format: &str) -> bool {
    let f = format.trim();
    if f == "json" {
        return true;
    }
    let Some(inner) = f.strip_prefix("{{").and_then(|s| s.strip_suffix("}}")) else {
        return false;
    };
    let words: Vec<&str> = inner.split_whitespace().collect();
    words == ["json", "."]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Value {
        let mut labels = BTreeMap::new();
        labels.insert("b".to_string(), "2".to_string());
        labels.insert("a".to_string(), "<1>".to_string());
        Value::Struct(vec![
            ("Name", Value::Str("r/x".into())),
            ("Labels", Value::string_map(&Some(labels))),
            ("Env", Value::opt_strings(&None)),
            ("Layers", Value::strings(&["l1".into(), "l2".into()])),
            ("Created", Value::Time("2023-11-14T22:13:20.500Z".into())),
        ])
    }

    fn run(f: &str) -> String {
        Template::parse("t", f).unwrap().execute(&data()).unwrap()
    }

    #[test]
    fn prints_as_go_does() {
        assert_eq!(run("{{.Name}}"), "r/x\n");
        assert_eq!(run("{{.Labels}}"), "map[a:<1> b:2]\n");
        assert_eq!(run("{{.Layers}} {{.Env}}"), "[l1 l2] []\n");
        assert_eq!(run("{{.Created}}"), "2023-11-14 22:13:20.5 +0000 UTC\n");
        assert_eq!(
            run("{{json .Labels}}{{json .Env}}"),
            "{\"a\":\"\\u003c1\\u003e\",\"b\":\"2\"}null\n"
        );
        assert_eq!(
            run("{{index .Labels \"a\"}}|{{index .Labels \"z\"}}|{{.Labels.z}}"),
            "<1>||<no value>\n"
        );
        assert_eq!(run("{{range .Layers}}{{.}}{{\"\\n\"}}{{end}}"), "l1\nl2\n");
        assert_eq!(
            run("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}"),
            "a=<1>;b=2;\n"
        );
        assert_eq!(run("{{len .Layers}}"), "2\n");
        assert_eq!(
            run("{{if eq .Name \"r/x\"}}y{{else if .Name}}n{{else}}z{{end}}"),
            "y\n"
        );
        assert_eq!(run("{{with .Env}}e{{else}}none{{end}}"), "none\n");
        assert_eq!(
            run("{{- /* c */ -}} {{.Name | printf \"%q\"}}\\n"),
            "\"r/x\"\n"
        );
        assert_eq!(run("{{$n := .Name}}{{$n}}"), "r/x\n");
        assert_eq!(run("{{(index .Layers 1)}}"), "l2\n");
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let e = |f| match Template::parse("t", f) {
            Err(e) => e.to_string(),
            Ok(t) => t.execute(&data()).unwrap_err().to_string(),
        };
        assert!(e("{{.Nope}}").contains("can't evaluate field Nope"));
        assert!(e("{{nope .}}").contains("function \"nope\" not defined"));
        assert!(e("{{if .Name}}").contains("unexpected EOF"));
        assert!(is_json(" {{ json . }} ") && is_json("json") && !is_json("{{json .Labels}}"));
    }
}
