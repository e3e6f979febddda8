"""Debian's Chromium driven by Playwright (sync API), for the browser tests."""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The browser tests must run wherever the suite runs (.ci/run installs chromium): a missing
# browser is a failure, not a skip.
assert Path(CHROMIUM).exists(), (
    f"Debian's chromium is required at {CHROMIUM} (apt-get install chromium)"
)

# Records every Content-Security-Policy violation of a page in window.__cspViolations (an init
# script: Playwright injects it outside the page's CSP).
RECORD_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


def launch(pw: Any, extra_args: list[str] | None = None) -> Any:
    return pw.chromium.launch(executable_path=CHROMIUM, args=ARGS + (extra_args or []))


def csp_violations(page: Any) -> list[str]:
    found: list[str] = page.evaluate("window.__cspViolations || []")
    return found


@contextlib.contextmanager
def chromium(extra_args: list[str] | None = None) -> Iterator[Any]:
    """A launched browser, closed when the block ends."""
    from playwright import sync_api

    with sync_api.sync_playwright() as pw:
        browser = launch(pw, extra_args)
        try:
            yield browser
        finally:
            with contextlib.suppress(Exception):
                browser.close()


def watched_page(owner: Any, timeout_ms: int) -> Any:
    """A new page of a browser or context, recording its CSP violations (csp_violations)."""
    page = owner.new_page()
    page.set_default_timeout(timeout_ms)
    page.add_init_script(RECORD_CSP)
    return page


def sign_in(page: Any, base: str, api_key: str) -> None:
    """Signs in to the dashboard with an API key; returns on the overview."""
    page.goto(base + "/dashboard/signin")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/dashboard/")


def dashboard_page(browser: Any, base: str, api_key: str, width: int = 1280) -> Any:
    """A watched page of a new context of the browser, signed in to the dashboard."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = watched_page(context, 15_000)
    sign_in(page, base, api_key)
    return page
