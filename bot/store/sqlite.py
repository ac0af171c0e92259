"""The embedded query log: stdlib sqlite3, one writer thread, reads on fresh connections.

All writes go through one writer thread (never the event loop); reads open their own
connection in a worker thread. The schema grows only by appending named migrations, recorded
in ``_migrations``; an applied migration is never edited.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bot.store.records import QueryRecord, now_iso
from bot.store.sql import Dialect, SQLStore

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS: list[tuple[str, str]] = [
    (
        "m001_create_queries",
        """
        CREATE TABLE queries (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            openid TEXT NOT NULL,
            msg_type TEXT NOT NULL,
            question TEXT NOT NULL,
            answered INTEGER NOT NULL DEFAULT 0,
            reply TEXT NOT NULL DEFAULT '',
            hits TEXT NOT NULL DEFAULT '[]',
            top_citation TEXT NOT NULL DEFAULT '',
            top_score REAL,
            latency_ms REAL,
            delivery TEXT NOT NULL DEFAULT 'pending',
            error TEXT NOT NULL DEFAULT '',
            msg_key TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX queries_time ON queries(time);
        """,
    ),
    (
        "m002_unanswered_reviews",
        """
        CREATE TABLE unanswered_reviews (
            key TEXT PRIMARY KEY,
            reviewed_at TEXT NOT NULL
        );
        """,
    ),
    # Issue 11: staff link questions to passages; workers vote on answers (SQL: bot/store/links.py).
    (
        "m003_links",
        """
        CREATE TABLE links (
            id INTEGER PRIMARY KEY,
            question TEXT NOT NULL UNIQUE,
            passage_id TEXT NOT NULL,
            source TEXT NOT NULL,
            section_path TEXT NOT NULL,
            kind TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            citation TEXT NOT NULL,
            query_id INTEGER,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE link_audit (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            link_id INTEGER,
            question TEXT NOT NULL DEFAULT '',
            passage_id TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        );
        """,
    ),
    (
        "m004_feedback",
        """
        CREATE TABLE feedback (
            query_id INTEGER PRIMARY KEY,
            vote TEXT NOT NULL,
            time TEXT NOT NULL
        );
        CREATE TABLE review_done (
            query_id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            actor TEXT NOT NULL
        );
        """,
    ),
]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded; returns their names."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT)")
    done = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        with conn:
            conn.executescript(f"BEGIN;\n{sql}\nINSERT INTO _migrations VALUES "
                               f"('{name}', '{now_iso()}');\nCOMMIT;")
        applied.append(name)
    return applied


class StoreUnavailable(RuntimeError):
    """The query log cannot be opened: the service refuses to start rather than lose questions."""


class SQLiteStore(SQLStore):
    """SQLite file of QueryRecords; a failed write is logged and counted, never raised."""

    dialect = Dialect("?", "json_extract(hits, '$[0].doc')", "json_extract(hits, '$[0].source')")

    def __init__(self, path: Path, openid_salt: str | None = None,
                 busy_timeout: float = 5.0) -> None:
        super().__init__(openid_salt)
        self.path = path
        self.busy_timeout = busy_timeout
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="querylog")
        self._conn: sqlite3.Connection | None = None
        try:
            self._writer.submit(self._open).result()
        except (OSError, sqlite3.Error) as exc:
            self._writer.shutdown(wait=False)
            raise StoreUnavailable(f"cannot open the query log {path}: {exc}") from exc

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across crashes, fewer fsyncs
        applied = migrate(conn)
        if applied:
            log.info("querylog: applied %s", ", ".join(applied))
        self._conn = conn

    def read(self) -> sqlite3.Connection:
        """A fresh read-only connection (rows as sqlite3.Row), for tests and backups."""
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        conn.row_factory = sqlite3.Row
        return conn

    def _read(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        conn = self.read()
        try:
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    async def _fetch(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._read, sql, params)

    def _write_now(self, sql: str, params: list[Any]) -> int | None:
        try:
            assert self._conn is not None
            with self._conn:
                cursor = self._conn.execute(sql, params)
                first = cursor.fetchone()
            self.writes += 1
            return int(first[0]) if first else cursor.rowcount
        except (sqlite3.Error, AssertionError) as exc:
            self._failed("write", exc)
            return None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    async def _write(self, sql: str, params: list[Any]) -> int | None:
        return await self._run(self._write_now, sql, params)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one transaction on the writer; errors are raised (a staff
        action must say it failed, unlike a question's log write). Used by bot.store.links."""
        return await self._run(self._call_now, fn, *args)

    async def call_read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on a fresh read connection, off the event loop and the writer."""
        def run() -> T:
            conn = self.read()
            try:
                return fn(conn, *args)
            finally:
                conn.close()
        return await asyncio.to_thread(run)

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """``call`` for code outside the event loop (the command line)."""
        return self._writer.submit(self._call_now, fn, *args).result()

    def _call_now(self, fn: Callable[..., T], *args: Any) -> T:
        if self._conn is None:
            raise StoreUnavailable(f"the query log {self.path} is not open")
        with self._conn:
            result = fn(self._conn, *args)
        self.writes += 1
        return result

    def add_sync(self, record: QueryRecord) -> int | None:
        """For tests and tools outside an event loop."""
        return self._writer.submit(self._write_now, *self._insert_sql(record)).result()

    def close(self) -> None:
        """Finish pending writes and close: nothing queued is lost on shutdown."""
        self._writer.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)
