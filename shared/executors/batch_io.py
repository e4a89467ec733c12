"""What a batch_score action reads and writes, resolved once for every local engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.batch.local_engine import InputError, fingerprint, input_files
from shared.batch.naming import render_output
from shared.errors import PermanentError
from shared.executors.base import ActionContext, ModelRef


@dataclass(frozen=True)
class BatchIO:
    model: ModelRef
    output: Path
    files: list[Path]
    input_format: str
    marker: dict[str, str]  # identifies a finished output of this very action and input


def resolve_io(ctx: ActionContext, output_template: str, input_path: str, input_format: str) -> BatchIO:
    """Model, output path and input files; a bad target configuration is a permanent failure."""
    model = ctx.model()
    try:
        output = Path(render_output(output_template, model.name, model.version))
        files, detected = input_files(Path(input_path), input_format)
    except (InputError, ValueError) as exc:
        raise PermanentError(f"batch target {ctx.action.target!r}: {exc}") from exc
    marker = {
        "action_key": ctx.action.key,
        "input_fingerprint": fingerprint(files),
        "model_name": model.name,
        "model_version": model.version,
        "model_uri": model.uri,
    }
    return BatchIO(model, output, files, detected, marker)
