"""Acknowledged pushes survive kill -9 and graceful restarts."""

import json
import signal
import threading

import pytest
import requests

from conftest import now_ns, wait_until

QUERY = '{app="durability"}'
LINES_PER_PUSH = 5


class Pusher(threading.Thread):
    """Pushes numbered lines until stopped or the server goes away; records what was acked."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.start_ns = server, now_ns() - 60 * 10**9
        self.acked, self.attempted = [], set()
        self.stopped = threading.Event()

    def run(self):
        n = 0
        while not self.stopped.is_set():
            batch = [(self.start_ns + i * 1000, f"durable line {i}") for i in range(n, n + LINES_PER_PUSH)]
            n += LINES_PER_PUSH
            self.attempted.update(batch)
            values = [[str(ts), line] for ts, line in batch]
            try:
                r = self.server.push([{"stream": {"app": "durability"}, "values": values}])
            except requests.RequestException:
                return  # the server is gone
            if r.status_code != 204:
                return
            self.acked.extend(batch)


def stored(server):
    got = server.entries(QUERY, direction="forward", limit=5000, since="1h")  # Loki's max_entries_limit_per_query
    assert len(got) < 5000, "the test must stay under the query limit to see everything"
    return got


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_every_acknowledged_line_survives_a_stop_mid_stream(fresh_server, sig):
    fresh_server.start()
    pusher = Pusher(fresh_server)
    pusher.start()
    wait_until(lambda: len(pusher.acked) >= 500, timeout=30, what="500 acknowledged lines")
    fresh_server.stop(sig)  # mid-stream: the pusher is still sending
    pusher.join(timeout=15)
    assert not pusher.is_alive()

    fresh_server.start()
    got = stored(fresh_server)
    assert len(got) == len(set(got)), "duplicated entries after recovery"
    assert set(got) <= pusher.attempted, "entries nobody pushed"
    missing = sorted(set(pusher.acked) - set(got))
    assert not missing, f"{len(missing)} acknowledged lines lost, first: {missing[:3]}"


def test_graceful_restart_keeps_everything(fresh_server):
    fresh_server.start()
    start = now_ns() - 60 * 10**9
    expected = []
    for chunk in range(4):
        expected += fresh_server.push_lines({"app": "durability"}, [f"graceful {chunk}-{i}" for i in range(250)],
                                            start + chunk * 10**9)
    assert stored(fresh_server) == expected
    assert fresh_server.stop() == 0, fresh_server.log()  # SIGTERM: clean exit
    fresh_server.start()
    assert stored(fresh_server) == expected
    # And it takes writes again.
    more = fresh_server.push_lines({"app": "durability"}, ["after restart"], start + 10 * 10**9)
    assert stored(fresh_server) == expected + more


def test_restart_twice_after_kill_9_is_stable(fresh_server):
    fresh_server.start()
    expected = fresh_server.push_lines({"app": "durability"}, [f"twice {i}" for i in range(100)],
                                       now_ns() - 60 * 10**9)
    fresh_server.kill9()
    fresh_server.start()
    assert stored(fresh_server) == expected
    fresh_server.kill9()  # recovery itself must leave a recoverable state
    fresh_server.start()
    assert stored(fresh_server) == expected


def test_flushed_and_unflushed_data_both_survive_kill_9_without_duplicates(fresh_server):
    fresh_server.start()
    start = now_ns() - 60 * 10**9
    expected = fresh_server.push_lines({"app": "durability"}, [f"flushed {i}" for i in range(300)], start)
    r = fresh_server.http.post(fresh_server.url + "/flush", timeout=30)  # head -> blocks, as Loki's /flush
    assert r.status_code in (200, 204), r.text
    expected += fresh_server.push_lines({"app": "durability"}, [f"in the WAL only {i}" for i in range(300)],
                                        start + 10**9)
    fresh_server.kill9()
    fresh_server.start()
    assert stored(fresh_server) == expected


def metadata_by_line(server, query):
    """line → structured metadata, as Grafana asks for it (categorize-labels)."""
    r = server.http.get(server.url + "/loki/api/v1/query_range",
                        headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"},
                        params={"query": query, "since": "1h", "limit": 1000, "direction": "forward"},
                        timeout=10)
    assert r.status_code == 200, r.text
    return {line: extra.get("structuredMetadata", {})
            for s in r.json()["data"]["result"] for _, line, extra in s["values"]}


LEVELS = [("info", "info"), ("WARNING", "warn"), ("error", "error"), ("dbg", "debug"), ("FATAL", "fatal")]


def test_ids_copied_from_json_lines_survive_flush_and_kill_9(fresh_server):
    """The ids normalization takes from a line are stored as ranges of it (not
    copies), and its canonical level as a one-byte code: they must read the
    same from the head, from blocks, and after a WAL replay, multi-byte
    characters and JSON escapes included."""
    fresh_server.start()
    start = now_ns() - 60 * 10**9

    def line(i):
        return json.dumps({"level": LEVELS[i % len(LEVELS)][0], "message": f"request {i} done",
                           "trace_id": f"{i:032x}", "request_id": f"req-ü-{i}", "user_id": f"u_{i}",
                           "session_id": "s\u00e9ance"},
                          ensure_ascii=i % 2 == 0)  # odd lines keep é verbatim, even ones escape it

    def expected(i):
        return {"detected_level": LEVELS[i % len(LEVELS)][1], "trace_id": f"{i:032x}",
                "request_id": f"req-ü-{i}", "user_id": f"u_{i}", "session_id": "séance"}

    labels = {"app": "durability", "case": "ids"}
    fresh_server.push_lines(labels, [line(i) for i in range(100)], start)
    assert metadata_by_line(fresh_server, '{case="ids"}') == {line(i): expected(i) for i in range(100)}
    r = fresh_server.http.post(fresh_server.url + "/flush", timeout=30)
    assert r.status_code in (200, 204), r.text
    fresh_server.push_lines(labels, [line(i) for i in range(100, 200)], start + 10**9)
    fresh_server.kill9()
    fresh_server.start()
    # Blocks for the first hundred, the replayed WAL for the rest.
    assert metadata_by_line(fresh_server, '{case="ids"}') == {line(i): expected(i) for i in range(200)}
    for i in (7, 142):
        got = metadata_by_line(fresh_server, f'{{case="ids"}} | trace_id="{i:032x}"')
        assert list(got) == [line(i)]
        got = metadata_by_line(fresh_server, f'{{case="ids"}} | request_id="req-ü-{i}"')
        assert list(got) == [line(i)]
    # A level filter reads the codes of blocks and of the replayed WAL alike.
    warn = metadata_by_line(fresh_server, '{case="ids"} | detected_level="warn"')
    assert sorted(warn) == sorted(line(i) for i in range(200) if i % len(LEVELS) == 1)
