"""`serve --demo` pushes generated LLM-serving logs whose trace ids cross services."""

import json
import signal

from conftest import Server, wait_until


def test_demo_traces_cross_gateway_scheduler_workers_and_chat_api(tmp_path):
    server = Server(tmp_path / "data", args=["--demo"]).start()
    try:
        def completed_trace():
            got = server.entries('{app="aigateway"} |= "request.completed"', since="15m", limit=1)
            return got and json.loads(got[0][1])["trace_id"]

        trace = wait_until(completed_trace, timeout=30, what="a completed gateway request")
        # Every earlier line of that request was generated, so pushed, before this one.
        data = server.query_range(f'{{namespace=~".+"}} |= "{trace}"', since="15m", limit=100)
        assert {s["stream"]["app"] for s in data["result"]} == {"aigateway", "heimdall", "vllm", "chat-api"}
        roles = {s["stream"].get("role") for s in data["result"] if s["stream"]["app"] == "vllm"}
        assert roles == {"prefill", "decode"}
        # The trace lookup finds the same journey through its id index, oldest first.
        r = server.get(f"/api/v1/trace/{trace}", since="15m")
        assert r.status_code == 200, r.text
        traced = r.json()["data"]["result"]
        assert {s["stream"]["app"] for s in traced} == {"aigateway", "heimdall", "vllm", "chat-api"}
        # It finds every line that holds the id in its text, and also those that carry
        # it only as structured metadata (which `|=` cannot see).
        entries = lambda result: {(v[0], v[1]) for s in result for v in s["values"]}  # noqa: E731
        assert entries(data["result"]) <= entries(traced)

        errors = wait_until(lambda: server.entries('{app="aigateway"} | json | level="ERROR"', since="15m", limit=50),
                            timeout=30, what="gateway errors in the demo load")
        assert all(json.loads(line)["status"] >= 500 for _, line in errors)

        # The simulated gateway's OTLP GenAI metrics are there too, cost included.
        def genai_models():
            r = server.http.get(server.url + "/api/v1/query",
                                params={"query": "sum by (model) (genai_estimated_cost_usd_total)"})
            return r.status_code == 200 and {s["metric"]["model"] for s in r.json()["data"]["result"]}
        models = wait_until(genai_models, timeout=30, what="GenAI series from the demo")
        assert {"gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash"} <= models
    finally:
        server.stop(signal.SIGKILL)
