"""The endpoints of Grafana's Logs Drilldown app: detected_fields, detected_field values,
detected_labels, patterns and drilldown-limits, on a server holding a fixed dataset of
JSON, logfmt and plain lines."""

import json
import time

import pytest

from conftest import Server

MINUTE = 60 * 10**9
SECOND = 10**9


def gateway_line(i):
    return json.dumps({
        "level": "info",
        "msg": "request done",
        "status": [200, 200, 404, 200, 500, 200][i],
        "latency_ms": 10 + i,
        "user": {"id": f"u{i % 3}"},
    }, separators=(",", ":"))


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("drilldown") / "data").start()
    # Ten minutes ago, on a minute boundary, so pattern buckets are known.
    base = (time.time_ns() - 10 * MINUTE) // MINUTE * MINUTE
    streams = [
        {
            "stream": {"app": "gateway", "env": "prod", "pod": "gw-0", "shard": "1", "canary": "1"},
            "values": [[str(base + i * 10 * SECOND), gateway_line(i), {"trace_id": f"t{i % 2}"}]
                       for i in range(6)],
        },
        {
            "stream": {"app": "worker", "env": "prod", "pod": "wk-0", "shard": "2", "canary": "0"},
            "values": [[str(base + MINUTE + i * SECOND),
                        f'level=debug msg="prefill done" took={i + 1}ms size={i + 1}KB ok=true']
                       for i in range(4)],
        },
        {
            "stream": {"app": "worker", "env": "staging", "pod": "wk-1", "shard": "3", "canary": "0"},
            "values": [[str(base + 2 * MINUTE + i * SECOND),
                        f"connection refused by upstream host 10.0.0.{i}"]
                       for i in range(3)],
        },
    ]
    r = s.push(streams)
    assert r.status_code == 204, r.text
    s.base = base
    yield s
    s.stop()


def ok(r):
    assert r.status_code == 200, r.text
    return r.json()


def test_detected_fields_of_json_logfmt_and_metadata(drill):
    body = ok(drill.get("/loki/api/v1/detected_fields", query='{env=~".+"}'))
    assert body["limit"] == 1000
    fields = {f["label"]: f for f in body["fields"]}
    assert [f["label"] for f in body["fields"]] == sorted(fields)
    expected = {
        # label: (type, cardinality, parsers, jsonPath)
        # Structured metadata ingest adds (Loki's discover_log_levels): info, debug, unknown.
        "detected_level": ("string", 3, None, None),
        "latency_ms": ("int", 6, ["json"], ["latency_ms"]),
        "level": ("string", 2, ["json", "logfmt"], ["level"]),
        "msg": ("string", 2, ["json", "logfmt"], ["msg"]),
        "ok": ("boolean", 1, ["logfmt"], None),
        "size": ("bytes", 4, ["logfmt"], None),
        "status": ("int", 3, ["json"], ["status"]),
        "took": ("duration", 4, ["logfmt"], None),
        "trace_id": ("string", 2, None, None),
        "user_id": ("string", 3, ["json"], ["user", "id"]),
    }
    assert set(fields) == set(expected)
    for label, (kind, cardinality, parsers, path) in expected.items():
        f = fields[label]
        assert (f["type"], f["cardinality"], f["parsers"], f.get("jsonPath")) == \
            (kind, cardinality, parsers, path), f
        # Loki sends `parsers: null` for structured metadata and leaves jsonPath out.
        assert "parsers" in f
        assert ("jsonPath" in f) == (path is not None)
    # Stream labels are not fields.
    assert not {"app", "env", "pod", "shard", "canary"} & set(fields)


def test_detected_fields_post_form_limit_and_line_limit(drill):
    r = drill.http.post(drill.url + "/loki/api/v1/detected_fields",
                        data={"query": '{app="gateway"}', "limit": "2"})
    body = ok(r)
    assert body["limit"] == 2 and len(body["fields"]) == 2
    # The two most recent lines only: status 200 and 500, latency 14 and 15.
    body = ok(drill.get("/loki/api/v1/detected_fields", query='{app="gateway"}', line_limit=2))
    fields = {f["label"]: f["cardinality"] for f in body["fields"]}
    assert fields["status"] == 2 and fields["latency_ms"] == 2 and fields["trace_id"] == 2


def test_detected_fields_of_a_filtered_query_and_of_nothing(drill):
    body = ok(drill.get("/loki/api/v1/detected_fields", query='{app="gateway"} |= "404"'))
    fields = {f["label"]: f["cardinality"] for f in body["fields"]}
    assert fields["status"] == 1 and fields["latency_ms"] == 1
    body = ok(drill.get("/loki/api/v1/detected_fields", query='{app="nothing"}'))
    assert body == {"fields": []}


@pytest.mark.parametrize("name, values", [
    ("status", ["200", "404", "500"]),
    ("took", ["1ms", "2ms", "3ms", "4ms"]),
    # Byte sizes come back as Loki normalises them, ready to paste into a query.
    ("size", ["1.0kB", "2.0kB", "3.0kB", "4.0kB"]),
    ("trace_id", ["t0", "t1"]),
    ("user_id", ["u0", "u1", "u2"]),
])
def test_detected_field_values(drill, name, values):
    body = ok(drill.get(f"/loki/api/v1/detected_field/{name}/values", query='{env=~".+"}'))
    assert body == {"values": values, "limit": 1000}


def test_detected_field_values_of_an_unknown_field(drill):
    body = ok(drill.get("/loki/api/v1/detected_field/nope/values", query='{env=~".+"}'))
    assert body == {"values": []}


def test_detected_labels(drill):
    body = ok(drill.get("/loki/api/v1/detected_labels"))
    # `shard` is all numbers (an ID), dropped; `canary` (0/1) is a boolean, kept;
    # `pod` is static, kept whatever its values.
    assert body == {"detectedLabels": [
        {"label": "app", "cardinality": 2},
        {"label": "canary", "cardinality": 2},
        {"label": "env", "cardinality": 2},
        {"label": "pod", "cardinality": 3},
        # Added at ingest (Loki's discover_service_name), listed as Loki's querier does.
        {"label": "service_name", "cardinality": 2},
    ]}
    body = ok(drill.get("/loki/api/v1/detected_labels", query='{app="worker"}'))
    assert body == {"detectedLabels": [
        {"label": "app", "cardinality": 1},
        {"label": "canary", "cardinality": 1},
        {"label": "env", "cardinality": 2},
        {"label": "pod", "cardinality": 2},
        {"label": "service_name", "cardinality": 1},
    ]}


def test_patterns_merge_similar_lines_per_level_with_step_counts(drill):
    base_s = drill.base // SECOND
    body = ok(drill.get("/loki/api/v1/patterns", query='{app="gateway"}', step="60s"))
    assert body["status"] == "success"
    assert body["data"] == [{
        "pattern": '{"level":"info","msg":"request done","status"<_>,"latency_ms"<_>,'
                   '"user":{"id":"<_>"}}',
        "level": "info",
        "samples": [[base_s, 6]],
    }]
    body = ok(drill.get("/loki/api/v1/patterns", query='{app="worker"}', step="60s"))
    assert body["data"] == [
        {"pattern": 'level=debug msg="prefill done" took=<_> size=<_> ok=true',
         "level": "debug", "samples": [[base_s + 60, 4]]},
        {"pattern": "connection refused by upstream host <_>",
         "level": "unknown", "samples": [[base_s + 120, 3]]},
    ]


def test_patterns_count_every_line_once(drill):
    body = ok(drill.get("/loki/api/v1/patterns", query='{env=~".+"}', step="1m"))
    assert sum(n for p in body["data"] for _, n in p["samples"]) == 13
    for p in body["data"]:
        assert set(p) == {"pattern", "level", "samples"}
        assert all(isinstance(t, int) and isinstance(n, int) for t, n in p["samples"])


def test_drilldown_limits(drill):
    body = ok(drill.get("/loki/api/v1/drilldown-limits"))
    assert set(body) == {"limits", "pattern_ingester_enabled", "version"}
    assert body["pattern_ingester_enabled"] is True
    assert isinstance(body["version"], str) and body["version"]
    limits = body["limits"]
    for key in ["discover_log_levels", "discover_service_name", "log_level_fields",
                "max_entries_limit_per_query", "max_line_size_truncate", "max_query_bytes_read",
                "max_query_length", "max_query_lookback", "max_query_range", "max_query_series",
                "metric_aggregation_enabled", "pattern_persistence_enabled", "query_timeout",
                "retention_period", "retention_stream", "volume_enabled", "volume_max_series"]:
        assert key in limits, key
    assert limits["max_entries_limit_per_query"] == 5000
    assert isinstance(limits["max_query_series"], int)
    assert "level" in limits["log_level_fields"]
    assert limits["volume_enabled"] is True  # index/volume is served


@pytest.mark.parametrize("path", [
    "/loki/api/v1/detected_fields",
    "/loki/api/v1/detected_field/status/values",
    "/loki/api/v1/patterns",
])
@pytest.mark.parametrize("params, message", [
    ({}, "missing required parameter"),
    ({"query": "{app="}, "parse error"),
    ({"query": 'sum(count_over_time({app="gateway"}[1m]))'}, "only log selectors"),
])
def test_bad_queries_are_400(drill, path, params, message):
    r = drill.get(path, **params)
    assert r.status_code == 400, r.text
    assert message in r.text


def test_bad_limits_are_400(drill):
    r = drill.get("/loki/api/v1/detected_fields", query='{app="gateway"}', line_limit=5001)
    assert r.status_code == 400 and "max_entries_limit_per_query" in r.text
    r = drill.get("/loki/api/v1/detected_fields", query='{app="gateway"}', limit=0)
    assert r.status_code == 400 and "positive" in r.text
    r = drill.get("/loki/api/v1/patterns", query='{app="gateway"}', step="0")
    assert r.status_code == 400
    r = drill.get("/loki/api/v1/detected_labels", query="{app=")
    assert r.status_code == 400
