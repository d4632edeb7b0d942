"""labels, label values, series, buildinfo and ready, on a server holding known streams only."""

import pytest

from conftest import Server, now_ns

STREAMS = [
    {"namespace": "llm-prod", "app": "aigateway", "level": "INFO"},
    {"namespace": "llm-prod", "app": "aigateway", "level": "ERROR"},
    {"namespace": "llm-prod", "app": "vllm", "role": "decode"},
    {"namespace": "llm-staging", "app": "vllm", "role": "prefill"},
]
# Loki 3 may add `service_name` (discover_service_name); it is not part of what we pushed.
DERIVED = {"service_name"}


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("metadata") / "data").start()
    start = now_ns() - 60_000_000_000
    for i, labels in enumerate(STREAMS):
        s.push_lines(labels, [f"line of stream {i}"], start + i)
    yield s
    s.stop()


def ok(r):
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return body.get("data")


def strip(labels):
    return {k: v for k, v in labels.items() if k not in DERIVED}


def test_labels_lists_every_label_name_sorted(known):
    names = ok(known.get("/loki/api/v1/labels"))
    assert names == sorted(names)
    assert [n for n in names if n not in DERIVED] == ["app", "level", "namespace", "role"]


def test_labels_outside_the_time_range_are_empty(known):
    hour = 3600 * 10**9
    data = ok(known.get("/loki/api/v1/labels", start=now_ns() - 5 * hour, end=now_ns() - 4 * hour))
    assert data in ([], None)  # Loki omits the list when nothing matches


@pytest.mark.parametrize("name, values", [
    ("app", ["aigateway", "vllm"]),
    ("namespace", ["llm-prod", "llm-staging"]),
    ("role", ["decode", "prefill"]),
    ("level", ["ERROR", "INFO"]),
])
def test_label_values(known, name, values):
    assert ok(known.get(f"/loki/api/v1/label/{name}/values")) == values


def test_label_values_restricted_by_query(known):
    data = ok(known.get("/loki/api/v1/label/role/values", query='{namespace="llm-staging"}'))
    assert data == ["prefill"]


def test_series_match_selects_exactly_the_matching_streams(known):
    data = ok(known.get("/loki/api/v1/series", **{"match[]": '{app="vllm"}'}))
    got = sorted((strip(s) for s in data), key=sorted_items)
    assert got == sorted(STREAMS[2:], key=sorted_items)

    data = ok(known.get("/loki/api/v1/series", **{"match[]": '{app="aigateway", level=~"ERR.*"}'}))
    assert [strip(s) for s in data] == [STREAMS[1]]


def test_series_with_several_matchers_is_their_union(known):
    r = known.http.get(known.url + "/loki/api/v1/series", timeout=10,
                       params=[("match[]", '{role="decode"}'), ("match[]", '{level="INFO"}')])
    got = sorted((strip(s) for s in ok(r)), key=sorted_items)
    assert got == sorted([STREAMS[0], STREAMS[2]], key=sorted_items)


def test_series_also_accepts_post_form(known):
    r = known.http.post(known.url + "/loki/api/v1/series", data={"match[]": '{namespace="llm-staging"}'},
                        timeout=10)
    assert [strip(s) for s in ok(r)] == [STREAMS[3]]


def sorted_items(labels):
    return sorted(labels.items())


def test_buildinfo(known):
    r = known.get("/loki/api/v1/status/buildinfo")
    assert r.status_code == 200, r.text
    info = r.json()
    assert isinstance(info["version"], str) and info["version"]


def test_ready(known):
    r = known.get("/ready")
    assert r.status_code == 200
    assert r.text.strip() == "ready"
