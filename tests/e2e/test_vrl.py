"""Per-tenant VRL transforms (`ingest.transforms`): a tenant's program rewrites its entries at
ingest, other tenants' entries are stored as sent; an entry the program fails on is stored
unchanged with `vrl_error` structured metadata; a program that does not compile refuses startup
with the tenant named."""

import signal

import pytest
import requests

from conftest import HTTP_TIMEOUT, Server, now_ns, unique

PROGRAM = """
if .labels.format == "json" {
  parsed = object!(parse_json!(.message))
  if exists(parsed.msg) && !exists(parsed.message) {
    .message = parsed.msg
  }
  .metadata.user = parsed.user
  .labels.transformed = "yes"
}
"""

JSON_LINE = '{"msg":"hello from go","user":"u1","level":"info"}'
PLAIN_LINE = "not json at all: user=u2"


def indent(text, spaces):
    return "".join(" " * spaces + line + "\n" for line in text.strip("\n").splitlines())


@pytest.fixture
def vrl_server(tmp_path):
    config = tmp_path / "inferscope.yaml"
    config.write_text("auth_enabled: true\ningest:\n  transforms:\n    - tenant: team-a\n"
                      "      source: |\n" + indent(PROGRAM, 8))
    s = Server(tmp_path / "data", config=config).start()
    yield s
    s.stop(signal.SIGKILL)


def push(s, tenant, labels, lines, start):
    values = [[str(start + i), line] for i, line in enumerate(lines)]
    r = requests.post(s.url + "/loki/api/v1/push", json={"streams": [{"stream": labels, "values": values}]},
                      headers={"X-Scope-OrgID": tenant}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 204, r.text


def query(s, tenant, q, start):
    """(stream labels with metadata, line) pairs, oldest first."""
    r = requests.get(s.url + "/loki/api/v1/query_range", headers={"X-Scope-OrgID": tenant},
                     params={"query": q, "start": str(start - 10**9), "end": str(now_ns() + 10**9),
                             "direction": "forward", "limit": "100"},
                     timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    values = [(int(v[0]), st["stream"], v[1]) for st in r.json()["data"]["result"] for v in st["values"]]
    return [(stream, line) for _, stream, line in sorted(values, key=lambda v: v[0])]


def test_only_the_tenants_entries_are_transformed(vrl_server):
    s, test, start = vrl_server, unique(), now_ns()
    labels = {"test": test, "format": "json"}
    for tenant in ("team-a", "team-b"):
        push(s, tenant, labels, [JSON_LINE, PLAIN_LINE], start)

    a = query(s, "team-a", f'{{test="{test}"}}', start)
    assert [line for _, line in a] == ["hello from go", PLAIN_LINE], a
    transformed, failed = a[0][0], a[1][0]
    assert transformed["transformed"] == "yes" and transformed["user"] == "u1", transformed
    assert "vrl_error" not in transformed
    assert "transformed" not in failed and "user" not in failed, failed
    assert "parse_json" in failed["vrl_error"], failed
    # The transformed entry moved to a stream with the label the program added.
    assert query(s, "team-a", f'{{test="{test}", transformed="yes"}}', start) == [a[0]]

    errors = query(s, "team-a", f'{{test="{test}"}} | vrl_error != ""', start)
    assert [line for _, line in errors] == [PLAIN_LINE], errors

    b = query(s, "team-b", f'{{test="{test}"}}', start)
    assert [line for _, line in b] == [JSON_LINE, PLAIN_LINE], b
    for stream, _ in b:
        assert "transformed" not in stream and "vrl_error" not in stream and "user" not in stream, stream
    assert query(s, "team-b", f'{{test="{test}"}} | vrl_error != ""', start) == []

    metrics = requests.get(s.url + "/metrics", timeout=HTTP_TIMEOUT).text
    assert 'inferscope_vrl_entries_total{tenant="team-a",outcome="ok"} 1' in metrics, metrics
    assert 'inferscope_vrl_entries_total{tenant="team-a",outcome="error"} 1' in metrics, metrics
    assert 'inferscope_vrl_entries_total{tenant="team-b"' not in metrics


def test_a_bad_program_refuses_to_start_naming_the_tenant(tmp_path):
    config = tmp_path / "inferscope.yaml"
    config.write_text("auth_enabled: true\ningest:\n  transforms:\n    - tenant: team-broken\n"
                      "      source: '. = parse_json(.message'\n")
    s = Server(tmp_path / "data", config=config)
    with pytest.raises(AssertionError, match="server exited"):
        s.start()
    log = s.log_path.read_text(errors="replace")
    assert "team-broken" in log, log
    assert "error[E" in log, log
