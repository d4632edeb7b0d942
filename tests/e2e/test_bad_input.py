"""Bad requests get a 4xx naming the problem; the server keeps serving and loses nothing."""

import gzip
import json

import pytest

from conftest import now_ns, unique

DAY = 86_400 * 10**9


@pytest.fixture(scope="module")
def canary(server):
    """Lines acknowledged before any bad request; they must survive all of them."""
    test = unique()
    entries = server.push_lines({"test": test, "app": "canary"}, [f"canary {i}" for i in range(5)],
                                now_ns() - 60 * 10**9)
    return f'{{test="{test}"}}', entries


def push_json(labels, values):
    return json.dumps({"streams": [{"stream": labels, "values": values}]}), "application/json"


def now_s():
    return str(now_ns())


BAD_PUSHES = {
    # id: (body, content type, words the error must contain, lower-cased)
    "malformed-json": ('{"streams": [{"stream": {"app": "x"}, "values": [["1", "a"]', "application/json",
                       ["json"]),
    "values-not-pairs": (json.dumps({"streams": [{"stream": {"app": "x"}, "values": [["only-ts"]]}]}),
                         "application/json", []),
    "bad-snappy": (b"\x00\x01this is not snappy compressed protobuf\xff\xfe", "application/x-protobuf",
                   ["snappy"]),
    "invalid-label-name": (lambda: push_json({"1bad-name": "x"}, [[now_s(), "line"]]), None, ["label"]),
    "oversized-line": (lambda: push_json({"app": "big"}, [[now_s(), "x" * (300 * 1024)]]), None,
                       ["size"]),
    "too-old": (lambda: push_json({"app": "old"}, [[str(now_ns() - 30 * DAY), "old line"]]), None,
                ["too old"]),
    "too-new": (lambda: push_json({"app": "future"}, [[str(now_ns() + DAY), "future line"]]), None,
                ["too new"]),
    "non-utf8-json": (b'{"streams":[{"stream":{"app":"x"},"values":[["1","\xff\xfe bad"]]}]}',
                      "application/json", ["json"]),
    "non-utf8-protobuf": (lambda: (snappy_literal(push_proto('{app="x"}', now_ns(), b"\xff\xfe bad")),
                                   "application/x-protobuf"), None, ["protobuf"]),
}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def push_proto(labels, ts_ns, line):
    """Loki's PushRequest with one stream and one entry, written by hand."""
    timestamp = varint(1 << 3) + varint(ts_ns // 10**9)
    entry = field(1, timestamp) + field(2, line)
    return field(1, field(1, labels.encode()) + field(2, entry))


def snappy_literal(data):
    """Snappy block format holding `data` as literals only (valid, uncompressed)."""
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 60):
        chunk = data[i:i + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)


@pytest.mark.parametrize("case", BAD_PUSHES, ids=list(BAD_PUSHES))
def test_bad_push_is_refused_with_a_reason_and_nothing_is_lost(server, canary, case):
    body, content_type, words = BAD_PUSHES[case]
    if callable(body):
        body, content_type = body()
    r = server.http.post(server.url + "/loki/api/v1/push", data=body,
                         headers={"Content-Type": content_type}, timeout=10)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.text.strip(), "the error body must explain the problem"
    for word in words:
        assert word in r.text.lower(), r.text
    assert_still_serving(server, canary)


def test_refused_entries_are_not_stored(server):
    test, ts = unique(), now_ns() - 30 * DAY
    body, content_type = push_json({"test": test}, [[str(ts), "too old"]])
    r = server.http.post(server.url + "/loki/api/v1/push", data=body, headers={"Content-Type": content_type},
                         timeout=10)
    assert r.status_code == 400, r.text
    assert server.entries(f'{{test="{test}"}}', start=ts - 10**9, end=ts + 10**9) == []


def test_a_push_with_some_bad_entries_keeps_the_good_ones(server):
    """As Loki: the valid entries are stored, the answer is 400 naming what was dropped."""
    test, fresh = unique(), now_ns() - 60 * 10**9
    body, content_type = push_json({"test": test}, [[str(now_ns() - 30 * DAY), "too old"], [str(fresh), "fresh"]])
    r = server.http.post(server.url + "/loki/api/v1/push", data=body, headers={"Content-Type": content_type},
                         timeout=10)
    assert r.status_code == 400, r.text
    assert "too old" in r.text and "1 out of 2" in r.text, r.text
    assert server.entries(f'{{test="{test}"}}') == [(fresh, "fresh")]


@pytest.mark.parametrize("query", ['{app="x"', '{app="x"} |= ', 'sum(rate({app="x"}[5m])', '{app=~"("}'])
def test_logql_syntax_error_is_a_400_with_the_position(server, canary, query):
    r = server.get("/loki/api/v1/query_range", query=query)
    assert r.status_code == 400, r.text
    assert "parse error at line 1, col" in r.text, r.text
    assert_still_serving(server, canary)


def test_bad_query_parameters_are_400(server):
    for params in [{"query": '{app="x"}', "start": "yesterday"},
                   {"query": '{app="x"}', "limit": "-1"},
                   {"query": '{app="x"}', "direction": "sideways"},
                   {"query": '{app="x"}', "start": "2000", "end": "1000"}]:
        r = server.get("/loki/api/v1/query_range", **params)
        assert r.status_code == 400, (params, r.status_code, r.text)
        assert r.text.strip(), params


def assert_still_serving(server, canary):
    assert server.get("/ready").status_code == 200
    query, entries = canary
    assert server.entries(query, direction="forward") == entries


def test_decompression_bomb_is_refused_before_it_is_expanded(server, canary):
    bomb = gzip.compress(b"0" * (300 * 1024 * 1024), compresslevel=1)
    r = server.http.post(server.url + "/loki/api/v1/push", data=bomb,
                         headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, timeout=30)
    assert r.status_code == 413, (r.status_code, r.text)
    assert "larger than the limit" in r.text, r.text
    assert_still_serving(server, canary)


def test_the_hand_written_protobuf_is_accepted_when_valid(server):
    """Guards the non-UTF-8 case above: the same bytes with a valid line are stored."""
    test = unique()
    body = snappy_literal(push_proto(f'{{test="{test}"}}', now_ns(), b"valid line"))
    r = server.http.post(server.url + "/loki/api/v1/push", data=body,
                         headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert r.status_code == 204, (r.status_code, r.text)
