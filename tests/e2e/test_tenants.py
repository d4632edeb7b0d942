"""Tenant isolation with `auth_enabled: true` (X-Scope-OrgID, as in Loki), and the bearer
tokens of `auth.tokens`: permissions, wrong tokens, an org id that is not the token's."""

import json
import signal
import time
from urllib.parse import urlencode

import pytest
import requests
import websocket

from conftest import HTTP_TIMEOUT, Server, now_ns, unique

PUSH_TOKEN = "push-only-token-0123456789"
QUERY_TOKEN = "query-only-token-0123456789"
BOTH_TOKEN = "team-b-token-0123456789abc"


def push(server, headers, labels, lines, ts):
    body = {"streams": [{"stream": labels, "values": [[str(ts + i), line] for i, line in enumerate(lines)]}]}
    return requests.post(server.url + "/loki/api/v1/push", data=json.dumps(body),
                         headers={"Content-Type": "application/json", **headers}, timeout=HTTP_TIMEOUT)


def get(server, path, headers, **params):
    return requests.get(server.url + path, params=params, headers=headers, timeout=HTTP_TIMEOUT)


def org(tenant):
    return {"X-Scope-OrgID": tenant}


def bearer(token, **extra):
    return {"Authorization": f"Bearer {token}", **extra}


@pytest.fixture
def multi_tenant(tmp_path):
    config = tmp_path / "inferscope.yaml"
    config.write_text("auth_enabled: true\n")
    s = Server(tmp_path / "data", config=config).start()
    yield s
    s.stop(signal.SIGKILL)


def visible(server, headers, test, start):
    """What each read API shows the tenant of `headers` of stream `test`."""
    sel = f'{{test="{test}"}}'
    rng = {"start": str(start - 10**9), "end": str(now_ns() + 10**9)}
    out = {}
    r = get(server, "/loki/api/v1/query_range", headers, query=sel, **rng)
    assert r.status_code == 200, r.text
    out["query_range"] = [v[1] for s in r.json()["data"]["result"] for v in s["values"]]
    r = get(server, "/loki/api/v1/labels", headers, **rng)
    assert r.status_code == 200, r.text
    out["labels"] = "test" in (r.json().get("data") or [])
    r = get(server, "/loki/api/v1/label/test/values", headers, **rng)
    assert r.status_code == 200, r.text
    out["label_values"] = test in (r.json().get("data") or [])
    r = get(server, "/loki/api/v1/series", headers, **{"match[]": sel}, **rng)
    assert r.status_code == 200, r.text
    out["series"] = r.json()["data"]
    r = get(server, "/loki/api/v1/index/stats", headers, query=sel, **rng)
    assert r.status_code == 200, r.text
    out["index_stats_entries"] = r.json()["entries"]
    r = get(server, "/loki/api/v1/detected_fields", headers, query=sel, **rng)
    assert r.status_code == 200, r.text
    out["detected_fields"] = sorted(f["label"] for f in r.json()["fields"])
    # Live tail: the stored history from `start`.
    url = server.url.replace("http://", "ws://") + "/loki/api/v1/tail?" + urlencode(
        {"query": sel, "start": str(start - 10**9)})
    ws = websocket.create_connection(url, timeout=10, header=[f"{k}: {v}" for k, v in headers.items()])
    try:
        ws.settimeout(1.5)
        tailed = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                msg = json.loads(ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            tailed += [v[1] for s in msg.get("streams", []) for v in s["values"]]
    finally:
        ws.close()
    out["tail"] = tailed
    return out


def test_tenants_do_not_see_each_other(multi_tenant):
    test, ts = unique(), now_ns()
    lines = ['{"level":"info","user":"alice","msg":"secret plans"}', "level=warn code=7 msg=b"]
    r = push(multi_tenant, org("tenant-a"), {"test": test}, lines, ts)
    assert r.status_code == 204, r.text

    mine = visible(multi_tenant, org("tenant-a"), test, ts)
    assert sorted(mine["query_range"]) == sorted(lines)
    assert mine["labels"] and mine["label_values"]
    # No label names a service: ingest adds Loki's `service_name="unknown_service"`.
    assert mine["series"] == [{"test": test, "service_name": "unknown_service"}]
    assert mine["index_stats_entries"] == 2
    assert "user" in mine["detected_fields"]
    assert sorted(mine["tail"]) == sorted(lines)

    theirs = visible(multi_tenant, org("tenant-b"), test, ts)
    assert theirs == {"query_range": [], "labels": False, "label_values": False, "series": [],
                      "index_stats_entries": 0, "detected_fields": [], "tail": []}


def test_a_request_without_org_id_is_refused(multi_tenant):
    r = push(multi_tenant, {}, {"test": unique()}, ["x"], now_ns())
    assert r.status_code == 401 and r.text.strip() == "no org id", r.text
    for path, params in [("/loki/api/v1/query_range", {"query": '{test="x"}'}), ("/loki/api/v1/labels", {})]:
        r = get(multi_tenant, path, {}, **params)
        assert r.status_code == 401 and r.text.strip() == "no org id", r.text
    assert get(multi_tenant, "/ready", {}).status_code == 200


@pytest.fixture
def with_tokens(tmp_path):
    token_file = tmp_path / "team-b.token"
    token_file.write_text(BOTH_TOKEN + "\n")
    config = tmp_path / "inferscope.yaml"
    config.write_text(f"""auth_enabled: true
auth:
  tokens:
    - token: {PUSH_TOKEN}
      tenant: team-a
      permissions: [push]
    - token: {QUERY_TOKEN}
      tenant: team-a
      permissions: [query]
    - token_file: {token_file}
      tenant: team-b
      permissions: [push, query]
""")
    s = Server(tmp_path / "data", config=config).start()
    yield s
    s.stop(signal.SIGKILL)


def test_tokens_decide_tenant_and_permissions(with_tokens):
    s, test, ts = with_tokens, unique(), now_ns()
    sel = f'{{test="{test}"}}'
    # The push-only token pushes as team-a (no org id needed) but cannot read.
    r = push(s, bearer(PUSH_TOKEN), {"test": test}, ["from a"], ts)
    assert r.status_code == 204, r.text
    r = get(s, "/loki/api/v1/query_range", bearer(PUSH_TOKEN), query=sel)
    assert r.status_code == 403 and "query" in r.text, r.text
    # The query-only token reads team-a, cannot push.
    r = get(s, "/loki/api/v1/query_range", bearer(QUERY_TOKEN), query=sel, start=str(ts - 10**9))
    assert r.status_code == 200, r.text
    assert [v[1] for st in r.json()["data"]["result"] for v in st["values"]] == ["from a"]
    r = push(s, bearer(QUERY_TOKEN), {"test": test}, ["nope"], ts + 10)
    assert r.status_code == 403 and "push" in r.text, r.text
    # team-b's token (from token_file) sees nothing of team-a.
    r = get(s, "/loki/api/v1/query_range", bearer(BOTH_TOKEN), query=sel, start=str(ts - 10**9))
    assert r.status_code == 200 and r.json()["data"]["result"] == [], r.text
    # Wrong or missing token: 401, whatever the org id says.
    for headers in [bearer("not-a-configured-token-000"), org("team-a"), {}, {"Authorization": "Basic eDp5"}]:
        r = get(s, "/loki/api/v1/labels", headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers.get("WWW-Authenticate") == "Bearer"
        assert push(s, headers, {"test": test}, ["x"], ts).status_code == 401
    # A token with an org id that is not its tenant's: 403; its own: fine.
    r = get(s, "/loki/api/v1/labels", bearer(QUERY_TOKEN, **org("team-b")))
    assert r.status_code == 403, r.text
    r = push(s, bearer(BOTH_TOKEN, **org("team-a")), {"test": test}, ["x"], ts)
    assert r.status_code == 403, r.text
    r = get(s, "/loki/api/v1/labels", bearer(QUERY_TOKEN, **org("team-a")))
    assert r.status_code == 200, r.text
    # Health and metrics stay open; the tokens never appear in the log.
    assert get(s, "/ready", {}).status_code == 200
    assert get(s, "/metrics", {}).status_code == 200
    assert get(s, "/loki/api/v1/status/buildinfo", {}).status_code == 200
    log = s.log_path.read_text(errors="replace")
    for token in (PUSH_TOKEN, QUERY_TOKEN, BOTH_TOKEN):
        assert token not in log


def test_tokens_without_auth_enabled_refuse_to_start(tmp_path):
    config = tmp_path / "inferscope.yaml"
    config.write_text(f"auth:\n  tokens:\n    - {{token: {PUSH_TOKEN}, tenant: a, permissions: [push]}}\n")
    s = Server(tmp_path / "data", config=config)
    with pytest.raises(AssertionError, match="server exited"):
        s.start()
    assert "auth.tokens needs auth_enabled: true" in s.log_path.read_text(errors="replace")
