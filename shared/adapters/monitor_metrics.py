"""An online deployment's own request figures over a time window, from Azure Monitor metrics of its
online endpoint split by deployment, read with azure-monitor-querymetrics' `MetricsClient` (imported
when a client is made). That package is the current metrics query SDK: azure-monitor-query 2.0 removed
`MetricsQueryClient` and `MetricsClient`, the latter moved to azure-monitor-querymetrics.

Metrics (Microsoft.MachineLearningServices/workspaces/onlineEndpoints): `RequestsPerMinute` (Total per
minute, by `deployment` and `statusCodeClass`) and `RequestLatency_P99` (by `deployment`; the worst
minute of the window is taken). The client talks to the regional data plane,
`https://<region>.metrics.monitor.azure.com` (`.azure.us`, `.azure.cn` in the sovereign clouds), or to
the target's `metrics_endpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.azure_errors import bounded_retry_policy
from shared.adapters.credentials import workspace_credential
from shared.config.deployments import KubernetesOnlineDeployment, ManagedOnlineDeployment
from shared.settings import AzureHttpSettings

NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
_SUFFIX = {"AzureCloud": "azure.com", "AzureUSGovernment": "azure.us", "AzureChinaCloud": "azure.cn"}


@dataclass(frozen=True)
class DeploymentFigures:
    requests: int
    errors_5xx: int
    errors_4xx: int
    latency_p99_ms: float | None


def metrics_endpoint(cfg: ManagedOnlineDeployment | KubernetesOnlineDeployment, region: str) -> str:
    if cfg.metrics_endpoint:
        return cfg.metrics_endpoint
    return f"https://{region.replace(' ', '').lower()}.metrics.monitor.{_SUFFIX.get(cfg.cloud, 'azure.com')}"


class OnlineMetricsClient:
    def __init__(
        self,
        cfg: ManagedOnlineDeployment | KubernetesOnlineDeployment,
        region: str,
        credential: Any | None = None,
        http: AzureHttpSettings | None = None,
    ) -> None:
        from azure.monitor.querymetrics import MetricsClient

        http = http or AzureHttpSettings()
        self._cfg = cfg
        self._client = MetricsClient(
            metrics_endpoint(cfg, region),
            credential or workspace_credential(cfg),
            audience=f"https://metrics.monitor.{_SUFFIX.get(cfg.cloud, 'azure.com')}",
            retry_policy=bounded_retry_policy(retry_total=http.retries, retry_backoff_max=http.backoff_max_seconds),
            connection_timeout=http.connection_timeout_seconds,
            read_timeout=http.read_timeout_seconds,
        )

    def resource_id(self, endpoint: str) -> str:
        cfg = self._cfg
        return (
            f"/subscriptions/{cfg.subscription_id}/resourceGroups/{cfg.resource_group}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{cfg.workspace}/onlineEndpoints/{endpoint}"
        )

    def figures(self, endpoint: str, deployment: str, start: datetime, end: datetime) -> DeploymentFigures:
        """``deployment``'s requests, errors by class and p99 latency between ``start`` and ``end``."""
        counts: dict[str, int] = {}
        for series in self._series(endpoint, "RequestsPerMinute", "Total", deployment, start, end, by_class=True):
            status_class = _dimension(series, "statuscodeclass")
            counts[status_class] = counts.get(status_class, 0) + int(sum(p.total or 0 for p in series.data))
        p99 = [
            float(p.average)
            for series in self._series(endpoint, "RequestLatency_P99", "Average", deployment, start, end)
            for p in series.data
            if p.average is not None
        ]
        return DeploymentFigures(
            requests=sum(counts.values()),
            errors_5xx=counts.get("5xx", 0),
            errors_4xx=counts.get("4xx", 0),
            latency_p99_ms=max(p99) if p99 else None,
        )

    def _series(
        self,
        endpoint: str,
        metric: str,
        aggregation: str,
        deployment: str,
        start: datetime,
        end: datetime,
        *,
        by_class: bool = False,
    ) -> list[Any]:
        wanted = f"deployment eq '{deployment}'" + (" and statusCodeClass eq '*'" if by_class else "")
        results = self._client.query_resources(
            resource_ids=[self.resource_id(endpoint)],
            metric_namespace=NAMESPACE,
            metric_names=[metric],
            timespan=(start, end),
            granularity=timedelta(minutes=1),
            aggregations=[aggregation],
            filter=wanted,
        )
        return [series for result in results for m in result.metrics for series in m.timeseries]

    def close(self) -> None:
        self._client.close()


def _dimension(series: Any, name: str) -> str:
    values = {str(k).lower(): str(v) for k, v in (series.metadata_values or {}).items()}
    return values.get(name, "")
