"""The audit page's approvals in headless Chromium: the evidence, the CSRF token, the approver credential."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from tests.gates.conftest import APPROVER, OPS, Gates
from tests.support import unique
from tests.ui.conftest import browser  # noqa: F401 - the module's headless Chromium


@pytest.fixture
def page(browser: Any, gates: Gates) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.goto(f"{gates.url}/api/ui/login")
    opened.fill("input[name=token]", OPS)
    opened.click("button:has-text('Sign in')")
    opened.wait_for_selector("#events")
    yield opened
    context.close()


def test_an_approver_rejects_on_the_page_with_the_evidence_in_view(page: Any, gates: Gates) -> None:
    name = unique("churn-page")
    version = gates.register(name, LogisticRegression().fit(gates.data.train_x, gates.data.train_y))
    gates.alias(name, version, "challenger")
    approve = gates.until(name, version, "approve", "waiting")
    validate = gates.actions(name, version)["validate"]

    page.goto(f"{gates.url}/api/ui/approvals")
    card = page.locator(f"section.approval[data-action='{approve['id']}']")
    assert name in card.inner_text()
    evidence = card.locator("table.evidence tbody tr").first.inner_text()
    accuracy = validate["outputs"]["candidate_metrics"]["accuracy_score"]
    assert "accuracy_score" in evidence and f"{accuracy:.4f}" in evidence and ">= 0.7" in evidence

    # a form posted without the page's CSRF token (another site, a script) is refused, nothing changes
    form = {"decision": "reject", "approver_token": APPROVER}
    assert page.request.post(f"{gates.url}/api/ui/approvals/{approve['id']}", form=form).status == 403
    forged = page.request.post(f"{gates.url}/api/ui/approvals/{approve['id']}", form={**form, "csrf": "guess"})
    assert forged.status == 403 and "CSRF" in forged.text()
    assert gates.action(approve["id"])["status"] == "waiting"

    # signed in with the operator token, which may not decide while an approver token is set
    card.locator("input[name=comment]").fill("holdout too small")
    card.locator("button[value=reject]").click()
    assert "operator token may not decide" in page.inner_text("body")
    assert gates.action(approve["id"])["status"] == "waiting"

    page.goto(f"{gates.url}/api/ui/approvals")
    card = page.locator(f"section.approval[data-action='{approve['id']}']")
    card.locator("input[name=comment]").fill("holdout too small")
    card.locator("input[name=approver_token]").fill(APPROVER)
    card.locator("button[value=reject]").click()
    page.wait_for_selector("#decided")
    rejected = gates.until(name, version, "approve", "failed", timeout=120)
    assert rejected["outputs"]["via"] == "ui" and rejected["outputs"]["comment"] == "holdout too small"
    assert rejected["error"].endswith("rejected by approver token (MODELOPS_APPROVER_TOKEN): holdout too small")
    assert gates.actions(name, version)["deploy"]["status"] == "skipped"

    # the validation's own page shows the same table, candidate vs baseline
    page.goto(f"{gates.url}/api/ui/actions/{validate['id']}")
    row = page.locator("table.evidence tbody tr").first.inner_text()
    assert "accuracy_score" in row and f"{accuracy:.4f}" in row and ">= 0.7" in row

    # the event's timeline shows the gate and how long it waited
    page.goto(f"{gates.url}/api/ui/events/{approve['event_id']}")
    assert "approve \u2192 owners (waited" in str(page.locator("svg.timeline").text_content())
