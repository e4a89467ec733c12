"""Roll a `local` target back: start the kept (retired) server of the version asked for again,
/ping and smoke-test it, then let it take over the target (and its router's traffic); the version it
replaces is retired in turn (kept, so a rollback `--to` it goes forward again). A failure leaves the
current one serving. During a rollout the old version still serves: the rollback gives it all traffic
back (the new one at 0%); the rollout's next check ends it and stops the new server
(shared/executors/rollout_local.py)."""

from __future__ import annotations

from shared.adapters.local_deployments import (
    RETIRED,
    SERVING,
    LocalDeploymentRecord,
    LocalDeploymentStore,
    is_alive,
    retire_deployment,
    stop_deployment,
)
from shared.adapters.local_routers import RouterRecord, route_id, route_to
from shared.adapters.local_server import is_healthy
from shared.config.deployments import LocalDeployment
from shared.domain.outputs import RollbackOutputs
from shared.errors import ActionError, PermanentError
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.executors.deploy_local import LocalDeployExecutor, scope_of, target_router


class LocalRollbackExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target(LocalDeployment)
        action = ctx.action
        store = LocalDeploymentStore(ctx.state_dir)
        kept = store.find(action.target, action.model_name, action.model_version, scope_of(ctx))
        router = target_router(ctx, cfg, store)
        if kept is not None and kept.status == SERVING and is_alive(kept) and is_healthy(kept.url):
            # a retry after the switch, or a rollout under way: it serves; it gets all traffic (again)
            state = router.state()
            if state is None or state.weights() != {route_id(kept): 100} or state.mirror is not None:
                others = [(r, 0) for r in store.list() if r.target == action.target and r != kept and is_alive(r)]
                route_to(router, [(kept, 100), *others])
                ctx.progress(f"all traffic of {action.target} back on {route_id(kept)} (a rollout stopped)")
            return Outcome.done(_outputs(kept, router, ctx, smoke="passed earlier", reused=True))
        if kept is None or kept.status != RETIRED:
            raise PermanentError(
                f"{action.model_name} v{action.model_version} is no longer kept on local target {action.target} "
                f"(it keeps the newest keep_previous={cfg.keep_previous} replaced versions); deploy it instead: "
                f"modelops deploy {action.model_name} {action.model_version} --target {action.target} --force"
            )
        model = ModelRef(kept.tracking_uri, kept.registry_uri, kept.model_name, kept.model_version)
        deployer = LocalDeployExecutor()
        ctx.progress(f"restarting kept server of {model.uri} on {action.target}")
        try:
            candidate = deployer.start(ctx, cfg, store, model)
        except ActionError:
            store.record(kept)  # still kept for another attempt
            raise
        try:
            smoke = deployer.smoke(ctx, cfg, model, candidate)
        except ActionError:
            stop_deployment(store, candidate)
            store.record(kept)
            raise
        replaced = store.promote(candidate)
        route_to(router, [(candidate, 100)])
        for old in replaced:
            ctx.log.info("stopping %s v%s (rolled back; kept)", old.model_name, old.model_version)
            retire_deployment(store, old, keep=max(cfg.keep_previous, 1))
        return Outcome.done(_outputs(candidate, router, ctx, smoke=smoke, reused=False))


def _outputs(
    rec: LocalDeploymentRecord, router: RouterRecord, ctx: ActionContext, *, smoke: str, reused: bool
) -> RollbackOutputs:
    return RollbackOutputs(
        router_url=router.scoring_url,
        target=rec.target,
        kind="local",
        model_name=rec.model_name,
        model_version=rec.model_version,
        from_version=ctx.action.params.from_version,
        endpoint_url=rec.url,
        scoring_url=f"{rec.url}/invocations",
        pid=rec.pid,
        port=rec.port,
        smoke_test=smoke,
        reused=reused,
    )
