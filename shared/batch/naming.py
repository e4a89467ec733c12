"""Output names and job parameters that every batch engine derives the same way."""

from __future__ import annotations

import hashlib
import string

PLACEHOLDERS = ("model_name", "model_version")
IDEMPOTENCY_PREFIX = "modelops-"
IDEMPOTENCY_MAX = 64  # Jobs API limit on idempotency_token


def render_output(template: str, model_name: str, model_version: str) -> str:
    """Fill `{model_name}` / `{model_version}`; any other brace is a user error, not a KeyError."""
    values = {"model_name": model_name, "model_version": model_version}
    fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    unknown = [name for name in fields if name not in values]
    if unknown:
        raise ValueError(f"output {template!r} uses {{{unknown[0]}}}; only {{model_name}} and {{model_version}} exist")
    return template.format_map(values)


def idempotency_token(action_key: str, generation: int = 0) -> str:
    """Same action key and attempt generation -> same token, so a retried or duplicated action never
    starts a second run, and a forced re-run (the next generation) starts exactly one new one."""
    basis = action_key if generation == 0 else f"{action_key}#{generation}"  # generation 0: tokens as before
    digest = hashlib.sha256(basis.encode()).hexdigest()
    return (IDEMPOTENCY_PREFIX + digest)[:IDEMPOTENCY_MAX]
