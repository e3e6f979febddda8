"""The overview's executors and crack attempts in a real browser (Debian's Chromium,
Playwright) against a real ``leaf7 serve``: loader checks sent with executor names and a
signed loader's report of a forged answer show up beside the executions chart."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import chromium, csp_violations, dashboard_page
from tests.support.processes import create_vendor, http, serving

pytestmark = [pytest.mark.real, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server and a vendor whose signing project had valid runs from three executors (one
    of them twice, under two spellings) and one report of a forged answer."""
    data_dir = tmp_path_factory.mktemp("insights") / "data"
    vendor = create_vendor(data_dir, "Insights Vendor", "111222333")
    with serving(data_dir, {"LEAF7_RATE_KEYGEN": "0", "LEAF7_RATE_VENDOR": "0"}) as server:
        key = vendor["api_key"]
        status, project = http("POST", server.base + "/api/vendor/projects", {"name": "Hub"}, key)
        assert status == 201 and project["signed_verdicts"] is True, project
        pid = project["project_id"]
        status, keys = http(
            "POST", server.base + "/api/vendor/keys/buyer", {"project_id": pid, "amount": 1}, key
        )
        assert status == 200
        for executor in ("Synapse X 2.1", "synapse z", "Krnl 1.0", None):
            run = {"project_id": pid, "script_key": keys[0]["key_id"], "hwid": "pc-1"}
            if executor:
                run["executor"] = executor
            status, verdict = http("POST", server.base + "/api/loader/execute", run)
            assert status == 200 and verdict["code"] == "KEY_VALID", verdict
        forged = {"project_id": pid, "reason": "unsigned", "executor": "Krnl 1.0"}
        assert http("POST", server.base + "/api/loader/report", forged) == (204, None)
        yield {"server": server, "vendor": vendor, "project_id": pid}


def test_the_overview_shows_executors_and_crack_attempts(served: dict[str, Any]) -> None:
    server = served["server"]
    with chromium() as browser:
        page = dashboard_page(browser, server.base, served["vendor"]["api_key"])
        card = page.locator("#executors")
        card.get_by_role("heading", name="Executions by executor (last 24 h)").wait_for()
        rows = card.locator("tbody tr")
        texts = [
            [c.strip() for c in rows.nth(i).locator("td").all_text_contents()[:2]]
            for i in range(rows.count())
        ]
        assert texts == [["synapse", "2"], ["krnl", "1"], ["unknown", "1"]]
        attempts = page.locator("#crack-attempts")
        assert attempts.locator("#stat-reports").text_content() == "1"
        # The chart is drawn (uPlot, from dashboard.js: no inline script) and its table
        # names the reason.
        attempts.locator("#reports-chart canvas").wait_for()
        attempts.get_by_text("As a table").click()
        assert "unsigned: 1" in attempts.locator("table").text_content()
        # The report is an event of the feed, beside the runs.
        page.get_by_text("Forged answer refused: unsigned").first.wait_for()
        assert csp_violations(page) == []
