"""The `approve` step: wait, holding no worker, until an approver decides or the approval expires.

The action waits in the ledger (WAITING, re-checked at ``recheck`` or at expiry, whichever is
sooner). A decision by the API, the CLI or the audit page is recorded by the ledger
(`Ledger.decide`) and makes the action due at once; the approval tag is read from the source
version here, at each re-check (a tag webhook or a reconcile pass only wakes the action early:
shared/service/approvals.py). Like a failed validation, a rejection found here is recorded first
(a 0 s wait) and fails the step on the immediate re-check, so the decision stays in the outputs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.adapters.mlflow_evaluate import version_tags
from shared.config.gates import ApprovalConfig
from shared.domain.clock import iso
from shared.domain.outputs import ApproveOutputs
from shared.errors import PermanentError
from shared.executors.base import ActionContext, Outcome
from shared.executors.validate import candidate

APPROVED, REJECTED = "approved", "rejected"  # tag values
APPROVE, REJECT = "approve", "reject"  # decisions


def decided(outputs: ApproveOutputs) -> str:
    """`approved by X` / `rejected by X: comment`, as the audit trail and the error say it."""
    verb = "approved" if outputs.decision == APPROVE else "rejected"
    return f"{verb} by {outputs.decided_by}" + (f": {outputs.comment}" if outputs.comment else "")


class ApproveExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target(ApprovalConfig)
        earlier = ctx.earlier(ApproveOutputs)
        now = datetime.now(UTC)
        if earlier.decision == APPROVE:
            return Outcome.done(earlier)
        if earlier.decision == REJECT:
            raise PermanentError(decided(earlier))
        first = earlier.requested_at is None
        outputs = earlier
        if first:
            outputs = ApproveOutputs(
                approval=ctx.action.target,
                requested_at=iso(now),
                expires_at=iso(now + cfg.expires_after),
                tag=cfg.tag,
            )
            ctx.progress(
                f"approval {ctx.action.target} requested; expires at {outputs.expires_at}"
                + (f"; or tag {cfg.tag}=approved on the source version" if cfg.tag else "")
            )
        if cfg.tag:
            tagged = self._tag_decision(ctx, cfg.tag, now)
            if tagged is not None:
                ctx.progress(decided(tagged))
                if tagged.decision == APPROVE:
                    return Outcome.done(outputs.merged(tagged))
                return Outcome.waiting(0, outputs.merged(tagged))
        expires_at = datetime.fromisoformat(str(outputs.expires_at))
        if now >= expires_at:
            raise PermanentError(f"approval expired: nobody decided on {ctx.action.target} by {outputs.expires_at}")
        left = (expires_at - now).total_seconds()
        recheck = min(cfg.recheck_after.total_seconds(), left) if cfg.tag else left
        return Outcome(outputs=outputs, recheck_after_seconds=recheck, announce=first)

    def _tag_decision(self, ctx: ActionContext, tag: str, now: datetime) -> ApproveOutputs | None:
        value = version_tags(candidate(ctx)).get(tag, "").strip().lower()
        if value not in (APPROVED, REJECTED):
            return None
        return ApproveOutputs(
            decision=APPROVE if value == APPROVED else REJECT,
            decided_by=f"tag {tag}={value} on source {ctx.action.params.source}",
            decided_at=iso(now),
            via="tag",
        )
