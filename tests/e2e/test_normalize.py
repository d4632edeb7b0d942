"""Ingest normalization (issue #4): one line in each format our users push, then what a
Loki client sees — event time from the line, `detected_level` structured metadata,
`service_name`, trace ids lifted into structured metadata, and the line byte for byte."""

import datetime
import json

import pytest

from conftest import now_ns, unique

SECOND = 10**9
CATEGORIZE = {"X-Loki-Response-Encoding-Flags": "categorize-labels"}


def rfc3339(ns, digits):
    dt = datetime.datetime.fromtimestamp(ns // SECOND, tz=datetime.timezone.utc)
    frac = str(ns % SECOND).rjust(9, "0")[:digits]
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if digits else "") + "Z"


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


@pytest.fixture(scope="module")
def pushed(server):
    """Pushes one line per format, each in its own stream; returns what the test expects."""
    test = unique()
    push_ns = (now_ns() - 120 * SECOND) // SECOND * SECOND
    event = push_ns - 60 * SECOND  # every JSON line says it happened a minute earlier
    trace = "b672ccf48683b392891c5cb4163d4b51"
    cases = [
        # (name, stream labels, line, expected ts, expected detected_level, expected metadata)
        ("gateway", {"app": "aigateway"},
         compact({"timestamp": rfc3339(event + 123_456_000, 6), "level": "ERROR",
                  "target": "aigateway::proxy", "message": "request.failed", "trace_id": trace,
                  "request_id": "7d0c8c1e-4a4b-4c7e-9a53-1f0c3e2d9b10", "status": 504}),
         event + 123_456_000, "error", {"trace_id": trace,
                                        "request_id": "7d0c8c1e-4a4b-4c7e-9a53-1f0c3e2d9b10"}),
        ("heimdall", {"app": "heimdall"},
         compact({"time": rfc3339(event + 1, 9), "level": "info", "msg": "picked endpoint",
                  "trace_id": trace, "endpoint": "10.42.0.21:8000"}),
         event + 1, "info", {"trace_id": trace}),
        ("structlog", {"app": "chat-api"},
         compact({"event": "chat.failed", "level": "error", "timestamp": rfc3339(event + 2 * SECOND, 6),
                  "service": "chat-api", "trace_id": trace, "user_id": "u_42"}),
         event + 2 * SECOND, "error", {"trace_id": trace, "user_id": "u_42"}),
        ("dynamo", {"app_kubernetes_io_name": "dynamo-frontend",
                    "nvidia_com_dynamo_component_type": "frontend"},
         compact({"time": rfc3339(event + 3 * SECOND, 6), "level": "DEBUG",
                  "file": "/opt/dynamo/lib/runtime/src/pipeline/network/tcp/server.rs", "line": 230,
                  "target": "dynamo_runtime::pipeline::network::tcp::server",
                  "message": "Registering new TcpStream on 10.0.4.65:41959", "span_id": "5c20cc08e6afb2b7",
                  "trace_id": trace, "x_request_id": "test-trace-001"}),
         event + 3 * SECOND, "debug", {"trace_id": trace, "span_id": "5c20cc08e6afb2b7",
                                       "x_request_id": "test-trace-001"}),
        ("vllm", {"app": "vllm", "role": "decode"},
         "ERROR 06-05 07:51:00 [core.py:586] EngineCore failed request chatcmpl-1: "
         f"torch.OutOfMemoryError: CUDA out of memory (see info above). trace_id={trace}",
         push_ns + 4, "error", {}),
        ("klog", {"app": "scheduler"},
         "W0605 07:51:00.123456       1 scheduler.go:12] endpoint slow",
         push_ns + 5, "warn", {}),
        ("invalid", {"app": "broken"},
         '{"level":"error", "msg": unterminated',
         push_ns + 6, "unknown", {}),
        ("too-old", {"app": "old"},
         compact({"time": "2020-01-01T00:00:00Z", "level": "warn", "msg": "clock skew"}),
         push_ns + 7, "warn", {}),
    ]
    streams = []
    for i, (name, labels, line, _, _, _) in enumerate(cases):
        streams.append({"stream": {**labels, "test": test, "case": name},
                        "values": [[str(push_ns + i), line]]})
    r = server.push(streams)
    assert r.status_code == 204, r.text
    return test, push_ns, cases


def categorized(server, query, start, end):
    r = server.http.get(server.url + "/loki/api/v1/query_range", headers=CATEGORIZE,
                        params={"query": query, "start": start, "end": end, "limit": 100,
                                "direction": "forward"}, timeout=10)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["encodingFlags"] == ["categorize-labels"]
    # line → (ts, stream labels, structured metadata)
    out = {}
    for s in data["result"]:
        for ts, line, extra in s["values"]:
            out[line] = (int(ts), s["stream"], extra.get("structuredMetadata", {}))
    return out


def test_every_format_is_normalized(server, pushed):
    test, push_ns, cases = pushed
    got = categorized(server, f'{{test="{test}"}}', push_ns - 600 * SECOND, push_ns + 600 * SECOND)
    # Every line comes back byte for byte (the line is never rewritten).
    assert sorted(got) == sorted(line for _, _, line, _, _, _ in cases)
    for name, labels, line, ts, level, metadata in cases:
        got_ts, stream, md = got[line]
        assert got_ts == ts, name
        assert md.get("detected_level") == level, (name, md)
        for key, value in metadata.items():
            assert md.get(key) == value, (name, key, md)
        assert "service_name" in stream, (name, stream)
    # service_name from Loki's list; the Kubernetes labels are mapped too.
    assert got[cases[0][2]][1]["service_name"] == "aigateway"
    dynamo = got[cases[3][2]][1]
    assert dynamo["service_name"] == "dynamo-frontend"
    assert dynamo["app"] == "dynamo-frontend" and dynamo["component"] == "frontend"
    assert dynamo["app_kubernetes_io_name"] == "dynamo-frontend"


def test_detected_level_filters_with_no_query_change(server, pushed):
    test, push_ns, cases = pushed
    start, end = push_ns - 600 * SECOND, push_ns + 600 * SECOND
    got = categorized(server, f'{{test="{test}"}} | detected_level="error"', start, end)
    assert sorted(got) == sorted(line for _, _, line, _, level, _ in cases if level == "error")
    # And by trace id, from structured metadata (no line parsing).
    got = categorized(server, f'{{test="{test}"}} | trace_id="b672ccf48683b392891c5cb4163d4b51"',
                      start, end)
    assert {stream["case"] for _, stream, _ in got.values()} == \
        {"gateway", "heimdall", "structlog", "dynamo"}


def test_metric_query_by_detected_level(server, pushed):
    test, push_ns, _ = pushed
    r = server.get("/loki/api/v1/query",
                   query=f'sum by (detected_level) (count_over_time({{test="{test}"}}[1h]))',
                   time=str(push_ns + 60 * SECOND))
    assert r.status_code == 200, r.text
    counts = {s["metric"]["detected_level"]: s["value"][1] for s in r.json()["data"]["result"]}
    assert counts == {"error": "3", "info": "1", "debug": "1", "warn": "2", "unknown": "1"}


def test_misses_are_counted(server, pushed):
    text = server.get("/metrics").text
    assert "inferscope_ingest_invalid_json_lines_total{tenant=\"fake\"}" in text
    assert 'inferscope_timestamp_parse_failures_total{tenant="fake",reason="out_of_window"}' in text
    assert "inferscope_ingest_event_times_from_line_total{tenant=\"fake\"}" in text


def test_drilldown_limits_publish_the_discovery_settings(server):
    limits = server.get("/loki/api/v1/drilldown-limits").json()["limits"]
    assert limits["discover_log_levels"] is True
    assert limits["discover_service_name"][:3] == ["service_name", "service", "app"]
