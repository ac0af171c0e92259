"""Hot reload: watch the knowledge folder and swap in a rebuilt index, without a restart.

Staff copy files into a (often synced) folder, so a change is acted on only once the files
involved have stopped changing; the rebuild runs in its own thread and the new index replaces
the old one whole, so questions in flight finish on the index they started with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web
from watchfiles import awatch

from bot.engine import Engine
from bot.keys import CONFIG, ENGINE

log = logging.getLogger(__name__)


def _snapshot(paths: Iterable[Path]) -> dict[Path, tuple[int, int] | None]:
    state: dict[Path, tuple[int, int] | None] = {}
    for path in paths:
        try:
            st = path.stat()
            state[path] = (st.st_size, st.st_mtime_ns)
        except OSError:
            state[path] = None
    return state


async def settled(paths: set[Path], seconds: float) -> None:
    """Return once none of ``paths`` has changed for ``seconds`` (a half-copied file waits)."""
    last = _snapshot(paths)
    while True:
        await asyncio.sleep(seconds)
        now = _snapshot(paths)
        if now == last:
            return
        last = now


async def watch_knowledge(engine: Engine, folder: Path, settle: float, poll: bool,
                          stop: asyncio.Event, retry: float = 5.0) -> None:
    """Rebuild after every settled batch of changes; a failed rebuild keeps the old index.

    If the folder vanishes (an unmounted share), keep serving and look again every ``retry`` s.
    """
    builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reindex")
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                async for changes in awatch(folder, force_polling=poll, debounce=400, step=100,
                                            recursive=True, stop_event=stop):
                    await settled({Path(p) for _, p in changes}, settle)
                    await _rebuild(engine, loop, builder)
            except OSError as exc:
                log.error("watch: cannot watch %s (%s); still serving the current index", folder,
                          exc)
            if stop.is_set():
                return
            await asyncio.sleep(retry)
            if folder.is_dir():
                await _rebuild(engine, loop, builder)  # catch up with what changed meanwhile
    finally:
        builder.shutdown(wait=False, cancel_futures=True)


async def _rebuild(engine: Engine, loop: asyncio.AbstractEventLoop,
                   builder: ThreadPoolExecutor) -> None:
    try:
        report = await loop.run_in_executor(builder, engine.rebuild)
    except Exception:  # noqa: BLE001 - logged in rebuild; keep watching
        return
    for name in report.failed:
        log.error("watch: %s", engine.index.files[name].error)


async def watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the watcher for the app's lifetime when ``[knowledge] watch`` is on."""
    cfg = app[CONFIG].knowledge
    task = None
    stop = asyncio.Event()  # ends awatch at once on shutdown, instead of at its next timeout
    if cfg.watch and cfg.dir.is_dir():
        task = asyncio.create_task(
            watch_knowledge(app[ENGINE], cfg.dir, cfg.settle_seconds, cfg.poll, stop)
        )
        log.info("watch: watching %s for changes", cfg.dir)
    elif cfg.watch:
        log.error("watch: knowledge folder %s does not exist; not watching", cfg.dir)
    yield
    stop.set()
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
