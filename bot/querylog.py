"""The query log: every question that reaches the bot, what was answered, how it was delivered.

A thin class around stdlib sqlite3. All writes go through one writer thread (never the event
loop); reads open their own connection. The schema grows only by appending named migrations,
recorded in ``_migrations``; an applied migration is never edited.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

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
    # Issue 11: staff link questions to passages; workers vote on answers (SQL: bot/linkstore.py).
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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class QueryRecord:
    """One question and its outcome, as stored."""

    openid: str
    msg_type: str
    question: str
    time: str = field(default_factory=now_iso)
    answered: bool = False
    reply: str = ""
    hits: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float | None = None
    delivery: str = "pending"  # passive | customer_service | failed | pending
    error: str = ""
    msg_key: str = ""

    def row(self) -> dict[str, Any]:
        top = self.hits[0] if self.hits else {}
        return {
            "time": self.time, "openid": self.openid, "msg_type": self.msg_type,
            "question": self.question, "answered": int(self.answered), "reply": self.reply,
            "hits": json.dumps(self.hits, ensure_ascii=False),
            "top_citation": top.get("citation", ""), "top_score": top.get("score"),
            "latency_ms": self.latency_ms, "delivery": self.delivery, "error": self.error,
            "msg_key": self.msg_key,
        }


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


def hash_openid(openid: str, salt: str) -> str:
    """A stable pseudonym: the same worker stays one user in the stats, the openid is not kept."""
    return "h:" + hashlib.sha256((salt + openid).encode()).hexdigest()[:24]


class QueryLogUnavailable(RuntimeError):
    """The query log cannot be opened: the service refuses to start rather than lose questions."""


class QueryLog:
    """SQLite store of QueryRecords; a failed write is logged and counted, never raised."""

    def __init__(self, path: Path, openid_salt: str | None = None,
                 busy_timeout: float = 5.0) -> None:
        self.path = path
        # None stores openids as received; a string stores a salted hash instead (privacy).
        self.openid_salt = openid_salt
        self.busy_timeout = busy_timeout
        self.failures = 0
        self.writes = 0
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="querylog")
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        try:
            self._writer.submit(self._open).result()
        except (OSError, sqlite3.Error) as exc:
            self._writer.shutdown(wait=False)
            raise QueryLogUnavailable(f"cannot open the query log {path}: {exc}") from exc

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
        """A fresh read connection (rows as dicts) for the admin pages and tests."""
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        conn.row_factory = sqlite3.Row
        return conn

    def _write(self, sql: str, params: dict[str, Any] | tuple) -> int | None:
        try:
            assert self._conn is not None
            with self._conn:
                cursor = self._conn.execute(sql, params)
            self.writes += 1
            return cursor.lastrowid
        except (sqlite3.Error, AssertionError) as exc:
            self.failures += 1
            log.error("querylog: write failed (%s); failures so far: %d", exc, self.failures)
            return None

    def _insert(self, record: QueryRecord) -> int | None:
        row = record.row()
        if self.openid_salt is not None:
            row["openid"] = hash_openid(row["openid"], self.openid_salt)
        columns = ", ".join(row)
        return self._write(
            f"INSERT INTO queries ({columns}) VALUES ({', '.join(':' + c for c in row)})", row
        )

    def _set_delivery(self, row_id: int, delivery: str, error: str) -> int | None:
        return self._write(
            "UPDATE queries SET delivery = ?, error = CASE WHEN ? = '' THEN error ELSE ? END "
            "WHERE id = ?", (delivery, error, error, row_id)
        )

    async def _run(self, fn: Callable[..., int | None], *args: Any) -> int | None:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    async def add(self, record: QueryRecord) -> int | None:
        """Store a record; returns its row id (None if the write failed and was logged)."""
        return await self._run(self._insert, record)

    async def set_delivery(self, row_id: int | None, delivery: str, error: str = "") -> None:
        if row_id is not None:
            await self._run(self._set_delivery, row_id, delivery, error)

    def _delete_before(self, cutoff: str) -> int:
        try:
            assert self._conn is not None
            with self._conn:
                deleted = self._conn.execute("DELETE FROM queries WHERE time < ?", (cutoff,))
                self._conn.execute("DELETE FROM unanswered_reviews WHERE reviewed_at < ?",
                                   (cutoff,))
            self.writes += 1
            return deleted.rowcount
        except (sqlite3.Error, AssertionError) as exc:
            self.failures += 1
            log.error("querylog: retention delete failed (%s)", exc)
            return 0

    async def delete_before(self, cutoff: datetime) -> int:
        """Delete rows (and review marks) older than ``cutoff``: the retention period's end."""
        stamp = cutoff.astimezone(UTC).isoformat(timespec="milliseconds")
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, self._delete_before, stamp
        )

    async def set_reviewed(self, key: str, reviewed: bool) -> None:
        """Mark (or unmark) a group of unanswered questions as seen by staff."""
        if reviewed:
            await self._run(self._write, "INSERT INTO unanswered_reviews (key, reviewed_at) "
                            "VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                            "reviewed_at = excluded.reviewed_at", (key, now_iso()))
        else:
            await self._run(self._write, "DELETE FROM unanswered_reviews WHERE key = ?", (key,))

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one transaction on the writer; errors are raised (a staff
        action must say it failed, unlike a question's log write)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, self.call_sync_unqueued, fn, *args)

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """``call`` for code outside the event loop (the command line)."""
        return self._writer.submit(self.call_sync_unqueued, fn, *args).result()

    def call_sync_unqueued(self, fn: Callable[..., T], *args: Any) -> T:
        if self._conn is None:
            raise QueryLogUnavailable(f"the query log {self.path} is not open")
        with self._conn:
            result = fn(self._conn, *args)
        self.writes += 1
        return result

    def add_sync(self, record: QueryRecord) -> int | None:
        return self._writer.submit(self._insert, record).result()

    def close(self) -> None:
        """Finish pending writes and close: nothing queued is lost on shutdown."""
        self._writer.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
