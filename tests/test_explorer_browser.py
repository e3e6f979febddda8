"""The API explorer (/docs: the vendored Swagger UI) in Chromium against a real
``leaf7 serve``: it loads under the dashboard's CSP with no violation, and "Try it out" with a
pasted API key performs a real call (GET /api/vendor/projects answers 200 with the vendor's
project)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import chromium, csp_violations, watched_page
from tests.support.processes import Server, create_vendor, http, serving

pytestmark = [pytest.mark.real, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with serving(tmp_path / "data") as s:
        yield s


def test_try_it_with_an_api_key(server: Server) -> None:
    vendor = create_vendor(server.data_dir, "Explorer Vendor", "123456789")
    status, project = http(
        "POST", server.base + "/api/vendor/projects", {"name": "Explored"}, vendor["api_key"]
    )
    assert status == 201
    with chromium() as browser:
        page = watched_page(browser, 15_000)
        page.goto(server.base + "/docs")
        page.wait_for_selector(".opblock")  # Swagger UI rendered /openapi.json
        page.get_by_role("button", name="Authorize").first.click()
        page.locator(".auth-container input").first.fill(vendor["api_key"])
        page.locator(".auth-btn-wrapper button.authorize").click()
        page.locator(".btn-done").click()

        op = page.locator("#operations-projects-projects_list_")
        op.locator(".opblock-summary").click()
        op.get_by_role("button", name="Try it out").click()
        with page.expect_response(
            lambda r: r.url.startswith(server.base + "/api/vendor/projects")
        ) as answer:
            op.get_by_role("button", name="Execute").click()
        response = answer.value
        assert response.status == 200
        assert response.request.headers["authorization"] == f"Bearer {vendor['api_key']}"
        assert response.json()[0]["project_id"] == project["project_id"]
        # The page shows the answer: its status and the project in the body.
        live = op.locator(".live-responses-table .response .response-col_status")
        assert live.first.inner_text().strip() == "200"
        assert project["project_id"] in op.locator(".live-responses-table").inner_text()
        assert csp_violations(page) == []
