"""Debian's Chromium driven by Playwright (sync API), for the browser tests."""

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
