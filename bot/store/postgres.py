"""The shared query log: PostgreSQL through a psycopg 3 async connection pool.

Used when ``[querylog] url`` is set, so every instance behind nginx writes one log. Migrations
are append-only and named, like SQLite's, and run under an advisory lock so two instances
starting together do not both apply one. While the database is unreachable a new row is held
in memory and retried (up to ``max_pending`` rows per instance); the reply never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from bot.store.records import QueryRecord, now_iso
from bot.store.sql import Dialect, SQLStore
from bot.store.sqlite import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
STAFF_POOL = 2  # connections for staff actions (links, votes, the review queue)

MIGRATIONS: list[tuple[str, str]] = [
    (
        "m001_create_queries",
        """
        CREATE TABLE queries (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            time TEXT NOT NULL,
            openid TEXT NOT NULL,
            msg_type TEXT NOT NULL,
            question TEXT NOT NULL,
            answered SMALLINT NOT NULL DEFAULT 0,
            reply TEXT NOT NULL DEFAULT '',
            hits JSONB NOT NULL DEFAULT '[]',
            top_citation TEXT NOT NULL DEFAULT '',
            top_score DOUBLE PRECISION,
            latency_ms DOUBLE PRECISION,
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
    # Issue 11: the same tables as SQLite's m003/m004 (SQL: bot/store/links.py).
    (
        "m003_links",
        """
        CREATE TABLE links (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            question TEXT NOT NULL UNIQUE,
            passage_id TEXT NOT NULL,
            source TEXT NOT NULL,
            section_path TEXT NOT NULL,
            kind TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            citation TEXT NOT NULL,
            query_id BIGINT,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE link_audit (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            time TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            link_id BIGINT,
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
            query_id BIGINT PRIMARY KEY,
            vote TEXT NOT NULL,
            time TEXT NOT NULL
        );
        CREATE TABLE review_done (
            query_id BIGINT PRIMARY KEY,
            time TEXT NOT NULL,
            actor TEXT NOT NULL
        );
        """,
    ),
]
MIGRATION_LOCK = 0x51_4C_4F_47  # pg_advisory_xact_lock key: "QLOG"
UNREACHABLE = (psycopg.OperationalError, PoolTimeout)


async def migrate(conn: psycopg.AsyncConnection) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; returns their names."""
    applied = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
        await conn.execute("CREATE TABLE IF NOT EXISTS _migrations "
                           "(name TEXT PRIMARY KEY, applied TEXT)")
        done = {r[0] for r in await (await conn.execute("SELECT name FROM _migrations"))
                .fetchall()}
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            await conn.execute(sql)  # type: ignore[arg-type]  # fixed text from this module
            await conn.execute("INSERT INTO _migrations VALUES (%s, %s)", [name, now_iso()])
            applied.append(name)
    return applied


class Translated:
    """A psycopg connection taking sqlite3's ``?`` placeholders, so bot.store.links is written
    once for both databases (its SQL is fixed text: no ``?`` or ``%`` inside literals)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> psycopg.Cursor:
        text = sql.replace("%", "%%").replace("?", "%s")
        return self.conn.execute(text, list(parameters))  # type: ignore[call-overload]


class PostgresStore(SQLStore):
    """QueryRecords in PostgreSQL; a failed write is logged and counted, never raised."""

    dialect = Dialect("%s", "(hits->0->>'doc')", "(hits->0->>'source')")

    def __init__(self, pool: AsyncConnectionPool, openid_salt: str | None,
                 max_pending: int, url: str = "") -> None:
        super().__init__(openid_salt)
        self.pool = pool
        self.url = url
        self._staff: ConnectionPool | None = None  # opened on the first staff action
        self._staff_lock = threading.Lock()
        self.max_pending = max_pending
        self.pending = 0  # rows held in memory while the database is unreachable
        self.retry_delay = 0.5
        self._closing = False

    @classmethod
    async def open(cls, url: str, openid_salt: str | None = None, pool_size: int = 10,
                   max_pending: int = 10000) -> PostgresStore:
        size = max(pool_size, 1)  # a fixed-size pool: no connecting while under load
        pool = AsyncConnectionPool(url, min_size=size, max_size=size, open=False,
                                   timeout=2.0, kwargs={"autocommit": True,
                                                        "connect_timeout": 5})
        try:
            await pool.open(wait=True, timeout=15.0)
            async with pool.connection() as conn:
                applied = await migrate(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            await pool.close()
            raise StoreUnavailable(f"cannot open the query log at PostgreSQL: {exc}") from exc
        if applied:
            log.info("querylog: applied %s", ", ".join(applied))
        return cls(pool, openid_salt, max_pending, url)

    async def _run(self, sql: str, params: list[Any], rows: bool) -> Any:
        """Run on a pooled connection; after a database restart the pool's connections are
        all broken: drop them at once and try again on a fresh one."""
        for attempt in (0, 1):
            try:
                async with self.pool.connection() as conn:
                    cursor = conn.cursor(row_factory=dict_row)
                    await cursor.execute(sql, params)  # type: ignore[arg-type]  # see sql.py
                    if rows:
                        return await cursor.fetchall()
                    first = await cursor.fetchone() if cursor.description else None
                    return first and next(iter(first.values())), cursor.rowcount
            except psycopg.OperationalError:
                if attempt:
                    raise
                with contextlib.suppress(psycopg.Error, PoolTimeout):
                    await self.pool.check()

    async def _fetch(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        return await self._run(sql, params, rows=True)

    async def _execute(self, sql: str, params: list[Any]) -> int:
        first, rowcount = await self._run(sql, params, rows=False)
        self.writes += 1
        return int(first) if first is not None else rowcount

    async def _write(self, sql: str, params: list[Any]) -> int | None:
        try:
            return await self._execute(sql, params)
        except psycopg.Error as exc:
            self._failed("write", exc)
            return None
        except PoolTimeout as exc:
            self._failed("write", exc)
            return None

    async def add(self, record: QueryRecord) -> int | None:
        """Insert; while the database is unreachable, hold the row and retry until it returns."""
        sql, params = self._insert_sql(record)
        delay, held = self.retry_delay, False
        try:
            while True:
                try:
                    return await self._execute(sql, params)
                except UNREACHABLE as exc:
                    if self._closing or (not held and self.pending >= self.max_pending):
                        self._failed("insert (database unreachable, row dropped)", exc)
                        return None
                    if not held:
                        held = True
                        self.pending += 1
                        log.warning("querylog: database unreachable (%s); holding %d row(s)",
                                    exc, self.pending)
                except psycopg.Error as exc:
                    self._failed("insert", exc)
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        finally:
            if held:
                self.pending -= 1

    # --- staff actions: bot.store.links, run in a thread on a small synchronous pool ----------

    def _staff_pool(self) -> ConnectionPool:
        with self._staff_lock:
            if self._staff is None:
                pool = ConnectionPool(self.url, min_size=1, max_size=STAFF_POOL, open=False,
                                      timeout=5.0, kwargs={"connect_timeout": 5})
                try:
                    pool.open(wait=True, timeout=15.0)
                except PoolTimeout as exc:
                    pool.close()
                    raise StoreUnavailable(f"cannot reach the query log: {exc}") from exc
                self._staff = pool
            return self._staff

    def _call_now(self, fn: Callable[..., T], args: tuple, write: bool) -> T:
        """After a database restart the pooled connection is broken: the transaction was
        rolled back, so it is run once more on a fresh one (every staff write is idempotent:
        a question has one link, a query one vote)."""
        for attempt in (0, 1):
            try:
                with self._staff_pool().connection() as conn:  # commits, or rolls back
                    conn.read_only = not write
                    result = fn(Translated(conn), *args)
                break
            except (psycopg.OperationalError, PoolTimeout) as exc:
                if attempt:
                    raise StoreUnavailable(f"the query log is unreachable: {exc}") from exc
        if write:
            self.writes += 1
        return result

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` in one transaction; errors are raised (a staff action must say
        it failed, unlike a question's log write)."""
        return await asyncio.to_thread(self._call_now, fn, args, True)

    async def call_read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` in a read-only transaction."""
        return await asyncio.to_thread(self._call_now, fn, args, False)

    async def aclose(self) -> None:
        self._closing = True
        if self._staff is not None:
            await asyncio.to_thread(self._staff.close)
        await self.pool.close(timeout=2.0)
