"""Per-tenant ingestion counters in /metrics (accepted lines and bytes, refused by reason,
redacted lines) and the 429 + Retry-After answer of the tenant rate limit."""

import signal

import pytest
import requests

from conftest import HTTP_TIMEOUT, Server, now_ns, unique


@pytest.fixture
def limited(tmp_path):
    config = tmp_path / "inferscope.yaml"
    config.write_text("""auth_enabled: true
limits_config:
  ingestion_rate_mb: 0.01        # ~10 KB/s per tenant
  ingestion_burst_size_mb: 0.02  # ~20 KB
  max_line_size: 1KB
""")
    s = Server(tmp_path / "data", config=config).start()
    yield s
    s.stop(signal.SIGKILL)


def push(server, tenant, lines, test):
    ts = now_ns()
    body = {"streams": [{"stream": {"test": test}, "values": [[str(ts + i), l] for i, l in enumerate(lines)]}]}
    return requests.post(server.url + "/loki/api/v1/push", json=body, headers={"X-Scope-OrgID": tenant},
                         timeout=HTTP_TIMEOUT)


def metric(text, name, **labels):
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{inner}}} "
    values = [float(l[len(prefix):]) for l in text.splitlines() if l.startswith(prefix)]
    return values[0] if values else 0.0


def test_rate_limit_answers_429_with_retry_after_per_tenant(limited):
    test = unique()
    r = push(limited, "tenant-a", ["x" * 900] * 30, test)  # ~27 KB > the 20 KB burst
    assert r.status_code == 429, r.text
    assert "Ingestion rate limit exceeded for user tenant-a" in r.text
    assert int(r.headers["Retry-After"]) >= 1
    # Nothing of the refused request is stored; another tenant has its own bucket.
    assert push(limited, "tenant-b", ["small line"], test).status_code == 204
    # Refused by validation: the long line is named, the rest stored (400, as in Loki).
    r = push(limited, "tenant-a", ["y" * 2000, "fine", "token sk-proj-Zq8Xw7Vu6Ts5Rr4Qp3On2Ml1Kk0"], test)
    assert r.status_code == 400 and "Max entry size" in r.text, r.text

    m = requests.get(limited.url + "/metrics", timeout=HTTP_TIMEOUT).text
    discarded = "inferscope_ingest_lines_discarded_total"
    assert metric(m, discarded, tenant="tenant-a", reason="rate_limited") == 30
    assert metric(m, discarded, tenant="tenant-a", reason="line_too_long") == 1
    assert metric(m, "inferscope_ingest_lines_received_total", tenant="tenant-a") == 2
    assert metric(m, "inferscope_ingest_lines_received_total", tenant="tenant-b") == 1
    # Bytes as stored: the line and its structured metadata, which ingest gave a
    # `detected_level` (`unknown` for this plain line), as Loki's distributor does.
    stored = len("small line") + len("detected_level") + len("unknown")
    assert metric(m, "inferscope_ingest_bytes_received_total", tenant="tenant-b") == stored
    assert metric(m, "inferscope_ingest_lines_redacted_total", tenant="tenant-a") == 1
    assert metric(m, "inferscope_redactions_total", tenant="tenant-a", kind="openai_key") == 1
    assert metric(m, "inferscope_ingest_lines_redacted_total", tenant="tenant-b") == 0


def test_cardinality_guard_names_the_offending_label(tmp_path):
    """A label with too many values, or too many streams: the push is refused whole,
    with a message naming the label (400) or Loki's stream-limit message (429)."""
    config = tmp_path / "inferscope.yaml"
    config.write_text("limits_config:\n  max_values_per_label: 5\n  max_global_streams_per_user: 8\n")
    server = Server(tmp_path / "data", config=config).start()
    try:
        test = unique()
        now = now_ns()
        for i in range(5):
            server.push_lines({"test": test, "trace_id": f"t{i}"}, ["ok"], now)
        r = server.push([{"stream": {"test": test, "trace_id": "t5"}, "values": [[str(now), "one too many"]]}])
        assert r.status_code == 400, r.text
        assert "label 'trace_id'" in r.text and "structured metadata" in r.text, r.text
        # Known values still flow; nothing of the refused push was stored.
        server.push_lines({"test": test, "trace_id": "t0"}, ["still fine"], now + 1)
        lines = [line for _, line in server.entries(f'{{test="{test}"}}', since="5m")]
        assert "one too many" not in lines and "still fine" in lines
        # Three more streams fit (5 + 3 = 8), a ninth does not: 429 with Retry-After.
        for pod in ("a", "b", "c"):
            server.push_lines({"test": test, "pod": pod}, ["ok"], now)
        r = server.push([{"stream": {"test": test, "pod": "d"}, "values": [[str(now), "ninth"]]}])
        assert r.status_code == 429, r.text
        assert "Maximum active stream limit exceeded" in r.text, r.text
        assert int(r.headers["Retry-After"]) >= 1
        m = requests.get(server.url + "/metrics", timeout=HTTP_TIMEOUT).text
        assert 'reason="label_value_limit"' in m and 'reason="stream_limit"' in m
    finally:
        server.stop()
