"""Real client libraries pushing to the server."""

import json
import pathlib
import subprocess

from conftest import unique

HERE = pathlib.Path(__file__).parent


def test_winston_loki_protobuf_snappy_push(server):
    assert (HERE / "node_modules" / "winston-loki").is_dir(), "run: npm ci --prefix tests/e2e"
    test = unique()
    labels = {"app": "winston-e2e", "test": test}
    count = 300
    run = subprocess.run(["node", str(HERE / "clients" / "winston_push.js"), server.url, json.dumps(labels),
                          str(count)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr

    # Everything was acknowledged before the script exited: no waiting needed.
    data = server.query_range(f'{{test="{test}"}}', since="5m", limit=1000, direction="forward")
    # winston-loki adds the winston level as a label; ingest adds `service_name` (from
    # `app`, as Loki's discover_service_name does) and the `detected_level` structured
    # metadata, which an uncategorized answer merges into the labels, as Loki does.
    assert [s["stream"] for s in data["result"]] == [
        {**labels, "level": "info", "service_name": "winston-e2e", "detected_level": "info"}]
    lines = [line for _, line in data["result"][0]["values"]]
    assert sorted(lines) == sorted(f"winston line {i}" for i in range(count))
