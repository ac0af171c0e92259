"""The query log's privacy upkeep: hashed openids and the retention task.

Installed by ``setup_admin`` whether or not the admin pages are on: [querylog] options are
about what is stored, not about who may look at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web

from bot.keys import CONFIG, QUERYLOG
from bot.store import QueryStore

log = logging.getLogger(__name__)

RETENTION_INTERVAL = 3600.0  # seconds between retention runs (tests shorten it)


async def purge_old_rows(querylog: QueryStore, days: int, now: datetime | None = None) -> int:
    """Delete rows older than ``days``; returns how many went."""
    deleted = await querylog.delete_before((now or datetime.now(UTC)) - timedelta(days=days))
    if deleted:
        log.info("querylog: retention deleted %d row(s) older than %d days", deleted, days)
    return deleted


async def purge_periodically(querylog: QueryStore, days: int, interval: float) -> None:
    """Once at start, then every ``interval`` seconds; one failed run does not stop the next."""
    while True:
        try:
            await purge_old_rows(querylog, days)
        except Exception:  # noqa: BLE001 - logged; retention retries on its next run
            log.exception("querylog: retention run failed")
        await asyncio.sleep(interval)


async def querylog_upkeep_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run retention while serving."""
    if QUERYLOG not in app:
        raise RuntimeError("setup_admin(app) must come after the query log's cleanup_ctx")
    cfg = app[CONFIG].querylog
    querylog = app[QUERYLOG]
    task = None
    if cfg.retention_days > 0:
        task = asyncio.create_task(
            purge_periodically(querylog, cfg.retention_days, RETENTION_INTERVAL)
        )
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
