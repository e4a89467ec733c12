"""Gates (the `validations:` and `approvals:` sections): evidence and approval before a step runs on."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from shared.config.base import ChildEnv, ConfigModel, Flag
from shared.timeparse import parse_duration

# What MLflow's default evaluator computes for each model_type (mlflow/models/evaluation/evaluators/
# classifier.py and regressor.py); a threshold on any other metric could never be decided.
# roc_auc, log_loss and precision_recall_auc need a model that gives probabilities (predict_proba).
METRICS: dict[str, tuple[str, ...]] = {
    "classifier": (
        "accuracy_score",
        "precision_score",
        "recall_score",
        "f1_score",
        "log_loss",
        "roc_auc",
        "precision_recall_auc",
        "true_negatives",
        "false_positives",
        "false_negatives",
        "true_positives",
        "example_count",
    ),
    "regressor": (
        "mean_absolute_error",
        "mean_squared_error",
        "root_mean_squared_error",
        "r2_score",
        "max_error",
        "mean_absolute_percentage_error",
        "sum_on_target",
        "mean_on_target",
        "example_count",
    ),
}


def _duration(value: str) -> str:
    if parse_duration(value) <= timedelta(0):
        raise ValueError(f"{value!r} must be longer than zero")
    return value


class Threshold(ConfigModel):
    """One metric's bar: mlflow.models.MetricThreshold, by its own field names."""

    threshold: float | None = Field(default=None, description="absolute bar the candidate must reach")
    min_absolute_change: float | None = Field(
        default=None, gt=0, description="least improvement over the baseline, in the metric's units"
    )
    min_relative_change: float | None = Field(
        default=None, ge=0, le=1, description="least improvement over the baseline, as a fraction (0.05: 5%)"
    )
    greater_is_better: Flag = Field(description="true when a higher value is better (accuracy), false (error)")

    @model_validator(mode="after")
    def _some_bar(self) -> Threshold:
        if self.threshold is None and self.min_absolute_change is None and self.min_relative_change is None:
            raise ValueError("give `threshold`, `min_absolute_change` or `min_relative_change`")
        return self


class ValidationConfig(ConfigModel):
    """Score the candidate (and the baseline) on holdout data; every threshold must pass."""

    data: str = Field(
        min_length=1, description='the holdout data: a local or https:// Parquet/CSV file, e.g. "holdout.parquet"'
    )
    targets: str = Field(min_length=1, description="the label column of the data, e.g. label")
    model_type: Literal["classifier", "regressor"] = Field(description="classifier or regressor")
    baseline: str | None = Field(
        default=None, description="alias whose current holder the candidate must beat, e.g. champion (optional)"
    )
    thresholds: dict[str, Threshold] = Field(
        min_length=1, description="metric -> {threshold, min_absolute_change, greater_is_better}"
    )
    data_format: Literal["auto", "parquet", "csv"] = Field(
        default="auto", description="auto (from the file extension), parquet or csv"
    )
    max_rows: int = Field(default=1_000_000, gt=0, description="rows read from the data at most (bounded memory)")
    experiment: str = Field(
        default="modelops-validations",
        description="experiment of the evaluation runs in the candidate's tracking server",
    )
    timeout_seconds: float = Field(
        default=3600, gt=0, description="stop the validation process (the models' evaluations) after this long"
    )
    env: ChildEnv = Field(
        default_factory=list,
        description="app settings the validation process also gets (the models' code runs there); by default it "
        "gets PATH, HOME, locale, TLS trust and MLflow's non-secret settings",
    )

    @field_validator("data")
    @classmethod
    def _location(cls, value: str) -> str:
        if value.startswith("http://"):
            raise ValueError("must be a local path or an https:// URL (http:// is refused)")
        return value

    @property
    def kind(self) -> str:
        """Every target has a kind; a validation's is its evaluator's."""
        return "mlflow-evaluate"

    def metric_problems(self) -> list[tuple[str, str]]:
        """(metric, why) for each threshold on a metric this model_type cannot produce."""
        known = METRICS[self.model_type]
        return [
            (metric, f"a {self.model_type} does not produce {metric!r}; it produces {', '.join(known)}")
            for metric in self.thresholds
            if metric not in known
        ]


class ApprovalConfig(ConfigModel):
    """Wait for an approver's decision (API, CLI, audit page, or a tag on the source version)."""

    expires: str = Field(default="P7D", description="ISO 8601 duration, e.g. P7D; then the step fails")
    tag: str | None = Field(
        default=None, description='tag that approves too when set to "approved" on the source version'
    )
    recheck: str = Field(
        default="PT15M",
        description="ISO 8601 duration between re-reads of the tag, e.g. PT15M (a tag webhook wakes it at once)",
    )

    @field_validator("expires", "recheck")
    @classmethod
    def _positive(cls, value: str) -> str:
        return _duration(value)

    @property
    def kind(self) -> str:
        return "approval"

    @property
    def expires_after(self) -> timedelta:
        return parse_duration(self.expires)

    @property
    def recheck_after(self) -> timedelta:
        return parse_duration(self.recheck)
