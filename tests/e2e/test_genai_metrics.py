"""GenAI metrics over OTLP, sent by the OpenTelemetry Python SDK configured like Envoy AI
Gateway (delta histograms, the gateway's bucket boundaries, its attributes and resource
attributes), over OTLP/HTTP and OTLP/gRPC; read back with PromQL through the
Prometheus API, the summary endpoint and `inferscope genai top`."""

import json
import math
import subprocess

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from conftest import BINARY, Server

# Envoy AI Gateway's boundaries (internal/metrics/genai.go).
TOKEN_BOUNDS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                16777216, 67108864]
DURATION_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                   40.96, 81.92]
TTFT_BOUNDS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
               7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0]
TPOT_BOUNDS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]

PRICING = """
last-updated: 2026-11-01
providers:
  - provider: openai
    prefix-match: [gpt]
    models:
      - name: gpt-4o
        input-estimated-cost-per-m: 2.5
        output-estimated-cost-per-m: 10.0
        cached-input-estimated-cost-per-m: 1.25
"""
PRICE = {"input": 2.5e-6, "output": 10e-6, "cached_input": 1.25e-6}

# (model, duration s, ttft s or None, tokens by type) per request; two export rounds.
ROUND_1 = [
    ("gpt-4o", 0.30, 0.040, 0.021, {"input": 120, "output": 30, "cached_input": 64}),
    ("gpt-4o", 0.70, 0.090, 0.030, {"input": 2000, "output": 400}),
    ("gpt-4o", 1.50, None, None, {"input": 50, "output": 500}),
    ("llama3.2:latest", 10.432428, None, None, {"input": 31, "output": 3}),
]
ROUND_2 = [
    ("gpt-4o", 3.00, 0.300, 0.045, {"input": 9000, "output": 1200, "cached_input": 4096}),
    ("gpt-4o", 12.0, 0.600, 0.080, {"input": 70, "output": 2500}),
    ("llama3.2:latest", 0.9, None, None, {"input": 15, "output": 40}),
]


def make_provider(exporter, instance):
    views = [
        View(instrument_name="gen_ai.client.token.usage",
             aggregation=ExplicitBucketHistogramAggregation(TOKEN_BOUNDS)),
        View(instrument_name="gen_ai.server.request.duration",
             aggregation=ExplicitBucketHistogramAggregation(DURATION_BOUNDS)),
        View(instrument_name="gen_ai.server.time_to_first_token",
             aggregation=ExplicitBucketHistogramAggregation(TTFT_BOUNDS)),
        View(instrument_name="gen_ai.server.time_per_output_token",
             aggregation=ExplicitBucketHistogramAggregation(TPOT_BOUNDS)),
    ]
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": "envoy-ai-gateway", "aigw.service": "my-ai-gateway",
                                "service.instance.id": instance})
    return MeterProvider(resource=resource, metric_readers=[reader], views=views)


def record(provider, requests_):
    meter = provider.get_meter("envoyproxy/ai-gateway")
    tokens = meter.create_histogram("gen_ai.client.token.usage", unit="token")
    duration = meter.create_histogram("gen_ai.server.request.duration", unit="s")
    ttft = meter.create_histogram("gen_ai.server.time_to_first_token", unit="s")
    tpot = meter.create_histogram("gen_ai.server.time_per_output_token", unit="s")
    for model, dur, first, per_token, counts in requests_:
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                 "gen_ai.request.model": model, "gen_ai.response.model": model,
                 "gen_ai.original.model": model}
        duration.record(dur, attrs)
        if first is not None:
            ttft.record(first, attrs)
            tpot.record(per_token, attrs)
        for kind, n in counts.items():
            tokens.record(n, {**attrs, "gen_ai.token.type": kind})
    assert provider.force_flush(10_000)


def delta_exporter(kind, server):
    temporality = {Histogram: AggregationTemporality.DELTA}
    if kind == "http":
        return HttpExporter(endpoint=f"{server.url}/v1/metrics", preferred_temporality=temporality)
    return GrpcExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True,
                        preferred_temporality=temporality)


def bucket_quantile(q, bounds, observations):
    """Prometheus' histogram_quantile over classic buckets (le = bounds + [+Inf])."""
    uppers = list(bounds) + [math.inf]
    cumulative = [sum(1 for o in observations if o <= u) for u in uppers]
    total = cumulative[-1]
    rank = q * total
    i = next(i for i, c in enumerate(cumulative) if c >= rank)
    if uppers[i] == math.inf:
        return uppers[i - 1]
    start = 0.0 if i == 0 else uppers[i - 1]
    prev = 0 if i == 0 else cumulative[i - 1]
    return start + (uppers[i] - start) * (rank - prev) / (cumulative[i] - prev)


def instant(server, query):
    r = requests.get(f"{server.url}/api/v1/query", params={"query": query}, timeout=10)
    assert r.status_code == 200, (query, r.text)
    body = r.json()
    assert body["status"] == "success", body
    assert body["data"]["resultType"] == "vector", body
    return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in body["data"]["result"]}


def one(server, query):
    result = instant(server, query)
    assert len(result) == 1, (query, result)
    return next(iter(result.values()))


@pytest.fixture(scope="module")
def genai_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("genai")
    pricing = root / "pricing.yaml"
    pricing.write_text(PRICING)
    config = root / "inferscope.yaml"
    config.write_text(f"genai:\n  pricing_file: {pricing}\n  pricing_reload_interval: 1s\n")
    s = Server(root / "data", config=config).start()
    for kind in ("http", "grpc"):
        provider = make_provider(delta_exporter(kind, s), f"pod-{kind}")
        record(provider, ROUND_1)
        record(provider, ROUND_2)
        provider.shutdown()
    yield s
    s.stop()


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_totals_per_model_equal_what_was_recorded(genai_server, kind):
    s, inst = genai_server, f"pod-{kind}"
    everything = ROUND_1 + ROUND_2
    for model in ("gpt-4o", "llama3.2:latest"):
        mine = [r for r in everything if r[0] == model]
        sel = f'model="{model}", instance="{inst}"'
        assert one(s, f"sum(genai_requests_total{{{sel}}})") == len(mine)
        for kind_ in ("input", "output", "cached_input"):
            expected = sum(r[4].get(kind_, 0) for r in mine)
            got = instant(s, f'sum(genai_tokens_total{{{sel}, type="{kind_}"}})')
            assert sum(got.values()) == expected, (model, kind_, got)
        assert one(s, f"sum(genai_request_duration_seconds_count{{{sel}}})") == len(mine)
        assert one(s, f"sum(genai_request_duration_seconds_sum{{{sel}}})") == \
            pytest.approx(sum(r[1] for r in mine))
    # Labels as the issue names them: service = aigw.service, instance = service.instance.id.
    labels = dict(next(iter(instant(s, f'genai_requests_total{{model="gpt-4o", instance="{inst}"}}'))))
    assert labels == {"__name__": "genai_requests_total", "service": "my-ai-gateway",
                      "instance": inst, "provider": "openai", "model": "gpt-4o",
                      "operation": "chat"}


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_histogram_quantile_gives_the_percentiles_the_buckets_imply(genai_server, q):
    durations = [r[1] for r in ROUND_1 + ROUND_2 if r[0] == "gpt-4o"]
    got = one(genai_server, f'histogram_quantile({q}, sum by (le) (genai_request_duration_seconds_bucket'
                            f'{{model="gpt-4o", instance="pod-http"}}))')
    assert got == pytest.approx(bucket_quantile(q, DURATION_BOUNDS, durations))
    ttfts = [r[2] for r in ROUND_1 + ROUND_2 if r[0] == "gpt-4o" and r[2] is not None]
    got = one(genai_server, f'histogram_quantile({q}, sum by (le) (genai_time_to_first_token_seconds_bucket'
                            f'{{model="gpt-4o", instance="pod-grpc"}}))')
    assert got == pytest.approx(bucket_quantile(q, TTFT_BOUNDS, ttfts))


def test_cost_equals_tokens_times_price(genai_server):
    mine = [r for r in ROUND_1 + ROUND_2 if r[0] == "gpt-4o"]
    expected = sum(n * PRICE[t] for r in mine for t, n in r[4].items())
    for inst in ("pod-http", "pod-grpc"):
        got = one(genai_server, f'genai_estimated_cost_usd_total{{model="gpt-4o", instance="{inst}"}}')
        assert got == pytest.approx(expected, rel=1e-9)
    # The unpriced model costs nothing and is reported with its tokens.
    assert instant(genai_server, 'genai_estimated_cost_usd_total{model="llama3.2:latest"}') == {}
    llama_tokens = sum(n for r in ROUND_1 + ROUND_2 if r[0] == "llama3.2:latest" for n in r[4].values())
    assert one(genai_server, 'sum(genai_unpriced_tokens_total{model="llama3.2:latest", instance="pod-http"})') \
        == llama_tokens


def test_summary_endpoint_and_cli(genai_server):
    r = requests.get(f"{genai_server.url}/api/v1/genai/summary", params={"by": "model", "since": "1h"},
                     timeout=10)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    rows = {row["key"]: row for row in data["rows"]}
    assert rows["gpt-4o"]["requests"] == pytest.approx(10, rel=0.35)  # increase() extrapolates
    assert rows["gpt-4o"]["cost_usd"] > 0
    assert "p99" in rows["gpt-4o"]["latency_s"]
    assert [u["model"] for u in data["unpriced"]] == ["llama3.2:latest"]
    bad = requests.get(f"{genai_server.url}/api/v1/genai/summary", params={"by": "color"}, timeout=10)
    assert bad.status_code == 400 and "by" in bad.text

    out = subprocess.run([str(BINARY), "genai", "top", "--by", "model", "--since", "1h",
                          "--addr", genai_server.url], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[0] == "MODEL", out.stdout
    assert any(l.startswith("gpt-4o") for l in lines), out.stdout
    assert "llama3.2:latest" in out.stdout


def test_prometheus_api_shapes_and_errors(genai_server):
    url = genai_server.url
    r = requests.get(f"{url}/api/v1/query", params={"query": "sum(rate(genai_requests_total[5m]"},
                     timeout=10)
    assert r.status_code == 400
    assert r.json()["status"] == "error" and r.json()["errorType"] == "bad_data"
    r = requests.get(f"{url}/api/v1/labels", timeout=10)
    assert {"__name__", "model", "provider", "service", "instance"} <= set(r.json()["data"])
    r = requests.get(f"{url}/api/v1/label/model/values",
                     params={"match[]": "genai_requests_total"}, timeout=10)
    assert r.json()["data"] == ["gpt-4o", "llama3.2:latest"]
    r = requests.get(f"{url}/api/v1/series", params={"match[]": 'genai_requests_total{instance="pod-grpc"}'},
                     timeout=10)
    assert len(r.json()["data"]) == 2, r.json()
    r = requests.post(f"{url}/api/v1/query_range",
                      data={"query": "sum by (model) (genai_requests_total)",
                            "start": str(__import__("time").time() - 600),
                            "end": str(__import__("time").time()), "step": "60"}, timeout=10)
    assert r.status_code == 200 and r.json()["data"]["resultType"] == "matrix", r.text
    # The raw OTLP series are there too, with Prometheus' naming.
    assert instant(genai_server, "gen_ai_server_request_duration_seconds_count")


def test_bad_points_are_reported_in_partial_success(genai_server):
    def hist(bounds, counts, total, s, t):
        return {"name": "gen_ai.server.request.duration", "unit": "s", "histogram": {
            "aggregationTemporality": 1, "dataPoints": [{
                "timeUnixNano": str(t), "startTimeUnixNano": str(t - 1), "count": str(total),
                "sum": s, "bucketCounts": [str(c) for c in counts], "explicitBounds": bounds,
                "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "bad-model"}}]}]}}
    now = __import__("time").time_ns()
    body = {"resourceMetrics": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "bad-sender"}}]},
        "scopeMetrics": [{"metrics": [
            hist([1.0, 2.0], [1, 1], 2, 1.5, now),          # bucket counts ≠ bounds + 1
            hist([1.0], [1, 0], 1, 0.5, now),                # fine
            {"name": "weird", "unit": "1"},                  # no data: unknown type
        ]}]}]}
    r = requests.post(f"{genai_server.url}/v1/metrics", data=json.dumps(body),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    partial = r.json()["partialSuccess"]
    assert int(partial["rejectedDataPoints"]) >= 1, partial
    assert "bucket" in partial["errorMessage"], partial
    assert one(genai_server, 'sum(genai_requests_total{model="bad-model"})') == 1


def test_series_survive_a_crash(genai_server):
    before = one(genai_server, 'sum(genai_tokens_total{model="gpt-4o"})')
    genai_server.kill9()
    genai_server.start()
    assert one(genai_server, 'sum(genai_tokens_total{model="gpt-4o"})') == before
