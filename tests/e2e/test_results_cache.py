"""The results cache of metric range queries: a repeated query is answered from cached
splits with the same result; late data and deletions are never hidden by it."""

import re

from conftest import now_ns, unique

SECOND = 10**9
HOUR = 3600 * SECOND


def cache_counter(server, name):
    text = server.get("/metrics").text
    m = re.search(rf"^inferscope_query_results_cache_{name}_total (\S+)$", text, re.M)
    assert m, text
    return float(m.group(1))


def counts(server, query, start, end, headers=None):
    r = server.http.get(server.url + "/loki/api/v1/query_range", headers=headers or {}, timeout=30,
                        params={"query": query, "start": str(start), "end": str(end), "step": "3600"})
    assert r.status_code == 200, r.text
    return {v[0]: v[1] for s in r.json()["data"]["result"] for v in s["values"]}


def test_repeated_query_hits_the_cache_and_late_data_invalidates_it(server):
    test = unique()
    now = now_ns()
    base = now // HOUR * HOUR - 8 * HOUR  # eight whole hours ago
    # Three lines in each of hours 1..4 after base.
    for h in range(1, 5):
        server.push_lines({"test": test}, [f"line {h} {i}" for i in range(3)], base + h * HOUR + 60 * SECOND,
                          step_ns=SECOND)
    query = f'sum(count_over_time({{test="{test}"}}[1h]))'
    start, end = base, base + 6 * HOUR
    hits, misses = cache_counter(server, "hits"), cache_counter(server, "misses")
    first = counts(server, query, start, end)
    assert first == {(base + h * HOUR) / SECOND + 3600: "3" for h in range(1, 5)}
    assert cache_counter(server, "misses") > misses
    assert cache_counter(server, "hits") == hits

    second = counts(server, query, start, end)
    assert second == first
    assert cache_counter(server, "hits") > hits

    # A late line in an old, cached hour: the next answer includes it.
    server.push_lines({"test": test}, ["late line"], base + 2 * HOUR + 30 * 60 * SECOND)
    third = counts(server, query, start, end)
    assert third[(base + 3 * HOUR) / SECOND] == "4", third

    # Cache-Control: no-cache bypasses the cache (and still answers the same).
    hits = cache_counter(server, "hits")
    assert counts(server, query, start, end, headers={"Cache-Control": "no-cache"}) == third
    assert cache_counter(server, "hits") == hits


def test_a_deletion_is_never_hidden_by_the_cache(server):
    test = unique()
    base = now_ns() // HOUR * HOUR - 8 * HOUR
    for h in range(1, 4):
        server.push_lines({"test": test, "kind": "keep"}, ["keep"], base + h * HOUR + 60 * SECOND)
        server.push_lines({"test": test, "kind": "drop"}, ["drop"], base + h * HOUR + 60 * SECOND)
    query = f'sum(count_over_time({{test="{test}"}}[1h]))'
    start, end = base, base + 5 * HOUR
    assert set(counts(server, query, start, end).values()) == {"2"}
    assert set(counts(server, query, start, end).values()) == {"2"}  # now from the cache
    r = server.http.post(server.url + "/loki/api/v1/delete", timeout=30, params={
        "query": f'{{test="{test}", kind="drop"}}', "start": str(base // SECOND), "end": str(end // SECOND)})
    assert r.status_code == 204, r.text
    assert set(counts(server, query, start, end).values()) == {"1"}
