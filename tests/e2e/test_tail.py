"""Live tail over WebSocket (`/loki/api/v1/tail`), with the `websocket-client` package."""

import json
import time

import pytest
import websocket

from conftest import now_ns, unique


def tail_url(server, query, **params):
    from urllib.parse import urlencode
    return server.url.replace("http://", "ws://") + "/loki/api/v1/tail?" + urlencode({"query": query, **params})


def test_tail_streams_new_entries_and_ends_cleanly(server):
    test = unique()
    ws = websocket.create_connection(tail_url(server, f'{{test="{test}"}} |= "keep"', start=str(now_ns())),
                                     timeout=10)
    try:
        server.push_lines({"test": test, "app": "tail"}, ["keep 1", "drop 2", "keep 3"], now_ns())
        seen, frames = [], []
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            frame = json.loads(ws.recv())
            frames.append(frame)
            for stream in frame["streams"]:
                # Plus what ingest derives, as in Loki 3 (service_name, detected_level).
                assert stream["stream"] == {"test": test, "app": "tail", "service_name": "tail",
                                            "detected_level": "unknown"}
                seen += [line for _, line in stream["values"]]
        assert seen == ["keep 1", "keep 3"]
        assert all(frame["dropped_entries"] == [] for frame in frames)
    finally:
        ws.close()
    # The server keeps serving after the client went away.
    assert server.get("/ready").status_code == 200


def test_tail_sends_history_from_start(server):
    test = unique()
    entries = server.push_lines({"test": test}, ["old 1", "old 2"], now_ns() - 60 * 10**9)
    ws = websocket.create_connection(tail_url(server, f'{{test="{test}"}}', start=str(entries[0][0])), timeout=10)
    try:
        frame = json.loads(ws.recv())
        assert [line for s in frame["streams"] for _, line in s["values"]] == ["old 1", "old 2"]
    finally:
        ws.close()


def test_tail_refuses_a_bad_query_before_upgrading(server):
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(tail_url(server, "{app="), timeout=10)
    assert err.value.status_code == 400
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(tail_url(server, '{app="x"}', delay_for="30"), timeout=10)
    assert err.value.status_code == 400


def test_tail_follows_arrivals_whatever_their_timestamp(server):
    """An agent that ships late (old timestamps) is still tailed, as in Loki."""
    test = unique()
    ws = websocket.create_connection(tail_url(server, f'{{test="{test}"}}', start=str(now_ns()), delay_for="1"),
                                     timeout=10)
    try:
        server.push_lines({"test": test}, ["late b", "late a"], now_ns() - 3600 * 10**9, step_ns=-10**6)
        frame = json.loads(ws.recv())
        # Held back one second, then sent in timestamp order.
        assert [line for s in frame["streams"] for _, line in s["values"]] == ["late a", "late b"]
    finally:
        ws.close()
