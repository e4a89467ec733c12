"""Contract server for the Azure Monitor metrics data plane's batch query, as azure-monitor-querymetrics'
`MetricsClient.query_resources` calls it: `POST {endpoint}/subscriptions/{subscriptionId}/metrics:getBatch`
with `metricnamespace`, `metricnames`, `starttime`, `endtime`, `interval`, `aggregation`, `filter` (and
`top`, `orderby`, `rollupby`) in the query and `{"resourceids": [...]}` in the body.

Written from azure-rest-api-specs `specification/monitor/data-plane/Microsoft.Insights/stable/2024-02-01/
metricBatch.json` and its `examples/MetricBatchExample.json` (the answer: `{"values": [{starttime, endtime,
interval, namespace, resourceregion, resourceid, value: [{id, type, name: {value, localizedValue}, unit,
timeseries: [{metadatavalues: [{name: {value, localizedValue}, value}], data: [{timeStamp, <aggregation>}]}],
errorCode}]}]}`: one time series per combination of the dimensions the filter names, lower-cased
dimension names, a point per interval with only the asked aggregations, none where nothing was counted).

The metrics are those Azure Monitor documents for `Microsoft.MachineLearningServices/workspaces/
onlineEndpoints` (learn.microsoft.com, azure-monitor/reference/supported-metrics/microsoft-
machinelearningservices-workspaces-onlineendpoints-metrics): `RequestsPerMinute` (Count; dimensions
deployment, statusCode, statusCodeClass, modelStatusCode) and `RequestLatency_P99` (Milliseconds;
dimension deployment), computed from the requests the online endpoints contract really scored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.contract.aml_online_server import LOCATION, Scored
from tests.contract.credentials import CONTRACT_TOKEN

NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
METRICS = {"RequestsPerMinute": "Count", "RequestLatency_P99": "Milliseconds"}
DIMENSIONS = {
    "RequestsPerMinute": ("deployment", "statusCode", "statusCodeClass", "modelStatusCode"),
    "RequestLatency_P99": ("deployment",),
}
_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _grain(text: str) -> timedelta:
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?", text or "PT1M")
    if not match or not any(match.groups()):
        raise ValueError(text)
    return timedelta(hours=int(match.group(1) or 0), minutes=int(match.group(2) or 0))


def _filters(text: str | None, metric: str) -> dict[str, str]:
    """``deployment eq 'blue' and statusCodeClass eq '*'`` -> {deployment: blue, statusCodeClass: *}."""
    wanted: dict[str, str] = {}
    for clause in re.split(r"\s+and\s+", text or "", flags=re.IGNORECASE) if text else []:
        match = _CLAUSE.match(clause)
        if not match:
            raise ValueError(f"Invalid filter clause: {clause}")
        known = {d.lower(): d for d in DIMENSIONS[metric]}
        name = known.get(match.group(1).lower())
        if name is None:
            raise ValueError(f"Dimension {match.group(1)} is not defined for metric {metric}")
        wanted[name] = match.group(2)
    return wanted


def _dimensions(request: Scored) -> dict[str, str]:
    return {
        "deployment": request.deployment,
        "statusCode": str(request.status),
        "statusCodeClass": f"{request.status // 100}xx",
        "modelStatusCode": str(request.model_status),
    }


def _aggregate(values: list[float], metric: str, aggregation: str) -> float:
    if metric == "RequestsPerMinute":  # each request counts one in its minute
        return {"total": float(len(values)), "count": float(len(values))}.get(aggregation, float(len(values)))
    ordered = sorted(values)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return float(len(values)) if aggregation == "count" else p99


class MonitorMetricsContract:
    def __init__(self, requests: Callable[[], Iterable[Scored]]) -> None:
        self.requests = requests  # what the endpoints answered, read at each query
        self.queries: list[dict[str, Any]] = []
        self.base_url = ""  # set once the HTTPS server knows its port
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/subscriptions/{sub}/metrics:getBatch")
        async def get_batch(sub: str, request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {CONTRACT_TOKEN}":
                return _error(401, "InvalidAuthenticationToken", "The access token is missing or invalid.")
            query = request.query_params
            body = await request.json()
            self.queries.append({"query": dict(query), "body": body})
            if query.get("api-version") != "2024-02-01":
                return _error(400, "InvalidApiVersion", f"api-version {query.get('api-version')} is not supported")
            if (query.get("metricnamespace") or "").lower() != NAMESPACE.lower():
                return _error(400, "BadRequest", f"Metric namespace {query.get('metricnamespace')} is not supported")
            names = [n for n in (query.get("metricnames") or "").split(",") if n]
            unknown = [n for n in names if n not in METRICS]
            if not names or unknown:
                return _error(400, "BadRequest", f"Failed to find metric configuration for {unknown or 'no metric'}")
            try:
                start, end = _time(query["starttime"]), _time(query["endtime"])
                grain = _grain(query.get("interval") or "PT1M")
                filters = {name: _filters(query.get("filter"), name) for name in names}
            except (KeyError, ValueError) as exc:
                return _error(400, "BadRequest", f"Invalid query: {exc}")
            aggregations = [a.strip().lower() for a in (query.get("aggregation") or "average").split(",")]
            seen = list(self.requests())
            values = []
            for resource_id in body.get("resourceids") or []:
                if not str(resource_id).lower().startswith(f"/subscriptions/{sub}/".lower()):
                    return _error(400, "BadRequest", f"resource {resource_id} is not in subscription {sub}")
                endpoint = str(resource_id).rstrip("/").rsplit("/", 1)[-1]
                metrics = [
                    self._metric(resource_id, name, filters[name], aggregations, start, end, grain, seen, endpoint)
                    for name in names
                ]
                values.append(
                    {
                        "starttime": query["starttime"],
                        "endtime": query["endtime"],
                        "interval": query.get("interval") or "PT1M",
                        "value": metrics,
                        "namespace": NAMESPACE.lower(),
                        "resourceregion": LOCATION,
                        "resourceid": resource_id,
                    }
                )
            return JSONResponse({"values": values})

        return app

    def _metric(
        self,
        resource_id: str,
        name: str,
        wanted: dict[str, str],
        aggregations: list[str],
        start: datetime,
        end: datetime,
        grain: timedelta,
        seen: list[Scored],
        endpoint: str,
    ) -> dict[str, Any]:
        series: dict[tuple[tuple[str, str], ...], list[Scored]] = {}
        for request in seen:
            at = datetime.fromtimestamp(request.at, UTC)
            if request.endpoint != endpoint or not start <= at < end:
                continue
            dims = _dimensions(request)
            if any(value != "*" and dims[dim] != value for dim, value in wanted.items()):
                continue
            key = tuple((dim.lower(), dims[dim]) for dim in wanted)
            series.setdefault(key, []).append(request)
        timeseries = []
        for key, requests in sorted(series.items()):
            points = []
            slot = start
            while slot < end:
                inside = [r for r in requests if slot <= datetime.fromtimestamp(r.at, UTC) < slot + grain]
                point: dict[str, Any] = {"timeStamp": slot.strftime("%Y-%m-%dT%H:%M:%SZ")}
                if inside:
                    samples = [r.latency_ms for r in inside]
                    point.update({a: _aggregate(samples, name, a) for a in aggregations})
                points.append(point)
                slot += grain
            metadata = [{"name": {"value": dim, "localizedValue": dim}, "value": value} for dim, value in key]
            timeseries.append({"metadatavalues": metadata, "data": points})
        return {
            "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{name}",
            "type": "Microsoft.Insights/metrics",
            "name": {"value": name, "localizedValue": name},
            "unit": METRICS[name],
            "timeseries": timeseries,
            "errorCode": "Success",
        }
