"""A flake hunt you can repeat: the whole pytest suite, N times, on a machine kept busy.

Starts one busy loop per core (plain processes spinning in Python, stopped at the end), runs
``pytest`` over tests/ ``--runs`` times one after the other, and prints a table: per run, pass
or fail, the suite's wall time and the tests that failed; then every test that failed in any
run. A test that fails once here is a defect to fix, not to retry.

    make flakes                       # 5 runs, a busy loop on every core
    python bench/flakes.py --runs 3 --hogs 0 -- -k listing
"""

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _spin() -> None:
    while True:
        pass


def failed_tests(junit: Path) -> list[str]:
    """The node ids of the failed or errored tests in a JUnit XML report (pytest --junitxml)."""
    if not junit.exists():
        return ["(no report: pytest did not finish)"]
    out = []
    for case in ET.parse(junit).iter("testcase"):  # noqa: S314 - our own pytest's report
        if case.find("failure") is not None or case.find("error") is not None:
            out.append(f"{case.get('classname', '')}::{case.get('name', '')}")
    return out


def run_suite(pytest_args: list[str], report_dir: Path, n: int) -> tuple[int, float, list[str]]:
    junit = report_dir / f"run{n}.xml"
    log = report_dir / f"run{n}.log"
    started = time.monotonic()
    with log.open("wb") as out:
        code = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--junitxml={junit}", *pytest_args],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    took = time.monotonic() - started
    failed = failed_tests(junit)
    if code != 0 and not failed:
        failed = [f"(pytest exited {code}: see {log})"]
    return code, took, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="busy loops")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    # A SIGTERM ends the hunt through the finally below, so the busy loops stop with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report_dir = Path(tempfile.mkdtemp(prefix="leaf7-flakes-"))
    hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    print(f"{args.runs} runs of the suite, {args.hogs} busy loop(s); logs in {report_dir}")
    print("| run | result | wall time | failed tests |\n| --- | --- | --- | --- |", flush=True)
    results = []
    try:
        for n in range(1, args.runs + 1):
            code, took, failed = run_suite(args.pytest_args, report_dir, n)
            results.append((code, failed))
            verdict = "green" if code == 0 else "RED"
            names = ", ".join(failed) or "-"
            print(f"| {n} | {verdict} | {took / 60:.1f} min ({took:.0f} s) | {names} |", flush=True)
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join()
    green = sum(1 for code, _ in results if code == 0)
    every = sorted({name for _, failed in results for name in failed})
    print(f"\n{green} of {len(results)} runs green")
    if every:
        print("failed in some run:\n" + "\n".join(f"  {name}" for name in every))
    return 0 if green == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
