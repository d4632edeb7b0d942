"""Secret redaction: secrets in lines (JSON, logfmt, plain text) and structured metadata are
replaced by `[REDACTED:<kind>]` before anything is written. Checked through the query API,
in the raw files of the data dir (WAL segments, and Parquet blocks after /flush with their
zstd pages decompressed), and in /metrics; `redaction: {enabled: false}` stores lines as sent."""

import json
import pathlib
import re
import signal

import pytest
import requests
import zstandard

from conftest import HTTP_TIMEOUT, Server, now_ns, unique

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjoxOTk5OTk5OTk5fQ"
       ".Xk3fQ9vW1pLmN8rT2yU5bH7cD4eA6gJ0sK9qZ1wE3xR")
BEARER = "ya29A0ARrdaM8x7Qk2LmZp4TnV6WcYb1"
OPENAI = "sk-proj-Zq8Xw7Vu6Ts5Rr4Qp3On2Ml1Kk0Jj9Ii8Hh7"
ANTHROPIC = "sk-ant-api03-Pp9Oo8Ii7Uu6Yy5Tt4Rr3Ee2Ww1Qq0AaSsDdFf-gHjK"
HF = "hf_QwErTyUiOpAsDfGhJkLzXcVbNm1234567890"
AKIA = "AKIAZ7Q3N5W2LM4KX9PB"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8sN3kLm2"
AWS_SECRET_ENV = "Tq7/Rm2+Wx9Lk4Jp1Hn6Gf3Ds8Az5Cv0Bq7Xe2Yu"

SECRETS = [JWT, BEARER, OPENAI, ANTHROPIC, HF, AKIA, AWS_SECRET, AWS_SECRET_ENV]

# (line, structured metadata or None)
ENTRIES = [
    (json.dumps({"level": "info", "msg": "login", "token": JWT}), None),
    (f"GET /v1/models Authorization: Bearer {BEARER} status=200", None),
    (json.dumps({"headers": {"authorization": f"Bearer {BEARER}"}, "path": "/v1/chat"}), None),
    (f"level=info msg=\"calling openai\" api_key={OPENAI} model=gpt-4o", None),
    (f"using anthropic key {ANTHROPIC} for claude", None),
    ("downloading weights", {"hf_token": HF, "trace_id": "abc123"}),
    (f"level=warn aws_access_key_id={AKIA} aws_secret_access_key={AWS_SECRET}", None),
    (json.dumps({"aws_secret_access_key": AWS_SECRET, "region": "us-east-1"}), None),
    (f"env: AWS_SECRET_ACCESS_KEY={AWS_SECRET_ENV} AWS_REGION=eu-west-1", None),
    ("an ordinary line without secrets, Bearer token missing", None),
    # A JSON escape hides the key from the line's scan; normalization decodes it into the
    # user_id metadata it copies, which is then redacted on its own.
    (json.dumps({"msg": "escaped", "user_id": OPENAI}).replace("sk-proj-", "sk\\u002dproj-"), None),
]

KINDS = {"jwt": 1, "bearer_token": 2, "openai_key": 2, "anthropic_key": 1, "huggingface_token": 1,
         "aws_access_key_id": 1, "aws_secret_access_key": 3}


def push_entries(server, test, start):
    values = []
    for i, (line, metadata) in enumerate(ENTRIES):
        value = [str(start + i), line]
        if metadata:
            value.append(metadata)
        values.append(value)
    r = server.push([{"stream": {"test": test, "app": "redaction"}, "values": values}])
    assert r.status_code == 204, r.text


def query_text(server, test, start):
    r = server.get("/loki/api/v1/query_range", query=f'{{test="{test}"}}', start=str(start - 10**9),
                   end=str(now_ns() + 10**9), direction="forward", limit=100)
    assert r.status_code == 200, r.text
    # Entries with structured metadata come back as streams of their own: order by time.
    values = sorted((int(v[0]), v[1]) for st in r.json()["data"]["result"] for v in st["values"])
    return r.text, [line for _, line in values]


def data_files(data_dir):
    return [p for p in pathlib.Path(data_dir).rglob("*") if p.is_file()]


def zstd_frames(data):
    """The decompressed contents of every zstd frame found in `data` (Parquet pages)."""
    out = []
    for m in re.finditer(re.escape(b"\x28\xb5\x2f\xfd"), data):
        try:
            out.append(zstandard.ZstdDecompressor().decompressobj().decompress(data[m.start():]))
        except zstandard.ZstdError:
            pass  # the magic bytes inside other data, not a frame
    return b"".join(out)


@pytest.fixture
def redacting(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop(signal.SIGKILL)


def test_no_secret_is_readable_or_stored(redacting):
    s, test, start = redacting, unique(), now_ns()
    push_entries(s, test, start)

    # (a) The query API: markers instead of secrets, in lines and structured metadata.
    text, lines = query_text(s, test, start)
    for secret in SECRETS:
        assert secret not in text, secret
    assert len(lines) == len(ENTRIES)
    assert json.loads(lines[0])["token"] == "[REDACTED:jwt]"
    assert "Authorization: Bearer [REDACTED:bearer_token] status=200" in lines[1]
    assert json.loads(lines[2])["headers"]["authorization"] == "Bearer [REDACTED:bearer_token]"
    assert "api_key=[REDACTED:openai_key] model=gpt-4o" in lines[3]
    assert "[REDACTED:anthropic_key]" in lines[4]
    assert "[REDACTED:huggingface_token]" in text and "abc123" in text
    assert "aws_access_key_id=[REDACTED:aws_access_key_id] aws_secret_access_key=[REDACTED:aws_secret_access_key]" in lines[6]
    assert json.loads(lines[7]) == {"aws_secret_access_key": "[REDACTED:aws_secret_access_key]", "region": "us-east-1"}
    assert "AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_access_key] AWS_REGION=eu-west-1" in lines[8]
    assert lines[9] == ENTRIES[9][0], "a line without secrets is stored byte for byte"

    # (b) The WAL on disk: uncompressed, so a plain byte search is conclusive.
    wal = b"".join(p.read_bytes() for p in data_files(s.data_dir))
    assert b"[REDACTED:jwt]" in wal, "the WAL holds the redacted lines"
    for secret in SECRETS:
        assert secret.encode() not in wal, secret

    # ... and the Parquet blocks after a flush, zstd pages decompressed.
    r = requests.post(s.url + "/flush", timeout=30)
    assert r.status_code == 204, r.text
    blocks = [p for p in data_files(s.data_dir) if p.suffix == ".parquet"]
    assert blocks, sorted(str(p) for p in data_files(s.data_dir))
    raw = b"".join(p.read_bytes() for p in data_files(s.data_dir))
    pages = zstd_frames(b"".join(p.read_bytes() for p in blocks))
    assert b"[REDACTED:openai_key]" in pages, "the decompressed pages hold the lines"
    for secret in SECRETS:
        assert secret.encode() not in raw and secret.encode() not in pages, secret
    text, _ = query_text(s, test, start)
    for secret in SECRETS:
        assert secret not in text, secret

    # (c) /metrics counts them, by tenant and kind, and the lines redacted.
    metrics = requests.get(s.url + "/metrics", timeout=HTTP_TIMEOUT).text
    for kind, n in KINDS.items():
        assert f'inferscope_redactions_total{{tenant="fake",kind="{kind}"}} {n}' in metrics, (kind, metrics)
    assert 'inferscope_ingest_lines_redacted_total{tenant="fake"} 10' in metrics, metrics
    assert 'inferscope_ingest_lines_received_total{tenant="fake"} 11' in metrics, metrics
    # Never in the server's own log either.
    log = s.log_path.read_text(errors="replace")
    for secret in SECRETS:
        assert secret not in log


def test_custom_patterns_and_disabled_tenants(tmp_path):
    config = tmp_path / "inferscope.yaml"
    config.write_text("""auth_enabled: true
redaction:
  disabled_tenants: [raw-team]
  patterns:
    - name: password
      regex: 'password=(\\S+)'
""")
    s = Server(tmp_path / "data", config=config).start()
    try:
        test, start = unique(), now_ns()
        line = f"user=bob password=hunter2 key={OPENAI}"
        for tenant in ("team", "raw-team"):
            body = {"streams": [{"stream": {"test": test}, "values": [[str(start), line]]}]}
            r = requests.post(s.url + "/loki/api/v1/push", json=body,
                              headers={"X-Scope-OrgID": tenant}, timeout=HTTP_TIMEOUT)
            assert r.status_code == 204, r.text

        def stored(tenant):
            r = requests.get(s.url + "/loki/api/v1/query_range", headers={"X-Scope-OrgID": tenant},
                             params={"query": f'{{test="{test}"}}', "start": str(start - 10**9)},
                             timeout=HTTP_TIMEOUT)
            assert r.status_code == 200, r.text
            return [v[1] for st in r.json()["data"]["result"] for v in st["values"]]

        assert stored("team") == ["user=bob password=[REDACTED:password] key=[REDACTED:openai_key]"]
        assert stored("raw-team") == [line]
        metrics = requests.get(s.url + "/metrics", timeout=HTTP_TIMEOUT).text
        assert 'inferscope_redactions_total{tenant="team",kind="password"} 1' in metrics, metrics
        assert 'tenant="raw-team",kind=' not in metrics
    finally:
        s.stop(signal.SIGKILL)


def test_an_invalid_pattern_refuses_to_start_naming_it(tmp_path):
    config = tmp_path / "inferscope.yaml"
    config.write_text("redaction:\n  patterns:\n    - {name: broken_rule, regex: 'tok(['}\n")
    s = Server(tmp_path / "data", config=config)
    with pytest.raises(AssertionError, match="server exited"):
        s.start()
    assert "broken_rule" in s.log_path.read_text(errors="replace")


def test_disabled_redaction_stores_lines_byte_exact(tmp_path):
    config = tmp_path / "inferscope.yaml"
    config.write_text("redaction:\n  enabled: false\n")
    s = Server(tmp_path / "data", config=config).start()
    try:
        test, start = unique(), now_ns()
        push_entries(s, test, start)
        _, lines = query_text(s, test, start)
        assert lines == [line for line, _ in ENTRIES]
        metrics = requests.get(s.url + "/metrics", timeout=HTTP_TIMEOUT).text
        assert "inferscope_redactions_total{" not in metrics
    finally:
        s.stop(signal.SIGKILL)
