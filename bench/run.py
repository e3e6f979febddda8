"""leaf7 benchmark: the loader execution check against a route that does not touch Redis.

Starts ``leaf7 serve`` on a fresh embedded Valkey, seeds active keys (each redeemed and bound
to its HWID by a first execution), uploads a hosted script that uses macros, then drives
``POST /api/loader/execute`` (random key, its own HWID: every request is a full KEY_VALID
check) and ``GET /healthz`` with wrk in the same run. The two routes alternate in rounds so
that a machine whose speed drifts affects both alike. It prints requests/s of both, their
ratio, execute's p50/p99 latency (over all rounds' requests), the CPU each process used, and
checks afterwards that the executions counted in Redis match the requests wrk saw answered.

    python bench/run.py [--keys 10000] [--duration 15] [--rounds 15] [--connections 32]
                        [--workers N] [--cluster [--masters 3]] [--projects N] [--slow-disk MB/s]
                        [--signed]

``--workers N`` runs ``leaf7 serve --workers N`` (N processes on the port); ``--cluster``
starts a local Valkey Cluster (``--masters`` primaries, no replicas) from the bundled binary
and points the service at it with ``REDIS_URL=redis+cluster://...``; ``--projects`` spreads
the keys over several projects (on a cluster: over several slots, so every node works).
CPU is reported per group: the service's processes together, the Valkey processes together.

``--signed`` seeds as many keys again in projects with signed verdicts on (the others have them
off) and adds a third route to the alternating rounds: the same checks sent with a nonce, so
every answer carries its Ed25519 signature (docs/loader-security.md). It prints both checks/s
and p99, their ratio (target: signed >= 0.8 x unsigned) and how many answers shared each
signature (the service's /metrics). ``make bench`` runs it.

``--watermark`` likewise seeds as many keys again in projects with watermarks on (every answer
is the key's own marked copy, spliced per check: docs/loader-security.md#leaks) and adds their
checks to the rounds; it prints the ratio (target: watermarked >= 0.9 x plain). Use it with a
large script: ``--watermark --source-bytes 65536``.

On one Valkey, a probe PINGs the server on a connection of its own every 5 ms during the
rounds and prints every stall (a PING over 10 ms) beside the AOF rewrites of the run, so that a
slow tail can be told apart: a stall of the server, or of the service. ``--slow-disk MB/s``
throttles the server's writes to the disk (a blkio cgroup; root only), as on a throttled cloud
volume: run it with ``LEAF7_AOF_REWRITE_MIN_MB=64`` to see what each AOF rewrite costs.
"""

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout: tests/support (not shipped) is used too

from service.embedded import jemalloc_path  # noqa: E402
from tests.support.cluster import EmbeddedCluster  # noqa: E402

LEAF7 = Path(sys.executable).parent / "leaf7"


def hosted_source(size: int) -> str:
    """A hosted script of about ``size`` bytes that uses three macros."""
    head = (
        'print("Hello " .. L7_LinkedDiscordID .. ", " .. L7_SecondsLeft .. " s left, run #"'
        " .. L7_TotalExecutions)\n"
    )
    # Lines alike but not the same (a script's literals vary: its watermark has room).
    lines = [head]
    size -= len(head)
    k = 0
    while True:
        line = f'do local t = {{"k{k % 89}", {k % 97}}}; for i = 1, {k % 13} do t[i] = i * {k} end'
        line += " end\n"
        if len(line) > size:
            return "".join(lines)
        lines.append(line)
        size -= len(line)
        k += 1


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if not path:
        print("wrk not found: installing it from Debian's packages", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk is required (apt-get install wrk)")
    return path


def ensure_jemalloc() -> str:
    """The embedded Valkey runs on jemalloc when libjemalloc2 is installed (as Valkey's own
    builds do): installed from Debian's packages when missing, like wrk."""
    if jemalloc_path() is None and shutil.which("apt-get") and os.geteuid() == 0:
        print("libjemalloc2 not found: installing it from Debian's packages", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "libjemalloc2"], check=False)
    return "jemalloc" if jemalloc_path() is not None else "glibc malloc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def valkey_pid(data_dir: Path) -> int | None:
    """The embedded server runs in its data directory (Valkey rewrites its argv)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = (proc / "cwd").resolve()
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("valkey") and cwd == data_dir:
            return int(proc.name)
    return None


class StallProbe:
    """PINGs a Valkey over its unix socket every 5 ms (a thread, a connection of its own):
    stalls (round trips over 10 ms) with their wall-clock time, for the report."""

    THRESHOLD_S = 0.010

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.stalls: list[tuple[float, float]] = []  # (wall time at the end, seconds)
        self.pings = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "StallProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(self.socket_path))
            while not self._stop.wait(0.005):
                t0 = time.perf_counter()
                conn.sendall(b"PING\r\n")
                reply = b""
                while not reply.endswith(b"\r\n"):
                    reply += conn.recv(64)
                took = time.perf_counter() - t0
                self.pings += 1
                if took > self.THRESHOLD_S:
                    self.stalls.append((time.time(), took))


def rewrite_times(log: Path, since: float) -> list[tuple[float, str]]:
    """The AOF rewrites' starts and ends in a valkey.log after ``since``: (wall time, what)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        what = "start" if "Background append only file rewriting started" in line else ""
        what = "end" if "Background AOF rewrite finished successfully" in line else what
        if what:
            # "<pid>:M 01 Dec 2026 11:20:29.870 * ..." (local time)
            stamp = " ".join(line.split()[1:5])
            t = datetime.datetime.strptime(stamp, "%d %b %Y %H:%M:%S.%f").timestamp()
            if t >= since:
                out.append((t, what))
    return out


class SlowDisk:
    """The processes' writes to the disk under ``path`` throttled to ``mb_per_s`` and 40 IOPS
    (cgroup v1 blkio or v2 io.max; needs root), as on a throttled cloud volume."""

    def __init__(self, path: Path, mb_per_s: float) -> None:
        st = os.stat(path)
        dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
        if Path(f"/sys/dev/block/{dev}/partition").exists():  # throttle the whole disk
            dev = Path(f"/sys/dev/block/{dev}/../dev").resolve().read_text().strip()
        self.v1 = Path("/sys/fs/cgroup/blkio")
        self.group = (self.v1 if self.v1.is_dir() else Path("/sys/fs/cgroup")) / "leaf7-bench"
        self.group.mkdir(exist_ok=True)
        bps = int(mb_per_s * 2**20)
        if self.v1.is_dir():
            (self.group / "blkio.throttle.write_bps_device").write_text(f"{dev} {bps}")
            (self.group / "blkio.throttle.write_iops_device").write_text(f"{dev} 40")
        else:
            (self.group / "io.max").write_text(f"{dev} wbps={bps} wiops=40")

    def add(self, pid: int) -> None:
        (self.group / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        root = self.group.parent
        for pid in (self.group / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (root / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self.group.rmdir()


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        self.data_dir = tmp / "data"
        self.env["LEAF7_DATA_DIR"] = str(self.data_dir)
        self.env["L7_BENCH_KEYS"] = str(tmp / "keys.txt")
        # All load comes from one IP: limits high enough never to refuse, but on, so every
        # check pays for the limiter as in production.
        for name in ("LEAF7_RATE_VENDOR", "LEAF7_RATE_KEYGEN", "LEAF7_RATE_EXECUTE"):
            self.env[name] = str(10**12)
        self.api_key = ""
        self.project_ids: list[str] = []
        self.signed_keys = tmp / "signed-keys.txt"
        self.marked_keys = tmp / "marked-keys.txt"
        self.cluster: EmbeddedCluster | None = None
        if args.cluster:
            self.cluster = EmbeddedCluster(tmp / "cluster", masters=args.masters).start()
            self.env["REDIS_URL"] = self.cluster.url

    async def wait_ready(self, proc: "subprocess.Popen[bytes]") -> None:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise SystemExit(f"server exited with {proc.returncode}")
                try:
                    async with http.get(f"{self.base}/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise SystemExit("server did not become ready")

    async def seed(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(LEAF7), "vendor", "create", "--name", "bench", "--discord-id", "1",
            env=self.env, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate()
        self.api_key = json.loads(out)["api_key"]
        await self._seed_keys(Path(self.env["L7_BENCH_KEYS"]), signed=False)
        if self.args.signed:
            await self._seed_keys(self.signed_keys, signed=True)
        if self.args.watermark:
            await self._seed_keys(self.marked_keys, signed=False, watermark=True)

    async def _seed_keys(self, path: Path, *, signed: bool, watermark: bool = False) -> None:
        base, n_keys = self.base, self.args.keys
        rows: list[tuple[str, str, str]] = []
        async with aiohttp.ClientSession(headers=self.auth) as http:
            for p in range(self.args.projects):
                body = {"name": f"Bench {p}", "signed_verdicts": signed, "watermark": watermark}
                async with http.post(f"{base}/api/vendor/projects", json=body) as r:
                    project_id = (await r.json())["project_id"]
                self.project_ids.append(project_id)
                source_text = hosted_source(self.args.source_bytes)
                source = {"source": source_text}
                url = f"{base}/api/vendor/projects/{project_id}/source"
                async with http.put(url, json=source):
                    pass
                per_project = n_keys // self.args.projects + (p < n_keys % self.args.projects)
                key_ids: list[str] = []
                while len(key_ids) < per_project:
                    amount = min(1000, per_project - len(key_ids))
                    body = {"project_id": project_id, "amount": amount, "key_days": 30}
                    async with http.post(f"{base}/api/vendor/keys/buyer", json=body) as r:
                        key_ids += [k["key_id"] for k in await r.json()]
                rows += [
                    (project_id, k, f"HWID-{len(rows) + i:06d}-{random.getrandbits(32):08x}")
                    for i, k in enumerate(key_ids)
                ]
            sem = asyncio.Semaphore(64)

            async def first_run(project_id: str, key_id: str, hwid: str) -> None:
                async with sem:
                    body = {"project_id": project_id, "script_key": key_id, "hwid": hwid}
                    async with http.post(f"{base}/api/loader/execute", json=body) as r:
                        data = await r.json()
                        assert data["code"] == "KEY_VALID", data
                        # A watermarked project answers each key with its own copy.
                        assert watermark == (data["script"].split("\n", 3)[-1] != source_text)

            await asyncio.gather(*(first_run(p, k, h) for p, k, h in rows))
        random.shuffle(rows)
        lines = "".join(f"{p} {k} {h}\n" for p, k, h in rows)
        await asyncio.to_thread(path.write_text, lines)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def executions_counted(self) -> int:
        total = 0
        async with aiohttp.ClientSession(headers=self.auth) as http:
            for project_id in self.project_ids:
                url = f"{self.base}/api/vendor/keys/active?project_id={project_id}"
                async with http.get(url) as r:
                    total += sum(k["total_executions"] for k in await r.json())
        return total

    async def signing_counts(self) -> tuple[float, float]:
        """(signed answers, signatures) from /metrics (with --workers N: one worker's)."""
        found = {"leaf7_signed_verdicts_total": 0.0, "leaf7_verdict_signatures_total": 0.0}
        async with aiohttp.ClientSession() as http, http.get(f"{self.base}/metrics") as r:
            for line in (await r.text()).splitlines():
                name, _, value = line.partition(" ")
                if name in found:
                    found[name] = float(value)
        return found["leaf7_signed_verdicts_total"], found["leaf7_verdict_signatures_total"]

    def profile(self, pid: int, seconds: float, name: str) -> "subprocess.Popen[bytes] | None":
        """py-spy (pip install py-spy) sampling the service: collapsed stacks for flamegraphs."""
        if not self.args.profile:
            return None
        Path(self.args.profile).mkdir(parents=True, exist_ok=True)
        out = Path(self.args.profile) / f"{name}.txt"
        cmd = [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record"]
        cmd += ["--pid", str(pid), "--duration", str(max(1, int(seconds) - 1)), "--rate", "200"]
        cmd += ["--format", "raw", "--output", str(out)]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wrk(
        self,
        script: str,
        path: str,
        seconds: float,
        pids: list[list[int]],
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        a = self.args
        cmd = [ensure_wrk(), f"-t{a.threads}", f"-c{a.connections}", f"-d{seconds:.0f}s"]
        cmd += ["--timeout", "5s", "-s", str(HERE / script), self.base + path]
        before = [sum(cpu_seconds(p) for p in group) for group in pids]
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        run_env = {**self.env, **(env or {})}
        out = subprocess.run(cmd, env=run_env, check=True, capture_output=True, text=True)
        after = [sum(cpu_seconds(p) for p in group) for group in pids]
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        before.append(usage.ru_utime + usage.ru_stime)  # wrk: the child that just exited
        after.append(used.ru_utime + used.ru_stime)
        line = next(x for x in out.stdout.splitlines() if x.startswith("L7JSON "))
        res: dict[str, Any] = json.loads(line[len("L7JSON ") :])
        res["cpu_s"] = [b - a for a, b in zip(before, after, strict=True)]
        return res


def _share_below(r: dict[str, Any], x: float) -> float:
    """The share of round ``r``'s requests answered within ``x`` us: its latency quantiles
    (report.lua's grid, from min to max) inverted, linear between grid points."""
    points = [(0.0, r["min_us"]), *zip(r["grid"], r["quantiles"], strict=True)]
    points.append((100.0, r["max_us"]))
    for (p0, v0), (p1, v1) in itertools.pairwise(points):
        if v0 <= x < v1:
            return (p0 + (p1 - p0) * (x - v0) / (v1 - v0)) / 100
    return 0.0 if x < r["min_us"] else 1.0


def pooled_percentile(rounds: list[dict[str, Any]], percent: float) -> float:
    """The latency (us) ``percent`` of all the rounds' requests together were answered within:
    the rounds' latency distributions mixed by their request counts."""
    total = sum(r["requests"] for r in rounds)
    lo, hi = min(r["min_us"] for r in rounds), max(r["max_us"] for r in rounds)
    while lo < hi:  # the smallest x (us) within which `percent` of the requests were answered
        mid = (lo + hi) // 2
        if sum(r["requests"] * _share_below(r, mid) for r in rounds) >= total * percent / 100:
            hi = mid
        else:
            lo = mid + 1
    return float(lo)


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over rounds; latency percentiles over all the rounds' requests together (and
    the worst round's p99, for comparison)."""
    secs = sum(r["duration_us"] for r in rounds) / 1e6
    requests = sum(r["requests"] for r in rounds)
    errors = sum(r["connect"] + r["read"] + r["write"] + r["timeout"] for r in rounds)
    cpu = [sum(c) for c in zip(*(r["cpu_s"] for r in rounds), strict=True)]
    return {
        "requests": requests,
        "rps": requests / secs,
        "p50_ms": pooled_percentile(rounds, 50) / 1000,
        "p99_ms": pooled_percentile(rounds, 99) / 1000,
        "p999_ms": pooled_percentile(rounds, 99.9) / 1000,
        "max_ms": max(r["max_us"] for r in rounds) / 1000,
        "worst_round_p99_ms": max(r["p99_us"] for r in rounds) / 1000,
        "non2xx": sum(r["non2xx"] for r in rounds),
        "socket_errors": errors,
        "cpu": [c / secs for c in cpu],
        "us_per_request": [1e6 * c / requests for c in cpu],
    }


def stall_report(probe: StallProbe, rewrites: list[tuple[float, str]]) -> str:
    """Valkey's stalls during the rounds, each beside the AOF rewrite step it fell on."""
    starts = sum(1 for _, what in rewrites if what == "start")
    lines = [
        f"valkey: {probe.pings} PINGs during the rounds, {len(probe.stalls)} over "
        f"{probe.THRESHOLD_S * 1000:.0f} ms; {starts} AOF rewrite(s)"
    ]
    for end, took in probe.stalls:
        # a step that ended within the stall (its log line is written as it completes)
        near = [what for t, what in rewrites if end - took - 0.005 <= t <= end + 0.005]
        cause = f"at the AOF rewrite's {near[0]}" if near else "no AOF rewrite step"
        lines.append(f"  stall {took * 1000:6.1f} ms  ({cause})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10000)
    parser.add_argument("--duration", type=int, default=15, help="seconds per route, in all")
    # One-second rounds: this VM's speed swings by ±30 % within seconds, and the finer the two
    # routes interleave, the less a slow or fast spell favours one of them (measured: the ratio
    # spread 0.55-0.71 over 25 runs with three rounds, 0.55-0.68 over 27 runs with fifteen,
    # all but two of those within 0.62-0.68).
    parser.add_argument("--rounds", type=int, default=15, help="alternating rounds per route")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--source-bytes", type=int, default=1024, help="hosted script size")
    parser.add_argument("--workers", type=int, default=1, help="leaf7 serve --workers N")
    parser.add_argument("--cluster", action="store_true", help="on a local Valkey Cluster")
    parser.add_argument("--masters", type=int, default=3, help="cluster primaries")
    parser.add_argument("--projects", type=int, default=None, help="default: 1, cluster: 12")
    parser.add_argument(
        "--slow-disk", type=float, metavar="MB/s", help="throttle Valkey's disk writes (root)"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--signed", action="store_true", help="also signed checks (a nonce: signed answers)"
    )
    parser.add_argument(
        "--watermark", action="store_true", help="also checks of watermarked projects"
    )
    parser.add_argument(
        "--profile", help="record the service with py-spy during execute rounds (DIR for .txt)"
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.duration % args.rounds:
        parser.error("--duration must be a multiple of --rounds (wrk runs whole seconds)")
    if args.projects is None:
        args.projects = 12 if args.cluster else 1
    if args.slow_disk and args.cluster:
        parser.error("--slow-disk is for one Valkey")
    ensure_wrk()
    allocator = ensure_jemalloc()
    with tempfile.TemporaryDirectory(prefix="leaf7-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        slow = SlowDisk(Path(tmp), args.slow_disk) if args.slow_disk else None
        probe: StallProbe | None = None
        rewrites: list[tuple[float, str]] = []
        server = subprocess.Popen(
            [str(LEAF7), "serve", "--port", str(bench.port), "--workers", str(args.workers)],
            env=bench.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(bench.wait_ready(server))
            time.sleep(1)  # every worker is up
            if bench.cluster is not None:
                valkeys = [p.pid for p in bench.cluster.processes]
            else:
                valkeys = [valkey_pid(bench.data_dir.resolve()) or server.pid]
            service = [server.pid] + [c for c in children(server.pid) if c not in valkeys]
            pids = [service, valkeys]
            if slow is not None:
                slow.add(valkeys[0])
            t0 = time.monotonic()
            asyncio.run(bench.seed())
            print(f"seeded {args.keys} active keys in {time.monotonic() - t0:.1f} s")
            storage = f"a {args.masters}-master Valkey Cluster" if args.cluster else "one Valkey"
            storage += f" ({allocator})"
            print(
                f"{args.workers} worker(s) on {storage}, {args.projects} project(s); "
                f"wrk: {args.threads} threads, {args.connections} connections, "
                f"{args.duration} s per route in {args.rounds} alternating rounds; "
                f"hosted script {args.source_bytes} bytes",
                flush=True,
            )
            counted_before = asyncio.run(bench.executions_counted())
            slice_s = args.duration / args.rounds
            plain_rounds, exec_rounds, signed_rounds, marked_rounds = [], [], [], []
            signed_env = {"L7_BENCH_KEYS": str(bench.signed_keys), "L7_BENCH_NONCE": "1"}
            marked_env = {"L7_BENCH_KEYS": str(bench.marked_keys)}
            data_dir = bench.data_dir.resolve()
            if bench.cluster is None:
                probe = StallProbe(data_dir / "valkey.sock").__enter__()
            started = time.time()
            for _ in range(args.rounds):
                spy = bench.profile(service[0], slice_s, f"healthz-{len(plain_rounds)}")
                plain_rounds.append(bench.wrk("plain.lua", "/healthz", slice_s, pids))
                if spy is not None:
                    spy.wait()
                spy = bench.profile(service[0], slice_s, f"execute-{len(exec_rounds)}")
                exec_rounds.append(bench.wrk("execute.lua", "/api/loader/execute", slice_s, pids))
                if spy is not None:
                    spy.wait()
                if args.signed:
                    spy = bench.profile(service[0], slice_s, f"signed-{len(signed_rounds)}")
                    signed_rounds.append(
                        bench.wrk("execute.lua", "/api/loader/execute", slice_s, pids, signed_env)
                    )
                    if spy is not None:
                        spy.wait()
                if args.watermark:
                    marked_rounds.append(
                        bench.wrk("execute.lua", "/api/loader/execute", slice_s, pids, marked_env)
                    )
            if probe is not None:
                probe.__exit__(None, None, None)
                rewrites = rewrite_times(data_dir / "valkey.log", started)
            counted = asyncio.run(bench.executions_counted()) - counted_before
            answers, signatures = asyncio.run(bench.signing_counts())
        finally:
            if slow is not None:
                slow.close()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
            if bench.cluster is not None:
                bench.cluster.stop()
    plain, execute = combine(plain_rounds), combine(exec_rounds)
    ratio = execute["rps"] / plain["rps"]
    routes = [("GET  /healthz           ", plain), ("POST /api/loader/execute", execute)]
    signed = combine(signed_rounds) if signed_rounds else None
    if signed is not None:
        routes.append(("POST execute, signed    ", signed))
    marked = combine(marked_rounds) if marked_rounds else None
    if marked is not None:
        routes.append(("POST execute, watermark ", marked))
    for name, res in routes:
        print(
            f"{name} {res['rps']:8.0f} req/s  p50 {res['p50_ms']:.2f} ms  "
            f"p99 {res['p99_ms']:.2f} ms (worst round {res['worst_round_p99_ms']:.1f}, "
            f"p99.9 {res['p999_ms']:.1f}, max {res['max_ms']:.1f})  "
            f"CPU: server {100 * res['cpu'][0]:.0f}% "
            f"({res['us_per_request'][0]:.0f} us/req), valkey {100 * res['cpu'][1]:.0f}% "
            f"({res['us_per_request'][1]:.0f} us/req), wrk {100 * res['cpu'][2]:.0f}%"
        )
    print(f"execute / healthz ratio  {ratio:.2f}  (target >= 0.60)")
    print(f"execute p99              {execute['p99_ms']:.2f} ms  (target <= 10 ms)")
    print(f"execute p99.9            {execute['p999_ms']:.2f} ms  (target <= 25 ms)")
    signed_ok = True
    if signed is not None:
        signed_ratio = signed["rps"] / execute["rps"]
        signed_ok = signed_ratio >= 0.8 and signed["non2xx"] + signed["socket_errors"] == 0
        print(f"signed / unsigned ratio  {signed_ratio:.2f}  (target >= 0.80)")
        print(
            f"signed p99               {signed['p99_ms']:.2f} ms (unsigned {execute['p99_ms']:.2f})"
        )
        if signatures:
            print(
                f"signed answers           {answers:.0f} under {signatures:.0f} signatures "
                f"({answers / signatures:.1f} per signature)"
            )
    marked_ok = True
    if marked is not None:
        marked_ratio = marked["rps"] / execute["rps"]
        marked_ok = marked_ratio >= 0.9 and marked["non2xx"] + marked["socket_errors"] == 0
        print(f"watermarked / plain      {marked_ratio:.2f}  (target >= 0.90)")
    if probe is not None:
        print(stall_report(probe, rewrites))
    print(
        f"non-2xx: {plain['non2xx'] + execute['non2xx']}, socket errors: "
        f"{plain['socket_errors'] + execute['socket_errors']}  (target 0)"
    )
    # wrk stops each round with up to one request per connection in flight: the server may
    # count those without wrk seeing the answer.
    answered = execute["requests"] + sum(r["requests"] for r in (signed, marked) if r)
    in_flight = args.rounds * args.connections * (1 + bool(signed) + bool(marked))
    counted_ok = answered <= counted <= answered + in_flight
    print(
        f"executions counted in Redis: {counted} for {answered} answered "
        f"requests ({'consistent' if counted_ok else 'MISMATCH'})"
    )
    ok = (
        ratio >= 0.6
        and execute["p99_ms"] <= 10
        and execute["p999_ms"] <= 25
        and plain["non2xx"] + execute["non2xx"] == 0
        and plain["socket_errors"] + execute["socket_errors"] == 0
        and counted_ok
        and signed_ok
        and marked_ok
    )
    print("targets: " + ("met" if ok else "NOT met"))
    if args.json:
        out = {"healthz": plain, "execute": execute, "ratio": ratio, "targets_met": ok}
        if signed is not None:
            out["signed"] = signed
        if marked is not None:
            out["watermark"] = marked
        if probe is not None:
            out["valkey"] = {
                "stalls_ms": [round(took * 1000, 1) for _, took in probe.stalls],
                "aof_rewrites": sum(1 for _, what in rewrites if what == "start"),
            }
        out["setup"] = {"workers": args.workers, "cluster": args.cluster, "masters": args.masters}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
