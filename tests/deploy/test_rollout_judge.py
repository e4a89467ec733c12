"""What the rollout judge counts as an error by default: a version that fails on valid requests answers
5xx or 4xx (400 from `mlflow models serve`, 424 from an online endpoint), and either fails its step."""

from __future__ import annotations

import pytest

from shared.config.rollout import Judge
from shared.executors.rollout import FAILED, PASSED, counted, judge


@pytest.mark.parametrize(("errors_5xx", "errors_4xx"), [(30, 0), (0, 30), (15, 15)])
def test_a_version_answering_4xx_or_5xx_to_valid_requests_fails_by_default(errors_5xx: int, errors_4xx: int) -> None:
    thresholds = Judge(max_error_rate=0.1)  # count_4xx left at its default
    figures = counted(100, errors_5xx, errors_4xx, 12.0, thresholds)
    verdict = judge(figures, thresholds, extra_holds=0)
    assert figures.errors == 30 and verdict.decision == FAILED
    assert verdict.reasons == ("error rate 30.0% > max_error_rate 10.0%",)


def test_count_4xx_false_judges_5xx_only() -> None:
    thresholds = Judge(max_error_rate=0.1, count_4xx=False)  # clients known to send bad input
    assert judge(counted(100, 0, 30, 12.0, thresholds), thresholds, extra_holds=0).decision == PASSED
    assert judge(counted(100, 30, 30, 12.0, thresholds), thresholds, extra_holds=0).decision == FAILED
    assert counted(100, 5, 30, 12.0, thresholds).errors_4xx == 30  # still shown beside the errors
