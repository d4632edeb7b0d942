//! The Go `text/template` subset used by `line_format` and `label_format`.
//!
//! Supported: text, `{{ .label }}`, `{{ . }}`, trim markers `{{-`/`-}}`, comments,
//! pipes (`{{ .a | upper }}`), parenthesised sub-pipelines, string/number/bool
//! literals, `if`/`else if`/`else`/`end`, and Loki's/sprig's common functions.
//! Missing labels render as the empty string (Loki uses `missingkey=zero`).
//! Unknown functions and unsupported syntax (`range`, `with`, variables) fail at
//! compile time; runtime errors become `__error__=TemplateFormatErr`.

use std::fmt::Write as _;

/// A template compile or execution error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

fn terr<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

/// What a template can read while rendering.
pub trait TemplateData {
    /// The value of a label (`None` when absent).
    fn label(&self, name: &str) -> Option<&str>;
    /// The current log line (`__line__`).
    fn line(&self) -> &str;
    /// The entry timestamp in nanoseconds (`__timestamp__`).
    fn timestamp_ns(&self) -> i64;
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If {
        branches: Vec<(Pipe, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipe(Vec<Cmd>);

#[derive(Debug, Clone)]
struct Cmd(Vec<Operand>);

#[derive(Debug, Clone)]
enum Operand {
    Field(String),
    Dot,
    Lit(Val),
    Func(Func),
    Sub(Pipe),
}

/// A runtime value.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(i64),
    Nil,
}

impl Val {
    fn truthy(&self) -> bool {
        match self {
            Val::Str(s) => !s.is_empty(),
            Val::Int(i) => *i != 0,
            Val::Float(f) => *f != 0.0,
            Val::Bool(b) => *b,
            Val::Time(_) => true,
            Val::Nil => false,
        }
    }

    fn render(&self, out: &mut String) {
        match self {
            Val::Str(s) => out.push_str(s),
            Val::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Val::Float(f) => out.push_str(&go_float(*f)),
            Val::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Val::Time(ns) => {
                out.push_str(&format_time(*ns, "2006-01-02 15:04:05.999999999 -0700 MST"))
            }
            Val::Nil => out.push_str("<no value>"),
        }
    }

    fn to_str(&self) -> String {
        let mut s = String::new();
        self.render(&mut s);
        s
    }

    fn to_i64(&self) -> i64 {
        match self {
            Val::Str(s) => {
                let t = s.trim();
                t.parse::<i64>()
                    .ok()
                    .or_else(|| t.parse::<f64>().ok().map(|f| f as i64))
                    .unwrap_or(0)
            }
            Val::Int(i) => *i,
            Val::Float(f) => *f as i64,
            Val::Bool(b) => i64::from(*b),
            Val::Time(ns) => *ns / 1_000_000_000,
            Val::Nil => 0,
        }
    }

    fn to_f64(&self) -> f64 {
        match self {
            Val::Str(s) => s.trim().parse::<f64>().unwrap_or(0.0),
            Val::Int(i) => *i as f64,
            Val::Float(f) => *f,
            Val::Bool(b) => f64::from(u8::from(*b)),
            Val::Time(ns) => *ns as f64 / 1e9,
            Val::Nil => 0.0,
        }
    }
}

fn go_float(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e21 {
        format!("{f}")
    } else if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f}")
    }
}

macro_rules! funcs {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Template functions.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Func { $($variant),* }
        impl Func {
            fn from_name(s: &str) -> Option<Func> {
                match s { $($name => Some(Func::$variant),)* _ => None }
            }
        }
    };
}

funcs! {
    ToUpper => "ToUpper", ToLower => "ToLower", Upper => "upper", Lower => "lower",
    Title => "title", Trim => "trim", TrimAll => "trimAll", TrimPrefix => "trimPrefix",
    TrimSuffix => "trimSuffix", GoTrim => "Trim", GoTrimLeft => "TrimLeft",
    GoTrimRight => "TrimRight", GoTrimPrefix => "TrimPrefix", GoTrimSuffix => "TrimSuffix",
    GoTrimSpace => "TrimSpace", Replace => "replace", GoReplace => "Replace",
    Substr => "substr", Trunc => "trunc", Default => "default", Printf => "printf",
    Print => "print", Len => "len", Div => "div", Mul => "mul", Add => "add", Sub => "sub",
    Mod => "mod", Addf => "addf", Subf => "subf", Mulf => "mulf", Divf => "divf",
    Max => "max", Min => "min", Maxf => "maxf", Minf => "minf", Ceil => "ceil",
    Floor => "floor", Round => "round", Int => "int", Float64 => "float64",
    RegexReplaceAll => "regexReplaceAll", RegexReplaceAllLiteral => "regexReplaceAllLiteral",
    Contains => "contains", HasPrefix => "hasPrefix", HasSuffix => "hasSuffix",
    Repeat => "repeat", ToJson => "toJson", UnixEpoch => "unixEpoch",
    UnixEpochMillis => "unixEpochMillis", UnixEpochNanos => "unixEpochNanos",
    UnixToTime => "unixToTime", Date => "date", Now => "now", Line => "__line__",
    Timestamp => "__timestamp__", Eq => "eq", Ne => "ne", Lt => "lt", Le => "le",
    Gt => "gt", Ge => "ge", And => "and", Or => "or", Not => "not",
    AlignLeft => "alignLeft", AlignRight => "alignRight", Count => "count",
}

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    /// Labels referenced as `.name`.
    fields: Vec<String>,
    uses_line: bool,
}

impl Template {
    /// Compiles a template.
    pub fn compile(src: &str) -> Result<Self, TemplateError> {
        let pieces = split(src)?;
        let mut fields = Vec::new();
        let mut uses_line = false;
        let mut it = pieces.into_iter();
        let (nodes, end) = parse_nodes(&mut it, &mut fields, &mut uses_line, 0)?;
        if let Some(end) = end {
            return terr(format!("unexpected {{{{{end}}}}}"));
        }
        Ok(Template {
            nodes,
            fields,
            uses_line,
        })
    }

    /// Label names the template reads.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Whether the template calls `__line__`.
    pub fn uses_line(&self) -> bool {
        self.uses_line
    }

    /// Renders into `out`.
    pub fn render(&self, data: &dyn TemplateData, out: &mut String) -> Result<(), TemplateError> {
        render_nodes(&self.nodes, data, out)
    }
}

enum Piece {
    Text(String),
    Action(String),
}

/// Splits template source into text and action pieces, applying trim markers.
fn split(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("{{") else {
            let t = if trim_next { rest.trim_start() } else { rest };
            out.push(Piece::Text(t.to_string()));
            break;
        };
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let (trim_before, body_start) =
            if after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n") {
                (true, &after[2..])
            } else {
                (false, after)
            };
        if trim_before {
            text = text.trim_end();
        }
        if !text.is_empty() {
            out.push(Piece::Text(text.to_string()));
        }
        // Find the closing "}}" outside of string literals.
        let b = body_start.as_bytes();
        let mut i = 0;
        let mut close = None;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        if b[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    i += 1;
                }
                b'`' => {
                    i += 1;
                    while i < b.len() && b[i] != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                b'}' if b.get(i + 1) == Some(&b'}') => {
                    close = Some(i);
                    break;
                }
                _ => i += 1,
            }
        }
        let Some(close) = close else {
            return terr("unclosed action");
        };
        let mut body = &body_start[..close];
        trim_next = false;
        if body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-") {
            body = &body[..body.len() - 2];
            trim_next = true;
        }
        let body = body.trim();
        if !(body.starts_with("/*") && body.ends_with("*/")) {
            out.push(Piece::Action(body.to_string()));
        }
        rest = &body_start[close + 2..];
    }
    Ok(out)
}

/// Parses nodes until `{{else}}`/`{{end}}`; returns the terminator's text.
fn parse_nodes(
    it: &mut std::vec::IntoIter<Piece>,
    fields: &mut Vec<String>,
    uses_line: &mut bool,
    depth: usize,
) -> Result<(Vec<Node>, Option<String>), TemplateError> {
    if depth > MAX_DEPTH {
        return terr("if blocks nested too deeply");
    }
    let mut nodes = Vec::new();
    while let Some(p) = it.next() {
        match p {
            Piece::Text(t) => nodes.push(Node::Text(t)),
            Piece::Action(a) => {
                let (kw, rest) = match a.split_once(char::is_whitespace) {
                    Some((k, r)) => (k, r.trim()),
                    None => (a.as_str(), ""),
                };
                match kw {
                    "end" | "else" => return Ok((nodes, Some(a.clone()))),
                    "if" => {
                        let mut branches = Vec::new();
                        let mut cond = parse_pipe(rest, fields, uses_line)?;
                        let otherwise;
                        loop {
                            let (body, end) = parse_nodes(it, fields, uses_line, depth + 1)?;
                            branches.push((cond, body));
                            let Some(end) = end else {
                                return terr("unexpected EOF in if");
                            };
                            if end == "end" {
                                otherwise = Vec::new();
                                break;
                            }
                            let tail = end.trim_start_matches("else").trim();
                            if tail.is_empty() {
                                let (body, end) = parse_nodes(it, fields, uses_line, depth + 1)?;
                                if end.as_deref() != Some("end") {
                                    return terr("expected {{end}}");
                                }
                                otherwise = body;
                                break;
                            }
                            let Some(c) = tail.strip_prefix("if") else {
                                return terr(format!("unexpected {tail:?} after else"));
                            };
                            cond = parse_pipe(c.trim(), fields, uses_line)?;
                        }
                        nodes.push(Node::If {
                            branches,
                            otherwise,
                        });
                    }
                    "range" | "with" | "define" | "template" | "block" => {
                        return terr(format!("{kw} is not supported"));
                    }
                    _ => nodes.push(Node::Action(parse_pipe(&a, fields, uses_line)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

#[derive(Debug, Clone, PartialEq)]
enum ATok {
    Field(String),
    Dot,
    Str(String),
    Num(Val),
    Ident(String),
    Pipe,
    LParen,
    RParen,
}

fn lex_action(src: &str) -> Result<Vec<ATok>, TemplateError> {
    let mut out = Vec::new();
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'|' => {
                out.push(ATok::Pipe);
                i += 1;
            }
            b'(' => {
                out.push(ATok::LParen);
                i += 1;
            }
            b')' => {
                out.push(ATok::RParen);
                i += 1;
            }
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j == start {
                    out.push(ATok::Dot);
                } else {
                    out.push(ATok::Field(src[start..j].to_string()));
                }
                i = j;
            }
            b'"' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    let Some(ch) = src[j..].chars().next() else {
                        return terr("unterminated quoted string");
                    };
                    j += ch.len_utf8();
                    match ch {
                        '"' => break,
                        '\\' => {
                            let Some(e) = src[j..].chars().next() else {
                                return terr("unterminated quoted string");
                            };
                            j += e.len_utf8();
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                _ => return terr(format!("invalid escape \\{e}")),
                            });
                        }
                        ch => s.push(ch),
                    }
                }
                out.push(ATok::Str(s));
                i = j;
            }
            b'`' => {
                let Some(end) = src[i + 1..].find('`') else {
                    return terr("unterminated raw quoted string");
                };
                out.push(ATok::Str(src[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            c if c.is_ascii_digit()
                || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                let t = &src[start..i];
                if let Ok(n) = t.parse::<i64>() {
                    out.push(ATok::Num(Val::Int(n)));
                } else if let Ok(f) = t.parse::<f64>() {
                    out.push(ATok::Num(Val::Float(f)));
                } else {
                    return terr(format!("bad number syntax: {t:?}"));
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(ATok::Ident(src[start..i].to_string()));
            }
            b'$' => return terr("variables are not supported"),
            _ => return terr(format!("unexpected {:?} in command", c as char)),
        }
    }
    Ok(out)
}

fn parse_pipe(
    src: &str,
    fields: &mut Vec<String>,
    uses_line: &mut bool,
) -> Result<Pipe, TemplateError> {
    let toks = lex_action(src)?;
    let mut pos = 0;
    let p = pipe_from(&toks, &mut pos, fields, uses_line)?;
    if pos != toks.len() {
        return terr(format!("unexpected {:?} in operand", toks[pos]));
    }
    Ok(p)
}

fn pipe_from(
    toks: &[ATok],
    pos: &mut usize,
    fields: &mut Vec<String>,
    uses_line: &mut bool,
) -> Result<Pipe, TemplateError> {
    pipe_from_depth(toks, pos, fields, uses_line, 0)
}

const MAX_DEPTH: usize = 64;

fn pipe_from_depth(
    toks: &[ATok],
    pos: &mut usize,
    fields: &mut Vec<String>,
    uses_line: &mut bool,
    depth: usize,
) -> Result<Pipe, TemplateError> {
    if depth > MAX_DEPTH {
        return terr("expression nested too deeply");
    }
    let mut cmds = Vec::new();
    loop {
        let mut ops = Vec::new();
        while let Some(t) = toks.get(*pos) {
            let op = match t {
                ATok::Pipe | ATok::RParen => break,
                ATok::Field(f) => {
                    if !fields.contains(f) {
                        fields.push(f.clone());
                    }
                    Operand::Field(f.clone())
                }
                ATok::Dot => Operand::Dot,
                ATok::Str(s) => Operand::Lit(Val::Str(s.clone())),
                ATok::Num(n) => Operand::Lit(n.clone()),
                ATok::Ident(i) => match i.as_str() {
                    "true" => Operand::Lit(Val::Bool(true)),
                    "false" => Operand::Lit(Val::Bool(false)),
                    "nil" => Operand::Lit(Val::Nil),
                    name => {
                        let f = Func::from_name(name).ok_or_else(|| {
                            TemplateError(format!("function {name:?} not defined"))
                        })?;
                        if f == Func::Line {
                            *uses_line = true;
                        }
                        Operand::Func(f)
                    }
                },
                ATok::LParen => {
                    *pos += 1;
                    let p = pipe_from_depth(toks, pos, fields, uses_line, depth + 1)?;
                    if toks.get(*pos) != Some(&ATok::RParen) {
                        return terr("unclosed left paren");
                    }
                    Operand::Sub(p)
                }
            };
            *pos += 1;
            ops.push(op);
        }
        if ops.is_empty() {
            return terr("missing value for command");
        }
        cmds.push(Cmd(ops));
        if toks.get(*pos) == Some(&ATok::Pipe) {
            *pos += 1;
            continue;
        }
        return Ok(Pipe(cmds));
    }
}

fn render_nodes(
    nodes: &[Node],
    data: &dyn TemplateData,
    out: &mut String,
) -> Result<(), TemplateError> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => eval_pipe(p, data)?.render(out),
            Node::If {
                branches,
                otherwise,
            } => {
                let mut done = false;
                for (cond, body) in branches {
                    if eval_pipe(cond, data)?.truthy() {
                        render_nodes(body, data, out)?;
                        done = true;
                        break;
                    }
                }
                if !done {
                    render_nodes(otherwise, data, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval_pipe(p: &Pipe, data: &dyn TemplateData) -> Result<Val, TemplateError> {
    let mut prev: Option<Val> = None;
    for cmd in &p.0 {
        prev = Some(eval_cmd(cmd, data, prev)?);
    }
    Ok(prev.unwrap_or(Val::Nil))
}

fn eval_operand(op: &Operand, data: &dyn TemplateData) -> Result<Val, TemplateError> {
    Ok(match op {
        Operand::Field(f) => Val::Str(data.label(f).unwrap_or("").to_string()),
        Operand::Dot => Val::Str(String::new()),
        Operand::Lit(v) => v.clone(),
        Operand::Func(f) => call(*f, Vec::new(), data)?,
        Operand::Sub(p) => eval_pipe(p, data)?,
    })
}

fn eval_cmd(cmd: &Cmd, data: &dyn TemplateData, piped: Option<Val>) -> Result<Val, TemplateError> {
    match cmd.0.first() {
        Some(Operand::Func(f)) => {
            let mut args = Vec::with_capacity(cmd.0.len());
            for op in &cmd.0[1..] {
                args.push(eval_operand(op, data)?);
            }
            if let Some(v) = piped {
                args.push(v);
            }
            call(*f, args, data)
        }
        Some(op) => {
            if cmd.0.len() > 1 || piped.is_some() {
                return terr("can't give argument to non-function");
            }
            eval_operand(op, data)
        }
        None => terr("empty command"),
    }
}

fn arity(name: &str, args: &[Val], n: usize) -> Result<(), TemplateError> {
    if args.len() == n {
        Ok(())
    } else {
        terr(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ))
    }
}

fn s(v: &Val) -> String {
    v.to_str()
}

fn cmp_vals(a: &Val, b: &Val) -> Result<std::cmp::Ordering, TemplateError> {
    use Val::*;
    match (a, b) {
        (Int(_) | Float(_), Int(_) | Float(_)) => a
            .to_f64()
            .partial_cmp(&b.to_f64())
            .ok_or_else(|| TemplateError("incomparable values".into())),
        (Str(x), Str(y)) => Ok(x.cmp(y)),
        (Bool(x), Bool(y)) => Ok(x.cmp(y)),
        (Time(x), Time(y)) => Ok(x.cmp(y)),
        (Nil, Nil) => Ok(std::cmp::Ordering::Equal),
        _ => terr("incompatible types for comparison"),
    }
}

fn call(f: Func, a: Vec<Val>, data: &dyn TemplateData) -> Result<Val, TemplateError> {
    use Func as F;
    let str1 = |name: &str, a: &[Val]| -> Result<String, TemplateError> {
        arity(name, a, 1)?;
        Ok(s(&a[0]))
    };
    Ok(match f {
        F::ToUpper | F::Upper => Val::Str(str1("upper", &a)?.to_uppercase()),
        F::ToLower | F::Lower => Val::Str(str1("lower", &a)?.to_lowercase()),
        F::Title => {
            let src = str1("title", &a)?;
            let mut out = String::with_capacity(src.len());
            let mut prev_letter = false;
            for c in src.chars() {
                if !prev_letter {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
            }
            Val::Str(out)
        }
        F::Trim | F::GoTrimSpace => Val::Str(str1("trim", &a)?.trim().to_string()),
        F::TrimAll => {
            arity("trimAll", &a, 2)?;
            let cut = s(&a[0]);
            Val::Str(s(&a[1]).trim_matches(|c| cut.contains(c)).to_string())
        }
        F::GoTrim | F::GoTrimLeft | F::GoTrimRight => {
            arity("Trim", &a, 2)?;
            let cut = s(&a[1]);
            let v = s(&a[0]);
            let pred = |c: char| cut.contains(c);
            Val::Str(
                match f {
                    F::GoTrim => v.trim_matches(pred),
                    F::GoTrimLeft => v.trim_start_matches(pred),
                    _ => v.trim_end_matches(pred),
                }
                .to_string(),
            )
        }
        F::TrimPrefix | F::GoTrimPrefix | F::TrimSuffix | F::GoTrimSuffix => {
            arity("trimPrefix", &a, 2)?;
            let (affix, v) = if matches!(f, F::TrimPrefix | F::TrimSuffix) {
                (s(&a[0]), s(&a[1]))
            } else {
                (s(&a[1]), s(&a[0]))
            };
            let r = if matches!(f, F::TrimPrefix | F::GoTrimPrefix) {
                v.strip_prefix(affix.as_str())
            } else {
                v.strip_suffix(affix.as_str())
            };
            Val::Str(r.unwrap_or(&v).to_string())
        }
        F::Replace => {
            arity("replace", &a, 3)?;
            Val::Str(s(&a[2]).replace(&s(&a[0]), &s(&a[1])))
        }
        F::GoReplace => {
            arity("Replace", &a, 4)?;
            let n = a[3].to_i64();
            let v = s(&a[0]);
            Val::Str(if n < 0 {
                v.replace(&s(&a[1]), &s(&a[2]))
            } else {
                v.replacen(&s(&a[1]), &s(&a[2]), n as usize)
            })
        }
        F::Substr => {
            arity("substr", &a, 3)?;
            let v = s(&a[2]);
            let (start, end) = (a[0].to_i64(), a[1].to_i64());
            let len = v.len() as i64;
            let start = start.clamp(0, len) as usize;
            let end = if end < 0 || end > len {
                len as usize
            } else {
                end as usize
            };
            Val::Str(v.get(start..end.max(start)).unwrap_or("").to_string())
        }
        F::Trunc => {
            arity("trunc", &a, 2)?;
            let v = s(&a[1]);
            let n = a[0].to_i64();
            let len = v.chars().count() as i64;
            Val::Str(if n >= 0 {
                v.chars().take(n as usize).collect()
            } else {
                v.chars().skip((len + n).max(0) as usize).collect()
            })
        }
        F::Default => {
            arity("default", &a, 2)?;
            if a[1].truthy() {
                a[1].clone()
            } else {
                a[0].clone()
            }
        }
        F::Printf => {
            if a.is_empty() {
                return terr("wrong number of args for printf");
            }
            Val::Str(sprintf(&s(&a[0]), &a[1..]))
        }
        F::Print => Val::Str(a.iter().map(s).collect::<Vec<_>>().join("")),
        F::Len => Val::Int(str1("len", &a)?.len() as i64),
        F::Count => {
            arity("count", &a, 2)?;
            let pat = s(&a[0]);
            let re = regex::Regex::new(&pat).map_err(|e| TemplateError(e.to_string()))?;
            Val::Int(re.find_iter(&s(&a[1])).count() as i64)
        }
        F::Add | F::Mul => {
            let mut acc: i64 = if f == F::Add { 0 } else { 1 };
            for v in &a {
                acc = if f == F::Add {
                    acc.wrapping_add(v.to_i64())
                } else {
                    acc.wrapping_mul(v.to_i64())
                };
            }
            Val::Int(acc)
        }
        F::Sub | F::Div | F::Mod => {
            arity("sub", &a, 2)?;
            let (x, y) = (a[0].to_i64(), a[1].to_i64());
            Val::Int(match f {
                F::Sub => x.wrapping_sub(y),
                _ if y == 0 => return terr("integer divide by zero"),
                F::Div => x.wrapping_div(y),
                _ => x.wrapping_rem(y),
            })
        }
        F::Addf | F::Mulf => {
            let mut acc = if f == F::Addf { 0.0 } else { 1.0 };
            for v in &a {
                acc = if f == F::Addf {
                    acc + v.to_f64()
                } else {
                    acc * v.to_f64()
                };
            }
            Val::Float(acc)
        }
        F::Subf | F::Divf => {
            if a.is_empty() {
                return terr("wrong number of args");
            }
            let mut acc = a[0].to_f64();
            for v in &a[1..] {
                acc = if f == F::Subf {
                    acc - v.to_f64()
                } else {
                    acc / v.to_f64()
                };
            }
            Val::Float(acc)
        }
        F::Max | F::Min => {
            let it = a.iter().map(Val::to_i64);
            Val::Int(if f == F::Max { it.max() } else { it.min() }.unwrap_or(0))
        }
        F::Maxf | F::Minf => {
            let mut it = a.iter().map(Val::to_f64);
            let first = it.next().unwrap_or(0.0);
            Val::Float(it.fold(first, |x, y| if f == F::Maxf { x.max(y) } else { x.min(y) }))
        }
        F::Ceil => Val::Float(str1("ceil", &a).map(|_| a[0].to_f64().ceil())?),
        F::Floor => Val::Float(str1("floor", &a).map(|_| a[0].to_f64().floor())?),
        F::Round => {
            if a.is_empty() || a.len() > 3 {
                return terr("wrong number of args for round");
            }
            let places = a.get(1).map_or(0, Val::to_i64).clamp(0, 15) as i32;
            let m = 10f64.powi(places);
            Val::Float((a[0].to_f64() * m).round() / m)
        }
        F::Int => Val::Int(str1("int", &a).map(|_| a[0].to_i64())?),
        F::Float64 => Val::Float(str1("float64", &a).map(|_| a[0].to_f64())?),
        F::RegexReplaceAll | F::RegexReplaceAllLiteral => {
            arity("regexReplaceAll", &a, 3)?;
            let re = regex::Regex::new(&s(&a[0])).map_err(|e| TemplateError(e.to_string()))?;
            let v = s(&a[1]);
            let repl = s(&a[2]);
            Val::Str(if f == F::RegexReplaceAll {
                re.replace_all(&v, repl.as_str()).into_owned()
            } else {
                re.replace_all(&v, regex::NoExpand(&repl)).into_owned()
            })
        }
        F::Contains | F::HasPrefix | F::HasSuffix => {
            arity("contains", &a, 2)?;
            let (needle, hay) = (s(&a[0]), s(&a[1]));
            Val::Bool(match f {
                F::Contains => hay.contains(&needle),
                F::HasPrefix => hay.starts_with(&needle),
                _ => hay.ends_with(&needle),
            })
        }
        F::Repeat => {
            arity("repeat", &a, 2)?;
            let v = s(&a[1]);
            let max = (1 << 20) / v.len().max(1);
            let n = (a[0].to_i64().clamp(0, 10_000) as usize).min(max);
            Val::Str(v.repeat(n))
        }
        F::ToJson => {
            arity("toJson", &a, 1)?;
            Val::Str(match &a[0] {
                Val::Str(x) => serde_json::Value::String(x.clone()).to_string(),
                Val::Nil => "null".into(),
                v => s(v),
            })
        }
        F::UnixEpoch | F::UnixEpochMillis | F::UnixEpochNanos => {
            arity("unixEpoch", &a, 1)?;
            let ns = time_ns(&a[0])?;
            Val::Int(match f {
                F::UnixEpoch => ns.div_euclid(1_000_000_000),
                F::UnixEpochMillis => ns.div_euclid(1_000_000),
                _ => ns,
            })
        }
        F::UnixToTime => {
            let v = str1("unixToTime", &a)?;
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| TemplateError(format!("unable to parse {v:?} as epoch")))?;
            let digits = v.trim().trim_start_matches('-').len();
            Val::Time(match digits {
                0..=10 => n.saturating_mul(1_000_000_000),
                11..=13 => n.saturating_mul(1_000_000),
                14..=16 => n.saturating_mul(1_000),
                _ => n,
            })
        }
        F::Date => {
            arity("date", &a, 2)?;
            Val::Str(format_time(time_ns(&a[1])?, &s(&a[0])))
        }
        F::Now => {
            let ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            Val::Time(ns)
        }
        F::Line => Val::Str(data.line().to_string()),
        F::Timestamp => Val::Time(data.timestamp_ns()),
        F::Eq => {
            if a.len() < 2 {
                return terr("missing argument for comparison");
            }
            let mut any = false;
            for b in &a[1..] {
                let equal = match cmp_vals(&a[0], b) {
                    Ok(o) => o.is_eq(),
                    Err(_) => s(&a[0]) == s(b),
                };
                any |= equal;
            }
            Val::Bool(any)
        }
        F::Ne | F::Lt | F::Le | F::Gt | F::Ge => {
            arity("comparison", &a, 2)?;
            let o = cmp_vals(&a[0], &a[1])?;
            Val::Bool(match f {
                F::Ne => !o.is_eq(),
                F::Lt => o.is_lt(),
                F::Le => o.is_le(),
                F::Gt => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        F::And => {
            let mut last = Val::Nil;
            for v in a {
                if !v.truthy() {
                    return Ok(v);
                }
                last = v;
            }
            last
        }
        F::Or => {
            let mut last = Val::Nil;
            for v in a {
                if v.truthy() {
                    return Ok(v);
                }
                last = v;
            }
            last
        }
        F::Not => {
            arity("not", &a, 1)?;
            Val::Bool(!a[0].truthy())
        }
        F::AlignLeft | F::AlignRight => {
            arity("alignLeft", &a, 2)?;
            let n = a[0].to_i64().clamp(0, 10_000) as usize;
            let v = s(&a[1]);
            let len = v.chars().count();
            Val::Str(if len >= n {
                v.chars().take(n).collect()
            } else if f == F::AlignLeft {
                format!("{v}{}", " ".repeat(n - len))
            } else {
                format!("{}{v}", " ".repeat(n - len))
            })
        }
    })
}

fn time_ns(v: &Val) -> Result<i64, TemplateError> {
    match v {
        Val::Time(ns) => Ok(*ns),
        Val::Int(i) => Ok(i.saturating_mul(1_000_000_000)),
        other => terr(format!("expected a time, got {:?}", other.to_str())),
    }
}

/// A small `fmt.Sprintf`: `%s %d %v %f %.Nf %q %x %%` and widths.
fn sprintf(fmt: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        let verb = loop {
            match chars.next() {
                Some(ch) if ch.is_ascii_digit() || ch == '.' || ch == '-' || ch == '+' => {
                    spec.push(ch)
                }
                other => break other,
            }
        };
        let Some(verb) = verb else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let left = spec.starts_with('-');
        let spec_t = spec.trim_start_matches(['-', '+']);
        // Widths and precisions are clamped so a template cannot allocate gigabytes.
        let clamp = |n: usize| n.min(1024);
        let (w, prec) = match spec_t.split_once('.') {
            Some((w, p)) => (
                w.parse::<usize>().ok().map(clamp),
                p.parse::<usize>().ok().map(clamp),
            ),
            None => (spec_t.parse::<usize>().ok().map(clamp), None),
        };
        let body = match verb {
            'd' => format!("{}", arg.to_i64()),
            'f' | 'F' => format!("{:.*}", prec.unwrap_or(6), arg.to_f64()),
            'e' => format!("{:.*e}", prec.unwrap_or(6), arg.to_f64()),
            'g' => go_float(arg.to_f64()),
            'q' => format!("{:?}", arg.to_str()),
            'x' => match arg {
                Val::Int(i) => format!("{i:x}"),
                v => v.to_str().bytes().map(|b| format!("{b:02x}")).collect(),
            },
            't' => format!("{}", arg.truthy()),
            _ => {
                let s = arg.to_str();
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
        };
        let len = body.chars().count();
        match w {
            Some(w) if w > len => {
                let pad = " ".repeat(w - len);
                if left {
                    out.push_str(&body);
                    out.push_str(&pad);
                } else {
                    out.push_str(&pad);
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    out
}

/// Days since 1970-01-01 → (year, month, day). Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];

/// Formats a UTC timestamp with a Go reference-time layout (`2006-01-02T15:04:05Z07:00`).
pub fn format_time(ns: i64, layout: &str) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, se) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    let wd = DAYS[days.rem_euclid(7) as usize];
    let mname = MONTHS[(mo - 1) as usize];
    let mut out = String::new();
    let mut rest = layout;
    // Longest tokens first.
    const TOKENS: [&str; 33] = [
        "January",
        "Monday",
        ".000000000",
        ".999999999",
        ".000000",
        ".999999",
        "Z07:00",
        "-07:00",
        "-0700",
        ".000",
        ".999",
        "2006",
        "Jan",
        "Mon",
        "MST",
        "Z0700",
        "002",
        "_2",
        "01",
        "02",
        "03",
        "04",
        "05",
        "06",
        "15",
        "PM",
        "pm",
        "1",
        "2",
        "3",
        "4",
        "5",
        "Z07",
    ];
    'outer: while !rest.is_empty() {
        for t in TOKENS {
            if let Some(r) = rest.strip_prefix(t) {
                match t {
                    "January" => out.push_str(mname),
                    "Monday" => out.push_str(wd),
                    "Jan" => out.push_str(&mname[..3]),
                    "Mon" => out.push_str(&wd[..3]),
                    "MST" => out.push_str("UTC"),
                    "Z07:00" | "Z0700" | "Z07" => out.push('Z'),
                    "-07:00" => out.push_str("+00:00"),
                    "-0700" => out.push_str("+0000"),
                    "2006" => out.push_str(&format!("{y:04}")),
                    "06" => out.push_str(&format!("{:02}", y.rem_euclid(100))),
                    "01" => out.push_str(&format!("{mo:02}")),
                    "1" => out.push_str(&format!("{mo}")),
                    "02" => out.push_str(&format!("{d:02}")),
                    "_2" => out.push_str(&format!("{d:>2}")),
                    "2" => out.push_str(&format!("{d}")),
                    "002" => {
                        let jan1 =
                            days - (1..mo).map(|m| month_len(y, m)).sum::<i64>() - i64::from(d) + 1;
                        out.push_str(&format!("{:03}", days - jan1 + 1));
                    }
                    "15" => out.push_str(&format!("{h:02}")),
                    "03" => out.push_str(&format!("{:02}", if h % 12 == 0 { 12 } else { h % 12 })),
                    "3" => out.push_str(&format!("{}", if h % 12 == 0 { 12 } else { h % 12 })),
                    "04" => out.push_str(&format!("{mi:02}")),
                    "4" => out.push_str(&format!("{mi}")),
                    "05" => out.push_str(&format!("{se:02}")),
                    "5" => out.push_str(&format!("{se}")),
                    "PM" => out.push_str(if h >= 12 { "PM" } else { "AM" }),
                    "pm" => out.push_str(if h >= 12 { "pm" } else { "am" }),
                    t if t.starts_with(".0") => {
                        let n = t.len() - 1;
                        let digits = format!("{frac:09}");
                        out.push('.');
                        out.push_str(&digits[..n]);
                    }
                    t => {
                        // ".999...": trailing zeros trimmed, dot omitted when zero.
                        let n = t.len() - 1;
                        let digits = format!("{frac:09}");
                        let d = digits[..n].trim_end_matches('0');
                        if !d.is_empty() {
                            out.push('.');
                            out.push_str(d);
                        }
                    }
                }
                rest = r;
                continue 'outer;
            }
        }
        let Some(c) = rest.chars().next() else { break };
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn month_len(y: i64, m: u32) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Data(HashMap<&'static str, &'static str>, &'static str, i64);
    impl TemplateData for Data {
        fn label(&self, name: &str) -> Option<&str> {
            self.0.get(name).copied()
        }
        fn line(&self) -> &str {
            self.1
        }
        fn timestamp_ns(&self) -> i64 {
            self.2
        }
    }

    fn render(t: &str, labels: &[(&'static str, &'static str)]) -> Result<String, TemplateError> {
        let d = Data(
            labels.iter().copied().collect(),
            "the line",
            1_700_000_000_123_000_000,
        );
        let tpl = Template::compile(t)?;
        let mut out = String::new();
        tpl.render(&d, &mut out)?;
        Ok(out)
    }

    fn ok(t: &str, labels: &[(&'static str, &'static str)]) -> String {
        render(t, labels).expect("renders")
    }

    #[test]
    fn fields_and_pipes() {
        let l = [("level", "info"), ("msg", "hello"), ("status", "200")];
        assert_eq!(ok("{{.level}} {{.msg | upper}}", &l), "info HELLO");
        assert_eq!(ok("{{ .level }}|{{ .missing }}|", &l), "info||");
        assert_eq!(
            ok("{{ ToUpper .msg }} {{ .msg | ToLower | title }}", &l),
            "HELLO Hello"
        );
        assert_eq!(ok("{{.status | printf \"%5s\"}}", &l), "  200");
    }

    #[test]
    fn loki_doc_examples() {
        let l = [
            ("method", "GET"),
            ("status", "200"),
            ("duration", "1.5"),
            ("request_uri", "/api/v1"),
        ];
        assert_eq!(
            ok(r#"{{.method}} {{.status}} {{.duration}}"#, &l),
            "GET 200 1.5"
        );
        assert_eq!(
            ok(r#"{{ if eq .status "200" }}ok{{ else }}bad{{ end }}"#, &l),
            "ok"
        );
        assert_eq!(
            ok(
                r#"{{ if eq .status "500" }}a{{ else if eq .method "GET" }}b{{ else }}c{{ end }}"#,
                &l
            ),
            "b"
        );
        assert_eq!(ok(r#"{{ .request_uri | trimPrefix "/api" }}"#, &l), "/v1");
        assert_eq!(ok(r#"{{ .request_uri | replace "/" "_" }}"#, &l), "_api_v1");
        assert_eq!(
            ok(r#"{{ regexReplaceAll "(a.*)" .request_uri "${1}X" }}"#, &l),
            "/api/v1X"
        );
        assert_eq!(ok(r#"{{ .method | substr 0 2 }}"#, &l), "GE");
        assert_eq!(ok(r#"{{ .nope | default "none" }}"#, &l), "none");
        assert_eq!(
            ok(
                r#"{{ div .status 3 }} {{ mul 2 3 }} {{ add 1 2 3 }} {{ sub 5 7 }}"#,
                &l
            ),
            "66 6 6 -2"
        );
        assert_eq!(ok(r#"{{ printf "%.2f" (mulf .duration 2) }}"#, &l), "3.00");
        assert_eq!(
            ok(r#"{{ printf "%s-%d-%v" .method 7 .status }}"#, &l),
            "GET-7-200"
        );
        assert_eq!(
            ok(
                r#"{{ len .method }} {{ if contains "ap" .request_uri }}y{{ end }}"#,
                &l
            ),
            "3 y"
        );
        assert_eq!(
            ok(
                r#"{{ if hasPrefix "/api" .request_uri }}y{{ end }}{{ if hasSuffix "x" .request_uri }}n{{ end }}"#,
                &l
            ),
            "y"
        );
        assert_eq!(ok("{{ __line__ }}", &l), "the line");
        assert_eq!(ok("{{ __timestamp__ | unixEpoch }}", &l), "1700000000");
        assert_eq!(
            ok(
                r#"{{ __timestamp__ | date "2006-01-02T15:04:05.000Z07:00" }}"#,
                &l
            ),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(ok(r#"{{ .method | toJson }}"#, &l), "\"GET\"");
        assert_eq!(
            ok(r#"{{ trim "  x " }}{{ "a" | trimSuffix "a" }}"#, &l),
            "x"
        );
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(ok("a  {{- \"b\" -}}  c{{/* hi */}}", &[]), "abc");
    }

    #[test]
    fn errors() {
        assert!(Template::compile("{{ nope .a }}").is_err());
        assert!(Template::compile("{{ .a ").is_err());
        assert!(Template::compile("{{ if .a }}x").is_err());
        assert!(Template::compile("{{ end }}").is_err());
        assert!(Template::compile("{{ range .a }}{{ end }}").is_err());
        assert!(render("{{ div 1 0 }}", &[]).is_err());
    }
}
