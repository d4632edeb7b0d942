"""The Grafana dashboards shipped in deploy/grafana/*.json: each is a well-formed Grafana 10/11
dashboard model, and every PromQL query in it (panel targets and template variables) is
answered by a real server through the Prometheus API Grafana's Prometheus data source calls.

Grafana's own variables are replaced as Grafana would before sending: `$__rate_interval` by
`5m`, `$__interval` by `1m`, `$__range` by `1h`; the dashboard variables (`$service`,
`$instance`, `$provider`, `$model`) by their "All" value `.*`. The static tests need no
server; the query tests check only that each query is accepted (200, status "success"), not
what it returns.
"""

import json
import pathlib
import re
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))
DATASOURCE_UID = "${datasource}"
HTTP_TIMEOUT = 10

# What Grafana puts in place of its variables before the query leaves the browser.
SUBSTITUTIONS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "service": ".*",
    "instance": ".*",
    "provider": ".*",
    "model": ".*",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$")
# The PromQL subset the dashboards are meant to stay within.
ALLOWED_CALLS = {"rate", "increase", "sum", "avg", "by", "histogram_quantile"}
KNOWN_METRICS = {
    "genai_requests_total",
    "genai_tokens_total",
    "genai_request_duration_seconds_bucket",
    "genai_request_duration_seconds_sum",
    "genai_request_duration_seconds_count",
    "genai_time_to_first_token_seconds_bucket",
    "genai_time_to_first_token_seconds_sum",
    "genai_time_to_first_token_seconds_count",
    "genai_time_per_output_token_seconds_bucket",
    "genai_time_per_output_token_seconds_sum",
    "genai_time_per_output_token_seconds_count",
    "genai_estimated_cost_usd_total",
    "genai_unpriced_tokens_total",
}


def load(path):
    return json.loads(path.read_text())


def panels(dashboard):
    """Every panel, including those folded inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def targets(dashboard):
    """(panel title, target) of every query target."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel.get("title"), target


def query_variables(dashboard):
    return [v for v in dashboard["templating"]["list"] if v.get("type") == "query"]


def variable_query(variable):
    """The query text of a template variable (Grafana 10+ stores an object, older a string)."""
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    return query or variable.get("definition")


def substitute(expr):
    def replace(match):
        name = match.group(1) or match.group(2)
        assert name in SUBSTITUTIONS, f"unknown variable ${name} in {expr!r}"
        return SUBSTITUTIONS[name]

    return VARIABLE.sub(replace, expr)


def dashboard_id(path):
    return path.name


def prom_get(server, path, params):
    return requests.get(server.url + path, params=params, timeout=HTTP_TIMEOUT)


def window():
    end = int(time.time())
    return {"start": end - 3600, "end": end}


# --- static checks: no server -----------------------------------------------------------------

def test_the_four_dashboards_are_shipped():
    names = {p.name for p in DASHBOARDS}
    assert {"genai-service.json", "genai-instance.json", "genai-provider.json",
            "genai-model.json"} <= names, names


def test_dashboard_uids_are_unique():
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids)), uids


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_id)
def test_dashboard_structure(path):
    d = load(path)
    assert isinstance(d.get("title"), str) and d["title"], "title"
    assert isinstance(d.get("uid"), str) and 0 < len(d["uid"]) <= 40, "uid"
    assert d.get("schemaVersion") == 39
    assert d.get("time") == {"from": "now-6h", "to": "now"}
    assert d.get("refresh") == "30s"

    variables = d["templating"]["list"]
    names = [v["name"] for v in variables]
    assert len(names) == len(set(names)), names
    datasource = [v for v in variables if v["name"] == "datasource"]
    assert len(datasource) == 1 and datasource[0]["type"] == "datasource", datasource
    assert datasource[0]["query"] == "prometheus"
    for v in query_variables(d):
        assert v["datasource"]["uid"] == DATASOURCE_UID, v["name"]
        assert LABEL_VALUES.match(variable_query(v)), (v["name"], variable_query(v))

    ids = [p["id"] for p in panels(d)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids {ids}"
    for panel in panels(d):
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, (panel["title"], pos)
        if panel["type"] == "row":
            continue
        title = panel.get("title")
        assert title, panel
        assert panel["datasource"]["uid"] == DATASOURCE_UID, title
        assert panel.get("targets"), f"panel {title!r} has no targets"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), (title, ref_ids)
        for target in panel["targets"]:
            assert isinstance(target.get("expr"), str) and target["expr"].strip(), (title, target)
            assert target["datasource"]["uid"] == DATASOURCE_UID, (title, target)


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_id)
def test_expressions_use_the_supported_subset(path):
    """Balanced brackets, only the allowed functions, only the genai_* series, no variable
    left after substitution: catches typos without a server."""
    d = load(path)
    exprs = [t["expr"] for _, t in targets(d)] + [variable_query(v) for v in query_variables(d)]
    for raw in exprs:
        expr = substitute(raw)
        assert "$" not in expr, expr
        without_strings = re.sub(r'"[^"]*"', '""', expr)
        for open_, close in ("()", "[]", "{}"):
            assert without_strings.count(open_) == without_strings.count(close), expr
        calls = set(re.findall(r"([A-Za-z_]\w*)\s*\(", without_strings)) - {"label_values"}
        assert calls <= ALLOWED_CALLS, (calls - ALLOWED_CALLS, expr)
        metrics = set(re.findall(r"\bgenai_\w+", without_strings))
        assert metrics and metrics <= KNOWN_METRICS, (metrics - KNOWN_METRICS, expr)


# --- against the real server ------------------------------------------------------------------

@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_id)
def test_every_panel_query_is_answered(server, path):
    params = {**window(), "step": 60}
    failures = []
    for title, target in targets(load(path)):
        expr = substitute(target["expr"])
        r = prom_get(server, "/api/v1/query_range", {**params, "query": expr})
        if r.status_code != 200 or r.json().get("status") != "success":
            failures.append(f"{title}: query_range {expr}\n  -> {r.status_code} {r.text[:300]}")
        if target.get("instant"):
            # Grafana sends instant targets (stat and table panels) to /api/v1/query.
            r = prom_get(server, "/api/v1/query", {"query": expr, "time": params["end"]})
            if r.status_code != 200 or r.json().get("status") != "success":
                failures.append(f"{title}: query {expr}\n  -> {r.status_code} {r.text[:300]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_id)
def test_every_variable_query_is_answered(server, path):
    failures = []
    for variable in query_variables(load(path)):
        metric, label = LABEL_VALUES.match(variable_query(variable)).groups()
        match = substitute(metric)
        r = prom_get(server, f"/api/v1/label/{label}/values", {**window(), "match[]": match})
        if r.status_code != 200 or r.json().get("status") != "success" \
                or not isinstance(r.json().get("data"), list):
            failures.append(f"${variable['name']}: label {label} match[]={match}\n"
                            f"  -> {r.status_code} {r.text[:300]}")
    assert not failures, "\n".join(failures)
