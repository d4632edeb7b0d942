"""LogQL metric queries over HTTP: the shapes Grafana reads and values computed by hand."""

import json

from conftest import now_ns, unique

SECOND = 10**9
MINUTE = 60 * SECOND


def push_gateway_minutes(server, test):
    """Six gateway lines, one per minute, starting at a whole minute ten minutes ago.

    minute:   0      1      2      3      4      5
    level:    INFO   ERROR  INFO   ERROR  ERROR  INFO
    pod:      a      b      a      b      a      b
    latency:  100    200    300    400    500    600
    """
    base = (now_ns() - 10 * MINUTE) // MINUTE * MINUTE
    levels = ["INFO", "ERROR", "INFO", "ERROR", "ERROR", "INFO"]
    for i, level in enumerate(levels):
        line = json.dumps({"level": level, "message": "request", "latency_ms": (i + 1) * 100})
        labels = {"test": test, "app": "aigateway", "pod": "ab"[i % 2]}
        server.push_lines(labels, [line], base + i * MINUTE)
    return base


def matrix(server, query, start_ns, end_ns, step):
    r = server.get("/loki/api/v1/query_range", query=query, start=str(start_ns), end=str(end_ns), step=step)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "matrix"
    return {json.dumps(s["metric"], sort_keys=True): [(t, v) for t, v in s["values"]] for s in data["result"]}


def test_error_counts_per_pod_over_a_range(server):
    test = unique()
    base = push_gateway_minutes(server, test)
    # Steps at minutes 1, 3, 5 with a 2-minute window (t-2m, t]:
    #   t=1: minutes 0,1 -> errors: b@1             -> b=1
    #   t=3: minutes 2,3 -> errors: b@3             -> b=1
    #   t=5: minutes 4,5 -> errors: a@4             -> a=1
    got = matrix(server, f'sum by (pod) (count_over_time({{test="{test}"}} | json | level="ERROR" [2m]))',
                 base + MINUTE, base + 5 * MINUTE, "120")
    t = lambda m: (base + m * MINUTE) / SECOND  # noqa: E731
    assert got == {'{"pod": "a"}': [(t(5), "1")], '{"pod": "b"}': [(t(1), "1"), (t(3), "1")]}


def test_unwrapped_average_and_rate(server):
    test = unique()
    base = push_gateway_minutes(server, test)
    end = base + 5 * MINUTE
    # One instant at minute 5 over a 6-minute window holds all six lines.
    r = server.get("/loki/api/v1/query", time=str(end),
                   query=f'avg_over_time({{test="{test}"}} | json | unwrap latency_ms [6m]) by (pod)')
    assert r.status_code == 200, r.text
    result = {s["metric"]["pod"]: s["value"][1] for s in r.json()["data"]["result"]}
    assert result == {"a": "300", "b": "400"}  # a: (100+300+500)/3, b: (200+400+600)/3
    r = server.get("/loki/api/v1/query", time=str(end), query=f'sum(rate({{test="{test}"}}[6m]))')
    [sample] = r.json()["data"]["result"]
    assert float(sample["value"][1]) == 6 / 360


def test_grafana_health_check(server):
    r = server.get("/loki/api/v1/query", query="vector(1)+vector(1)")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "vector"
    assert [s["value"][1] for s in data["result"]] == ["2"]


def test_metric_type_errors_are_400(server):
    for query, words in [
        ('topk(count_over_time({app="x"}[1m]))', "parse error"),
        ('count_over_time({app="x"})', "parse error"),
        ('sum(count_over_time({app="x"} | unwrap latency [1m]))', "count_over_time"),
    ]:
        r = server.get("/loki/api/v1/query", query=query)
        assert r.status_code == 400, (query, r.status_code, r.text)
        assert words in r.text, (query, r.text)


def test_format_query_prints_canonical_logql(server):
    r = server.get("/loki/api/v1/format_query", query='sum by(pod)(rate({app="x"}|="err"|json[5m]))')
    assert r.status_code == 200, r.text
    formatted = r.json()["data"]
    assert formatted.startswith("sum by (pod)"), formatted
    # The canonical text parses back to the same query: formatting it again changes nothing.
    assert server.get("/loki/api/v1/format_query", query=formatted).json()["data"] == formatted
    assert server.get("/loki/api/v1/format_query", query="{app=").status_code == 400


def test_grouping_pushdown_changes_no_result(server):
    """`sum by` over an additive range function and a range function's own `by` let the
    server reduce series to the grouping labels while scanning and parse only those
    fields; `* 1` (a binary operator) disables that. Both forms must agree, with lines
    that each carry a unique field (one series per line without the reduction)."""
    test = unique()
    base = (now_ns() - 10 * MINUTE) // MINUTE * MINUTE
    for i in range(40):
        line = json.dumps({"level": ["info", "error"][i % 2], "trace_id": f"t{i}",
                           "latency_ms": i * 10, "model": ["llama", "qwen"][i % 3 == 0]})
        server.push_lines({"test": test, "app": "gw", "pod": "abc"[i % 3]}, [line], base + i * 10 * SECOND)
    end = base + 7 * MINUTE
    for query in [
        f'sum by (pod) (count_over_time({{test="{test}"}} | json | level="error" [2m]))',
        f'sum by (model, pod) (rate({{test="{test}"}} | json [2m]))',
        f'sum without (trace_id, latency_ms, level) (bytes_over_time({{test="{test}"}} | json [2m]))',
        f'sum by (pod) (sum_over_time({{test="{test}"}} | json | unwrap latency_ms [2m]))',
        f'quantile_over_time(0.9, {{test="{test}"}} | json | unwrap latency_ms | __error__="" [2m]) by (model)',
        f'max_over_time({{test="{test}"}} | json | unwrap latency_ms [2m]) by (pod)',
    ]:
        pushed = matrix(server, query, base, end, "60")
        plain = matrix(server, f"({query}) * 1", base, end, "60")
        assert pushed, query
        assert pushed == plain, query
    # The reduced form still reports the JSON parser's errors of non-JSON lines.
    server.push_lines({"test": test, "app": "gw", "pod": "a"}, ["plain text line"], base + 5 * SECOND)
    r = server.get("/loki/api/v1/query_range", start=str(base), end=str(end), step="60",
                   query=f'sum by (pod) (count_over_time({{test="{test}"}} | json [2m]))')
    assert r.status_code == 400, r.text
    assert "JSONParserErr" in r.text


def test_counts_without_a_pipeline_see_structured_metadata_as_labels(server):
    """Without a pipeline, counts skip the pipeline entirely; structured metadata still
    makes series (and wins over a stream label of the same name), as with a pipeline."""
    test = unique()
    base = (now_ns() - 10 * MINUTE) // MINUTE * MINUTE
    values = []
    for i in range(30):
        meta = {"trace_id": f"t{i % 3}"} if i % 2 else {}
        if i % 5 == 0:
            meta["pod"] = "from-metadata"
        values.append([str(base + i * 10 * SECOND), f"plain line {i}", meta])
    r = server.push([{"stream": {"test": test, "pod": "a"}, "values": values},
                     {"stream": {"test": test, "pod": "b"}, "values": [[str(base), "b line", {}]]}])
    assert r.status_code == 204, r.text
    end = base + 6 * MINUTE
    for query in [
        f'count_over_time({{test="{test}"}} [2m])',
        f'sum by (pod) (count_over_time({{test="{test}"}} [2m]))',
        f'sum by (trace_id, pod) (bytes_over_time({{test="{test}"}} [2m]))',
        f'sum(rate({{test="{test}"}} [2m]))',
    ]:
        fast = matrix(server, query, base, end, "60")
        # `| __error__=""` keeps every line here but forces the pipeline path.
        slow = matrix(server, query.replace(" [2m]", ' | __error__="" [2m]'), base, end, "60")
        assert fast, query
        assert fast == slow, query
    pods = matrix(server, f'sum by (pod) (count_over_time({{test="{test}"}} [10m]))', end - MINUTE, end, "60")
    assert {json.loads(k).get("pod") for k in pods} == {"a", "b", "from-metadata"}
