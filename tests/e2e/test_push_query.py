"""Push through the JSON API, read back through query_range (Loki HTTP API)."""

import datetime
import json

import pytest

from conftest import now_ns, unique

SECOND = 1_000_000_000


def base_ns(minutes_ago=5):
    """A whole-second timestamp a few minutes ago: inside the default query window."""
    return (now_ns() // SECOND - minutes_ago * 60) * SECOND


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_json_push_then_query_range_returns_exactly_the_lines(server, compress):
    labels = {"app": "e2e", "test": unique()}
    start = base_ns()
    values = [[str(start + i * 1_000_000), f"line {i} from {labels['test']}"] for i in range(10)]
    r = server.push([{"stream": labels, "values": values}], compress=compress)
    assert r.status_code == 204, r.text

    window = {"start": start, "end": start + SECOND, "limit": 100}
    data = server.query_range(f'{{test="{labels["test"]}"}}', direction="forward", **window)
    # As in Loki 3: ingest adds `service_name` (discover_service_name) and the
    # `detected_level` structured metadata, which uncategorized answers merge into the labels.
    derived = {"service_name": "e2e", "detected_level": "unknown"}
    assert [s["stream"] for s in data["result"]] == [{**labels, **derived}]
    assert data["result"][0]["values"] == values

    data = server.query_range(f'{{test="{labels["test"]}"}}', direction="backward", **window)
    assert data["result"][0]["values"] == values[::-1]
    # Without direction Loki answers backward.
    data = server.query_range(f'{{test="{labels["test"]}"}}', **window)
    assert data["result"][0]["values"] == values[::-1]


def test_lines_are_kept_byte_for_byte(server):
    test = unique()
    lines = ['quotes " and \\ backslash', "tab\there", "multi\nline", "ünïcödé ✓ 日本語", " padded ", "{\"not\": json"]
    entries = server.push_lines({"test": test}, lines, base_ns())
    assert server.entries(f'{{test="{test}"}}', direction="forward") == entries


def test_out_of_order_and_duplicate_entries(server):
    """Loki accepts out-of-order writes and drops exact duplicates (same timestamp and line),
    so a client retrying a push does not double its lines; same timestamp, other line is kept."""
    test, t = unique(), base_ns()
    values = [[str(t + 3), "c"], [str(t + 1), "a"], [str(t + 2), "b"], [str(t + 2), "b2"]]
    for _ in range(2):  # the retry
        r = server.push([{"stream": {"test": test}, "values": values}])
        assert r.status_code == 204, r.text
    got = server.entries(f'{{test="{test}"}}', direction="forward")
    assert got == [(t + 1, "a"), (t + 2, "b"), (t + 2, "b2"), (t + 3, "c")]


def test_limit_keeps_the_first_entries_in_the_direction(server):
    test = unique()
    entries = server.push_lines({"test": test}, [f"n{i}" for i in range(20)], base_ns())
    q = f'{{test="{test}"}}'
    window = {"start": entries[0][0], "end": entries[-1][0] + 1}
    assert server.entries(q, limit=3, direction="forward", **window) == entries[:3]
    assert server.entries(q, limit=3, direction="backward", **window) == entries[-3:][::-1]


def test_limit_applies_across_streams(server):
    test = unique()
    start = base_ns()
    a = server.push_lines({"test": test, "part": "a"}, ["a0", "a1", "a2"], start, step_ns=2_000_000)
    b = server.push_lines({"test": test, "part": "b"}, ["b0", "b1", "b2"], start + 1_000_000, step_ns=2_000_000)
    got = server.entries(f'{{test="{test}"}}', limit=4, direction="forward", start=start, end=start + SECOND)
    assert got == sorted(a + b)[:4]


def rfc3339(ns):
    dt = datetime.datetime.fromtimestamp(ns // SECOND, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % SECOND:09d}Z"


@pytest.mark.parametrize("fmt", [str, lambda ns: f"{ns / SECOND:.3f}", rfc3339],
                         ids=["nanoseconds", "float-seconds", "rfc3339"])
def test_start_is_inclusive_and_end_exclusive_in_every_time_format(server, fmt):
    test = unique()
    # 100 ms apart so that float seconds are exact to the millisecond.
    entries = server.push_lines({"test": test}, [f"t{i}" for i in range(10)], base_ns(), step_ns=100_000_000)
    got = server.entries(f'{{test="{test}"}}', start=fmt(entries[2][0]), end=fmt(entries[7][0]),
                         direction="forward", limit=100)
    assert got == entries[2:7]


def test_since_is_relative_to_end(server):
    test = unique()
    old = server.push_lines({"test": test}, ["old 0", "old 1"], base_ns(minutes_ago=30))
    recent = server.push_lines({"test": test}, ["recent 0", "recent 1"], base_ns(minutes_ago=2))
    q = f'{{test="{test}"}}'
    assert server.entries(q, since="10m", direction="forward") == recent
    assert server.entries(q, since="1h", direction="forward") == old + recent
    # Default range is the last hour.
    assert server.entries(q, direction="forward") == old + recent


def test_structured_metadata_is_filterable(server):
    test = unique()
    start = base_ns()
    trace, other = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736"
    values = [
        [str(start), "gateway: request received", {"trace_id": trace}],
        [str(start + 1), "gateway: request received", {"trace_id": other}],
        [str(start + 2), "worker: prefill done", {"trace_id": trace, "request_id": "r-1"}],
        [str(start + 3), f"no metadata but mentions {trace}"],
    ]
    r = server.push([{"stream": {"test": test}, "values": values}])
    assert r.status_code == 204, r.text
    window = {"start": start, "end": start + SECOND, "direction": "forward"}
    got = server.entries(f'{{test="{test}"}} | trace_id="{trace}"', **window)
    assert got == [(start, "gateway: request received"), (start + 2, "worker: prefill done")]
    got = server.entries(f'{{test="{test}"}} | request_id="r-1"', **window)
    assert got == [(start + 2, "worker: prefill done")]
    assert len(server.entries(f'{{test="{test}"}}', **window)) == 4


GATEWAY = [
    ("INFO", "request.received", 0),
    ("ERROR", "request.failed", 503),
    ("INFO", "retrying after ERROR from upstream", 0),  # "ERROR" in the text, but level INFO
    ("WARN", "request.rate_limited", 429),
    ("ERROR", "request.timeout", 504),
    ("INFO", "request.completed", 200),
]


def test_json_parser_then_level_filter_returns_exactly_the_error_lines(server):
    test = unique()
    start = base_ns()
    lines = [json.dumps({"timestamp": rfc3339(start + i), "level": level, "message": msg,
                         "trace_id": f"{i:032x}", "status": status, "path": "/v1/chat/completions"},
                        separators=(",", ":"))
             for i, (level, msg, status) in enumerate(GATEWAY)]
    entries = server.push_lines({"app": "aigateway", "test": test}, lines, start, step_ns=1)
    errors = [e for e, (level, _, _) in zip(entries, GATEWAY) if level == "ERROR"]
    window = {"start": start, "end": start + SECOND, "direction": "forward"}
    got = server.entries(f'{{app="aigateway", test="{test}"}} | json | level="ERROR"', **window)
    assert got == errors
    got = server.entries(f'{{app="aigateway", test="{test}"}} | json | status >= 500', **window)
    assert got == errors
    got = server.entries(f'{{app="aigateway", test="{test}"}} |= "ERROR"', **window)
    assert got == [entries[1], entries[2], entries[4]]


def test_instant_metric_query_counts_the_pushed_lines(server):
    test = unique()
    entries = server.push_lines({"test": test, "app": "e2e"}, [f"c{i}" for i in range(7)], base_ns())
    t = (entries[-1][0] + SECOND) / SECOND
    r = server.get("/loki/api/v1/query", query=f'sum(count_over_time({{test="{test}"}}[10m]))', time=f"{t:.3f}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "vector"
    [sample] = body["data"]["result"]
    assert sample["metric"] == {}
    assert float(sample["value"][0]) == pytest.approx(t)
    assert sample["value"][1] == "7"
