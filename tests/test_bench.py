"""bench/run.py's pooled latency percentiles: the rounds' distributions mixed by request count."""

import random
import time
from pathlib import Path
from typing import Any

import redis

from bench.run import StallProbe, pooled_percentile, rewrite_times, stall_report
from tests.support.faults import Faulty

# report.lua's grid of percentiles
GRID = [*range(1, 90), *(90 + i / 10 for i in range(100)), *(99.9 + i / 100 for i in range(1, 10))]


def report(latencies: list[float]) -> dict[str, Any]:
    """What report.lua prints for a round with these latencies (us)."""
    values = sorted(latencies)
    n = len(values)
    quantiles = [values[min(n - 1, int(p / 100 * n))] for p in GRID]
    return {
        "requests": n,
        "min_us": values[0],
        "max_us": values[-1],
        "grid": GRID,
        "quantiles": quantiles,
    }


def test_pooled_percentiles_match_all_requests_together() -> None:
    rng = random.Random(7)
    calm = [rng.expovariate(1 / 2000) for _ in range(50_000)]
    # a round with a stall: 2 % of its requests waited 100 ms more
    stalled = [rng.expovariate(1 / 2000) + (100_000 if i < 1000 else 0) for i in range(50_000)]
    slower = [rng.expovariate(1 / 3000) for _ in range(20_000)]
    rounds = [report(calm), report(stalled), report(slower)]
    everything = sorted(calm + stalled + slower)
    for percent in (50, 90, 99, 99.9):
        true = everything[int(percent / 100 * len(everything))]
        assert abs(pooled_percentile(rounds, percent) - true) <= 0.03 * true, percent
    # The stalled round alone has a p99 over 100 ms; all requests together do not.
    assert report(stalled)["quantiles"][GRID.index(99.0)] > 100_000
    assert pooled_percentile(rounds, 99) < 20_000


def test_one_round_is_its_own_percentiles() -> None:
    r = report([float(x) for x in range(1, 10_001)])
    assert pooled_percentile([r], 50) == 5001
    assert pooled_percentile([r], 99) == 9901


def test_the_stall_probe_sees_a_stopped_valkey_and_names_the_rewrite(tmp_path: Path) -> None:
    server = Faulty(tmp_path / "v").start()
    try:
        with StallProbe(server.data_dir.resolve() / "valkey.sock") as probe:
            time.sleep(0.1)
            stopped = time.time()
            server.sigstop()  # the server's main thread stalls, as on a slow fsync
            time.sleep(0.15)
            server.sigcont()
            time.sleep(0.1)
            client = redis.Redis(unix_socket_path=str(server.data_dir / "valkey.sock"))
            since = time.time() - 1
            client.bgrewriteaof()
            while client.info("persistence")["aof_rewrite_in_progress"]:
                time.sleep(0.01)
            time.sleep(0.05)  # the rewrite's end is handled on a cron tick
            client.close()
    finally:
        server.close()
    assert probe.pings > 0
    # The stop is a stall of at least its 150 ms (a busy machine may add short ones: not counted
    # here). Its end is after the stop; the upper bound only says the probe did not hang.
    [(end, took)] = [(e, t) for e, t in probe.stalls if t >= 0.12 and e >= stopped]
    assert took < 5.0
    steps = rewrite_times(server.data_dir / "valkey.log", since)
    assert [what for _, what in steps] == ["start", "end"]
    assert all(since <= t <= time.time() for t, _ in steps)
    report = stall_report(probe, steps)
    assert f"{len(probe.stalls)} over 10 ms; 1 AOF rewrite(s)" in report
    # the stop, not a rewrite
    assert f"stall {took * 1000:6.1f} ms  (no AOF rewrite step)" in report
    # a stall that ended as the rewrite ended is put on it
    assert "at the AOF rewrite's end" in stall_report(probe, [(end, "end")])
