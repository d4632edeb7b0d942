"""Trace and request lookup: GET /api/v1/trace/{id} and `inferscope trace <id>`."""

import json
import subprocess
import uuid

from conftest import BINARY, now_ns


def trace_entries(server, trace_id, **params):
    r = server.get(f"/api/v1/trace/{trace_id}", **params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    data = body["data"]
    assert data["resultType"] == "streams" and isinstance(data["stats"], dict), data
    out = []
    for s in data["result"]:
        stamps = [int(ts) for ts, _ in s["values"]]
        assert stamps == sorted(stamps), "each stream is oldest first"
        for ts, line in s["values"]:
            out.append((int(ts), s["stream"].get("app"), line))
    firsts = [int(s["values"][0][0]) for s in data["result"]]
    assert firsts == sorted(firsts), "streams are ordered by their first entry"
    return sorted(out), r


def push_trace(server, start, trace_id, noise=300):
    """Lines from four services, the trace among `noise` others per service;
    returns the (ts, app, line) the lookup must return, time-ordered."""
    run = uuid.uuid4().hex[:8]
    streams, expected = [], []
    def line_for(app, tid, i):
        if app == "gateway":
            return json.dumps({"level": "info", "message": f"request {i}", "trace_id": tid,
                               "request_id": f"req-{run}-{i}"})
        if app == "scheduler":
            return f'level=info msg="picked endpoint {i}" trace_id={tid} latency_ms=3'
        if app == "vllm":
            return f"INFO Finished request cmpl-{i}, trace_id={tid}, took 0.5s"
        return f"token sampled {i}"  # chat-api: the id is structured metadata only
    for a, app in enumerate(["gateway", "scheduler", "vllm", "chat-api"]):
        values = []
        for i in range(noise):
            ts = start + i * 1_000_000 + a
            tid = trace_id if i in (100, 200) else f"{run}{app}{i:05d}"
            line = line_for(app, tid, i)
            if app == "chat-api":
                values.append([str(ts), line, {"trace_id": tid}])
            else:
                values.append([str(ts), line])
            if tid == trace_id:
                expected.append((ts, f"{app}-{run}", line))
        streams.append({"stream": {"app": f"{app}-{run}", "env": "trace-e2e"}, "values": values})
    r = server.push(streams)
    assert r.status_code == 204, r.text
    expected.sort()
    return expected, run


def test_lookup_finds_every_service_in_time_order_from_head_and_blocks(server):
    trace_id = uuid.uuid4().hex
    start = now_ns() - 600 * 1_000_000_000
    expected, run = push_trace(server, start, trace_id)
    got, _ = trace_entries(server, trace_id)
    assert got == expected  # from the head
    assert {app for _, app, _ in got} == {f"{a}-{run}" for a in ["gateway", "scheduler", "vllm", "chat-api"]}

    assert server.http.post(server.url + "/flush", timeout=30).status_code == 204
    other_id = uuid.uuid4().hex
    expected2, _ = push_trace(server, start + 1_000_000_000, other_id)
    got, r = trace_entries(server, trace_id)
    assert got == expected  # from a block, while the head holds another trace
    assert int(r.headers["x-inferscope-blocks-read"]) >= 1
    got2, _ = trace_entries(server, other_id)
    assert got2 == expected2

    # A request id inside the JSON lines.
    req, _ = trace_entries(server, f"req-{run}-100")
    assert [line for _, _, line in req] == [l for _, app, l in expected if app.startswith("gateway") and '"message": "request 100"' in l]

    # limit keeps the oldest entries.
    first, _ = trace_entries(server, trace_id, limit=3)
    assert first == expected[:3]

    # Nothing matches an id that is a prefix of a stored one.
    none, _ = trace_entries(server, trace_id[:-1])
    assert none == []

    # A window that excludes the trace.
    late, _ = trace_entries(server, trace_id, start=str(start + 10**12), end=str(start + 2 * 10**12))
    assert late == []

    # LogQL: `| trace_id="…"` without a parser reads structured metadata (as in
    # Loki): the chat-api entries carry it, and ingest normalization copies the
    # gateway's top-level JSON `trace_id` there too. The id index prunes the scan,
    # the answer is the unpruned one's.
    hinted = server.entries(f'{{env="trace-e2e"}} | trace_id="{trace_id}"', start=str(start - 1), limit=1000)
    unhinted = server.entries(f'{{env="trace-e2e"}} | trace_id="{trace_id}" or trace_id="-"',
                              start=str(start - 1), limit=1000)
    assert hinted == unhinted
    with_metadata = [(ts, line) for ts, app, line in expected if app.startswith(("chat-api", "gateway"))]
    assert hinted == sorted(with_metadata, reverse=True)
    counted = server.get("/loki/api/v1/query", query=f'sum(count_over_time({{env="trace-e2e"}} | trace_id="{trace_id}" [1h]))')
    assert counted.status_code == 200 and counted.json()["data"]["result"][0]["value"][1] == "4", counted.text

    metrics = server.get("/metrics").text
    assert "inferscope_trace_lookups_total" in metrics
    assert 'inferscope_trace_lookup_blocks_total{outcome="skipped"}' in metrics


def test_bad_ids_are_400(server):
    assert server.get("/api/v1/trace/" + "x" * 129).status_code == 400
    assert server.get("/api/v1/trace/%20").status_code == 400
    assert server.get("/api/v1/trace/abc", limit="1000000").status_code == 400


def test_cli_prints_the_timeline(server):
    trace_id = uuid.uuid4().hex
    start = now_ns() - 300 * 1_000_000_000
    expected, run = push_trace(server, start, trace_id, noise=250)
    out = subprocess.run([str(BINARY), "trace", trace_id, "--addr", server.url, "--since", "1h"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"{trace_id}: {len(expected)} entries, 4 services"), out.stdout
    entries = [l for l in lines[1:] if not l.startswith("──")]
    assert len(entries) == len(expected)
    for line, (_, app, _) in zip(entries, expected):
        assert app in line, (line, app)
    assert "+0.0ms" in entries[0]
    assert any("picked endpoint 100" in l for l in entries)  # logfmt msg
    assert any("request 200" in l for l in entries)  # JSON message
    # A rule whenever the service changes.
    assert sum(1 for l in lines if l.startswith("──")) >= 4

    missing = subprocess.run([str(BINARY), "trace", "nope-" + trace_id, "--addr", server.url],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 0 and "no entry carries" in missing.stdout
