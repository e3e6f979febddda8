"""bench/run.py's pooled latency percentiles: the rounds' distributions mixed by request count."""

import random
from typing import Any

from bench.run import pooled_percentile

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
