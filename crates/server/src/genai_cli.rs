//! `inferscope genai top --by model --since 1h`: asks a running server for its
//! GenAI summary and prints it as a table:
//!
//! ```text
//! MODEL          REQ/MIN  IN TOK/MIN  OUT TOK/MIN  CACHED/MIN  P50 LAT  P99 LAT  TTFT P50  TPOT P50  COST/H
//! gpt-4o           120.0      84,000       12,000       3,000    1.20s    8.40s    0.310s   0.021s  $3.12
//! ```

use clap::{Args, Subcommand};
use serde_json::Value;

/// `inferscope genai …`.
#[derive(Debug, Args)]
pub struct GenAiArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: GenAiCommand,
}

/// The `genai` subcommands.
#[derive(Debug, Subcommand)]
pub enum GenAiCommand {
    /// Requests, tokens, latency and cost per model, provider, service or instance.
    Top(TopArgs),
}

/// Options of `inferscope genai top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Group rows by `model`, `provider`, `service` or `instance`.
    #[arg(long, default_value = "model")]
    pub by: String,
    /// The range, ending now.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub since: String,
    /// Base URL of the server.
    #[arg(
        long,
        env = "INFERSCOPE_ADDR",
        default_value = "http://127.0.0.1:3100",
        value_name = "URL"
    )]
    pub addr: String,
    /// Tenant (`X-Scope-OrgID`).
    #[arg(long, env = "INFERSCOPE_ORG_ID", value_name = "TENANT")]
    pub org_id: Option<String>,
}

/// Runs the command.
pub fn run(args: GenAiArgs) -> anyhow::Result<()> {
    match args.command {
        GenAiCommand::Top(top) => run_top(top),
    }
}

fn run_top(args: TopArgs) -> anyhow::Result<()> {
    let url = format!(
        "{}/api/v1/genai/summary?by={}&since={}",
        args.addr.trim_end_matches('/'),
        args.by,
        args.since
    );
    let json = crate::trace_cli::get_json(&url, &args.addr, args.org_id.as_deref())?;
    print!("{}", render(&args.by, &json["data"]));
    Ok(())
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn secs(v: Option<f64>) -> String {
    match v {
        Some(s) if s < 1.0 => format!("{s:.3}s"),
        Some(s) => format!("{s:.2}s"),
        None => "-".into(),
    }
}

/// Renders the summary `data` as a table.
fn render(by: &str, data: &Value) -> String {
    let header = [
        by.to_uppercase(),
        "REQ/MIN".into(),
        "IN TOK/MIN".into(),
        "OUT TOK/MIN".into(),
        "CACHED/MIN".into(),
        "P50 LAT".into(),
        "P99 LAT".into(),
        "TTFT P50".into(),
        "TPOT P50".into(),
        "COST/H".into(),
    ];
    let mut table: Vec<Vec<String>> = vec![header.to_vec()];
    for row in data["rows"].as_array().into_iter().flatten() {
        let tok = |t: &str| num(&row["tokens_per_min"][t]).map_or("-".into(), thousands);
        let key = row["key"].as_str().unwrap_or("");
        table.push(vec![
            if key.is_empty() {
                "(none)".into()
            } else {
                key.to_string()
            },
            format!("{:.1}", num(&row["requests_per_min"]).unwrap_or(0.0)),
            tok("input"),
            tok("output"),
            tok("cached_input"),
            secs(num(&row["latency_s"]["p50"])),
            secs(num(&row["latency_s"]["p99"])),
            secs(num(&row["ttft_s"]["p50"])),
            secs(num(&row["tpot_s"]["p50"])),
            format!("${:.2}", num(&row["cost_per_hour_usd"]).unwrap_or(0.0)),
        ]);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if table.len() == 1 {
        out.push_str("(no GenAI metrics in this range)\n");
    }
    for u in data["unpriced"].as_array().into_iter().flatten() {
        let tokens: f64 = u["tokens"]
            .as_object()
            .map(|t| t.values().filter_map(Value::as_f64).sum())
            .unwrap_or(0.0);
        out.push_str(&format!(
            "no price for {}/{} ({} tokens): add it to genai.pricing_file\n",
            u["provider"].as_str().unwrap_or(""),
            u["model"].as_str().unwrap_or(""),
            thousands(tokens)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rows_aligned() {
        let data = serde_json::json!({"rows": [{
            "key": "gpt-4o", "requests_per_min": 120.0,
            "tokens_per_min": {"input": 84000.0, "output": 12000.0},
            "latency_s": {"p50": 1.2, "p99": 8.4}, "ttft_s": {"p50": 0.31}, "tpot_s": {},
            "cost_per_hour_usd": 3.126}], "unpriced": []});
        let text = render("model", &data);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("MODEL"), "{text}");
        assert!(lines[1].starts_with("gpt-4o"), "{text}");
        for needle in [
            "120.0", "84,000", "12,000", "1.20s", "8.40s", "0.310s", "$3.13",
        ] {
            assert!(lines[1].contains(needle), "{needle} in {text}");
        }
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert!(render("model", &serde_json::json!({"rows": []})).contains("no GenAI metrics"));
    }
}
