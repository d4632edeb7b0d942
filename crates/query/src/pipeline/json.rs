//! A streaming JSON scanner for the `| json` and `| unpack` stages.
//!
//! It never builds a value tree: [`flatten`] walks the object once and emits
//! `(flattened_key, value)` pairs (nested objects joined with `_`, arrays skipped,
//! keys sanitised to label names as Loki does), and [`extract`] navigates a
//! [`JsonPath`] while skipping everything else. Strings are only unescaped when they
//! contain a backslash.

use std::borrow::Cow;

use super::key_filter::Interest;
pub use super::key_filter::KeyFilter;

/// Why a line is not (valid) JSON. The text goes into `__error_details__`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg} at offset {offset}")]
pub struct JsonError {
    /// What went wrong.
    pub msg: &'static str,
    /// Byte offset.
    pub offset: usize,
}

const MAX_DEPTH: usize = 256;

pub(crate) struct Scanner<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Scanner {
            b: s.as_bytes(),
            s,
            i: 0,
        }
    }

    fn err(&self, msg: &'static str) -> JsonError {
        JsonError {
            msg,
            offset: self.i,
        }
    }

    /// Skips whitespace. Compact JSON has none between its tokens, so the
    /// common case is one test of the next byte.
    #[inline]
    fn ws(&mut self) {
        if self.b.get(self.i).is_some_and(|&c| c <= b' ') {
            self.skip_ws();
        }
    }

    fn skip_ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Result<(), JsonError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(match c {
                b':' => "expected ':'",
                b'{' => "Value looks like object, but can't find opening '{' symbol",
                _ => "unexpected character",
            }))
        }
    }

    /// Reads a string (cursor on the opening quote).
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected '\"'"));
        }
        self.i += 1;
        let start = self.i;
        // Fast path: no escapes.
        match quote_or_backslash(&self.b[self.i..]) {
            None => Err(self.err("unterminated string")),
            Some(off) if self.b[self.i + off] == b'"' => {
                self.i += off + 1;
                Ok(Cow::Borrowed(&self.s[start..self.i - 1]))
            }
            Some(off) => {
                let mut out = String::with_capacity(off + 16);
                out.push_str(&self.s[start..start + off]);
                self.i += off;
                loop {
                    let Some(c) = self.peek() else {
                        return Err(self.err("unterminated string"));
                    };
                    match c {
                        b'"' => {
                            self.i += 1;
                            return Ok(Cow::Owned(out));
                        }
                        b'\\' => {
                            self.i += 1;
                            let e = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                            self.i += 1;
                            match e {
                                b'"' => out.push('"'),
                                b'\\' => out.push('\\'),
                                b'/' => out.push('/'),
                                b'b' => out.push('\x08'),
                                b'f' => out.push('\x0c'),
                                b'n' => out.push('\n'),
                                b'r' => out.push('\r'),
                                b't' => out.push('\t'),
                                b'u' => {
                                    let hi = self.hex4()?;
                                    let cp = if (0xD800..0xDC00).contains(&hi) {
                                        if self.b.get(self.i) == Some(&b'\\')
                                            && self.b.get(self.i + 1) == Some(&b'u')
                                        {
                                            self.i += 2;
                                            let lo = self.hex4()?;
                                            if (0xDC00..0xE000).contains(&lo) {
                                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                            } else {
                                                0xFFFD
                                            }
                                        } else {
                                            0xFFFD
                                        }
                                    } else {
                                        hi
                                    };
                                    out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                                }
                                _ => return Err(self.err("invalid escape")),
                            }
                        }
                        _ => {
                            let run_end = quote_or_backslash(&self.b[self.i..])
                                .map_or(self.b.len(), |o| self.i + o);
                            out.push_str(&self.s[self.i..run_end]);
                            self.i = run_end;
                        }
                    }
                }
            }
        }
    }

    /// Reads an object key (cursor on the opening quote), and tells whether
    /// it is a label name as it is (see [`is_label_name`]): one pass over
    /// the bytes of an escape-free key does both.
    fn key(&mut self) -> Result<(Cow<'a, str>, bool), JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected '\"'"));
        }
        let start = self.i + 1;
        let mut label_bytes = true;
        for (offset, &c) in self.b[start..].iter().enumerate() {
            match c {
                b'"' => {
                    let key = &self.s[start..start + offset];
                    self.i = start + offset + 1;
                    let label_name =
                        label_bytes && !key.as_bytes().first().is_some_and(u8::is_ascii_digit);
                    return Ok((Cow::Borrowed(key), label_name));
                }
                b'\\' => break,
                _ => label_bytes &= LABEL_BYTE[usize::from(c)],
            }
        }
        let key = self.string()?;
        let label_name = is_label_name(&key);
        Ok((key, label_name))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("invalid escape"))?;
        let mut v = 0u32;
        for &c in h {
            v = v * 16
                + (c as char)
                    .to_digit(16)
                    .ok_or_else(|| self.err("invalid escape"))?;
        }
        self.i += 4;
        Ok(v)
    }

    fn skip_string(&mut self) -> Result<(), JsonError> {
        self.i += 1;
        loop {
            match quote_or_backslash(&self.b[self.i..]) {
                None => return Err(self.err("unterminated string")),
                Some(off) => {
                    self.i += off;
                    if self.b[self.i] == b'"' {
                        self.i += 1;
                        return Ok(());
                    }
                    self.i += 2;
                    if self.i > self.b.len() {
                        return Err(self.err("unterminated string"));
                    }
                }
            }
        }
    }

    /// Reads a number, `true`, `false` or `null` (cursor on its first byte),
    /// checking it in the same pass. It must end where the bytes a literal
    /// can hold end (`12a` is one invalid literal, not `12` then `a`).
    fn literal(&mut self) -> Result<&'a str, JsonError> {
        let start = self.i;
        let end = match self.b[start..] {
            [b't', b'r', b'u', b'e', ..] => Some(start + 4),
            [b'f', b'a', b'l', b's', b'e', ..] => Some(start + 5),
            [b'n', b'u', b'l', b'l', ..] => Some(start + 4),
            [b'-' | b'0'..=b'9', ..] => json_number_end(self.b, start),
            _ => None,
        };
        match end {
            Some(end) if !self.b.get(end).is_some_and(|&c| is_literal_byte(c)) => {
                self.i = end;
                Ok(&self.s[start..end])
            }
            _ => Err(self.err("invalid literal")),
        }
    }

    /// Skips any value (iteratively, so deep nesting cannot overflow the stack).
    fn skip_value(&mut self) -> Result<(), JsonError> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.skip_string(),
            Some(b'{' | b'[') => {
                let mut stack: Vec<u8> = Vec::new();
                loop {
                    self.ws();
                    let Some(c) = self.peek() else {
                        return Err(self.err("unexpected end of JSON input"));
                    };
                    match c {
                        b'{' | b'[' => {
                            stack.push(if c == b'{' { b'}' } else { b']' });
                            self.i += 1;
                        }
                        b'}' | b']' => {
                            if stack.pop() != Some(c) {
                                return Err(self.err("mismatched bracket"));
                            }
                            self.i += 1;
                            if stack.is_empty() {
                                return Ok(());
                            }
                        }
                        b'"' => self.skip_string()?,
                        b',' | b':' => self.i += 1,
                        _ => {
                            self.literal()?;
                        }
                    }
                }
            }
            Some(_) => self.literal().map(|_| ()),
            None => Err(self.err("unexpected end of JSON input")),
        }
    }

    fn finish(&mut self) -> Result<(), JsonError> {
        self.ws();
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(self.err("unexpected data after top-level value"))
        }
    }
}

/// Bytes [`quote_or_backslash`] searches a word (8 bytes) at a time before it
/// hands over to `memchr2`: most keys and values are shorter (timestamps,
/// 32-hex-digit trace ids, 36-byte UUIDs), and for them plain word tests beat
/// the SIMD search's setup.
const SHORT_RUN: usize = 64;

/// `0x01` repeated in every byte of a word.
const LOW_BITS: u64 = u64::from_le_bytes([0x01; 8]);
/// `0x80` repeated in every byte of a word.
const HIGH_BITS: u64 = u64::from_le_bytes([0x80; 8]);

/// The bytes of `word` equal to `byte` marked by their high bit; exact up to
/// and including the first match (a borrow may mark bytes after it), which
/// is all [`quote_or_backslash`] reads.
#[inline]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (LOW_BITS * u64::from(byte));
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// Offset of the first `"` or `\` in `b`.
#[inline]
fn quote_or_backslash(b: &[u8]) -> Option<usize> {
    for (i, word) in b.chunks_exact(8).take(SHORT_RUN / 8).enumerate() {
        let word = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        let found = bytes_equal(word, b'"') | bytes_equal(word, b'\\');
        if found != 0 {
            return Some(i * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    let searched = (b.len() / 8).min(SHORT_RUN / 8) * 8;
    if searched < SHORT_RUN {
        // Fewer than 8 bytes left, all of them in the run.
        return b[searched..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\')
            .map(|i| searched + i);
    }
    memchr::memchr2(b'"', b'\\', &b[searched..]).map(|i| i + searched)
}

/// Bytes the scanner reads as part of a literal: a literal runs until the
/// first byte not among them, and must be valid as a whole.
fn is_literal_byte(c: u8) -> bool {
    matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z')
}

/// The end of the JSON number `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
/// that starts at `b[start]`, or `None` when none does.
fn json_number_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + usize::from(b.get(start) == Some(&b'-'));
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - s
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    Some(i)
}

/// Bytes a label name may hold (`[A-Za-z0-9_]`), as a table: this test runs
/// on every byte of every key scanned.
static LABEL_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_';
        b += 1;
    }
    table
};

/// Whether `key` is a label name fragment as it is (a first one may not
/// start with a digit); the empty key counts as one.
fn is_label_fragment(key: &str, is_prefix: bool) -> bool {
    let bytes = key.as_bytes();
    bytes.iter().all(|&b| LABEL_BYTE[usize::from(b)])
        && !(is_prefix && bytes.first().is_some_and(u8::is_ascii_digit))
}

/// Whether a top-level key is a label name as it is (sanitizing leaves it alone).
fn is_label_name(key: &str) -> bool {
    is_label_fragment(key, true)
}

/// Appends `key` sanitised to label-name characters (Loki's `sanitizeLabelKey`).
pub(crate) fn push_sanitized(out: &mut String, key: &str, is_prefix: bool) {
    // Fast path: the key is already a valid label name fragment.
    if is_label_fragment(key, is_prefix) {
        out.push_str(key);
        return;
    }
    let key = key.trim();
    if is_prefix && key.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.push('_');
    }
    for c in key.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
}

/// Sanitises a key to a label name.
pub fn sanitize_key(key: &str) -> String {
    let mut s = String::with_capacity(key.len());
    push_sanitized(&mut s, key, true);
    s
}

/// Flattens a JSON object line, calling `emit(key, value)` for every scalar leaf.
/// Emits what it found before an error, like Loki.
pub fn flatten<'l>(
    line: &'l str,
    emit: &mut dyn FnMut(&str, Cow<'l, str>),
) -> Result<(), JsonError> {
    flatten_only(line, None, &mut |key, _, value| emit(key, value))
}

/// The callback of [`flatten_only`]: `(key, position among the wanted names,
/// value)`.
pub type EmitWanted<'f, 'l> = dyn FnMut(&str, Option<usize>, Cow<'l, str>) + 'f;

/// [`flatten`] for a caller that needs only the flattened keys in `only`
/// (`None`: all): other values are skipped without being decoded, and
/// objects are entered only when a wanted key lies below them. The line is
/// still checked to be one JSON object, as a parser error is a label too.
/// A value without escapes is borrowed from `line`, so the caller may keep it.
///
/// `emit(key, index, value)`: `index` is the key's position in the names the
/// filter was built from (`None` without a filter), so a caller needs no
/// lookup of its own to tell the keys apart.
pub fn flatten_only<'l>(
    line: &'l str,
    only: Option<&KeyFilter>,
    emit: &mut EmitWanted<'_, 'l>,
) -> Result<(), JsonError> {
    let mut sc = Scanner::new(line);
    sc.ws();
    if sc.peek() != Some(b'{') {
        return Err(sc.err("Value looks like object, but can't find opening '{' symbol"));
    }
    let mut key = String::with_capacity(64);
    flatten_object(&mut sc, &mut key, only, emit, 0)?;
    sc.finish()
}

fn flatten_object<'l>(
    sc: &mut Scanner<'l>,
    prefix: &mut String,
    only: Option<&KeyFilter>,
    emit: &mut EmitWanted<'_, 'l>,
    depth: usize,
) -> Result<(), JsonError> {
    if depth > MAX_DEPTH {
        return Err(sc.err("nesting too deep"));
    }
    sc.eat(b'{')?;
    sc.ws();
    if sc.peek() == Some(b'}') {
        sc.i += 1;
        return Ok(());
    }
    let base = prefix.len();
    loop {
        sc.ws();
        let (k, label_name) = sc.key()?;
        sc.eat(b':')?;
        sc.ws();
        // A top-level key that is a label name already is looked up as it is;
        // others are sanitized (and nested ones joined) into `prefix` first.
        let as_is = base == 0 && label_name;
        let (name, empty_key): (&str, bool) = if as_is {
            (&k, k.is_empty())
        } else {
            prefix.truncate(base);
            if base > 0 {
                prefix.push('_');
            }
            let before = prefix.len();
            push_sanitized(prefix, &k, base == 0);
            let empty = prefix.len() == before;
            (prefix.as_str(), empty)
        };
        let Interest {
            wanted: index,
            parent,
        } = match only {
            None => Interest {
                wanted: None,
                parent: true,
            },
            Some(filter) => filter.get(name),
        };
        let wanted = only.is_none() || index.is_some();
        match sc.peek() {
            Some(b'{') => {
                if empty_key || !parent {
                    sc.skip_value()?;
                } else {
                    if as_is {
                        prefix.clear();
                        prefix.push_str(&k);
                    }
                    flatten_object(sc, prefix, only, emit, depth + 1)?;
                }
            }
            Some(b'[') => sc.skip_value()?,
            Some(b'"') if !wanted => sc.skip_string()?,
            Some(b'"') => {
                let v = sc.string()?;
                if !empty_key {
                    emit(name, index, v);
                }
            }
            Some(_) => {
                let v = sc.literal()?;
                if wanted && !empty_key && v != "null" {
                    emit(name, index, Cow::Borrowed(v));
                }
            }
            None => return Err(sc.err("unexpected end of JSON input")),
        }
        sc.ws();
        match sc.peek() {
            Some(b',') => sc.i += 1,
            Some(b'}') => {
                sc.i += 1;
                prefix.truncate(base);
                return Ok(());
            }
            _ => {
                return Err(sc.err("Value looks like object, but can't find closing '}' symbol"));
            }
        }
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathElem {
    /// Object key.
    Key(String),
    /// Array index.
    Index(usize),
}

/// A parsed JSON path expression such as `a.b[0]["c d"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(pub Vec<PathElem>);

impl JsonPath {
    /// Parses Loki's JSON expression syntax.
    pub fn parse(expr: &str) -> Result<Self, String> {
        let bad = || format!("invalid JSON expression {expr:?}");
        let b = expr.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        let mut expect_field = true;
        while i < b.len() {
            match b[i] {
                b'.' => {
                    if expect_field {
                        return Err(bad());
                    }
                    expect_field = true;
                    i += 1;
                }
                b'[' => {
                    i += 1;
                    if b.get(i) == Some(&b'"') {
                        let end = b[i + 1..].iter().position(|&c| c == b'"').ok_or_else(bad)?;
                        out.push(PathElem::Key(expr[i + 1..i + 1 + end].to_string()));
                        i += end + 2;
                    } else {
                        let end = b[i..].iter().position(|&c| c == b']').ok_or_else(bad)?;
                        let n: usize = expr[i..i + end].trim().parse().map_err(|_| bad())?;
                        out.push(PathElem::Index(n));
                        i += end;
                    }
                    if b.get(i) != Some(&b']') {
                        return Err(bad());
                    }
                    i += 1;
                    expect_field = false;
                }
                _ => {
                    if !expect_field {
                        return Err(bad());
                    }
                    let end = b[i..]
                        .iter()
                        .position(|&c| c == b'.' || c == b'[')
                        .map_or(b.len(), |p| i + p);
                    out.push(PathElem::Key(expr[i..end].to_string()));
                    i = end;
                    expect_field = false;
                }
            }
        }
        if out.is_empty() || (expect_field && !b.is_empty() && b[b.len() - 1] == b'.') {
            return Err(bad());
        }
        Ok(JsonPath(out))
    }
}

/// Checks that `line` is one valid JSON value.
pub fn validate(line: &str) -> Result<(), JsonError> {
    let mut sc = Scanner::new(line);
    sc.skip_value()?;
    sc.finish()
}

/// Extracts the value at `path` from a (validated) JSON line. Strings are unescaped,
/// numbers/booleans returned as written, objects/arrays as raw JSON, `null`/missing as `None`.
pub fn extract<'a>(line: &'a str, path: &JsonPath) -> Option<Cow<'a, str>> {
    let mut sc = Scanner::new(line);
    for elem in &path.0 {
        sc.ws();
        match (elem, sc.peek()?) {
            (PathElem::Key(want), b'{') => {
                sc.i += 1;
                loop {
                    sc.ws();
                    if sc.peek()? == b'}' {
                        return None;
                    }
                    let k = sc.string().ok()?;
                    sc.eat(b':').ok()?;
                    if k == *want {
                        break;
                    }
                    sc.skip_value().ok()?;
                    sc.ws();
                    if sc.peek()? == b',' {
                        sc.i += 1;
                    }
                }
            }
            (PathElem::Index(n), b'[') => {
                sc.i += 1;
                for _ in 0..*n {
                    sc.ws();
                    if sc.peek()? == b']' {
                        return None;
                    }
                    sc.skip_value().ok()?;
                    sc.ws();
                    if sc.peek()? == b',' {
                        sc.i += 1;
                    }
                }
                sc.ws();
                if sc.peek()? == b']' {
                    return None;
                }
            }
            _ => return None,
        }
    }
    sc.ws();
    match sc.peek()? {
        b'"' => sc.string().ok(),
        b'{' | b'[' => {
            let start = sc.i;
            sc.skip_value().ok()?;
            Some(Cow::Borrowed(&line[start..sc.i]))
        }
        _ => {
            let v = sc.literal().ok()?;
            (v != "null").then_some(Cow::Borrowed(v))
        }
    }
}

/// The `_entry` value (if any) and the other string-valued keys of a packed line.
pub type Unpacked = (Option<String>, Vec<(String, String)>);

/// Unpacks a Promtail `pack`ed line: returns the `_entry` value (if any) and the other
/// string-valued keys.
pub fn unpack(line: &str) -> Result<Unpacked, JsonError> {
    let mut sc = Scanner::new(line);
    sc.ws();
    sc.eat(b'{')?;
    let mut entry = None;
    let mut labels = Vec::new();
    sc.ws();
    if sc.peek() == Some(b'}') {
        sc.i += 1;
        sc.finish()?;
        return Ok((entry, labels));
    }
    loop {
        sc.ws();
        let k = sc.string()?;
        sc.eat(b':')?;
        sc.ws();
        if sc.peek() == Some(b'"') {
            let v = sc.string()?;
            if k == "_entry" {
                entry = Some(v.into_owned());
            } else {
                labels.push((k.into_owned(), v.into_owned()));
            }
        } else {
            sc.skip_value()?;
        }
        sc.ws();
        match sc.peek() {
            Some(b',') => sc.i += 1,
            Some(b'}') => {
                sc.i += 1;
                break;
            }
            _ => return Err(sc.err("Value looks like object, but can't find closing '}' symbol")),
        }
    }
    sc.finish()?;
    Ok((entry, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn flat(line: &str) -> Result<Vec<(String, String)>, JsonError> {
        let mut out = Vec::new();
        flatten(line, &mut |k, v| out.push((k.to_string(), v.into_owned())))?;
        Ok(out)
    }

    fn oracle(v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
        if let Value::Object(m) = v {
            for (k, v) in m {
                let mut key = prefix.to_string();
                if !prefix.is_empty() {
                    key.push('_');
                }
                push_sanitized(&mut key, k, prefix.is_empty());
                if key.len() == prefix.len() + usize::from(!prefix.is_empty()) {
                    continue;
                }
                match v {
                    Value::Object(_) => oracle(v, &key, out),
                    Value::Array(_) | Value::Null => {}
                    Value::String(s) => out.push((key, s.clone())),
                    Value::Number(n) => out.push((key, n.to_string())),
                    Value::Bool(b) => out.push((key, b.to_string())),
                }
            }
        }
    }

    #[test]
    fn flattens_like_loki_docs() {
        let line = r#"{"protocol":"HTTP/2.0","servers":["129.0.1.1","10.2.1.3"],"request":{"time":"6.032","method":"GET","host":"foo.grafana.net","size":"55","headers":{"Accept":"*/*","User-Agent":"curl/7.68.0"}},"response":{"status":401,"size":"228","latency_seconds":"6.031"}}"#;
        let got = flat(line).expect("valid");
        let want: Vec<(String, String)> = [
            ("protocol", "HTTP/2.0"),
            ("request_time", "6.032"),
            ("request_method", "GET"),
            ("request_host", "foo.grafana.net"),
            ("request_size", "55"),
            ("request_headers_Accept", "*/*"),
            ("request_headers_User_Agent", "curl/7.68.0"),
            ("response_status", "401"),
            ("response_size", "228"),
            ("response_latency_seconds", "6.031"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn handles_escapes_numbers_and_odd_keys() {
        let got = flat(r#"{"a\"b":"x\ny\u00e9\ud83d\ude00","1st":1.50,"t":true,"n":null,"":"e"}"#)
            .expect("valid");
        assert_eq!(
            got,
            vec![
                ("a_b".into(), "x\nyé😀".into()),
                ("_1st".into(), "1.50".into()),
                ("t".into(), "true".into()),
            ]
        );
    }

    #[test]
    fn rejects_invalid_json() {
        for bad in [
            "",
            "nope",
            "{",
            r#"{"a":}"#,
            r#"{"a":1"#,
            r#"{"a":1}x"#,
            "[1]",
            r#"{"a":tru}"#,
        ] {
            assert!(flat(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn extracts_paths() {
        let line = r#"{"servers":["129.0.1.1","10.2.1.3"],"request":{"headers":{"User-Agent":"curl"}},"n":5,"o":{"x":[1, 2]}}"#;
        let get =
            |p: &str| extract(line, &JsonPath::parse(p).expect("path")).map(|c| c.into_owned());
        assert_eq!(get("servers[0]").as_deref(), Some("129.0.1.1"));
        assert_eq!(get("servers[1]").as_deref(), Some("10.2.1.3"));
        assert_eq!(get("servers[2]"), None);
        assert_eq!(
            get(r#"request.headers["User-Agent"]"#).as_deref(),
            Some("curl")
        );
        assert_eq!(get("n").as_deref(), Some("5"));
        assert_eq!(get("o").as_deref(), Some(r#"{"x":[1, 2]}"#));
        assert_eq!(get("o.x[1]").as_deref(), Some("2"));
        assert_eq!(get("missing"), None);
        assert!(JsonPath::parse("a..b").is_err());
        assert!(JsonPath::parse("a[x]").is_err());
    }

    #[test]
    fn unpacks_promtail_lines() {
        let (entry, labels) =
            unpack(r#"{"container":"myapp","pod":"p-1","_entry":"original log message","n":1}"#)
                .expect("valid");
        assert_eq!(entry.as_deref(), Some("original log message"));
        assert_eq!(
            labels,
            vec![
                ("container".into(), "myapp".into()),
                ("pod".into(), "p-1".into())
            ]
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-zA-Z0-9 ._-]{1,6}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The word-at-a-time search finds what a byte loop finds, at every
        /// length around the word and run boundaries.
        #[test]
        fn quote_or_backslash_is_the_first_quote_or_backslash(
            b in proptest::collection::vec(
                prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => any::<u8>()],
                0..160,
            ),
        ) {
            let naive = b.iter().position(|&c| c == b'"' || c == b'\\');
            prop_assert_eq!(quote_or_backslash(&b), naive);
        }

        /// A literal value is accepted exactly when serde_json accepts it.
        #[test]
        fn literals_are_checked_like_serde_json(
            t in prop_oneof![
                "[-+.eE0-9a-z]{1,4}",
                "-?[0-9]{1,3}(\\.[0-9]{0,2})?([eE][-+]?[0-9]{0,2})?",
                "(true|false|null)[a-z0-9]?",
            ],
        ) {
            let line = format!(r#"{{"a":{t},"b":1}}"#);
            let serde = serde_json::from_str::<Value>(&line).is_ok();
            prop_assert_eq!(flat(&line).is_ok(), serde, "{}", line);
        }
    }

    proptest! {
        #[test]
        fn flatten_agrees_with_serde_json(
            m in proptest::collection::btree_map("[a-zA-Z0-9 ._\"é-]{1,20}", arb_json(), 0..6),
            pretty in any::<bool>(),
        ) {
            let v = Value::Object(m.into_iter().collect());
            let line = if pretty {
                serde_json::to_string_pretty(&v).expect("serialises")
            } else {
                serde_json::to_string(&v).expect("serialises")
            };
            let mut want = Vec::new();
            oracle(&v, "", &mut want);
            let got = flat(&line).expect("valid json");
            // Sanitised keys may collide; compare as "last value wins" maps.
            let lw = |v: Vec<(String, String)>| inferscope_model::Labels::from_pairs(v);
            prop_assert_eq!(lw(got), lw(want));
            prop_assert!(validate(&line).is_ok());
        }

        #[test]
        fn flatten_only_is_flatten_restricted_to_the_wanted_keys(
            m in proptest::collection::btree_map("[a-zA-Z0-9 ._\"é-]{1,20}", arb_json(), 0..6),
            picks in proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
            extra in "[a-z_]{1,4}",
        ) {
            let line = serde_json::to_string(&Value::Object(m.into_iter().collect()))
                .expect("serialises");
            let all = flat(&line).expect("valid json");
            let mut only: Vec<String> = picks
                .iter()
                .filter(|_| !all.is_empty())
                .map(|i| all[i.index(all.len())].0.clone())
                .collect();
            only.push(extra);
            let mut got = Vec::new();
            let mut indexes = Vec::new();
            flatten_only(&line, Some(&KeyFilter::new(&only)), &mut |k, i, v| {
                indexes.push((k.to_string(), i));
                got.push((k.to_string(), v.into_owned()));
            })
            .expect("valid json");
            // Each key comes with its (first) position among the wanted names.
            for (k, i) in indexes {
                prop_assert_eq!(i, only.iter().position(|n| *n == k));
            }
            let want: Vec<(String, String)> =
                all.into_iter().filter(|(k, _)| only.contains(k)).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn scanner_never_panics(s in "\\PC{0,60}") {
            let _ = flat(&s);
            let _ = validate(&s);
            let _ = unpack(&s);
            if let Ok(p) = JsonPath::parse("a.b[0]") {
                let _ = extract(&s, &p);
            }
        }
    }
}
