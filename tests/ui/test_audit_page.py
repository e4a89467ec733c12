"""The audit page in a real headless Chromium over a real reactor: every page loads without a console
error, the filters narrow the list (plain GET forms, no script), a failed action shows its error, the
timeline is drawn, and the operator credential is enforced (issue 16, item 1); an action has its own
page, the search box takes more than a model name, a target's history outlives an undeploy (issue 26)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.ui.conftest import FIRST_DELIVERY, REDELIVERY, TOKEN, Console, Stack, shot

pytestmark = pytest.mark.slow


def rows(page: Any) -> list[str]:
    return [str(r.get_attribute("data-event")) for r in page.locator("#events tbody tr[data-event]").all()]


class TestCredential:
    def test_without_the_token_the_page_asks_for_it_and_signing_in_opens_it(
        self, browser: Any, stack: Stack, console: Console, tmp_path: Path
    ) -> None:
        context = browser.new_context()
        page = console.watch(context.new_page())
        response = page.goto(f"{stack.url}/api/ui/?kind=model_version.created")
        assert response.status == 401
        assert "needs an operator credential" in page.inner_text("#error-message")
        page.fill("input[name=token]", "not-the-token")
        page.click("button:has-text('Sign in')")
        assert "not the operator token" in page.inner_text("#error-message")
        shot(page, tmp_path, "sign-in-refused")

        page.fill("input[name=token]", TOKEN)
        page.click("button:has-text('Sign in')")
        page.wait_for_selector("#events")
        assert page.url.endswith("/api/ui/?kind=model_version.created")  # back where the operator was going
        assert sorted(rows(page)) == sorted([stack.events["created"], stack.events["databricks"]])
        # 401s are the expected answers here, logged by the browser as failed loads; nothing else
        assert [e for e in console.errors if "401" not in e] == []
        page.click("button:has-text('Sign out')")
        assert page.goto(f"{stack.url}/api/ui/").status == 401
        context.close()

    def test_the_json_routes_keep_their_error_shape(self, stack: Stack) -> None:
        refused = requests.get(f"{stack.url}/api/events", timeout=10)
        assert refused.status_code == 401 and set(refused.json()) == {"error", "problems"}
        missing = requests.get(f"{stack.url}/api/events/evt_nope", headers={"Authorization": f"Bearer {TOKEN}"})
        assert missing.status_code == 404 and missing.json()["error"] == "no event evt_nope"
        assert "/api/ui/" not in requests.get(f"{stack.url}/api/openapi.json", timeout=10).text


class TestPages:
    def test_the_events_list_filters_by_source_kind_status_and_model(
        self, signed_in: Any, stack: Stack, console: Console, tmp_path: Path
    ) -> None:
        page, ev = signed_in, stack.events
        page.goto(f"{stack.url}/api/ui/")  # ignored events are out of the way by default
        assert sorted(rows(page)) == sorted(v for k, v in ev.items() if k != "tagged")
        assert page.is_visible("#ignored-hidden") and not page.is_checked("#show-ignored")
        page.check("#show-ignored")
        page.click("#filters button[type=submit]")
        assert sorted(rows(page)) == sorted(ev.values()) and "ignored=show" in page.url
        shot(page, tmp_path, "events")

        page.select_option("select[name=status]", "failed")
        page.click("#filters button[type=submit]")
        assert rows(page) == [ev["promoted"]] and "status=failed" in page.url

        page.goto(f"{stack.url}/api/ui/")
        page.fill("input[name=source]", "databricks")
        page.click("#filters button[type=submit]")
        assert sorted(rows(page)) == sorted([ev["databricks"], ev["promoted"]])

        page.goto(f"{stack.url}/api/ui/?status=ignored")
        assert rows(page) == [ev["tagged"]]
        page.select_option("select[name=kind]", "model_version.stage_changed")
        page.select_option("select[name=status]", "")
        page.click("#filters button[type=submit]")
        assert rows(page) == [ev["promoted"]]

        page.fill("input[name=delivery]", REDELIVERY)  # the sender's id of a redelivery finds its event
        page.select_option("select[name=kind]", "")
        page.click("#filters button[type=submit]")
        assert rows(page) == [ev["created"]] and f"delivery={REDELIVERY}" in page.url

        page.goto(f"{stack.url}/api/ui/?model=no-such-model")
        assert rows(page) == [] and page.is_visible("#no-events")
        bad = page.goto(f"{stack.url}/api/ui/?status=bogus")
        assert bad.status == 400 and "status 'bogus' is not one of" in page.inner_text("#error-message")
        assert [e for e in console.errors if "400" not in e] == []

    def test_a_failed_action_shows_its_error_attempts_and_timeline(
        self, signed_in: Any, stack: Stack, console: Console, tmp_path: Path
    ) -> None:
        page = signed_in
        page.goto(f"{stack.url}/api/ui/?status=failed")
        page.click(f"tr[data-event='{stack.events['promoted']}'] a")
        action = page.locator("section.action[data-status=failed]")
        assert action.count() == 1
        error = action.locator(".action-error").inner_text()
        assert stack.model in error and "42" in error
        assert action.locator("table.attempts tbody tr").count() >= 1
        assert page.locator("#timeline svg rect.attempt").count() >= 1
        assert page.locator("#timeline svg text.lane").first.text_content() == "deploy \u2192 local"
        shot(page, tmp_path, "failed-event")
        assert console.errors == []

    def test_a_copy_links_its_outputs_and_the_model_history_spans_sources(
        self, signed_in: Any, stack: Stack, console: Console, tmp_path: Path
    ) -> None:
        page = signed_in
        page.goto(f"{stack.url}/api/ui/events/{stack.events['created']}")
        action = page.locator("section.action")
        assert action.get_attribute("data-status") == "succeeded"
        outputs = action.locator("dl.outputs").inner_text()
        assert f"{stack.model} version 1" in outputs and "local-aml" in outputs
        # dual tracking: the training run's accuracy (one point, no params) came along with the copy
        assert "training run copied\n0 params, 1 metric (1 point)" in outputs
        assert page.locator("#timeline svg circle").count() == 1  # finished
        deliveries = [r.inner_text() for r in page.locator("#deliveries tbody tr").all()]
        assert len(deliveries) == 2
        assert FIRST_DELIVERY in deliveries[0] and "accepted" in deliveries[0]
        assert REDELIVERY in deliveries[1] and "duplicate" in deliveries[1]
        shot(page, tmp_path, "copied-event")

        page.click(f"h1 a:has-text('{stack.model}')")
        assert "mlflow" in page.inner_text("main p.muted") and "databricks" in page.inner_text("main p.muted")
        assert page.locator("#model-events tbody tr").count() == 5
        serving = page.locator("#targets tr", has_text="deploy").inner_text().split("\t")
        assert serving[:3] == ["local", "deploy", "1"]  # live: version 1 (42 failed before it)
        assert "local-aml" in page.inner_text("#targets")
        shot(page, tmp_path, "model")
        assert console.errors == []

    def test_deployments_and_the_last_cleanup_report(
        self, signed_in: Any, stack: Stack, console: Console, tmp_path: Path
    ) -> None:
        page = signed_in
        page.goto(f"{stack.url}/api/ui/deployments")
        online = page.inner_text("tr[data-target=online]")
        assert "managed-online" in online and "nothing deployed yet" in online
        local = page.locator("tr[data-target=local]")
        assert "serving" in local.inner_text() and "alive" in local.inner_text()
        scoring = local.locator("a", has_text="/invocations").get_attribute("href")
        assert scoring and scoring.startswith("http://127.0.0.1:") and scoring.endswith("/invocations")
        shot(page, tmp_path, "deployments")

        page.click("header nav a:has-text('Cleanup')")
        facts = page.inner_text("#report-facts")
        assert "dry run" in facts and "local" in facts
        group = page.inner_text(f"tr[data-group='local/{stack.model}/1']")
        assert "mark" in group and "planned" in group  # stale by default_ttl, marked on an applied run
        shot(page, tmp_path, "cleanup")

        missing = page.goto(f"{stack.url}/api/ui/events/evt_nope")
        assert missing.status == 404 and "no event evt_nope" in page.inner_text("#error-message")
        assert [e for e in console.errors if "404" not in e] == []


class TestOperatorPages:
    """Issue 26, item 7. Runs last in this module: its final test undeploys the stack's local server."""

    def test_an_action_page_with_its_params_outputs_attempts_and_log(
        self, signed_in: Any, stack: Stack, console: Console, tmp_path: Path
    ) -> None:
        page = signed_in
        page.goto(f"{stack.url}/api/ui/events/{stack.events['promoted']}")
        assert "modelops replay " + stack.events["promoted"] in page.inner_text("#replay-hint")
        page.click("section.action .head a.mono")
        assert page.url.endswith("/api/ui/actions/" + page.inner_text("#action-facts dd.mono >> nth=0"))
        assert "deploy → local" in page.inner_text("h1") and "failed" in page.inner_text("h1")
        assert "databricks" in page.inner_text("#params")  # the source it came from
        assert page.locator("#attempts tbody tr").count() >= 1
        log = page.inner_text("#log")
        assert "claimed (attempt 1)" in log and "failed after" in log
        error = page.inner_text(".action-error")
        assert error.startswith(("permanent error: ", "transient error: ")) and "Error:" not in error  # no class name
        assert "modelops replay " + stack.events["promoted"] in page.inner_text("#replay-hint")
        assert page.locator("meta[http-equiv=refresh]").count() == 0  # finished: nothing to refresh for
        page.click("#event-link")
        assert page.url.endswith("/api/ui/events/" + stack.events["promoted"])
        shot(page, tmp_path, "action")

        page.goto(f"{stack.url}/api/ui/events/{stack.events['created']}")
        assert page.locator("#replay-hint").count() == 0  # succeeded: no replay to suggest
        page.click("section.action .head a.mono")
        outputs = page.inner_text("#outputs")
        assert f"{stack.model} version 1" in outputs and "local-aml" in outputs
        assert console.errors == []

    def test_the_search_box_takes_model_version_source_kind_status_and_ids(
        self, signed_in: Any, stack: Stack, console: Console
    ) -> None:
        page, ev = signed_in, stack.events

        def search(text: str) -> Any:
            page.fill("#search", text)
            with page.expect_navigation():
                page.click("header button:has-text('Search')")
            return page

        page.goto(f"{stack.url}/api/ui/")
        search(f"{stack.model} v42")
        assert rows(page) == [ev["promoted"]] and "version=42" in page.url
        search("source:databricks status:failed")
        assert rows(page) == [ev["promoted"]]
        search(f"{stack.model} kind:model_version.created source:mlflow")
        assert rows(page) == [ev["created"]]
        search(ev["champion"])
        assert page.url.endswith(f"/api/ui/events/{ev['champion']}")
        search(stack.model)
        assert page.url.endswith(f"/api/ui/models/{stack.model}")
        search("kind:bogus")
        assert "kind 'bogus' is not an event kind" in page.inner_text("#error-message")
        assert [e for e in console.errors if "400" not in e] == []

    def test_a_targets_history_outlives_an_undeploy_and_a_rollback_then_says_nothing_serves(
        self, signed_in: Any, stack: Stack, console: Console, tmp_path: Path
    ) -> None:
        from shared.cli.main import main

        page = signed_in
        state = ["--config", str(stack.tmp / "modelops.yaml"), "--state-dir", str(stack.tmp / "state"), "--quiet"]
        assert main(["undeploy", "local", *state]) == 0
        page.goto(f"{stack.url}/api/ui/deployments")
        assert "undeployed" in page.inner_text("tr[data-target=local]")
        history = page.locator("section.history[data-target=local]")
        changes = [r.get_attribute("data-change") for r in history.locator("tbody tr").all()]
        assert changes == ["undeploy", "deploy"]
        deployed = history.locator("tr[data-change=deploy]")
        assert f"{stack.model} v1" in deployed.inner_text()  # the version stays visible
        assert f"stopped {stack.model} v1" in history.locator("tr[data-change=undeploy]").inner_text()
        deployed.locator("a.mono").click()
        assert "/api/ui/actions/act_" in page.url and "succeeded" in page.inner_text("h1")
        shot(page, tmp_path, "history")

        refused = requests.post(
            f"{stack.url}/api/deployments/local/rollback", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        assert refused.status_code == 409
        assert refused.json()["error"].startswith(
            f"nothing serves on local: `modelops undeploy` stopped {stack.model} v1"
        )
        assert console.errors == []
