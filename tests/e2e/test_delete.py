"""Loki's log deletion API: POST/GET/DELETE /loki/api/v1/delete against the real binary.

A delete request hides its entries from every query as soon as it is acknowledged, survives
kill -9, can be cancelled within `compactor.delete_request_cancel_period`, and is then applied
to the stored blocks by the maintenance pass.
"""

import re

import pytest

from conftest import Server, now_ns, unique, wait_until

SECOND = 10**9
DELETE = "/loki/api/v1/delete"


def config(tmp_path, cancel_period):
    path = tmp_path / "inferscope.yaml"
    path.write_text(
        "storage:\n  maintenance_interval: 200ms\n"
        f"compactor:\n  delete_request_cancel_period: {cancel_period}\n"
    )
    return path


def push_app(server, app, start, n=40):
    """`n` lines one second apart; every 4th says `secret`."""
    lines = [f"line {i}" + (" secret" if i % 4 == 0 else "") for i in range(n)]
    return server.push_lines({"app": app}, lines, start, step_ns=SECOND)


def visible(server, app, start, end):
    got = server.entries(f'{{app="{app}"}}', start=str(start), end=str(end + 1), limit=5000,
                         direction="forward")
    return got


def count_over_time(server, query, start, end):
    """sum(count_over_time(query[…])) over [start, end] as one instant query."""
    seconds = (end - start) // SECOND + 1
    r = server.get("/loki/api/v1/query", time=str(end), query=f"sum(count_over_time({query}[{seconds}s]))")
    assert r.status_code == 200, r.text
    result = r.json()["data"]["result"]
    return int(result[0]["value"][1]) if result else 0


def post_delete(server, **params):
    return server.http.post(server.url + DELETE, params=params, timeout=10)


def list_deletes(server):
    r = server.get(DELETE)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def cancel(server, request_id):
    return server.http.delete(server.url + DELETE, params={"request_id": request_id}, timeout=10)


def test_delete_hides_lines_survives_kill_9_and_can_be_cancelled(tmp_path):
    server = Server(tmp_path / "data", config=config(tmp_path, "1h")).start()
    try:
        app, other = unique(), unique()
        start = (now_ns() - 120 * SECOND) // SECOND * SECOND
        pushed = push_app(server, app, start)
        assert server.http.post(server.url + "/flush", timeout=30).status_code == 204  # half in a block
        pushed += push_app(server, app, start + 40 * SECOND, n=20)  # ... half in the head
        kept_other = push_app(server, other, start)
        end = start + 59 * SECOND
        assert visible(server, app, start, end) == pushed

        # Secret lines from second 10 to second 50, both ends inclusive.
        del_start, del_end = start + 10 * SECOND, start + 50 * SECOND
        query = f'{{app="{app}"}} |= "secret"'
        r = post_delete(server, query=query, start=str(del_start // SECOND), end=str(del_end // SECOND))
        assert r.status_code == 204, r.text
        want = [(ts, line) for ts, line in pushed
                if not (del_start <= ts <= del_end and "secret" in line)]
        assert len(want) == len(pushed) - 10
        assert visible(server, app, start, end) == want
        assert count_over_time(server, f'{{app="{app}"}}', start, end) == len(want)
        assert count_over_time(server, f'{{app="{app}"}} |= "secret"', start, end) == 15 - 10
        assert visible(server, other, start, end) == kept_other

        [listed] = list_deletes(server)
        assert re.fullmatch(r"[0-9a-f]{8}", listed["request_id"]), listed
        assert listed["query"] == query
        assert listed["status"] == "received"
        assert (listed["start_time"], listed["end_time"]) == (del_start // SECOND, del_end // SECOND)
        assert abs(listed["created_at"] - now_ns() / SECOND) < 60
        assert set(listed) == {"request_id", "start_time", "end_time", "query", "status", "created_at"}

        metrics = server.get("/metrics").text
        assert 'inferscope_delete_requests_received_total{tenant="fake"} 1' in metrics

        # kill -9 right after: the request and the hidden lines stay that way.
        server.kill9()
        server.start()
        assert visible(server, app, start, end) == want
        assert [d["request_id"] for d in list_deletes(server)] == [listed["request_id"]]

        # Within the cancel period: cancelled, everything is back.
        r = cancel(server, listed["request_id"])
        assert r.status_code == 204, r.text
        assert visible(server, app, start, end) == pushed
        assert list_deletes(server) == []
        r = cancel(server, listed["request_id"])
        assert r.status_code == 404
        assert r.text == "could not find delete request with given id\n"
        server.kill9()
        server.start()
        assert visible(server, app, start, end) == pushed
    finally:
        server.kill9()


def test_processing_after_the_cancel_period_removes_lines_from_storage(tmp_path):
    server = Server(tmp_path / "data", config=config(tmp_path, "1s")).start()
    try:
        app = unique()
        start = (now_ns() - 120 * SECOND) // SECOND * SECOND
        pushed = push_app(server, app, start)
        assert server.http.post(server.url + "/flush", timeout=30).status_code == 204
        end = start + 39 * SECOND
        r = post_delete(server, query=f'{{app="{app}"}}', start=str(start + 20 * SECOND), end=str(end))
        assert r.status_code == 204, r.text
        want = pushed[:20]
        assert visible(server, app, start, end) == want

        [request] = wait_until(lambda: [d for d in list_deletes(server) if d["status"] == "processed"],
                               timeout=30, what="the delete request to be processed")
        assert visible(server, app, start, end) == want
        metrics = server.get("/metrics").text
        assert re.search(r"^inferscope_deleted_lines_total 20$", metrics, re.M), metrics
        assert re.search(r"^inferscope_delete_requests_processed_total 1$", metrics, re.M), metrics

        r = cancel(server, request["request_id"])
        assert r.status_code == 400
        assert r.text == "deletion of request which is in process or already processed is not allowed\n"

        server.kill9()
        server.start()
        assert visible(server, app, start, end) == want
        assert list_deletes(server) == [request]
    finally:
        server.kill9()


@pytest.mark.parametrize("params, message", [
    ({"start": "1"}, "query not set"),
    ({"query": '{app="x"}'}, "start time not set"),
    ({"query": '{app="x"}', "start": "yesterday"},
     "invalid start time: require unix seconds or RFC3339 format"),
    ({"query": '{app="x"}', "start": "1", "end": "soon"},
     "invalid end time: require unix seconds or RFC3339 format"),
    ({"query": '{app="x"}', "start": "1700000100", "end": "1700000000"},
     "start time can't be greater than end time"),
    ({"query": '{app="x"}', "start": "1", "end": "4102444800"}, "deletes in the future are not allowed"),
    ({"query": 'count_over_time({app="x"}[5m])', "start": "1"},
     "invalid query expression: only log selector is supported"),
    ({"query": '{app="x"', "start": "1"}, "invalid query expression: parse error at line 1"),
    ({"query": '{app="x"} |= "a"', "start": "1", "max_interval": "soon"},
     "invalid max_interval: valid time units are 's', 'm', 'h'"),
], ids=["no-query", "no-start", "bad-start", "bad-end", "start-after-end", "future", "metric-query",
        "unparsable", "bad-max-interval"])
def test_bad_requests_are_refused_with_lokis_messages(server, params, message):
    r = post_delete(server, **params)
    assert r.status_code == 400, r.text
    assert r.text.startswith(message), r.text
    assert all(d["query"] != params.get("query") for d in list_deletes(server))
