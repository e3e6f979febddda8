"""The dashboard's Leaks page in a real browser (Debian's Chromium, Playwright) against a real
``leaf7 serve``: paste a leaked copy, see the key it names, ban it with a reason."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import chromium, csp_violations, dashboard_page
from tests.support.processes import create_vendor, http, serving

pytestmark = [pytest.mark.real, pytest.mark.slow]


CORPUS = sorted((Path(__file__).resolve().parent / "lua" / "corpus").glob("*.lua"))
SOURCE = "".join(f"do\n{p.read_text()}\nend\n" for p in CORPUS)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server, a vendor with a watermarked project, and the copy one key ran."""
    data_dir = tmp_path_factory.mktemp("leaks") / "data"
    vendor = create_vendor(data_dir, "Leak Vendor", "111222333")
    with serving(data_dir, {"LEAF7_RATE_KEYGEN": "0", "LEAF7_RATE_VENDOR": "0"}) as server:
        key = vendor["api_key"]
        status, project = http(
            "POST", server.base + "/api/vendor/projects", {"name": "Hub", "watermark": True}, key
        )
        assert status == 201, project
        pid = project["project_id"]
        status, _ = http(
            "PUT", f"{server.base}/api/vendor/projects/{pid}/source", {"source": SOURCE}, key
        )
        assert status == 200
        status, keys = http(
            "POST", server.base + "/api/vendor/keys/buyer", {"project_id": pid, "amount": 2}, key
        )
        assert status == 200
        run = {"project_id": pid, "script_key": keys[1]["key_id"], "hwid": "leaker-hwid"}
        status, verdict = http("POST", server.base + "/api/loader/execute", run)
        assert status == 200 and verdict["valid"], verdict
        yield {
            "server": server,
            "vendor": vendor,
            "project_id": pid,
            "key_id": keys[1]["key_id"],
            "copy": verdict["script"],
        }


def test_paste_identify_ban(served: dict[str, Any]) -> None:
    server = served["server"]
    with chromium() as browser:
        page = dashboard_page(browser, server.base, served["vendor"]["api_key"])
        page.get_by_role("link", name="Leaks").click()
        page.wait_for_url("**/dashboard/leaks")
        # Nothing of ours: says so.
        page.get_by_label("Leaked text").fill("print('hello from somewhere else')")
        page.get_by_role("button", name="Identify").click()
        page.get_by_role("heading", name="No watermark of yours found").wait_for()
        # The second half of the leaker's copy, re-indented.
        lines = served["copy"].splitlines()
        leak = "\n".join("  " + line.strip() for line in lines[len(lines) // 2 :])
        page.get_by_label("Leaked text").fill(leak)
        page.get_by_role("button", name="Identify").click()
        heading = page.get_by_role("heading", name="Traced to key")
        heading.wait_for()
        assert served["key_id"] in heading.text_content()
        result = page.locator("#leak-result").text_content()
        assert "leaker-hwid" in result and "100%" in result
        page.get_by_label("Reason").fill("Posted on a forum")
        page.get_by_role("button", name="Ban this key").click()
        page.get_by_text(f"Key {served['key_id']} banned").wait_for()
        assert csp_violations(page) == []
    key = served["vendor"]["api_key"]
    status, active = http(
        "GET", f"{server.base}/api/vendor/keys/active/{served['key_id']}", api_key=key
    )
    assert status == 200
    assert active["banned"] is True and active["ban_reason"] == "Posted on a forum"
    # The key's next run is refused.
    run = {"project_id": served["project_id"], "script_key": served["key_id"], "hwid": "x"}
    assert http("POST", server.base + "/api/loader/execute", run)[1]["valid"] is False
