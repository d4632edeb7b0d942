"""index/stats, index/volume and index/volume_range: answered from the index, in the
head and after a flush into blocks, with the numbers the pushed data implies."""

from conftest import now_ns, unique

SECOND = 10**9
MINUTE = 60 * SECOND


def push_known(server, test):
    """Three streams: gw/prod 3 lines of 10 bytes, gw/dev 2 of 20, vllm/prod 1 of 5.

    Every line sits in the middle of the same minute [base, base + 1m), ten minutes ago."""
    base = (now_ns() - 10 * MINUTE) // MINUTE * MINUTE
    at = base + 30 * SECOND
    server.push_lines({"test": test, "app": "gw", "env": "prod"}, ["a" * 10] * 3, at)
    server.push_lines({"test": test, "app": "gw", "env": "dev"}, ["b" * 20] * 2, at)
    server.push_lines({"test": test, "app": "vllm", "env": "prod"}, ["c" * 5], at)
    return base


def volumes(server, path, **params):
    r = server.get(path, **params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]


def check_stats_and_volume(server, test, base):
    r = server.get("/loki/api/v1/index/stats", query=f'{{test="{test}"}}',
                   start=str(base - MINUTE), end=str(base + MINUTE))
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["streams"] == 3
    assert stats["entries"] == 6
    assert stats["bytes"] == 3 * 10 + 2 * 20 + 5
    assert stats["chunks"] >= 3

    # Default aggregation: the labels the selector names (`test` and `app`).
    data = volumes(server, "/loki/api/v1/index/volume", query=f'{{test="{test}", app=~".+"}}',
                   start=str(base - MINUTE), end=str(base + MINUTE))
    assert data["resultType"] == "vector"
    got = [(s["metric"], s["value"][1]) for s in data["result"]]
    assert got == [({"test": test, "app": "gw"}, "70"), ({"test": test, "app": "vllm"}, "5")]

    # targetLabels replaces the selector's names; limit keeps the largest.
    data = volumes(server, "/loki/api/v1/index/volume", query=f'{{test="{test}"}}',
                   targetLabels="env", limit="1", start=str(base - MINUTE), end=str(base + MINUTE))
    assert [(s["metric"], s["value"][1]) for s in data["result"]] == [({"env": "dev"}, "40")]

    # aggregateBy=labels: one series per label name, with an empty value.
    data = volumes(server, "/loki/api/v1/index/volume", query=f'{{test="{test}"}}',
                   targetLabels="app,env", aggregateBy="labels",
                   start=str(base - MINUTE), end=str(base + MINUTE))
    assert sorted((tuple(s["metric"].items()), s["value"][1]) for s in data["result"]) == [
        ((("app", ""),), "75"), ((("env", ""),), "75")]

    # volume_range: every byte lands in the step whose window (t - step, t] holds it.
    data = volumes(server, "/loki/api/v1/index/volume_range", query=f'{{test="{test}"}}',
                   targetLabels="app", step="60", start=str(base - MINUTE), end=str(base + 2 * MINUTE))
    assert data["resultType"] == "matrix"
    series = {s["metric"]["app"]: s["values"] for s in data["result"]}
    assert series == {"gw": [[base / SECOND + 60, "70"]], "vllm": [[base / SECOND + 60, "5"]]}


def test_index_endpoints_in_the_head_and_in_blocks(server):
    test = unique()
    base = push_known(server, test)
    check_stats_and_volume(server, test, base)
    r = server.http.post(server.url + "/flush", timeout=30)
    assert r.status_code in (200, 204), r.text
    check_stats_and_volume(server, test, base)


def test_index_endpoints_outside_the_range_and_bad_input(server):
    test = unique()
    base = push_known(server, test)
    r = server.get("/loki/api/v1/index/stats", query=f'{{test="{test}"}}',
                   start=str(base - 10 * MINUTE), end=str(base - 5 * MINUTE))
    assert r.json() == {"streams": 0, "chunks": 0, "entries": 0, "bytes": 0}
    for path, params, words in [
        ("/loki/api/v1/index/stats", {}, "query"),
        ("/loki/api/v1/index/volume", {"query": "{test="}, "parse error"),
        ("/loki/api/v1/index/volume", {"query": 'rate({a="b"}[1m])'}, "stream selector"),
        ("/loki/api/v1/index/volume", {"query": '{a="b"}', "aggregateBy": "pods"}, "aggregateBy"),
        ("/loki/api/v1/index/volume_range", {"query": '{a="b"}', "step": "0"}, "step"),
    ]:
        r = server.get(path, **params)
        assert r.status_code == 400, (path, params, r.text)
        assert words in r.text, (path, params, r.text)
