"""batch_score on a `kind: databricks` target: start the job once, then follow the run.

First call: `run_now` with an idempotency token derived from the action key and its attempt
generation (a forced re-run is the next generation, so it starts one new run), so retries,
duplicate deliveries and a crash between "run started" and "run id recorded" all land on the
same run. It returns `waiting` with the run id; the worker calls again later with that run id
in `ctx.action.outputs`, and each call reads the run's state once. No worker waits for hours.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from shared.adapters.credentials import azure_credential
from shared.adapters.databricks_jobs import DatabricksJobsClient, RunState
from shared.batch.naming import idempotency_token, render_output
from shared.config.batch import DatabricksBatch
from shared.domain.outputs import BatchScoreOutputs
from shared.errors import PermanentError
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

CredentialFactory = Callable[[DatabricksBatch], "TokenCredential"]


def app_identity(cfg: DatabricksBatch) -> TokenCredential:
    """The app's own identity (shared.adapters.credentials) at the target's authority."""
    return azure_credential(authority=cfg.authority_host, managed_identity_client_id=cfg.managed_identity_client_id)


class DatabricksBatchExecutor:
    """``credential_factory``: the credential of a target; ``env``: the app settings a
    `token_setting` names (default: the app settings in the action context)."""

    def __init__(
        self,
        credential_factory: CredentialFactory = app_identity,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._credential_factory = credential_factory
        self._env = env  # None: the app settings the worker hands over
        self._clients: dict[str, DatabricksJobsClient] = {}

    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target(DatabricksBatch)
        client = self._client(cfg, ctx.settings)
        known = ctx.earlier(BatchScoreOutputs)
        run_id = known.run_id
        if run_id is None:
            model = ctx.model()
            try:
                parameters = job_parameters(cfg, model)
            except ValueError as exc:
                raise PermanentError(f"batch target {ctx.action.target!r}: {exc}") from exc
            token = idempotency_token(ctx.action.key, ctx.action.generation)
            run_id = client.run_now(cfg.job_id, parameters, token)
            ctx.log.info("started Databricks job %s run %s for %s", cfg.job_id, run_id, model.uri)
            known = replace(known, job_id=cfg.job_id, job_parameters=parameters, idempotency_token=token)
        run = client.get_run(int(run_id))
        return self._outcome(ctx, cfg, run, replace(known, run_id=run.run_id))

    def _outcome(self, ctx: ActionContext, cfg: DatabricksBatch, run: RunState, known: BatchScoreOutputs) -> Outcome:
        outputs = replace(
            known,
            run_page_url=run.run_page_url,
            life_cycle_state=run.life_cycle_state,
            first_seen_at=known.first_seen_at or time.time(),
        )
        if run.active:
            waited = time.time() - float(outputs.first_seen_at or time.time())
            if waited > cfg.timeout_seconds:
                raise PermanentError(
                    f"Databricks run {run.run_id} is still {run.life_cycle_state} after "
                    f"{waited:.0f}s (timeout_seconds={cfg.timeout_seconds:g}); "
                    f"see {run.run_page_url}",
                    details=outputs.to_dict(),
                )
            ctx.progress(f"Databricks run {run.run_id} is {run.life_cycle_state}: {run.run_page_url}")
            return Outcome.waiting(cfg.poll_interval_seconds, outputs)
        outputs = replace(outputs, result_state=run.result_state, duration_seconds=run.duration_seconds)
        if run.succeeded:
            ctx.progress(f"Databricks run {run.run_id} succeeded: {run.run_page_url}")
            return Outcome.done(outputs)
        ended = run.result_state or run.life_cycle_state
        raise PermanentError(
            f"Databricks run {run.run_id} of job {cfg.job_id} ended {ended}"
            + (f": {run.message}" if run.message else "")
            + f"; see {run.run_page_url}",
            details=outputs.to_dict(),
        )

    def _client(self, cfg: DatabricksBatch, settings: Settings) -> DatabricksJobsClient:
        key = cfg.model_dump_json()  # config models hold dicts, so they are not hashable
        if key not in self._clients:
            common: dict[str, Any] = {
                "http_timeout_seconds": cfg.http_timeout_seconds,
                "retry_timeout_seconds": cfg.retry_timeout_seconds,
                "max_retry_after_seconds": cfg.max_retry_after_seconds,
            }
            if cfg.auth == "token":
                token = (self._env if self._env is not None else settings.environ).get(cfg.token_setting)
                if not token:
                    raise PermanentError(
                        f"auth is token but the {cfg.token_setting} app setting is not set; "
                        "set it to a Databricks personal access token, or use auth: azure-identity"
                    )
                client = DatabricksJobsClient(cfg.host, token=token, **common)
            else:
                credential = self._credential_factory(cfg)
                client = DatabricksJobsClient(cfg.host, credential=credential, scope=cfg.scope, **common)
            self._clients[key] = client
        return self._clients[key]


def job_parameters(cfg: DatabricksBatch, model: ModelRef) -> dict[str, str]:
    """The job parameters the shipped bundle declares; extra ones from the config go along."""
    parameters = dict(cfg.job_parameters)
    parameters.update(model_uri=model.uri, model_name=model.name, model_version=model.version)
    if cfg.input:
        parameters["input"] = cfg.input
    if cfg.output:
        parameters["output"] = render_output(cfg.output, model.name, model.version)
    return parameters
