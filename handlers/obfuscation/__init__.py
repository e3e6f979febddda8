"""Optional obfuscation of the hosted script (the project setting ``obfuscation``).

An upload to a project that obfuscates starts a job: the upload is kept (``source_original``),
the job's state is written to the project hash (pending, running, done, failed, with a
deadline: a job whose instance died reads as failed), and a task of this instance runs the
vendored obfuscator (``run.py``) in a process of its own. Its output is stored as the hosted
source only while the job is still the project's current one (``set_source.lua``), with its
watermark plan when the project marks its copies: copies are marked after obfuscation, so
loaders receive the obfuscated revision, each key's copy marked. A failed job leaves the
revision served before and says why. Nothing here runs per loader check.
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

from handlers import leaks
from handlers.appkeys import SETTINGS, STORE, store
from handlers.errors import ApiError
from handlers.luagen import used_macros
from handlers.obfuscation import run
from store import ProjectNotFound, watermark
from store.models import Project
from store.projects import ObfuscationNeeded, StaleJob
from store.store import Store

log = logging.getLogger("leaf7.obfuscation")

# Jobs one instance runs at once (each is a busy process); the others wait, pending.
AT_ONCE = 2
# Seconds past the timeout before a job's lease ends (its writes to Redis, a slow start).
MARGIN = 30
# A pending job's lease: time to wait for a free slot, then run.
QUEUED = 4


class Jobs:
    """This instance's running jobs (so shutdown can end them, processes included)."""

    def __init__(self) -> None:
        self.slots = asyncio.Semaphore(AT_ONCE)
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Waits until no job runs (tests)."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


JOBS = web.AppKey("obfuscation_jobs", Jobs)


def setup(app: web.Application) -> None:
    """Call after the store's cleanup context: jobs end before the store closes."""
    app[JOBS] = Jobs()

    async def jobs(app: web.Application) -> AsyncIterator[None]:
        yield
        await app[JOBS].close()

    app.cleanup_ctx.append(jobs)


async def upload(
    request: web.Request,
    vendor_id: str,
    project_id: str,
    source: str,
    version: str | None,
    macros: str,
) -> tuple[Project, bool]:
    """Stores an upload, or starts its obfuscation when the project obfuscates (True: the
    project answered is the one served until the job ends)."""
    for _ in range(5):
        try:
            return await leaks.set_source(
                request, vendor_id, project_id, source, version, macros
            ), False
        except ObfuscationNeeded:
            pass
        started = await start(request, vendor_id, project_id, source, version)
        if started is not None:
            return started, True
    raise ApiError(409, "The project's obfuscation setting keeps changing: try again")


async def update(
    request: web.Request, vendor_id: str, project_id: str, changes: dict[str, str]
) -> Project:
    """A project update; a new ``obfuscation`` preset obfuscates the last upload again (off:
    the upload itself is served again)."""
    preset = changes.get("obfuscation")
    if preset is None:
        return await leaks.update(request, vendor_id, project_id, changes)
    s = store(request)
    before = await s.projects.get(vendor_id, project_id)
    project = await leaks.update(request, vendor_id, project_id, changes)
    if preset == before.obfuscation:
        return project
    original = await s.projects.original_source(vendor_id, project_id)
    if not original:
        return project  # nothing uploaded yet
    if preset == "off":
        try:
            return await leaks.set_source(
                request, vendor_id, project_id, original, project.version, used_macros(original)
            )
        except ObfuscationNeeded:  # turned on again meanwhile: that update's job serves
            return await s.projects.get(vendor_id, project_id)
    started = await start(request, vendor_id, project_id, original, project.version)
    return started if started is not None else await s.projects.get(vendor_id, project_id)


async def start(
    request: web.Request, vendor_id: str, project_id: str, source: str, version: str | None
) -> Project | None:
    """Records a new job for ``source`` (None: the project does not obfuscate) and runs it in
    the background."""
    s, settings = store(request), request.app[SETTINGS]
    timeout = settings.obfuscate_timeout
    job = secrets.token_hex(8)
    deadline = s.core.now() + int(timeout * QUEUED) + MARGIN
    project = await s.projects.obfuscation_job(
        vendor_id, project_id, "start", job, source, deadline
    )
    if project is None:
        return None
    request.app[JOBS].spawn(
        _run(request.app, vendor_id, project_id, job, source, version, project.obfuscation)
    )
    return project


async def _run(
    app: web.Application,
    vendor_id: str,
    project_id: str,
    job: str,
    source: str,
    version: str | None,
    preset: str,
) -> None:
    s, jobs = app[STORE], app[JOBS]
    timeout = app[SETTINGS].obfuscate_timeout
    macros = used_macros(source)
    try:
        async with jobs.slots:
            deadline = s.core.now() + int(timeout) + MARGIN
            started = await s.projects.obfuscation_job(vendor_id, project_id, "run", job, deadline)
            if started is None:
                return  # replaced while it waited
            try:
                text = await run.obfuscated_source(
                    source, preset, tuple(filter(None, macros.split(","))), timeout
                )
            except run.ObfuscationFailed as exc:
                await s.projects.obfuscation_job(vendor_id, project_id, "fail", job, str(exc))
                return
        await _store(s, vendor_id, project_id, job, text, version, macros)
    except (ProjectNotFound, StaleJob):
        return  # deleted, or replaced by a newer upload or setting
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("obfuscation job %s of project %s", job, project_id)
        with contextlib.suppress(Exception):
            await s.projects.obfuscation_job(
                vendor_id, project_id, "fail", job, f"internal error ({type(exc).__name__})"
            )


async def _store(
    s: Store, vendor_id: str, project_id: str, job: str, text: str, version: str | None, macros: str
) -> None:
    """The job's output as the hosted revision, with its watermark plan when the project marks
    its copies (marks are made on the obfuscated text)."""
    marks: str | None = None
    for _ in range(2):
        stored = await s.projects.set_source(
            vendor_id, project_id, text, version, macros, marks, job=job
        )
        if stored is not None:
            return
        marks = await asyncio.to_thread(watermark.plan, text, leaks.marks_keys(s.vendors.secret))
