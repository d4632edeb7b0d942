"""Starts real `inferscope serve` processes and talks to them over the Loki HTTP API."""

import gzip
import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import uuid

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BINARY = pathlib.Path(os.environ.get("INFERSCOPE_BIN", TARGET / "debug" / "inferscope"))
HTTP_TIMEOUT = 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=15.0, what="condition"):
    """Polls `predicate` until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def now_ns():
    return time.time_ns()


def unique():
    """A label value no other test uses."""
    return uuid.uuid4().hex[:12]


class Server:
    """One `inferscope serve` process; keeps its data dir and ports across restarts."""

    def __init__(self, data_dir, config=None, args=()):
        self.data_dir = pathlib.Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.args = list(args)
        self.http_port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.server.log"
        self.proc = None
        self.http = requests.Session()

    def start(self):
        assert BINARY.is_file(), f"{BINARY} missing: run `cargo build -p inferscope-server` or set INFERSCOPE_BIN"
        cmd = [str(BINARY), "serve", "--data-dir", str(self.data_dir),
               "--listen", f"127.0.0.1:{self.http_port}",
               "--grpc-listen", f"127.0.0.1:{self.grpc_port}"]
        if self.config:
            cmd += ["--config", str(self.config)]
        cmd += self.args
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._ready, timeout=30, what=f"GET {self.url}/ready == 200")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return requests.get(self.url + "/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log(self):
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Sends `sig` and returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc and self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server ignored signal {sig} for {timeout}s")

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        return self.start()

    # --- Loki HTTP API -------------------------------------------------------------------

    def get(self, path, **params):
        return self.http.get(self.url + path, params=params, timeout=HTTP_TIMEOUT)

    def push(self, streams, compress=False):
        """POST /loki/api/v1/push with a JSON body; `streams` is a list of
        `{"stream": {...}, "values": [[ns, line(, metadata)], ...]}`."""
        body = json.dumps({"streams": streams}).encode()
        headers = {"Content-Type": "application/json"}
        if compress:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return self.http.post(self.url + "/loki/api/v1/push", data=body, headers=headers,
                              timeout=HTTP_TIMEOUT)

    def push_lines(self, labels, lines, start_ns, step_ns=1_000_000):
        """Pushes `lines` into one stream, `step_ns` apart; asserts 204; returns the entries."""
        values = [[str(start_ns + i * step_ns), line] for i, line in enumerate(lines)]
        r = self.push([{"stream": labels, "values": values}])
        assert r.status_code == 204, r.text
        return [(int(ts), line) for ts, line in values]

    def query_range(self, query, **params):
        """GET /loki/api/v1/query_range; asserts a successful streams answer; returns `data`."""
        r = self.get("/loki/api/v1/query_range", query=query, **params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success", body
        data = body["data"]
        assert data["resultType"] == "streams", data
        assert isinstance(data["stats"], dict), data
        for s in data["result"]:
            assert isinstance(s["stream"], dict) and s["values"], s
            for value in s["values"]:
                ts, line = value  # [ "<ns since epoch as a string>", "<line>" ]
                assert isinstance(ts, str) and ts.isdigit() and isinstance(line, str), value
        return data

    def entries(self, query, **params):
        """(ts, line) pairs of all returned streams, sorted by time in the query's direction."""
        data = self.query_range(query, **params)
        out = [(int(ts), line) for s in data["result"] for ts, line in s["values"]]
        return sorted(out, reverse=params.get("direction", "backward") == "backward")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A server shared by the tests that only add their own uniquely-labelled streams."""
    s = Server(tmp_path_factory.mktemp("shared") / "data").start()
    yield s
    s.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """A server of the test's own, on an empty data dir; started by the test."""
    s = Server(tmp_path / "data")
    yield s
    s.stop(signal.SIGKILL)
