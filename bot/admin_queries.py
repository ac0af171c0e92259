"""What the admin pages read from the query log: filters, pages of rows, one row, CSV.

Every value a user supplies reaches SQLite as a parameter; the SQL text is fixed. Times are
stored in UTC and shown (and filtered by date) in the configured time zone.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from bot.logs import mask_openid

PAGE_SIZE = 50
TRUE_WORDS = {"true", "1", "yes", "answered"}
FALSE_WORDS = {"false", "0", "no", "unanswered"}
LIST_COLUMNS = ("id, time, openid, msg_type, question, answered, top_citation, top_score, "
                "latency_ms, delivery, error, json_extract(hits, '$[0].doc') AS top_doc")
CSV_HEADER = ["id", "时间", "用户", "类型", "问题", "已回答", "出处", "得分", "文件",
              "耗时(ms)", "投递", "错误"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class FilterError(ValueError):
    """A filter value that cannot be understood (HTTP 400)."""


def _date(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise FilterError(f"{name}: expected a date like 2024-05-01, got {value!r}") from exc


@dataclass(frozen=True)
class Filters:
    """The filters shared by the query list, the API, the CSV export and the stats."""

    date_from: date | None = None
    date_to: date | None = None
    answered: bool | None = None
    q: str = ""
    doc: str = ""
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> Filters:
        answered_word = query.get("answered", "").strip().lower()
        if answered_word in TRUE_WORDS:
            answered: bool | None = True
        elif answered_word in FALSE_WORDS:
            answered = False
        elif answered_word in ("", "all"):
            answered = None
        else:
            raise FilterError(f"answered: expected true, false or all, got {answered_word!r}")
        page = query.get("page", "1").strip() or "1"
        if not page.isdigit() or int(page) < 1:
            raise FilterError(f"page: expected a positive number, got {page!r}")
        return cls(_date(query.get("from", "").strip(), "from"),
                   _date(query.get("to", "").strip(), "to"), answered,
                   query.get("q", "").strip()[:200], query.get("doc", "").strip()[:500],
                   min(int(page), 10**6))

    def params(self, **changes: Any) -> dict[str, str]:
        """The non-default filters as URL parameters (for links that keep them)."""
        f = replace(self, **changes)
        out = {"from": f.date_from.isoformat() if f.date_from else "",
               "to": f.date_to.isoformat() if f.date_to else "",
               "answered": "" if f.answered is None else str(f.answered).lower(),
               "q": f.q, "doc": f.doc, "page": "" if f.page == 1 else str(f.page)}
        return {k: v for k, v in out.items() if v}

    def where(self, tz: tzinfo) -> tuple[str, list[Any]]:
        """SQL condition and its parameters; dates are whole days in ``tz``."""
        clauses: list[str] = ["1 = 1"]
        params: list[Any] = []
        if self.date_from:
            clauses.append("time >= ?")
            params.append(utc_stamp(self.date_from, tz))
        if self.date_to:
            clauses.append("time < ?")
            params.append(utc_stamp(self.date_to + timedelta(days=1), tz))
        if self.answered is not None:
            clauses.append("answered = ?")
            params.append(int(self.answered))
        if self.q:
            clauses.append("question LIKE ? ESCAPE '\\'")
            params.append(f"%{like_escape(self.q)}%")
        if self.doc:
            clauses.append("(json_extract(hits, '$[0].source') = ? "
                           "OR json_extract(hits, '$[0].doc') = ?)")
            params += [self.doc, self.doc]
        return " AND ".join(clauses), params


def like_escape(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '\\' (a typed % or _ is not a wildcard)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def utc_stamp(day: date, tz: tzinfo) -> str:
    """Local midnight of ``day`` in the stored format, so string comparison orders correctly."""
    return datetime.combine(day, time(), tz).astimezone(UTC).isoformat(timespec="milliseconds")


def local_time(stamp: str, tz: tzinfo) -> datetime:
    return datetime.fromisoformat(stamp).astimezone(tz)


def item(row: sqlite3.Row, tz: tzinfo, mask: bool) -> dict[str, Any]:
    """One query as the pages, the API and the CSV show it."""
    when = local_time(row["time"], tz)
    return {
        "id": row["id"], "time": when.isoformat(timespec="seconds"),
        "time_text": when.strftime("%Y-%m-%d %H:%M:%S"),
        "user": mask_openid(row["openid"]) if mask else row["openid"],
        "msg_type": row["msg_type"], "question": row["question"],
        "answered": bool(row["answered"]), "citation": row["top_citation"],
        "score": row["top_score"], "doc": row["top_doc"] or "",
        "latency_ms": row["latency_ms"], "delivery": row["delivery"], "error": row["error"],
    }


def list_page(conn: sqlite3.Connection, filters: Filters,
              tz: tzinfo) -> tuple[int, list[sqlite3.Row]]:
    """(total matching, the rows of ``filters.page``), newest first."""
    where, params = filters.where(tz)
    total = conn.execute(f"SELECT count(*) FROM queries WHERE {where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT {LIST_COLUMNS} FROM queries WHERE {where} ORDER BY time DESC, id DESC "
        "LIMIT ? OFFSET ?", [*params, PAGE_SIZE, (filters.page - 1) * PAGE_SIZE],
    ).fetchall()
    return total, rows


def detail(conn: sqlite3.Connection, row_id: int, tz: tzinfo,
           mask: bool) -> dict[str, Any] | None:
    """One query in full: the reply, every hit with its score, how it was delivered."""
    row = conn.execute(f"SELECT {LIST_COLUMNS}, reply, hits, msg_key FROM queries WHERE id = ?",
                       (row_id,)).fetchone()
    if row is None:
        return None
    try:
        hits = json.loads(row["hits"])
    except ValueError:
        hits = []
    return {**item(row, tz, mask), "reply": row["reply"], "hits": hits,
            "msg_key": row["msg_key"]}


def csv_cell(value: Any) -> Any:
    """Typed text that Excel would run as a formula (=HYPERLINK...) is kept as text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def iter_items(conn: sqlite3.Connection, filters: Filters, tz: tzinfo,
               mask: bool) -> Iterator[dict[str, Any]]:
    where, params = filters.where(tz)
    cursor = conn.execute(f"SELECT {LIST_COLUMNS} FROM queries WHERE {where} "
                          "ORDER BY time DESC, id DESC", params)
    for row in cursor:
        yield item(row, tz, mask)


def export_csv(conn: sqlite3.Connection, filters: Filters, tz: tzinfo, mask: bool) -> bytes:
    """Every row matching ``filters`` as CSV, UTF-8 with a BOM so Excel reads the Chinese."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for it in iter_items(conn, filters, tz, mask):
        writer.writerow([csv_cell(v) for v in (
            it["id"], it["time_text"], it["user"], it["msg_type"], it["question"],
            "是" if it["answered"] else "否", it["citation"],
            "" if it["score"] is None else it["score"], it["doc"],
            "" if it["latency_ms"] is None else it["latency_ms"], it["delivery"], it["error"],
        )])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
