//! The `| logfmt` parser (`key=value key2="quoted value" flag`).
//!
//! Follows Loki's decoder: keys are any run of bytes other than space, `=` and `"`;
//! values are bare (up to the next space) or Go-quoted. A standalone key has an empty
//! value. Empty values are dropped unless `--keep-empty`. In `--strict` mode the first
//! malformed pair stops parsing with an error; otherwise it is skipped.

use std::borrow::Cow;

/// A logfmt syntax error (the text goes into `__error_details__`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("logfmt syntax error at pos {pos} : {msg}")]
pub struct LogfmtError {
    /// 1-based byte position.
    pub pos: usize,
    /// What was unexpected.
    pub msg: String,
}

/// Scans `line`, calling `emit(key, value)` for each pair (keys raw, unsanitised).
/// Returns the first syntax error; with `strict` it stops there.
pub fn parse(
    line: &str,
    strict: bool,
    emit: &mut dyn FnMut(&str, Cow<'_, str>),
) -> Result<(), LogfmtError> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut first_err: Option<LogfmtError> = None;
    let skip_token = |i: &mut usize| {
        while *i < b.len() && b[*i] > b' ' {
            *i += 1;
        }
    };
    while i < b.len() {
        while i < b.len() && b[i] <= b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i] > b' ' && b[i] != b'=' && b[i] != b'"' {
            i += 1;
        }
        if i == start {
            let e = LogfmtError {
                pos: i + 1,
                msg: format!("unexpected '{}'", b[i] as char),
            };
            if strict {
                return Err(e);
            }
            first_err.get_or_insert(e);
            skip_token(&mut i);
            continue;
        }
        let key = &line[start..i];
        if i >= b.len() || b[i] <= b' ' {
            emit(key, Cow::Borrowed(""));
            continue;
        }
        if b[i] == b'"' {
            let e = LogfmtError {
                pos: i + 1,
                msg: "unexpected '\"'".into(),
            };
            if strict {
                return Err(e);
            }
            first_err.get_or_insert(e);
            skip_token(&mut i);
            continue;
        }
        // b[i] == '='
        i += 1;
        if i >= b.len() || b[i] <= b' ' {
            emit(key, Cow::Borrowed(""));
            continue;
        }
        if b[i] == b'"' {
            match unquote(line, i) {
                Ok((v, end)) => {
                    i = end;
                    emit(key, v);
                }
                Err(pos) => {
                    let e = LogfmtError {
                        pos: pos + 1,
                        msg: "unterminated quoted value".into(),
                    };
                    if strict {
                        return Err(e);
                    }
                    first_err.get_or_insert(e);
                    i = b.len();
                }
            }
            continue;
        }
        let vstart = i;
        while i < b.len() && b[i] > b' ' && b[i] != b'=' && b[i] != b'"' {
            i += 1;
        }
        if i < b.len() && b[i] > b' ' {
            let e = LogfmtError {
                pos: i + 1,
                msg: format!("unexpected '{}'", b[i] as char),
            };
            if strict {
                return Err(e);
            }
            first_err.get_or_insert(e);
            skip_token(&mut i);
            continue;
        }
        emit(key, Cow::Borrowed(&line[vstart..i]));
    }
    match first_err {
        Some(e) if strict => Err(e),
        _ => Ok(()),
    }
}

/// Unquotes a Go-quoted value starting at `start` (on the `"`); returns the value
/// and the index after the closing quote, or the error position.
fn unquote(line: &str, start: usize) -> Result<(Cow<'_, str>, usize), usize> {
    let b = line.as_bytes();
    let mut i = start + 1;
    let Some(off) = memchr::memchr2(b'"', b'\\', &b[i..]) else {
        return Err(start);
    };
    if b[i + off] == b'"' {
        return Ok((Cow::Borrowed(&line[i..i + off]), i + off + 1));
    }
    let mut out = String::new();
    while i < b.len() {
        match b[i] {
            b'"' => return Ok((Cow::Owned(out), i + 1)),
            b'\\' => {
                let e = *b.get(i + 1).ok_or(i)?;
                if !e.is_ascii() {
                    // Keep `\é` verbatim without splitting the UTF-8 sequence.
                    out.push('\\');
                    i += 1;
                    continue;
                }
                i += 2;
                match e {
                    b'n' => out.push('\n'),
                    b't' => out.push('\t'),
                    b'r' => out.push('\r'),
                    b'\\' => out.push('\\'),
                    b'"' => out.push('"'),
                    b'/' => out.push('/'),
                    b'u' => {
                        let h = line.get(i..i + 4).ok_or(i)?;
                        let v = u32::from_str_radix(h, 16).map_err(|_| i)?;
                        out.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
                        i += 4;
                    }
                    _ => {
                        // Unknown escapes are kept verbatim.
                        out.push('\\');
                        out.push(e as char);
                    }
                }
            }
            _ => {
                let end = memchr::memchr2(b'"', b'\\', &b[i..]).map_or(b.len(), |o| i + o);
                out.push_str(&line[i..end]);
                i = end;
            }
        }
    }
    Err(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(line: &str, strict: bool) -> (Vec<(String, String)>, bool) {
        let mut out = Vec::new();
        let r = parse(line, strict, &mut |k, v| {
            out.push((k.into(), v.into_owned()))
        });
        (out, r.is_err())
    }

    fn p(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn loki_doc_example() {
        let line = r#"at=info method=GET path=/ host=grafana.net fwd="124.133.124.161" service=8ms status=200"#;
        assert_eq!(
            pairs(line, false).0,
            p(&[
                ("at", "info"),
                ("method", "GET"),
                ("path", "/"),
                ("host", "grafana.net"),
                ("fwd", "124.133.124.161"),
                ("service", "8ms"),
                ("status", "200")
            ])
        );
    }

    #[test]
    fn standalone_keys_quotes_and_escapes() {
        assert_eq!(
            pairs(r#"a b= c="x \"y\"\n" d=1"#, false).0,
            p(&[("a", ""), ("b", ""), ("c", "x \"y\"\n"), ("d", "1")])
        );
    }

    #[test]
    fn strict_stops_non_strict_skips() {
        let (v, err) = pairs("a=1 =x b=2", false);
        assert_eq!(v, p(&[("a", "1"), ("b", "2")]));
        assert!(!err);
        let (v, err) = pairs("a=1 =x b=2", true);
        assert_eq!(v, p(&[("a", "1")]));
        assert!(err);
        assert!(pairs(r#"a="unterminated"#, true).1);
        assert!(pairs("a=b=c", true).1);
    }

    proptest! {
        #[test]
        fn agrees_with_simple_oracle(kv in proptest::collection::vec(("[a-z_]{1,6}", "[a-zA-Z0-9./:-]{0,8}", any::<bool>()), 0..8)) {
            let mut line = String::new();
            for (k, v, quoted) in &kv {
                if !line.is_empty() { line.push(' '); }
                if *quoted { line.push_str(&format!("{k}={v:?}")); } else { line.push_str(&format!("{k}={v}")); }
            }
            let want: Vec<(String, String)> = kv.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
            let (got, err) = pairs(&line, true);
            prop_assert!(!err);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn never_panics(s in "\\PC{0,60}", strict in any::<bool>()) {
            let _ = pairs(&s, strict);
        }
    }
}
