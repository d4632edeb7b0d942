//! `inferscope trace <id>`: asks a running server for every entry of a trace
//! (or request) id and prints a timeline, one line per entry (and
//! `inferscope session <id>`, the same for a user session, with its requests'
//! tokens and cost):
//!
//! ```text
//! HH:MM:SS.mmm  +Δms  service  level  message
//! ```
//!
//! in time order, with a rule each time the service changes, so the hops of
//! a request through the stack stand out. The message is the JSON `message`,
//! `msg` or `event` field, the logfmt `msg`, or the raw line.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

/// Options of `inferscope trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The trace id or request id to look up.
    pub id: String,
    /// Base URL of the server.
    #[arg(
        long,
        env = "INFERSCOPE_ADDR",
        default_value = "http://127.0.0.1:3100",
        value_name = "URL"
    )]
    pub addr: String,
    /// How far back to look.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub since: String,
    /// Tenant (`X-Scope-OrgID`).
    #[arg(long, env = "INFERSCOPE_ORG_ID", value_name = "TENANT")]
    pub org_id: Option<String>,
    /// Most entries shown (the oldest ones).
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    ts_ns: i64,
    service: String,
    level: String,
    message: String,
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs `trace`: prints the timeline to stdout.
pub fn run(args: TraceArgs) -> anyhow::Result<()> {
    let json = fetch("trace", &args)?;
    print!("{}", render(&args.id, &rows_of(&json)));
    Ok(())
}

/// Runs `session`: the session's timeline, then its requests, tokens and cost.
pub fn run_session(args: TraceArgs) -> anyhow::Result<()> {
    let json = fetch("session", &args)?;
    print!("{}", render(&args.id, &rows_of(&json)));
    let s = &json["data"]["session"];
    println!(
        "session {}: {} requests, {} tokens, estimated ${:.4}",
        args.id,
        s["requests"].as_u64().unwrap_or(0),
        s["total_tokens"].as_u64().unwrap_or(0),
        s["estimated_cost_usd"].as_f64().unwrap_or(0.0)
    );
    Ok(())
}

/// `GET /api/v1/<kind>/<id>` as JSON.
fn fetch(kind: &str, args: &TraceArgs) -> anyhow::Result<Value> {
    let url = format!(
        "{}/api/v1/{kind}/{}?since={}&limit={}",
        args.addr.trim_end_matches('/'),
        percent_encode(&args.id),
        percent_encode(&args.since),
        args.limit
    );
    get_json(&url, &args.addr, args.org_id.as_deref())
}

/// `GET url` (as tenant `org_id`) from a running server at `addr`, as JSON; a
/// non-2xx answer is an error carrying the server's message. Shared by the
/// commands that ask a running server (`trace`, `session`, `genai top`).
pub(crate) fn get_json(url: &str, addr: &str, org_id: Option<&str>) -> anyhow::Result<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(org) = org_id {
        request = request.header("X-Scope-OrgID", org);
    }
    let response = request
        .call()
        .with_context(|| format!("could not reach {addr}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .read_to_string()
        .context("could not read the response")?;
    if !status.is_success() {
        bail!("the server answered {status}: {}", body.trim());
    }
    serde_json::from_str(&body).context("the response is not JSON")
}

fn rows_of(json: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    let streams = json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for s in &streams {
        let labels = &s["stream"];
        let label = |k: &str| labels[k].as_str().map(str::to_string);
        let service = ["service_name", "app", "service", "job", "container"]
            .iter()
            .find_map(|k| label(k))
            .unwrap_or_else(|| "-".to_string());
        for v in s["values"].as_array().into_iter().flatten() {
            let ts_ns = v[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
            let line = v[1].as_str().unwrap_or("");
            let (level, message) = match labels["access_log"].as_str() {
                Some(_) if line.is_empty() => (None, describe_access_log(labels)),
                _ => describe(line),
            };
            let level = level
                .or_else(|| label("level"))
                .or_else(|| label("detected_level"))
                .unwrap_or_else(|| "-".to_string());
            rows.push(Row {
                ts_ns,
                service: service.clone(),
                level: level.to_ascii_lowercase(),
                message,
            });
        }
    }
    rows.sort_by(|a, b| (a.ts_ns, &a.service).cmp(&(b.ts_ns, &b.service)));
    rows
}

/// An access log's one-line summary, from its labels and structured metadata:
/// what was called, status, duration, tokens, cost and why it was kept.
fn describe_access_log(labels: &Value) -> String {
    let get = |k: &str| labels[k].as_str().unwrap_or("");
    let what = [
        get("mcp_method_name"),
        get("gen_ai_response_model"),
        get("gen_ai_request_model"),
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .unwrap_or("-");
    let mut out = format!("{what} {} {}ms", get("response_code"), get("duration"));
    if !get("gen_ai_usage_total_tokens").is_empty() {
        out.push_str(&format!(" {} tok", get("gen_ai_usage_total_tokens")));
    }
    if let Ok(cost) = get("estimated_cost_usd").parse::<f64>() {
        out.push_str(&format!(" ${cost:.4}"));
    }
    out.push_str(&format!(" [{}]", get("sampled_reason")));
    out
}

/// The level and message of a line (JSON, logfmt, or raw).
fn describe(line: &str) -> (Option<String>, String) {
    if line.starts_with('{')
        && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line)
    {
        let text = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_string);
        let level = ["level", "severity", "levelname", "lvl"]
            .iter()
            .find_map(|k| text(k));
        let message = ["message", "msg", "event"]
            .iter()
            .find_map(|k| text(k))
            .unwrap_or_else(|| line.to_string());
        return (level, message);
    }
    let level = logfmt_value(line, "level");
    let message = logfmt_value(line, "msg").unwrap_or_else(|| line.to_string());
    (level, message)
}

/// The value of `key=` in a logfmt line (quoted values unescaped loosely).
fn logfmt_value(line: &str, key: &str) -> Option<String> {
    let mut rest = line;
    while let Some(pos) = rest.find(key) {
        let before_ok = pos == 0 || rest.as_bytes()[pos - 1] == b' ';
        let after = &rest[pos + key.len()..];
        if before_ok && let Some(value) = after.strip_prefix('=') {
            if let Some(quoted) = value.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = quoted.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => out.extend(chars.next()),
                        c => out.push(c),
                    }
                }
                return Some(out);
            }
            return Some(value.split(' ').next().unwrap_or("").to_string());
        }
        rest = after;
    }
    None
}

fn clock(ts_ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ts_ns)
        .format("%H:%M:%S%.3f")
        .to_string()
}

fn render(id: &str, rows: &[Row]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if rows.is_empty() {
        let _ = writeln!(out, "no entry carries {id}");
        return out;
    }
    let first = rows[0].ts_ns;
    let last = rows[rows.len() - 1].ts_ns;
    let mut services: Vec<&str> = rows.iter().map(|r| r.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let _ = writeln!(
        out,
        "{id}: {} entries, {} services, {:.3} s",
        rows.len(),
        services.len(),
        (last - first) as f64 / 1e9
    );
    let width = services.iter().map(|s| s.len()).max().unwrap_or(1);
    let mut previous: Option<&str> = None;
    for r in rows {
        if previous != Some(r.service.as_str()) {
            let _ = writeln!(out, "── {} ", r.service);
            previous = Some(r.service.as_str());
        }
        let delta_ms = (r.ts_ns - first) as f64 / 1e6;
        let message: String = r.message.chars().take(200).collect();
        let _ = writeln!(
            out,
            "{}  {:>+9.1}ms  {:<width$}  {:<5}  {}",
            clock(r.ts_ns),
            delta_ms,
            r.service,
            r.level,
            message.replace('\n', " ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_json_logfmt_and_raw() {
        assert_eq!(
            describe(r#"{"level":"ERROR","msg":"no ready endpoint","trace_id":"x"}"#),
            (Some("ERROR".into()), "no ready endpoint".into())
        );
        assert_eq!(
            describe(r#"{"event":"chat.completed","level":"info"}"#),
            (Some("info".into()), "chat.completed".into())
        );
        assert_eq!(
            describe(r#"ts=1 level=warn msg="slow \"call\"" trace_id=x"#),
            (Some("warn".into()), "slow \"call\"".into())
        );
        assert_eq!(
            describe("INFO 11-21 Finished request trace_id=x"),
            (None, "INFO 11-21 Finished request trace_id=x".into())
        );
    }

    #[test]
    fn renders_a_timeline_grouped_by_service() {
        let json: Value = serde_json::json!({"data": {"result": [
            {"stream": {"app": "gateway"}, "values": [
                ["1000000000", "{\"level\":\"info\",\"message\":\"in\"}"],
                ["1250000000", "{\"level\":\"info\",\"message\":\"out\"}"]]},
            {"stream": {"app": "vllm", "level": "INFO"}, "values": [
                ["1100000000", "Finished request"]]}
        ]}});
        let text = render("abc", &rows_of(&json));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "abc: 3 entries, 2 services, 0.250 s");
        assert_eq!(lines[1], "── gateway ");
        assert!(
            lines[2].starts_with("00:00:01.000       +0.0ms  gateway  info   in"),
            "{}",
            lines[2]
        );
        assert_eq!(lines[3], "── vllm ");
        assert!(
            lines[4].contains("+100.0ms  vllm     info   Finished request"),
            "{}",
            lines[4]
        );
        assert!(lines[6].contains("out"));
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }
}
