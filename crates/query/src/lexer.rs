//! The LogQL lexer: turns query text into [`Token`]s with 1-based line/column positions.
//!
//! Token names (see [`Tok::name`]) follow Loki's goyacc grammar so syntax errors read
//! like Loki's (`syntax error: unexpected IDENTIFIER`). Keywords are lexed as
//! identifiers and recognised by the parser in context, except for the handful that
//! Loki reserves (`by`, `without`, `and`, `or`, ...), which the parser checks by text.

use crate::ParseError;
use crate::duration::{parse_bytes, parse_duration};

/// One lexical token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `[a-zA-Z_][a-zA-Z0-9_]*`
    Ident(String),
    /// A quoted (`"..."`, Go escapes) or raw (`` `...` ``) string, unescaped.
    Str(String),
    /// A number literal, e.g. `500`, `0.5`, `1e3`.
    Number(f64),
    /// A duration literal, e.g. `5m`, `1h30m`, `250ms` (nanoseconds).
    Duration(i64),
    /// A byte-size literal, e.g. `20MB`, `1KiB` (bytes).
    Bytes(u64),
    /// `[5m]` (nanoseconds).
    Range(i64),
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `|`
    Pipe,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `|>`
    PipePattern,
    /// `!=`
    Neq,
    /// `!~`
    Nre,
    /// `!>`
    Npa,
    /// `=`
    Eq,
    /// `=~`
    Re,
    /// `==`
    CmpEq,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `--strict`, `--keep-empty` and other `--flags`.
    Flag(String),
    /// End of input.
    Eof,
}

impl Tok {
    /// Loki's name for the token, used in syntax errors.
    pub fn name(&self) -> String {
        match self {
            Tok::Ident(s) => match keyword_name(s) {
                Some(k) => k.to_string(),
                None => "IDENTIFIER".to_string(),
            },
            Tok::Str(_) => "STRING".into(),
            Tok::Number(_) => "NUMBER".into(),
            Tok::Duration(_) => "DURATION".into(),
            Tok::Bytes(_) => "BYTES".into(),
            Tok::Range(_) => "RANGE".into(),
            Tok::LBrace => "{".into(),
            Tok::RBrace => "}".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
            Tok::Pipe => "|".into(),
            Tok::PipeExact => "|=".into(),
            Tok::PipeMatch => "|~".into(),
            Tok::PipePattern => "|>".into(),
            Tok::Neq => "!=".into(),
            Tok::Nre => "!~".into(),
            Tok::Npa => "!>".into(),
            Tok::Eq => "=".into(),
            Tok::Re => "=~".into(),
            Tok::CmpEq => "==".into(),
            Tok::Gt => ">".into(),
            Tok::Gte => ">=".into(),
            Tok::Lt => "<".into(),
            Tok::Lte => "<=".into(),
            Tok::Add => "+".into(),
            Tok::Sub => "-".into(),
            Tok::Mul => "*".into(),
            Tok::Div => "/".into(),
            Tok::Mod => "%".into(),
            Tok::Pow => "^".into(),
            Tok::Flag(f) => format!("--{f}"),
            Tok::Eof => "$end".into(),
        }
    }
}

/// Keywords Loki's lexer turns into dedicated tokens (for error messages only).
fn keyword_name(s: &str) -> Option<&'static str> {
    Some(match s {
        "by" => "by",
        "without" => "without",
        "and" => "and",
        "or" => "or",
        "unless" => "unless",
        "on" => "on",
        "ignoring" => "ignoring",
        "bool" => "bool",
        "offset" => "offset",
        "json" => "json",
        "logfmt" => "logfmt",
        "regexp" => "regexp",
        "pattern" => "pattern",
        "unpack" => "unpack",
        "unwrap" => "unwrap",
        "line_format" => "line_format",
        "label_format" => "label_format",
        "decolorize" => "decolorize",
        "drop" => "drop",
        "keep" => "keep",
        _ => return None,
    })
}

/// A token with its 1-based position.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
}

/// Splits `input` into tokens, ending with [`Tok::Eof`].
pub fn lex(input: &str) -> Result<Vec<Token>, ParseError> {
    Lexer {
        s: input,
        pos: 0,
        line: 1,
        col: 1,
    }
    .run()
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
    col: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.s[self.pos..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err(&self, line: usize, col: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            line,
            col,
            message: msg.into(),
        }
    }

    fn skip_ws_and_comments(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while let Some(c) = self.peek() {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    fn run(mut self) -> Result<Vec<Token>, ParseError> {
        let mut out = Vec::new();
        loop {
            self.skip_ws_and_comments();
            let (line, col) = (self.line, self.col);
            let Some(c) = self.peek() else {
                out.push(Token {
                    tok: Tok::Eof,
                    line,
                    col,
                });
                return Ok(out);
            };
            let tok = self.next_tok(c, line, col)?;
            out.push(Token { tok, line, col });
        }
    }

    fn next_tok(&mut self, c: char, line: usize, col: usize) -> Result<Tok, ParseError> {
        let two = |l: &mut Self, t: Tok| {
            l.bump();
            l.bump();
            Ok(t)
        };
        let one = |l: &mut Self, t: Tok| {
            l.bump();
            Ok(t)
        };
        let n = self.peek2();
        match c {
            '{' => one(self, Tok::LBrace),
            '}' => one(self, Tok::RBrace),
            '(' => one(self, Tok::LParen),
            ')' => one(self, Tok::RParen),
            ',' => one(self, Tok::Comma),
            '|' => match n {
                Some('=') => two(self, Tok::PipeExact),
                Some('~') => two(self, Tok::PipeMatch),
                Some('>') => two(self, Tok::PipePattern),
                _ => one(self, Tok::Pipe),
            },
            '!' => match n {
                Some('=') => two(self, Tok::Neq),
                Some('~') => two(self, Tok::Nre),
                Some('>') => two(self, Tok::Npa),
                _ => Err(self.err(line, col, "syntax error: unexpected character '!'")),
            },
            '=' => match n {
                Some('~') => two(self, Tok::Re),
                Some('=') => two(self, Tok::CmpEq),
                _ => one(self, Tok::Eq),
            },
            '>' => match n {
                Some('=') => two(self, Tok::Gte),
                _ => one(self, Tok::Gt),
            },
            '<' => match n {
                Some('=') => two(self, Tok::Lte),
                _ => one(self, Tok::Lt),
            },
            '+' => one(self, Tok::Add),
            '-' => {
                if n == Some('-') {
                    self.bump();
                    self.bump();
                    let start = self.pos;
                    while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    {
                        self.bump();
                    }
                    Ok(Tok::Flag(self.s[start..self.pos].to_string()))
                } else {
                    one(self, Tok::Sub)
                }
            }
            '*' => one(self, Tok::Mul),
            '/' => one(self, Tok::Div),
            '%' => one(self, Tok::Mod),
            '^' => one(self, Tok::Pow),
            '"' => self.quoted(line, col).map(Tok::Str),
            '`' => {
                self.bump();
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c == '`' {
                        let s = self.s[start..self.pos].to_string();
                        self.bump();
                        return Ok(Tok::Str(s));
                    }
                    self.bump();
                }
                Err(self.err(line, col, "literal not terminated"))
            }
            '[' => {
                self.bump();
                self.skip_ws_and_comments();
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_alphanumeric() || c == '.') {
                    self.bump();
                }
                let text = &self.s[start..self.pos];
                self.skip_ws_and_comments();
                if self.peek() != Some(']') {
                    return Err(self.err(line, col, "syntax error: unexpected ["));
                }
                self.bump();
                parse_duration(text)
                    .map(Tok::Range)
                    .ok_or_else(|| self.err(line, col, format!("invalid duration {text:?}")))
            }
            c if c.is_ascii_digit() || (c == '.' && n.is_some_and(|d| d.is_ascii_digit())) => {
                self.number(line, col)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
                    self.bump();
                }
                Ok(Tok::Ident(self.s[start..self.pos].to_string()))
            }
            c => Err(self.err(
                line,
                col,
                format!("syntax error: unexpected character {c:?}"),
            )),
        }
    }

    fn number(&mut self, line: usize, col: usize) -> Result<Tok, ParseError> {
        let start = self.pos;
        // Greedy: digits, dots, letters (units, exponents, hex) and µ.
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '.' || c == 'µ' || c == '_')
        {
            // A sign after an exponent marker belongs to the number.
            self.bump();
            if matches!(self.s[..self.pos].chars().last(), Some('e' | 'E'))
                && matches!(self.peek(), Some('+' | '-'))
                && self.peek2().is_some_and(|c| c.is_ascii_digit())
                && self.s[start..self.pos - 1]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.')
            {
                self.bump();
            }
        }
        let text = &self.s[start..self.pos];
        if let Some(n) = parse_number(text) {
            return Ok(Tok::Number(n));
        }
        if let Some(d) = parse_duration(text) {
            return Ok(Tok::Duration(d));
        }
        if let Some(b) = parse_bytes(text) {
            return Ok(Tok::Bytes(b));
        }
        Err(self.err(
            line,
            col,
            format!("syntax error: unexpected literal {text:?}"),
        ))
    }

    fn quoted(&mut self, line: usize, col: usize) -> Result<String, ParseError> {
        self.bump();
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.err(line, col, "literal not terminated"));
            };
            match c {
                '"' => return Ok(out),
                '\n' => return Err(self.err(line, col, "literal not terminated")),
                '\\' => {
                    let Some(e) = self.bump() else {
                        return Err(self.err(line, col, "literal not terminated"));
                    };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'a' => out.push('\x07'),
                        'b' => out.push('\x08'),
                        'f' => out.push('\x0c'),
                        'v' => out.push('\x0b'),
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        'x' | 'u' | 'U' => {
                            let len = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let mut v: u32 = 0;
                            for _ in 0..len {
                                let d = self
                                    .bump()
                                    .and_then(|c| c.to_digit(16))
                                    .ok_or_else(|| self.err(line, col, "invalid syntax"))?;
                                v = v * 16 + d;
                            }
                            if e == 'x' {
                                // Go: \x is a byte; accept only ASCII to stay valid UTF-8.
                                if v > 0x7f {
                                    return Err(self.err(line, col, "invalid syntax"));
                                }
                            }
                            out.push(
                                char::from_u32(v)
                                    .ok_or_else(|| self.err(line, col, "invalid syntax"))?,
                            );
                        }
                        '0'..='7' => {
                            let mut v = e.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                let d = self
                                    .bump()
                                    .and_then(|c| c.to_digit(8))
                                    .ok_or_else(|| self.err(line, col, "invalid syntax"))?;
                                v = v * 8 + d;
                            }
                            if v > 0x7f {
                                return Err(self.err(line, col, "invalid syntax"));
                            }
                            out.push(char::from_u32(v).unwrap_or('\0'));
                        }
                        _ => return Err(self.err(line, col, "invalid syntax")),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

/// Parses a LogQL number literal (decimal, with optional fraction and exponent).
fn parse_number(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let first = *b.first()?;
    if !(first.is_ascii_digit() || first == b'.') {
        return None;
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Quotes `s` as a Go double-quoted string literal (the inverse of the lexer).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).expect("lexes").into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_selector_and_filters() {
        assert_eq!(
            toks(r#"{app="x"} |= `a\b` != "c\"d""#),
            vec![
                Tok::LBrace,
                Tok::Ident("app".into()),
                Tok::Eq,
                Tok::Str("x".into()),
                Tok::RBrace,
                Tok::PipeExact,
                Tok::Str("a\\b".into()),
                Tok::Neq,
                Tok::Str("c\"d".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn lexes_numbers_durations_bytes_ranges() {
        assert_eq!(
            toks("500 0.5 250ms 1m30s 20MB [5m] 1e3"),
            vec![
                Tok::Number(500.0),
                Tok::Number(0.5),
                Tok::Duration(250_000_000),
                Tok::Duration(90_000_000_000),
                Tok::Bytes(20_000_000),
                Tok::Range(300_000_000_000),
                Tok::Number(1000.0),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn positions_are_one_based() {
        let t = lex("{a=\"b\"}\n  | json").expect("lexes");
        assert_eq!((t[0].line, t[0].col), (1, 1));
        assert_eq!((t[5].line, t[5].col), (2, 3));
    }

    #[test]
    fn quote_round_trips() {
        for s in ["a", "a\"b\\c\n\t", "\u{1}x", "é✓"] {
            let q = quote(s);
            assert_eq!(toks(&q), vec![Tok::Str(s.to_string()), Tok::Eof]);
        }
    }
}
