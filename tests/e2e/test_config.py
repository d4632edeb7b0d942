"""Loki's reject_old_samples limit, default and overridden by a --config YAML file."""

import signal

from conftest import Server, now_ns, unique

DAY = 86_400 * 10**9


def push_old(server, test):
    ts = now_ns() - 30 * DAY
    r = server.push([{"stream": {"test": test}, "values": [[str(ts), "30 days old"]]}])
    return r, ts


def stored(server, test, ts):
    return server.entries(f'{{test="{test}"}}', start=ts - 10**9, end=ts + 10**9, direction="forward")


def test_old_samples_are_refused_by_default(fresh_server):
    fresh_server.start()
    test = unique()
    r, ts = push_old(fresh_server, test)
    assert r.status_code == 400, r.text
    assert "too old" in r.text.lower(), r.text
    assert stored(fresh_server, test, ts) == []
    # The 168h default boundary: 6 days old is still accepted.
    recent = fresh_server.push_lines({"test": test}, ["6 days old"], now_ns() - 6 * DAY)
    assert stored(fresh_server, test, recent[0][0]) == recent


def test_reject_old_samples_false_accepts_old_entries(tmp_path):
    config = tmp_path / "inferscope.yaml"
    config.write_text("limits_config:\n  reject_old_samples: false\n")
    server = Server(tmp_path / "data", config=config).start()
    try:
        test = unique()
        r, ts = push_old(server, test)
        assert r.status_code == 204, r.text
        assert stored(server, test, ts) == [(ts, "30 days old")]
    finally:
        server.stop(signal.SIGKILL)


def test_reject_old_samples_max_age_is_configurable(tmp_path):
    config = tmp_path / "inferscope.yaml"
    config.write_text("limits_config:\n  reject_old_samples: true\n  reject_old_samples_max_age: 1h\n")
    server = Server(tmp_path / "data", config=config).start()
    try:
        r = server.push([{"stream": {"test": unique()}, "values": [[str(now_ns() - 2 * 3600 * 10**9), "2h old"]]}])
        assert r.status_code == 400, r.text
        assert "too old" in r.text.lower(), r.text
        server.push_lines({"test": unique()}, ["30 minutes old"], now_ns() - 1800 * 10**9)
    finally:
        server.stop(signal.SIGKILL)


def test_query_limits_answer_with_the_limit_they_hit(tmp_path):
    """max_query_series and query_timeout: the answer names the limit."""
    config = tmp_path / "inferscope.yaml"
    config.write_text("limits_config:\n  max_query_series: 3\n  query_timeout: 100ms\n"
                      "  ingestion_rate_mb: 1000\n  ingestion_burst_size_mb: 1000\n"
                      "  per_stream_rate_limit: 1GB\n  per_stream_rate_limit_burst: 1GB\n"
                      "query_range:\n  cache_results: false\n")
    server = Server(tmp_path / "data", config=config).start()
    try:
        test = unique()
        start = now_ns() - 600 * 10**9
        for pod in range(5):
            server.push_lines({"test": test, "pod": str(pod)}, ["x"], start)
        r = server.get("/loki/api/v1/query", query=f'count_over_time({{test="{test}"}}[5m])',
                       time=str(start + 10**9))
        assert r.status_code == 400, r.text
        assert "maximum of series (3)" in r.text, r.text
        # Aggregated below the limit, the same data answers.
        r = server.get("/loki/api/v1/query", query=f'sum(count_over_time({{test="{test}"}}[5m]))',
                       time=str(start + 10**9))
        assert r.status_code == 200, r.text
        assert r.json()["data"]["result"][0]["value"][1] == "5"
        # 200 000 JSON lines cannot be parsed within 100 ms: 504 naming the setting.
        for chunk in range(4):
            lines = ['{"level":"info","trace_id":"%032x","latency_ms":%d}' % (i, i)
                     for i in range(chunk * 50000, (chunk + 1) * 50000)]
            server.push_lines({"test": test, "pod": "big"}, lines, start + chunk * 10**9, step_ns=1000)
        r = server.get("/loki/api/v1/query_range", start=str(start - 10**9), end=str(now_ns()), step="1",
                       query=f'sum(count_over_time({{test="{test}"}} | json | latency_ms > 5 [1m]))')
        assert r.status_code == 504, r.text
        assert "limits_config.query_timeout" in r.text, r.text
    finally:
        server.stop()
