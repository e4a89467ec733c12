"""Deploy to a `local` target: an `mlflow models serve` process, swapped in only once it is proven.

Order of a deploy: the target's router runs (its stable endpoint, shared/adapters/local_routers.py)
-> start the new version on a free port -> /ping -> smoke test with the model's input example ->
either switch at once (the router sends it all traffic, it is marked serving, the version it replaced
is stopped, its row kept (retired) for a rollback, shared/executors/rollback_local.py), or, with a
`rollout:` block and another version serving, roll out in steps (shared/executors/rollout_local.py).
A failure at any step stops the new process and leaves the old one serving. The same version already
serving healthy is returned as is (duplicates and retries never start a second server); a recorded
process that died is started again.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from shared.adapters.local_deployments import (
    RETIRED,
    SERVING,
    STARTING,
    LocalDeploymentRecord,
    LocalDeploymentStore,
    is_alive,
    retire_deployment,
    stop_deployment,
)
from shared.adapters.local_routers import RouterRecord, ensure_router, route_id, route_to
from shared.adapters.local_server import is_healthy, start_server, stop_strays, wait_healthy
from shared.adapters.mlflow_models import require_version, serving_example
from shared.adapters.smoke import smoke_test
from shared.config.deployments import LocalDeployment
from shared.domain.actions import source_scope
from shared.domain.outputs import DeployOutputs
from shared.errors import ActionError, Superseded
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.executors.rollout import in_progress


class LocalDeployExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target(LocalDeployment)
        model = ctx.model()
        target = ctx.action.target
        store = LocalDeploymentStore(ctx.state_dir)
        source = scope_of(ctx)
        router = target_router(ctx, cfg, store)
        if in_progress(ctx.earlier(DeployOutputs), cfg.rollout, ctx.action.attempts):
            from shared.executors.rollout_local import LocalRollout

            return LocalRollout(ctx, cfg, store, router).resume(model)

        existing = store.find(target, model.name, model.version, source)
        if existing and is_alive(existing) and is_healthy(existing.url):
            if existing.status == SERVING:
                ctx.log.info("%s v%s already serving on %s", model.name, model.version, existing.url)
                return Outcome.done(_outputs(existing, router, smoke="passed earlier", reused=True))
            # a crash left it after /ping, or a rollout judged it failed: it has to pass the smoke test again
            candidate = replace(existing, status=STARTING)
            store.record(candidate)
        else:
            if existing:
                ctx.log.warning("recorded server for %s v%s is down; starting it again", model.name, model.version)
                stop_deployment(store, existing)
            candidate = self.start(ctx, cfg, store, model)

        try:
            smoke = self.smoke(ctx, cfg, model, candidate)
            ctx.ensure_desired()  # newest wins: a version no longer desired is never promoted
        except (ActionError, Superseded):
            stop_deployment(store, candidate)
            raise
        current = store.get(target)
        outputs = _outputs(candidate, router, smoke=smoke, reused=False)
        if cfg.rollout is not None and current is not None and current != candidate and is_alive(current):
            from shared.executors.rollout_local import LocalRollout

            return LocalRollout(ctx, cfg, store, router).begin(candidate, current, outputs)
        return Outcome.done(switch(ctx, cfg, store, router, candidate, outputs))

    def start(
        self, ctx: ActionContext, cfg: LocalDeployment, store: LocalDeploymentStore, model: ModelRef
    ) -> LocalDeploymentRecord:
        target = ctx.action.target
        if cfg.port is not None:
            # a fixed port cannot host two versions at once: the old one must make room first
            for old in store.list():
                if old.target == target and old.port == cfg.port and old.status != RETIRED:
                    ctx.log.warning(
                        "fixed port %s: stopping %s v%s before the new version starts",
                        cfg.port,
                        old.model_name,
                        old.model_version,
                    )
                    if old.status == SERVING:
                        retire_deployment(store, old, keep=cfg.keep_previous)
                    else:
                        stop_deployment(store, old)
        require_version(model)  # a missing version is refused now, not after the server fails to start
        strays = stop_strays(ctx.action.key, keep={r.pid for r in store.list()})
        if strays:
            ctx.progress(f"stopped scoring server(s) {strays} an earlier attempt started but never recorded")
        ctx.progress(f"starting mlflow models serve for {model.uri}")
        source = scope_of(ctx)
        log_name = "-".join(_safe(part) for part in (source, model.name, model.version) if part)
        log_file = _log_dir(ctx.state_dir, target) / f"{log_name}.log"
        server = start_server(
            model_uri=model.uri,
            tracking_uri=model.tracking_uri,
            registry_uri=model.registry_uri,
            host=cfg.host,
            port=cfg.port,
            workers=cfg.workers,
            log_file=log_file,
            owner=ctx.action.key,
            # read afresh from the config at every start (deploy, self-heal, rollback, restart)
            env_names=cfg.env,
            withheld=ctx.withheld_settings(),
        )
        rec = LocalDeploymentRecord(
            target=target,
            model_name=model.name,
            model_version=model.version,
            status=STARTING,
            pid=server.pid,
            create_time=server.create_time,
            host=server.host,
            port=server.port,
            url=server.url,
            model_uri=model.uri,
            tracking_uri=model.tracking_uri,
            registry_uri=model.registry_uri,
            log_file=str(server.log_file),
            action_key=ctx.action.key,
            started_at=time.time(),
            source=source,
        )
        # recorded before the health check, so a crash here still leaves it findable by cleanup
        store.record(rec)
        try:
            wait_healthy(server, cfg.startup_timeout_s)
        except ActionError:
            stop_deployment(store, rec)
            raise
        ctx.progress(f"{model.uri} answers /ping on {server.url}")
        return rec

    def smoke(self, ctx: ActionContext, cfg: LocalDeployment, model: ModelRef, rec: LocalDeploymentRecord) -> str:
        example = serving_example(model)
        if example is None:
            ctx.log.warning("%s has no input example: smoke test limited to /ping", model.uri)
            return "skipped: the model has no input example (log it with input_example=...)"
        smoke_test(f"{rec.url}/invocations", example, timeout_s=cfg.smoke_timeout_s)
        ctx.progress(f"smoke test passed on {rec.url}/invocations")
        return "passed"


def switch(
    ctx: ActionContext,
    cfg: LocalDeployment,
    store: LocalDeploymentStore,
    router: RouterRecord,
    candidate: LocalDeploymentRecord,
    outputs: DeployOutputs,
) -> DeployOutputs:
    """``candidate`` takes all traffic and the target; the versions it replaced are stopped (kept). The
    caller has checked that its version is still desired (``ctx.ensure_desired()``)."""
    replaced = store.promote(candidate)
    route_to(router, [(candidate, 100)])
    for old in replaced:
        ctx.log.info("stopping %s v%s (replaced; kept for rollback)", old.model_name, old.model_version)
        retire_deployment(store, old, keep=cfg.keep_previous)
    return replace(
        outputs,
        traffic={route_id(candidate): 100},
        replaced=[f"{old.model_name}/{old.model_version}" for old in replaced],
    )


def target_router(ctx: ActionContext, cfg: LocalDeployment, store: LocalDeploymentStore) -> RouterRecord:
    """The target's router, running; a version serving from before the router existed is routed to."""
    router = ensure_router(ctx.state_dir, ctx.action.target, host=cfg.host, port=cfg.router_port)
    state = router.state()
    if state is None or not state.routes:
        serving = store.get(ctx.action.target)
        if serving is not None and is_alive(serving):
            route_to(router, [(serving, 100)])
    return router


def scope_of(ctx: ActionContext) -> str:
    """The source a local deployment is kept under: the action key's scope (shared/domain/actions.py)."""
    return source_scope(ctx.action.params.source) or ""


def _outputs(rec: LocalDeploymentRecord, router: RouterRecord, *, smoke: str, reused: bool) -> DeployOutputs:
    return DeployOutputs(
        router_url=router.scoring_url,
        target=rec.target,
        kind="local",
        model_name=rec.model_name,
        model_version=rec.model_version,
        model_uri=rec.model_uri,
        endpoint_url=rec.url,
        scoring_url=f"{rec.url}/invocations",
        pid=rec.pid,
        port=rec.port,
        log_file=rec.log_file,
        smoke_test=smoke,
        reused=reused,
    )


def _log_dir(state_dir: Path, target: str) -> Path:
    return Path(state_dir) / "deployments" / _safe(target)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
