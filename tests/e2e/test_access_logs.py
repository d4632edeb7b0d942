"""AI-gateway access logs over OTLP (Envoy AI Gateway's LLM and MCP records), sent by the
OpenTelemetry Python SDK over OTLP/HTTP and OTLP/gRPC: a known mix of cheap, failing,
slow, expensive and upstream-failed requests leaves exactly the records the sampling
policy names in storage, each with its reasons and cost, while the counters equal the
full stream's totals."""

import logging
import subprocess

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from conftest import BINARY, Server, unique

PRICING = """
providers:
  - provider: openai
    prefix-match: [gpt]
    models:
      - name: gpt-4o
        input-estimated-cost-per-m: 2.5
        output-estimated-cost-per-m: 10.0
"""
PRICE = {"input": 2.5e-6, "output": 10e-6}


def llm(rid, model="gpt-4o", inp="120", out="30", code="200", duration="900",
        upstream="-", termination="-", session=None):
    attrs = {"x-request-id": rid, "request.path": "/v1/chat/completions",
             "gen_ai.request.model": model, "gen_ai.response.model": model,
             "gen_ai.provider.name": "openai", "response_code": code, "duration": duration,
             "upstream_transport_failure_reason": upstream,
             "connection_termination_details": termination}
    if inp is not None:
        attrs["gen_ai.usage.input_tokens"] = inp
    if out is not None:
        attrs["gen_ai.usage.output_tokens"] = out
    if session:
        attrs["session.id"] = session
    return attrs


def mcp(rid, method="tools/call", code="200", duration="40", session=None):
    attrs = {"jsonrpc.request.id": rid, "mcp.method.name": method, "mcp.provider.name": "kiwi",
             "response_code": code, "duration": duration}
    if session:
        attrs["mcp.session.id"] = session
    return attrs


# (record, expected sampled_reason or None when the policy drops it)
def the_mix(session):
    return [
        (llm("cheap-1", session=session), None),
        (llm("cheap-2", inp="800", out="200", session=session), None),
        (llm("failing", code="503", session=session), "error"),
        (llm("slow", duration="45000"), "slow"),
        (llm("expensive", inp="12000", out="800", session=session), "tokens"),
        (llm("upstream", upstream="upstream connect error or disconnect/reset before headers"),
         "upstream_failure"),
        (llm("terminated", termination="connection timeout"), "upstream_failure"),
        (llm("bad-and-big", inp="20000", out="100", code="500"), "tokens,error"),
        (llm("no-tokens", inp=None, out=None), "missing_tokens"),
        (llm("nan-tokens", inp="abc"), "missing_tokens"),
        (llm("unpriced-cheap", model="llama3.2:latest"), None),
        (llm("unpriced-big", model="llama3.2:latest", inp="30000", out="10"), "tokens"),
        (mcp("mcp-ok", session=session), None),
        (mcp("mcp-fail", code="500", session=session), "error"),
        (mcp("mcp-slow", method="tools/list", duration="31000"), "slow"),
    ]


def cost(attrs):
    if attrs["gen_ai.request.model"] != "gpt-4o":
        return 0.0
    return int(attrs["gen_ai.usage.input_tokens"]) * PRICE["input"] + \
        int(attrs["gen_ai.usage.output_tokens"]) * PRICE["output"]


def send(exporter, gateway, records):
    provider = LoggerProvider(resource=Resource.create(
        {"service.name": "envoy-ai-gateway", "aigw.service": gateway,
         "service.instance.id": "aigw-pod-1"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger(f"access-{unique()}")
    logger.propagate = False
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    for attrs, _ in records:
        logger.info("", extra=attrs)
    logger.info("gateway started", extra={"component": "extproc"})  # an ordinary log
    provider.force_flush()
    provider.shutdown()
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def gw_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("access")
    pricing = root / "pricing.yaml"
    pricing.write_text(PRICING)
    config = root / "inferscope.yaml"
    config.write_text(f"genai:\n  pricing_file: {pricing}\n")
    s = Server(root / "data", config=config).start()
    yield s
    s.stop()


def instant(server, query):
    r = requests.get(f"{server.url}/api/v1/query", params={"query": query}, timeout=10)
    assert r.status_code == 200, r.text
    return {tuple(sorted(x["metric"].items())): float(x["value"][1]) for x in r.json()["data"]["result"]}


def total(server, query):
    return sum(instant(server, query).values())


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_policy_keeps_exactly_what_it_names_and_counters_stay_exact(gw_server, transport):
    s = gw_server
    gateway, session = f"gw-{unique()}", f"sess-{unique()}"
    mix = the_mix(session)
    exporter = (HttpLogExporter(endpoint=f"{s.url}/v1/logs") if transport == "http"
                else GrpcLogExporter(endpoint=f"127.0.0.1:{s.grpc_port}", insecure=True))
    send(exporter, gateway, mix)

    # Storage holds exactly the kept records, each with its reasons.
    data = s.query_range(f'{{aigw_service="{gateway}", access_log=~".+"}}', limit=1000)
    stored = {}
    for stream in data["result"]:
        labels = stream["stream"]
        rid = labels.get("x_request_id") or labels.get("jsonrpc_request_id")
        stored[rid] = labels
        assert labels["access_log"] == ("mcp" if rid.startswith("mcp") else "llm"), labels
    expected = {a.get("x-request-id") or a.get("jsonrpc.request.id"): reason
                for a, reason in mix if reason is not None}
    assert {rid: l["sampled_reason"] for rid, l in stored.items()} == expected

    # Each kept LLM record carries its total tokens and its cost.
    for attrs, reason in mix:
        rid = attrs.get("x-request-id")
        if reason is None or rid is None or "gen_ai.usage.input_tokens" not in attrs or rid == "nan-tokens":
            continue
        labels = stored[rid]
        assert int(labels["gen_ai_usage_total_tokens"]) == \
            int(attrs["gen_ai.usage.input_tokens"]) + int(attrs["gen_ai.usage.output_tokens"])
        assert float(labels["estimated_cost_usd"]) == pytest.approx(cost(attrs), rel=1e-9, abs=1e-15)
        if attrs["gen_ai.request.model"] != "gpt-4o":
            assert labels["unpriced"] == "true"

    # The ordinary log is stored as it was sent, without the access_log label.
    plain = s.entries(f'{{aigw_service="{gateway}", access_log=""}}')
    assert [line for _, line in plain] == ["gateway started"]

    # LogQL over the cost works.
    pricey = s.entries(f'{{aigw_service="{gateway}"}} | estimated_cost_usd > 0.035')
    assert len(pricey) == 2, pricey  # expensive (0.038) and bad-and-big (0.051)

    # Every record, kept or dropped, is counted.
    sel = f'service="{gateway}"'
    llm_mix = [a for a, _ in mix if "gen_ai.request.model" in a]
    assert total(s, f"genai_access_log_requests_total{{{sel}}}") == len(llm_mix)
    assert total(s, f'genai_access_log_requests_total{{{sel}, decision="dropped"}}') == \
        sum(1 for a, r in mix if r is None and "gen_ai.request.model" in a)
    assert total(s, f'genai_access_log_requests_total{{{sel}, response_class="5xx"}}') == 2
    for kind in ("input", "output"):
        numeric = [a for a in llm_mix if a.get(f"gen_ai.usage.{kind}_tokens", "x").isdigit()
                   and a.get("gen_ai.usage.input_tokens", "x").isdigit()]
        assert total(s, f'genai_access_log_tokens_total{{{sel}, type="{kind}"}}') == \
            sum(int(a[f"gen_ai.usage.{kind}_tokens"]) for a in numeric)
    priced = [a for a in llm_mix if a["gen_ai.request.model"] == "gpt-4o"
              and a.get("gen_ai.usage.input_tokens", "x").isdigit()]
    assert total(s, f"genai_access_log_cost_usd_total{{{sel}}}") == \
        pytest.approx(sum(cost(a) for a in priced), rel=1e-9)
    assert total(s, f'mcp_access_log_requests_total{{{sel}, method="tools/call"}}') == 2
    assert total(s, f'mcp_access_log_requests_total{{{sel}, decision="kept"}}') == 2

    # The session lists its kept requests with their cost.
    r = requests.get(f"{s.url}/api/v1/session/{session}", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()["data"]
    rids = sorted(x["stream"].get("x_request_id") or x["stream"].get("jsonrpc_request_id")
                  for x in body["result"])
    assert rids == ["expensive", "failing", "mcp-fail"]
    assert body["session"]["requests"] == 3
    expensive = next(a for a, _ in mix if a.get("x-request-id") == "expensive")
    failing = next(a for a, _ in mix if a.get("x-request-id") == "failing")
    assert body["session"]["estimated_cost_usd"] == pytest.approx(cost(expensive) + cost(failing))

    out = subprocess.run([str(BINARY), "session", session, "--addr", s.url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "gpt-4o 200 900ms 12800 tok $0.0380 [tokens]" in out.stdout, out.stdout
    assert "tools/call 500 40ms [error]" in out.stdout, out.stdout
    assert f"session {session}: 3 requests" in out.stdout, out.stdout
