//! Normalization of the formats our users push, end to end through [`Normalizer`].

use proptest::prelude::*;

use super::*;

/// 2024-06-05T07:51:00Z
const NOW: i64 = 1_717_573_860_000_000_000;
const SECOND: i64 = 1_000_000_000;

fn normalizer() -> Normalizer {
    Normalizer::new(&Config::default())
}

fn stream(labels: &[(&str, &str)], lines: &[&str]) -> PushStream {
    PushStream {
        labels: Labels::from_pairs(labels.iter().copied()),
        entries: lines.iter().map(|l| LogEntry::new(NOW, *l)).collect(),
    }
}

fn metadata<'a>(entry: &'a LogEntry, name: &str) -> Option<&'a str> {
    entry.metadata().find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// Every metadata pair of `entry`, both kinds, owned.
fn all_metadata(entry: &LogEntry) -> Vec<(String, String)> {
    entry
        .metadata()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Normalizes one line in a stream `{app="t"}`; returns the entry and stats.
fn one(line: &str) -> (LogEntry, NormalizeStats) {
    let (mut out, stats) = normalizer().normalize(vec![stream(&[("app", "t")], &[line])], NOW);
    let entry = out.remove(0).entries.remove(0);
    assert_eq!(entry.line, line, "the line is stored byte for byte");
    (entry, stats)
}

#[test]
fn each_format_gets_its_event_time_and_level() {
    let cases: [(&str, i64, &str); 9] = [
        // AI gateway (Rust): uppercase level, message/timestamp.
        (
            r#"{"timestamp":"2024-06-05T07:50:00.123456Z","level":"ERROR","target":"aigateway::proxy","message":"request.failed","trace_id":"abc"}"#,
            NOW - 60 * SECOND + 123_456_000,
            "error",
        ),
        // Heimdall (Go slog): msg/time with nanoseconds.
        (
            r#"{"time":"2024-06-05T07:50:30.000000001Z","level":"warn","msg":"endpoint metrics stale"}"#,
            NOW - 30 * SECOND + 1,
            "warn",
        ),
        // chat-api (structlog): event/timestamp/level.
        (
            r#"{"event":"chat.failed","level":"error","timestamp":"2024-06-05T07:50:59.5Z","service":"chat-api"}"#,
            NOW - SECOND / 2,
            "error",
        ),
        // Dynamo JSONL.
        (
            r#"{"time":"2024-06-05T07:50:10.707164Z","level":"DEBUG","file":"/opt/dynamo/lib/runtime/src/pipeline/network/tcp/server.rs","line":230,"target":"dynamo_runtime::pipeline::network::tcp::server","message":"Registering new TcpStream","span_id":"5c20cc08e6afb2b7","trace_id":"b672ccf48683b392891c5cb4163d4b51"}"#,
            NOW - 50 * SECOND + 707_164_000,
            "debug",
        ),
        // Epoch milliseconds as a number, severity field.
        (
            r#"{"ts":1717573800250,"severity":"Information","msg":"ok"}"#,
            NOW - 60 * SECOND + 250_000_000,
            "info",
        ),
        // vLLM plain text keeps the push time.
        (
            "ERROR 06-05 07:51:00 [core.py:586] EngineCore failed request chatcmpl-1: CUDA out of memory",
            NOW,
            "error",
        ),
        // klog.
        (
            "W0605 07:51:00.123456       1 server.go:12] slow",
            NOW,
            "warn",
        ),
        // Invalid JSON is plain text.
        (r#"{"level":"error", broken"#, NOW, "unknown"),
        // JSON without a level field: Loki's word search over the line.
        (r#"{"msg":"INFO: started"}"#, NOW, "info"),
    ];
    for (line, ts, level) in cases {
        let (entry, _) = one(line);
        assert_eq!(entry.timestamp_ns, ts, "{line}");
        assert_eq!(metadata(&entry, "detected_level"), Some(level), "{line}");
    }
}

#[test]
fn invalid_json_is_counted_not_refused() {
    let (entry, stats) = one(r#"  {"msg": "unterminated"#);
    assert_eq!(stats.json_lines, 1);
    assert_eq!(stats.invalid_json, 1);
    assert_eq!(entry.timestamp_ns, NOW);
}

#[test]
fn event_time_outside_the_window_keeps_the_push_time() {
    let (entry, stats) = one(r#"{"time":"2020-01-01T00:00:00Z","msg":"old"}"#);
    assert_eq!(entry.timestamp_ns, NOW);
    assert_eq!(stats.event_time_out_of_window, 1);
    let (entry, stats) = one(r#"{"time":"2024-06-05T08:30:00Z","msg":"too new"}"#);
    assert_eq!(entry.timestamp_ns, NOW);
    assert_eq!(stats.event_time_out_of_window, 1);
    let (entry, stats) = one(r#"{"time":"2024-06-05T07:55:00Z","msg":"in the grace period"}"#);
    assert_eq!(entry.timestamp_ns, NOW + 240 * SECOND);
    assert_eq!(stats.event_times, 1);
    let (entry, stats) = one(r#"{"time":"yesterday","msg":"x"}"#);
    assert_eq!(entry.timestamp_ns, NOW);
    assert_eq!(stats.event_time_unparseable, 1);
    // `timestamp` is preferred to `time`, wherever each is in the line.
    let (entry, _) = one(r#"{"time":"2024-06-05T07:50:00Z","timestamp":"2024-06-05T07:49:00Z"}"#);
    assert_eq!(entry.timestamp_ns, NOW - 120 * SECOND);
}

#[test]
fn event_time_can_be_turned_off() {
    let mut config = Config::default();
    config.ingest.event_time.enabled = false;
    let (out, _) = Normalizer::new(&config).normalize(
        vec![stream(
            &[("app", "t")],
            &[r#"{"time":"2024-06-05T07:50:00Z"}"#],
        )],
        NOW,
    );
    assert_eq!(out[0].entries[0].timestamp_ns, NOW);
}

#[test]
fn high_cardinality_fields_are_copied_to_metadata() {
    let line = r#"{"message":"x","trace_id":"t1","span_id":"s1","request_id":"r1","user_id":"u_7","other":"o"}"#;
    let (entry, _) = one(line);
    for (k, v) in [
        ("trace_id", "t1"),
        ("span_id", "s1"),
        ("request_id", "r1"),
        ("user_id", "u_7"),
    ] {
        assert_eq!(metadata(&entry, k), Some(v), "{k}");
    }
    assert_eq!(metadata(&entry, "other"), None);
    // Verbatim values are held as ranges of the line, not copied, and the
    // canonical level as a `Level`: the entry owns no metadata text.
    let shared: Vec<(&str, (u32, u32))> = entry
        .line_metadata
        .iter()
        .map(|m| (m.name, (m.start, m.end)))
        .collect();
    let range = |v: &str| {
        let start = line.find(&format!(r#""{v}""#)).expect("in the line") as u32 + 1;
        (start, start + v.len() as u32)
    };
    assert_eq!(
        shared,
        [
            ("trace_id", range("t1")),
            ("span_id", range("s1")),
            ("request_id", range("r1")),
            ("user_id", range("u_7")),
        ]
    );
    assert_eq!(entry.detected_level, Some(Level::Unknown));
    assert_eq!(metadata(&entry, "detected_level"), Some("unknown"));
    assert!(entry.structured_metadata.is_empty());

    // Verbatim copies are not counted as escaped; a decoded one is (accept
    // redacts such a batch's metadata again: the line did not show it so).
    assert_eq!(one(line).1.escaped_metadata, 0);
    let (entry, stats) = one(r#"{"user_id":"sk\u002dproj","other":"a\"b"}"#);
    assert_eq!(metadata(&entry, "user_id"), Some("sk-proj"));
    assert_eq!(stats.escaped_metadata, 1);
    assert!(
        entry.line_metadata.iter().all(|m| m.name != "user_id"),
        "a decoded value is a copy"
    );
    assert_eq!(
        entry.structured_metadata,
        vec![("user_id".to_string(), "sk-proj".to_string())]
    );

    // Metadata pushed with the entry wins.
    let mut s = stream(&[("app", "t")], &[r#"{"trace_id":"from-line"}"#]);
    s.entries[0].structured_metadata = vec![("trace_id".into(), "pushed".into())];
    let (out, _) = normalizer().normalize(vec![s], NOW);
    let md = all_metadata(&out[0].entries[0]);
    assert_eq!(
        md.iter()
            .filter(|(k, _)| k == "trace_id")
            .collect::<Vec<_>>(),
        vec![&("trace_id".to_string(), "pushed".to_string())]
    );

    // A line field named as the level normalization adds is not added twice.
    let mut config = Config::default();
    config
        .ingest
        .labels
        .structured_metadata_fields
        .push("detected_level".into());
    let line = r#"{"level":"error","detected_level":"debug"}"#;
    let (out, _) = Normalizer::new(&config).normalize(vec![stream(&[("app", "t")], &[line])], NOW);
    let levels = out[0].entries[0]
        .metadata()
        .filter(|(k, _)| *k == "detected_level")
        .count();
    assert_eq!(levels, 1);
}

#[test]
fn levels_from_labels_and_metadata_come_first_and_existing_levels_stay() {
    let n = normalizer();
    let line = r#"{"level":"info","msg":"x"}"#;
    // A level stream label (the gateway's uppercase one) is the level, normalized.
    let (out, _) = n.normalize(
        vec![stream(&[("app", "gw"), ("level", "ERROR")], &[line])],
        NOW,
    );
    assert_eq!(
        out[0].labels.get("level"),
        Some("ERROR"),
        "the label is kept"
    );
    assert_eq!(
        metadata(&out[0].entries[0], "detected_level"),
        Some("error")
    );
    // An existing detected_level is kept (normalized, as Loki does), as a
    // `Level` when it is a canonical one.
    let mut s = stream(&[("app", "gw")], &[line]);
    s.entries[0].structured_metadata = vec![
        ("pod".into(), "p-1".into()),
        ("detected_level".into(), "WARNING".into()),
    ];
    let (out, _) = n.normalize(vec![s], NOW);
    let e = &out[0].entries[0];
    assert_eq!(e.detected_level, Some(Level::Warn));
    assert_eq!(
        all_metadata(e),
        [("detected_level", "warn"), ("pod", "p-1")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
    // Only the pair the level was read from becomes the level.
    let mut s = stream(&[("app", "gw")], &[line]);
    s.entries[0].structured_metadata = vec![
        ("detected_level".into(), "WARNING".into()),
        ("detected_level".into(), "custom".into()),
    ];
    let (out, _) = n.normalize(vec![s], NOW);
    assert_eq!(
        all_metadata(&out[0].entries[0]),
        [("detected_level", "warn"), ("detected_level", "custom")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    // Canonicalizing a pushed detected_level still copies the line's ids.
    let mut s = stream(
        &[("app", "gw")],
        &[r#"{"level":"info","trace_id":"4bf92f35","msg":"x"}"#],
    );
    s.entries[0].structured_metadata = vec![("detected_level".into(), "WARNING".into())];
    let (out, _) = n.normalize(vec![s], NOW);
    assert_eq!(
        all_metadata(&out[0].entries[0]),
        vec![
            ("detected_level".to_string(), "warn".to_string()),
            ("trace_id".to_string(), "4bf92f35".to_string())
        ]
    );
    // A level label Loki has no canonical spelling for is kept as it is,
    // as text; a canonical one is a `Level`, not a copy.
    let (out, _) = n.normalize(
        vec![stream(&[("app", "gw"), ("level", "NOTICE")], &[line])],
        NOW,
    );
    let e = &out[0].entries[0];
    assert_eq!(
        e.structured_metadata,
        vec![("detected_level".to_string(), "NOTICE".to_string())]
    );
    assert_eq!(e.detected_level, None);
    let (out, _) = n.normalize(
        vec![stream(&[("app", "gw"), ("level", "Warning")], &[line])],
        NOW,
    );
    let e = &out[0].entries[0];
    assert!(e.structured_metadata.is_empty());
    assert_eq!(e.detected_level, Some(Level::Warn));
    assert_eq!(metadata(e, "detected_level"), Some("warn"));
    // A level in metadata.
    let mut s = stream(&[("app", "gw")], &["plain text"]);
    s.entries[0].structured_metadata = vec![("severity".into(), "fatal".into())];
    let (out, _) = n.normalize(vec![s], NOW);
    assert_eq!(
        metadata(&out[0].entries[0], "detected_level"),
        Some("fatal")
    );
}

#[test]
fn level_discovery_can_be_turned_off() {
    let mut config = Config::default();
    config.limits_config.discover_log_levels = false;
    let (out, _) =
        Normalizer::new(&config).normalize(vec![stream(&[("app", "t")], &["ERROR boom"])], NOW);
    assert_eq!(out[0].entries[0].metadata_len(), 0);
}

#[test]
fn service_name_and_kubernetes_labels() {
    let n = normalizer();
    let (out, _) = n.normalize(
        vec![
            stream(&[("app", "gw"), ("namespace", "prod")], &["a"]),
            stream(
                &[
                    ("app_kubernetes_io_name", "frontend"),
                    ("nvidia_com_dynamo_component_type", "worker"),
                ],
                &["b"],
            ),
            stream(&[("namespace", "prod")], &["c"]),
            stream(&[("service_name", "mine"), ("app", "gw")], &["d"]),
        ],
        NOW,
    );
    let labels: Vec<String> = out.iter().map(|s| s.labels.to_string()).collect();
    assert_eq!(
        labels,
        vec![
            r#"{app="gw", namespace="prod", service_name="gw"}"#,
            r#"{app="frontend", app_kubernetes_io_name="frontend", component="worker", nvidia_com_dynamo_component_type="worker", service_name="frontend"}"#,
            r#"{namespace="prod", service_name="unknown_service"}"#,
            r#"{app="gw", service_name="mine"}"#,
        ]
    );
    let mut config = Config::default();
    config.limits_config.discover_service_name.clear();
    config.ingest.labels.kubernetes.clear();
    let (out, _) = Normalizer::new(&config).normalize(
        vec![stream(&[("app_kubernetes_io_name", "x")], &["a"])],
        NOW,
    );
    assert_eq!(out[0].labels.to_string(), r#"{app_kubernetes_io_name="x"}"#);
}

#[test]
fn labels_stay_within_the_limit() {
    let mut config = Config::default();
    config.limits_config.max_label_names_per_series = 2;
    let (out, _) = Normalizer::new(&config).normalize(
        vec![stream(&[("app_kubernetes_io_name", "x")], &["a"])],
        NOW,
    );
    // Room for one more: service_name comes first.
    assert_eq!(
        out[0].labels.to_string(),
        r#"{app_kubernetes_io_name="x", service_name="x"}"#
    );
}

#[test]
fn from_fields_split_streams_by_value() {
    let mut config = Config::default();
    config.ingest.labels.from_fields = vec!["region".into()];
    let (mut out, _) = Normalizer::new(&config).normalize(
        vec![stream(
            &[("app", "t")],
            &[
                r#"{"region":"eu"}"#,
                r#"{"region":"us"}"#,
                r#"{"region":"eu"}"#,
                "plain",
            ],
        )],
        NOW,
    );
    out.sort_by_key(|s| s.labels.to_string());
    let got: Vec<(String, usize)> = out
        .iter()
        .map(|s| (s.labels.to_string(), s.entries.len()))
        .collect();
    assert_eq!(
        got,
        vec![
            (r#"{app="t", region="eu", service_name="t"}"#.to_string(), 2),
            (r#"{app="t", region="us", service_name="t"}"#.to_string(), 1),
            (r#"{app="t", service_name="t"}"#.to_string(), 1),
        ]
    );
}

#[test]
fn metadata_stays_within_the_limits() {
    let mut config = Config::default();
    config.limits_config.max_structured_metadata_entries_count = 1;
    let (out, _) = Normalizer::new(&config).normalize(
        vec![stream(
            &[("app", "t")],
            &[r#"{"level":"info","trace_id":"t"}"#],
        )],
        NOW,
    );
    assert_eq!(
        all_metadata(&out[0].entries[0]),
        vec![("detected_level".to_string(), "info".to_string())]
    );
    // The byte limit counts line metadata as the text it stands for.
    let mut config = Config::default();
    config.limits_config.max_structured_metadata_size = 27;
    let lines = [
        r#"{"level":"info","trace_id":"t"}"#,
        r#"{"level":"info","trace_id":"tt"}"#,
    ];
    let (out, _) = Normalizer::new(&config).normalize(vec![stream(&[("app", "t")], &lines)], NOW);
    assert_eq!(
        metadata(&out[0].entries[0], "trace_id"),
        Some("t"),
        "18 + 9 bytes: just fits"
    );
    assert_eq!(
        metadata(&out[0].entries[1], "trace_id"),
        None,
        "18 + 10 bytes: one too many"
    );
}

#[test]
fn message_of_prefers_message_then_msg_then_event() {
    assert_eq!(
        message_of(r#"{"event":"e","msg":"m","message":"full"}"#).as_deref(),
        Some("full")
    );
    assert_eq!(
        message_of(r#"{"event":"e","msg":"m"}"#).as_deref(),
        Some("m")
    );
    assert_eq!(
        message_of(r#"{"event":"chat.failed"}"#).as_deref(),
        Some("chat.failed")
    );
    assert_eq!(
        message_of(r#"{"msg":"say \"hi\""}"#).as_deref(),
        Some(r#"say "hi""#)
    );
    assert!(matches!(
        message_of(r#"{"msg":"plain"}"#),
        Some(Cow::Borrowed("plain"))
    ));
    assert_eq!(message_of("INFO plain text"), None);
    assert_eq!(message_of(r#"{"msg":"broken"#), None);
}

#[test]
fn datagen_lines_get_their_event_time_and_a_known_level() {
    use inferscope_datagen::{Generator, GeneratorConfig};
    let config = GeneratorConfig::default();
    let now = config.start_ns + 3_600 * SECOND;
    let mut g = Generator::new(config);
    let streams = g.next_batch(256 << 10);
    let before: Vec<(String, i64)> = streams
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| (e.line.clone(), e.timestamp_ns)))
        .collect();
    let (out, stats) = normalizer().normalize(streams, now);
    assert_eq!(stats.invalid_json, 0);
    assert_eq!(
        stats.event_time_unparseable + stats.event_time_out_of_window,
        0
    );
    let after: Vec<(String, i64)> = out
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| (e.line.clone(), e.timestamp_ns)))
        .collect();
    // The generator writes the entry's own time into JSON lines (to the µs).
    assert_eq!(before.len(), after.len());
    for ((line_a, ts_a), (line_b, ts_b)) in before.iter().zip(&after) {
        assert_eq!(line_a, line_b);
        assert!((ts_a - ts_b).abs() < 1_000, "{line_a}: {ts_a} vs {ts_b}");
    }
    for s in &out {
        assert!(s.labels.get("service_name").is_some());
        for e in &s.entries {
            let level = metadata(e, "detected_level").expect("a level");
            assert!(
                ["info", "warn", "error"].contains(&level),
                "{level}: {}",
                e.line
            );
        }
    }
}

proptest! {
    #[test]
    fn never_panics_and_never_changes_a_line(
        lines in proptest::collection::vec(
            prop_oneof![
                ".{0,80}",
                r#"\{"(time|ts|level|msg|trace_id|timestamp)":"[ -~]{0,30}"(,"[a-z_]{1,8}":[0-9]{1,20})?\}"#,
                r#"\{"ts":-?[0-9]{1,22}(\.[0-9]{0,12})?\}"#,
                "[IWEF][0-9]{4} .{0,30}",
            ],
            1..8,
        )
    ) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (out, _) = normalizer().normalize(vec![stream(&[("app", "p")], &refs)], NOW);
        let got: Vec<&str> = out.iter().flat_map(|s| s.entries.iter().map(|e| e.line.as_str())).collect();
        prop_assert_eq!(got, refs);
        let window = normalizer().window(NOW);
        for e in out.iter().flat_map(|s| &s.entries) {
            prop_assert!(window.contains(e.timestamp_ns));
        }
    }
}
