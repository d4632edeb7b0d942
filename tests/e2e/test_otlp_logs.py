"""OTLP logs in, with the OpenTelemetry Python SDK as the sender: OTLP/HTTP (protobuf)
and OTLP/gRPC, read back through the Loki API with Loki's OTLP conventions."""

import json
import logging

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from conftest import unique


def send_logs(exporter, resource_attrs, records):
    """Emits `records` = [(level, message, attributes)] through the SDK's logging
    handler and flushes them to `exporter`."""
    provider = LoggerProvider(resource=Resource.create(resource_attrs))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger(f"otlp-test-{unique()}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger.addHandler(handler)
    for level, message, attributes in records:
        logger.log(level, message, extra=attributes)
    provider.force_flush()
    provider.shutdown()
    logger.removeHandler(handler)


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_sdk_logs_become_loki_entries(server, transport):
    gateway = f"gw-{unique()}"
    if transport == "http":
        exporter = HttpLogExporter(endpoint=f"{server.url}/v1/logs")
    else:
        exporter = GrpcLogExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True)
    send_logs(exporter,
              {"service.name": "envoy-ai-gateway", "aigw.service": gateway,
               "service.instance.id": "pod-1", "node_name": "node-a"},
              [(logging.INFO, "chat completion ok",
                {"gen_ai.request.model": "gpt-4o", "response_code": 200}),
               (logging.ERROR, "upstream connect error",
                {"gen_ai.request.model": "gpt-4o", "response_code": 503})])

    data = server.query_range(f'{{aigw_service="{gateway}"}}', limit=10)
    streams = data["result"]
    # Without categorize-labels, Loki answers structured metadata merged into the
    # stream labels (so records with different attributes are different "streams").
    for s in streams:
        assert s["stream"]["service_name"] == "envoy-ai-gateway", s
        assert s["stream"]["service_instance_id"] == "pod-1", s
    lines = sorted(line for s in streams for _, line in s["values"])
    assert lines == ["chat completion ok", "upstream connect error"]

    # Severity became detected_level; attributes became structured metadata.
    errors = server.query_range(
        f'{{aigw_service="{gateway}"}} | detected_level="error" | response_code="503"'
        f' | gen_ai_request_model="gpt-4o" | node_name="node-a"')
    assert [l for s in errors["result"] for _, l in s["values"]] == ["upstream connect error"]


def test_otlp_http_json_and_errors(server):
    gateway = f"gw-{unique()}"
    body = {"resourceLogs": [{
        "resource": {"attributes": [{"key": "aigw.service", "value": {"stringValue": gateway}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": str(__import__("time").time_ns()),
            "severityText": "WARN",
            "body": {"stringValue": "slow upstream"},
            "traceId": "5b8efff798038103d269b633813fc60c"}]}]}]}
    r = requests.post(f"{server.url}/otlp/v1/logs", data=json.dumps(body),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert "partialSuccess" not in r.json() or not r.json()["partialSuccess"].get("rejectedLogRecords")
    data = server.query_range(
        f'{{aigw_service="{gateway}"}} | trace_id="5b8efff798038103d269b633813fc60c"')
    assert [l for s in data["result"] for _, l in s["values"]] == ["slow upstream"]
    assert data["result"][0]["stream"]["service_name"] == "unknown_service"

    # Garbage protobuf: 400 with a google.rpc.Status body; another content type: 415.
    r = requests.post(f"{server.url}/v1/logs", data=b"\xff\xff\xff",
                      headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert r.status_code == 400, r.text
    assert b"invalid OTLP protobuf" in r.content
    r = requests.post(f"{server.url}/v1/logs", data=b"x", headers={"Content-Type": "text/plain"},
                      timeout=10)
    assert r.status_code == 415

    # Traces are answered (not stored): every span reported as rejected, with the reason.
    r = requests.post(f"{server.url}/v1/traces",
                      data=json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
                          {"traceId": "5b8efff798038103d269b633813fc60c",
                           "spanId": "eee19b7ec3c1b174", "name": "x"}]}]}]}),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1" or \
        r.json()["partialSuccess"]["rejectedSpans"] == 1
