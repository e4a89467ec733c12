"""What an operator can follow from an action's outputs: the endpoint, the Databricks run page, the copy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from shared.adapters.registry_uris import mlflow_version_page


@dataclass(frozen=True)
class OutputLink:
    label: str
    text: str
    href: str | None = None  # only http(s): an output is data from a remote service, never a script URL
    site: str | None = None  # where the link opens, when it is not the output itself: "MLflow UI", "Databricks"


def _web(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _link(label: str, value: Any, href: Any = None) -> OutputLink | None:
    if value in (None, "", [], {}):
        return None
    text = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    return OutputLink(label, text, _web(value if href is None else href))


def mlflow_run_page(tracking_uri: Any, run_id: Any) -> str | None:
    """The MLflow UI page of a run (`#/runs/<id>`, which the UI resolves to its experiment)."""
    base = _web(tracking_uri)
    if base is None or not run_id:
        return None
    return f"{base.rstrip('/')}/#/runs/{quote(str(run_id), safe='')}"


@dataclass(frozen=True)
class SourceUI:
    """Where a source's versions open: its MLflow UI over HTTP, or its Databricks workspace's pages."""

    tracking_uri: str | None = None
    databricks_host: str | None = None  # a source whose registry is a Databricks workspace
    unity_catalog: bool = False

    def version_page(self, name: Any, version: Any) -> str | None:
        if not self.databricks_host:
            return mlflow_version_page(self.tracking_uri, name, version)
        if not name or not version:
            return None
        # the pages MLflow's own client links to (mlflow/utils/databricks_utils.py: the workspace
        # registry's `#mlflow/models/...`, Unity Catalog's `/explore/data/models/<catalog>/<schema>/<model>`)
        host, v = self.databricks_host.rstrip("/"), quote(str(version), safe="")
        if self.unity_catalog:
            return _web(f"{host}/explore/data/models/{quote(str(name).replace('.', '/'), safe='/')}/version/{v}")
        return _web(f"{host}#mlflow/models/{quote(str(name), safe='')}/versions/{v}")

    @property
    def site(self) -> str:
        return "Databricks" if self.databricks_host else "MLflow UI"

    def run_page(self, run_id: Any) -> str | None:
        # a Databricks run page needs the run's experiment id, which an event does not carry
        return None if self.databricks_host else mlflow_run_page(self.tracking_uri, run_id)


def source_links(ui: SourceUI, item: dict[str, Any]) -> list[OutputLink]:
    """Where an event's or action's model version (and run) live in the source's UI."""
    name, version = item.get("model_name"), item.get("model_version")
    run_id = item.get("run_id") or (item.get("summary") or {}).get("run_id")
    rows = [
        _link("source version", f"{name} version {version}" if name and version else None, None),
        _link("source run", run_id, None),
    ]
    pages = [ui.version_page(name, version), ui.run_page(run_id)]
    found = zip(rows, pages, strict=True)
    return [OutputLink(r.label, r.text, page, ui.site) for r, page in found if r is not None and page]


def output_links(kind: str, outputs: dict[str, Any]) -> list[OutputLink]:
    """The outputs worth a line of their own, most useful first; links where the output is a web address."""
    o = outputs
    if kind == "deploy":
        rows = [
            _link("stable endpoint", o.get("router_url")),  # local: the target's router, whatever version serves
            _link("scoring URL", o.get("scoring_url") or o.get("scoring_uri")),
            _link("endpoint", o.get("endpoint_url") or o.get("endpoint")),
            _link("deployment", o.get("deployment") or o.get("service")),
            _link("traffic", o.get("traffic")),
            _link("smoke test", o.get("smoke_test")),
            _link("phase", o.get("phase")),
            _link("kept for rollback", ", ".join(o.get("kept") or [])),
            _link("replaced", ", ".join(o.get("replaced") or [])),
            _link("log file", o.get("log_file")),
            _link("notice", o.get("legacy")),
        ]
    elif kind == "batch_score":
        rows = [
            _link("Databricks run", o.get("run_page_url") or o.get("run_id"), o.get("run_page_url")),
            _link("state", " / ".join(str(s) for s in (o.get("life_cycle_state"), o.get("result_state")) if s)),
            _link("output", o.get("output")),
            _link("rows", o.get("rows")),
            _link("rows per second", o.get("rows_per_second")),
            _link("job", o.get("job_id")),
        ]
    elif kind == "register":
        copy = f"{o.get('model_name')} version {o.get('model_version')}" if o.get("model_version") else None
        page = mlflow_version_page(o.get("tracking_uri"), o.get("model_name"), o.get("model_version"))
        rows = [
            _link("copied version", copy, page),
            _link("registry", o.get("registry")),
            _link("model URI", o.get("model_uri")),
            _link("reused an earlier copy", "yes" if o.get("reused") else None),
            _link("training run copied", _run_copied(o)),
        ]
    else:
        rows = [_link(key.replace("_", " "), value) for key, value in sorted(o.items())]
    return [row for row in rows if row is not None]


def _run_copied(o: dict[str, Any]) -> str | None:
    """What dual tracking put on the copy's run: "3 params, 2 metrics (1,006 points); 1 refused"."""
    if o.get("metric_points_copied") is None and o.get("params_copied") is None:
        return None
    params, metrics, points = (o.get(k) or 0 for k in ("params_copied", "metrics_copied", "metric_points_copied"))
    text = f"{_count(params, 'param')}, {_count(metrics, 'metric')} ({_count(points, 'point')})"
    refused = o.get("run_items_refused")
    return text + (f"; {refused} refused by the target (see the log)" if refused else "")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
