"""The calls Grafana's Loki datasource, Logs Drilldown and logcli make, in their order and
with their exact parameters, against one server holding a known LLM-serving dataset.

Grafana: health check, label browser, Explore query with categorize-labels, the log
volume histogram (a metric query tagged `Source=logvolhist`), query stats, Drilldown's
service list (index/volume), fields, labels and patterns. logcli: `query` (BACKWARD,
limit 30), `instant-query`, `series`, `labels`; `--tail` is covered by test_tail.py.
"""

import json

import pytest

from conftest import Server, now_ns

SECOND = 10**9
MINUTE = 60 * SECOND


@pytest.fixture(scope="module")
def grafana(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("grafana") / "data").start()
    base = now_ns() - 30 * MINUTE
    gw = []
    for i in range(60):
        level = "ERROR" if i % 10 == 0 else "INFO"
        gw.append(json.dumps({"timestamp": "x", "level": level, "message": f"request {i} done",
                              "model": ["llama-3-70b", "qwen2-72b"][i % 2], "latency_ms": 100 + i}))
    s.push_lines({"namespace": "llm-prod", "app": "aigateway", "service_name": "aigateway"}, gw, base,
                 step_ns=10 * SECOND)
    vllm = [f"INFO 06-05 07:51:{i % 60:02d} [engine.py:12] Avg prompt throughput: {i}.0 tokens/s"
            for i in range(30)]
    s.push_lines({"namespace": "llm-prod", "app": "vllm", "service_name": "vllm"}, vllm, base,
                 step_ns=20 * SECOND)
    s.window = (base - MINUTE, base + 30 * MINUTE)
    yield s
    s.stop()


GRAFANA = {"X-Grafana-Org-Id": "1", "User-Agent": "Grafana/11.5.0"}


def get(server, path, headers=None, **params):
    r = server.http.get(server.url + path, params=params, headers={**GRAFANA, **(headers or {})},
                        timeout=30)
    assert r.status_code == 200, (path, params, r.text)
    return r.json()


def test_health_check_and_label_browser(grafana):
    # Grafana's "Save & test": an instant query of vector(1)+vector(1).
    body = get(grafana, "/loki/api/v1/query", query="vector(1)+vector(1)", time=str(now_ns()))
    assert body["data"]["result"][0]["value"][1] == "2"
    start, end = grafana.window
    labels = get(grafana, "/loki/api/v1/labels", start=str(start), end=str(end))["data"]
    assert {"app", "namespace", "service_name"} <= set(labels)
    values = get(grafana, "/loki/api/v1/label/app/values", start=str(start), end=str(end),
                 query='{namespace="llm-prod"}')["data"]
    assert values == ["aigateway", "vllm"]
    series = get(grafana, "/loki/api/v1/series", **{"match[]": '{app="vllm"}'},
                 start=str(start), end=str(end))["data"]
    assert [s["app"] for s in series] == ["vllm"]


def test_explore_query_with_categorized_labels_and_stats(grafana):
    start, end = grafana.window
    stats = get(grafana, "/loki/api/v1/index/stats", query='{app="aigateway"}',
                start=str(start), end=str(end))
    assert stats["entries"] == 60 and stats["streams"] == 1
    body = get(grafana, "/loki/api/v1/query_range",
               headers={"X-Loki-Response-Encoding-Flags": "categorize-labels",
                        "X-Query-Tags": "Source=grafana"},
               query='{app="aigateway"} | json | level="ERROR"', limit="1000", direction="backward",
               start=str(start), end=str(end), step="1")
    data = body["data"]
    assert data["encodingFlags"] == ["categorize-labels"]
    values = [v for s in data["result"] for v in s["values"]]
    assert len(values) == 6
    for ts, line, categories in values:
        assert json.loads(line)["level"] == "ERROR"
        assert categories["parsed"]["level"] == "ERROR"
    assert all("level" not in s["stream"] for s in data["result"])


def test_log_volume_histogram(grafana):
    start, end = grafana.window
    # What Explore sends for the histogram above the logs.
    query = 'sum by (level, detected_level) (count_over_time({app="aigateway"} | json | drop __error__[1m]))'
    body = get(grafana, "/loki/api/v1/query_range", headers={"X-Query-Tags": "Source=logvolhist"},
               query=query, start=str(start), end=str(end), step="60")
    assert body["data"]["resultType"] == "matrix"
    totals = {s["metric"].get("level"): sum(float(v) for _, v in s["values"])
              for s in body["data"]["result"]}
    assert totals == {"ERROR": 6.0, "INFO": 54.0}


def test_drilldown_service_list_fields_labels_and_patterns(grafana):
    start, end = grafana.window
    services = get(grafana, "/loki/api/v1/index/volume", query='{service_name=~".+"}',
                   start=str(start), end=str(end), limit="5000")["data"]["result"]
    assert {s["metric"]["service_name"] for s in services} == {"aigateway", "vllm"}
    assert services[0]["metric"]["service_name"] == "aigateway"  # largest first
    fields = get(grafana, "/loki/api/v1/detected_fields", query='{service_name="aigateway"}',
                 start=str(start), end=str(end))["fields"]
    by_name = {f["label"]: f for f in fields}
    assert by_name["latency_ms"]["type"] == "int"
    assert by_name["model"]["cardinality"] == 2
    labels = get(grafana, "/loki/api/v1/detected_labels", query='{service_name="aigateway"}',
                 start=str(start), end=str(end))["detectedLabels"]
    assert "namespace" in {l["label"] for l in labels}
    patterns = get(grafana, "/loki/api/v1/patterns", query='{service_name="vllm"}',
                   start=str(start), end=str(end), step="60")["data"]
    assert sum(c for p in patterns for _, c in p["samples"]) == 30
    assert any("<_>" in p["pattern"] for p in patterns)
    limits = get(grafana, "/loki/api/v1/drilldown-limits")
    assert limits["limits"]["volume_enabled"] is True


def test_logcli_calls(grafana):
    start, end = grafana.window
    logcli = {"User-Agent": "loki-logcli/3.4.6", "X-Query-Tags": "Source=logcli"}
    # logcli query '{app="vllm"}' --limit 30 (uppercase direction, as logcli sends it)
    body = get(grafana, "/loki/api/v1/query_range", headers=logcli, query='{app="vllm"}', limit="30",
               start=str(start), end=str(end), direction="BACKWARD")
    values = [v for s in body["data"]["result"] for v in s["values"]]
    assert len(values) == 30
    assert [int(ts) for ts, _ in values] == sorted((int(ts) for ts, _ in values), reverse=True)
    # logcli instant-query 'sum(count_over_time({app="aigateway"}[1h]))'
    body = get(grafana, "/loki/api/v1/query", headers=logcli,
               query='sum by (app) (count_over_time({namespace="llm-prod"}[1h]))', time=str(end),
               limit="30", direction="BACKWARD")
    got = {s["metric"]["app"]: s["value"][1] for s in body["data"]["result"]}
    assert got == {"aigateway": "60", "vllm": "30"}
    # logcli series '{namespace="llm-prod"}' and logcli labels app
    series = get(grafana, "/loki/api/v1/series", headers=logcli, **{"match[]": '{namespace="llm-prod"}'},
                 start=str(start), end=str(end))["data"]
    assert len(series) == 2
    assert get(grafana, "/loki/api/v1/label/app/values", headers=logcli,
               start=str(start), end=str(end))["data"] == ["aigateway", "vllm"]
