"""The query log's SQL, written once for both databases; a Dialect fills in the differences.

Every value a user supplies reaches the database as a parameter; the SQL text is fixed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.store.filters import Filters, utc_stamp
from bot.store.records import QueryRecord, iso, now_iso

log = logging.getLogger("bot.store")

# A search ran and found nothing good enough: not follow-ups ("1"), unrecognised voice, errors.
UNANSWERED_SQL = ("answered = 0 AND msg_type IN ('text', 'voice', 'click') "
                  "AND latency_ms IS NOT NULL AND error = ''")


@dataclass(frozen=True)
class Dialect:
    """Placeholder and JSON access of one database."""

    ph: str
    top_doc: str
    top_source: str


def like_escape(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '\\' (a typed % or _ is not a wildcard)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SQLStore:
    """Every query-log operation as SQL; subclasses only run statements on their database.

    ``_fetch`` returns rows as dicts; ``_write`` returns the rows of a RETURNING clause (or
    [] and the row count via ``rowcount``), or None when the write failed and was logged.
    """

    dialect: Dialect

    def __init__(self, openid_salt: str | None) -> None:
        # None stores openids as received; a string stores a salted hash instead (privacy).
        self.openid_salt = openid_salt
        self.failures = 0
        self.writes = 0

    async def _fetch(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _write(self, sql: str, params: list[Any]) -> int | None:
        """Run one statement; returns the first column of its first row, or the row count."""
        raise NotImplementedError

    def _failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        log.error("querylog: %s failed (%s); failures so far: %d", what, exc, self.failures)

    # --- writes -----------------------------------------------------------------------------

    def _insert_sql(self, record: QueryRecord) -> tuple[str, list[Any]]:
        row = record.row(self.openid_salt)
        marks = ", ".join(self.dialect.ph for _ in row)
        return (f"INSERT INTO queries ({', '.join(row)}) VALUES ({marks}) RETURNING id",
                list(row.values()))

    async def add(self, record: QueryRecord) -> int | None:
        """Store a record; returns its row id (None if the write failed and was logged)."""
        return await self._write(*self._insert_sql(record))

    async def set_delivery(self, row_id: int | None, delivery: str, error: str = "") -> None:
        """Record how the reply went out (passive, customer_service, failed)."""
        if row_id is None:
            return
        p = self.dialect.ph
        await self._write(f"UPDATE queries SET delivery = {p}, error = CASE WHEN {p} = '' "
                          f"THEN error ELSE {p} END WHERE id = {p}",
                          [delivery, error, error, row_id])

    async def set_reviewed(self, key: str, reviewed: bool) -> None:
        """Mark (or unmark) a group of unanswered questions as seen by staff."""
        p = self.dialect.ph
        if reviewed:
            await self._write("INSERT INTO unanswered_reviews (key, reviewed_at) "
                              f"VALUES ({p}, {p}) ON CONFLICT(key) DO UPDATE SET "
                              "reviewed_at = excluded.reviewed_at",
                              [key, now_iso()])
        else:
            await self._write(f"DELETE FROM unanswered_reviews WHERE key = {p}", [key])

    async def delete_before(self, cutoff: datetime) -> int:
        """Delete rows (and review marks) older than ``cutoff``: the retention period's end."""
        p, stamp = self.dialect.ph, iso(cutoff)
        deleted = await self._write(f"DELETE FROM queries WHERE time < {p}", [stamp])
        await self._write(f"DELETE FROM unanswered_reviews WHERE reviewed_at < {p}", [stamp])
        return deleted or 0

    # --- reads ------------------------------------------------------------------------------

    def _columns(self) -> str:
        return ("id, time, openid, msg_type, question, answered, top_citation, top_score, "
                f"latency_ms, delivery, error, {self.dialect.top_doc} AS top_doc")

    def where(self, filters: Filters, tz: tzinfo) -> tuple[str, list[Any]]:
        """SQL condition and its parameters; dates are whole days in ``tz``."""
        p = self.dialect.ph
        clauses: list[str] = ["1 = 1"]
        params: list[Any] = []
        if filters.date_from:
            clauses.append(f"time >= {p}")
            params.append(utc_stamp(filters.date_from, tz))
        if filters.date_to:
            clauses.append(f"time < {p}")
            params.append(utc_stamp(filters.date_to + timedelta(days=1), tz))
        if filters.answered is not None:
            clauses.append(f"answered = {p}")
            params.append(int(filters.answered))
        if filters.q:
            clauses.append(f"question LIKE {p} ESCAPE '\\'")
            params.append(f"%{like_escape(filters.q)}%")
        if filters.doc:
            clauses.append(f"({self.dialect.top_source} = {p} OR {self.dialect.top_doc} = {p})")
            params += [filters.doc, filters.doc]
        return " AND ".join(clauses), params

    async def page(self, filters: Filters, tz: tzinfo,
                   size: int) -> tuple[int, list[dict[str, Any]]]:
        """(total matching, the rows of ``filters.page``), newest first."""
        where, params = self.where(filters, tz)
        p = self.dialect.ph
        [count] = await self._fetch(f"SELECT count(*) AS n FROM queries WHERE {where}", params)
        rows = await self._fetch(
            f"SELECT {self._columns()} FROM queries WHERE {where} ORDER BY time DESC, id DESC "
            f"LIMIT {p} OFFSET {p}", [*params, size, (filters.page - 1) * size])
        return int(count["n"]), rows

    async def rows(self, filters: Filters, tz: tzinfo) -> list[dict[str, Any]]:
        """Every row matching ``filters`` (all pages), newest first: the CSV export."""
        where, params = self.where(filters, tz)
        return await self._fetch(f"SELECT {self._columns()} FROM queries WHERE {where} "
                                 "ORDER BY time DESC, id DESC", params)

    async def detail(self, row_id: int) -> dict[str, Any] | None:
        """One row in full, ``hits`` decoded."""
        found = await self._fetch(f"SELECT {self._columns()}, reply, hits, msg_key FROM queries "
                                  f"WHERE id = {self.dialect.ph}", [row_id])
        if not found:
            return None
        row = found[0]
        if isinstance(row["hits"], str):
            try:
                row["hits"] = json.loads(row["hits"])
            except ValueError:
                row["hits"] = []
        return row

    async def stats_rows(self, filters: Filters, tz: tzinfo) -> list[dict[str, Any]]:
        """time, answered, latency_ms, top_citation, top_doc of the rows the stats cover."""
        where, params = self.where(replace(filters, page=1), tz)
        return await self._fetch(
            f"SELECT time, answered, latency_ms, top_citation, {self.dialect.top_doc} AS top_doc "
            f"FROM queries WHERE {where}", params)

    async def unanswered_rows(self, filters: Filters, tz: tzinfo,
                              limit: int) -> list[dict[str, Any]]:
        """question, time, openid of the newest questions no passage answered."""
        where, params = self.where(replace(filters, answered=None, doc=""), tz)
        return await self._fetch(
            f"SELECT question, time, openid FROM queries WHERE {UNANSWERED_SQL} AND {where} "
            f"ORDER BY time DESC LIMIT {self.dialect.ph}", [*params, limit])

    async def reviews(self) -> dict[str, str]:
        """Group key -> when staff marked it reviewed."""
        rows = await self._fetch("SELECT key, reviewed_at FROM unanswered_reviews", [])
        return {r["key"]: r["reviewed_at"] for r in rows}

    async def count(self) -> int:
        [row] = await self._fetch("SELECT count(*) AS n FROM queries", [])
        return int(row["n"])
