"""A real Valkey that a test owns, so it can kill, stop and restart it."""

import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import Settings
from service.embedded import EmbeddedValkey


class Faulty:
    """An embedded Valkey in its own data directory (AOF on), restartable on the same files
    and the same socket path."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.server = EmbeddedValkey(data_dir)
        self.stopped = False

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid

    def start(self) -> "Faulty":
        self.server = EmbeddedValkey(self.data_dir).start()
        assert self.server.owned, "another server already serves this data directory"
        return self

    def kill(self) -> None:
        """kill -9: no shutdown, no final AOF flush."""
        proc = self.server.process
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        self.server.process = None

    def restart(self) -> float:
        """Kill -9 and start again on the same data directory; returns the seconds it took."""
        t0 = time.monotonic()
        self.kill()
        self.start()
        return time.monotonic() - t0

    def sigstop(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.stopped = True

    def sigcont(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.stopped = False

    def close(self) -> None:
        if self.server.process is not None:
            if self.stopped:
                self.sigcont()
            self.server.stop()


async def app_on(aiohttp_client: Any, server: Faulty, settings: Settings) -> TestClient[Any, Any]:
    """The app as production builds it: its own client on REDIS_URL (bounded options)."""
    app = create_app(replace(settings, redis_url=server.url))
    return await aiohttp_client(app)  # type: ignore[no-any-return]
