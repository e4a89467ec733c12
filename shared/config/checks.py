"""Problems a schema alone cannot see: references between the config's sections (`config check`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.config.hints import did_you_mean

if TYPE_CHECKING:
    from shared.config.schema import ReactorConfig

# the config section each step kind names an entry of
SECTIONS = {
    "register": "registries",
    "deploy": "deployments",
    "batch_score": "batch",
    "validate": "validations",
    "approve": "approvals",
}


def cross_check(config: ReactorConfig) -> list[tuple[str, str, str]]:
    """Problems a schema alone cannot see: references between sections."""
    problems: list[tuple[str, str, str]] = []
    for name, src in config.sources.items():
        if src.registry and src.registry not in config.registries:
            problems.append(
                (
                    f"sources.{name}.registry",
                    f"no registry named {src.registry!r}",
                    f"add it under registries: or use one of {sorted(config.registries)}",
                )
            )
    problems += workspace_problems(config)
    for name, src in config.sources.items():
        if name in ("mlflow", "databricks", "eventgrid") and src.kind != name:
            problems.append(
                (
                    f"sources.{name}",
                    f"/api/hooks/{name} is the route of the {name} kind, so a source of kind {src.kind} "
                    "cannot be named so",
                    "rename the source",
                )
            )
    section = SECTIONS
    problems += gate_problems(config)
    problems += child_env_problems(config)
    for i, rule in enumerate(config.rules):
        for j, step in enumerate(rule.do):
            if step.target not in config.targets(step.kind):
                known = sorted(config.targets(step.kind))
                choose = f" or use one of {', '.join(known)}" if known else " (none is defined yet)"
                problems.append(
                    (
                        f"rules[{i}].do[{j}].{step.kind}",
                        f"no {section[step.kind]} entry named {step.target!r}",
                        f"{did_you_mean(step.target, known)}define it under {section[step.kind]}:{choose}",
                    )
                )
        for source_name in rule.source or []:
            if source_name not in config.sources:
                choices = ", ".join(config.sources) or "(none: define sources: first)"
                problems.append(
                    (
                        f"rules[{i}].source",
                        f"unknown source {source_name!r}",
                        f"use one of the configured sources: {choices}",
                    )
                )
    return problems


def workspace_problems(config: ReactorConfig) -> list[tuple[str, str, str]]:
    """Event Grid events are routed by workspace: with several azureml sources each needs its own."""
    ids = config.workspace_ids()
    problems: list[tuple[str, str, str]] = []
    seen: dict[str, str] = {}
    for name, workspace_id in ids.items():
        if workspace_id is None and len(ids) > 1:
            problems.append(
                (
                    f"sources.{name}",
                    "several azureml sources, and this one names no workspace to match Event Grid events by",
                    "add `workspace_id: <resource id>` (or subscription_id, resource_group, workspace), "
                    "or `registry:` an azureml registries: entry",
                )
            )
        elif workspace_id is not None and workspace_id in seen:
            problems.append(
                (
                    f"sources.{name}",
                    f"the same workspace as source {seen[workspace_id]!r}",
                    "give each azureml source its own workspace (one source per workspace)",
                )
            )
        elif workspace_id is not None:
            seen[workspace_id] = name
    return problems


def child_env_problems(config: ReactorConfig) -> list[tuple[str, str, str]]:
    """A target handing a source's webhook secret to the model's process (it would be withheld)."""
    secrets = {src.secret_setting: name for name, src in config.sources.items() if src.secret_setting}
    problems: list[tuple[str, str, str]] = []
    sections = (("deployments", config.deployments), ("batch", config.batch), ("validations", config.validations))
    for section, targets in sections:
        for name, target in targets.items():
            for setting in getattr(target, "env", ()):
                if setting in secrets:
                    problems.append(
                        (
                            f"{section}.{name}.env",
                            f"{setting} is the webhook secret of source {secrets[setting]!r}, never handed to a "
                            "model's process",
                            f"remove {setting} from env:",
                        )
                    )
    return problems


def gate_problems(config: ReactorConfig) -> list[tuple[str, str, str]]:
    """Thresholds on metrics a validation's model_type cannot produce."""
    problems: list[tuple[str, str, str]] = []
    for name, validation in config.validations.items():
        for metric, why in validation.metric_problems():
            problems.append(
                (
                    f"validations.{name}.thresholds.{metric}",
                    why,
                    "use one of those metrics, or change model_type",
                )
            )
    return problems
