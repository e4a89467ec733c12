"""Every kind of target the config accepts has an executor, chosen by the target's config class."""

from __future__ import annotations

import pytest

from shared.config.schema import TARGET_CLASSES, SourceConfig
from shared.domain.actions import RESOLVE_RUN
from shared.errors import PermanentError
from shared.executors.registry import ExecutorRegistry


@pytest.mark.parametrize(
    ("action_kind", "target_class"),
    [(kind, cls) for kind, classes in TARGET_CLASSES.items() for cls in classes] + [(RESOLVE_RUN, SourceConfig)],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_every_target_class_in_the_config_union_has_an_executor(action_kind: str, target_class: type) -> None:
    assert ExecutorRegistry().knows(action_kind, target_class)


def test_an_unknown_target_is_refused_with_its_kind() -> None:
    class Elsewhere:
        kind = "elsewhere"

    with pytest.raises(PermanentError, match="no executor for deploy on a target of kind 'elsewhere'"):
        ExecutorRegistry().get("deploy", Elsewhere())
