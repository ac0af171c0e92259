"""What the admin pages show of the query log: one row as pages, API and CSV show it.

The rows come from the QueryStore (bot/store/); no SQL here. Times are stored in UTC and
shown (and filtered by date) in the configured time zone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Any

from bot.ops.logs import mask_openid
from bot.store.filters import FilterError, Filters

__all__ = ["PAGE_SIZE", "FilterError", "Filters", "item", "export_csv", "local_time"]

PAGE_SIZE = 50
CSV_HEADER = ["id", "时间", "用户", "类型", "问题", "已回答", "出处", "得分", "文件",
              "耗时(ms)", "投递", "错误"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def local_time(stamp: str, tz: tzinfo) -> datetime:
    return datetime.fromisoformat(stamp).astimezone(tz)


def item(row: dict[str, Any], tz: tzinfo, mask: bool) -> dict[str, Any]:
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


def detail(row: dict[str, Any] | None, tz: tzinfo, mask: bool) -> dict[str, Any] | None:
    """One query in full: the reply, every hit with its score, how it was delivered."""
    if row is None:
        return None
    return {**item(row, tz, mask), "reply": row["reply"], "hits": row["hits"],
            "msg_key": row["msg_key"]}


def csv_cell(value: Any) -> Any:
    """Typed text that Excel would run as a formula (=HYPERLINK...) is kept as text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def export_csv(rows: Iterable[dict[str, Any]], tz: tzinfo, mask: bool) -> bytes:
    """Every row matching ``filters`` as CSV, UTF-8 with a BOM so Excel reads the Chinese."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for it in (item(row, tz, mask) for row in rows):
        writer.writerow([csv_cell(v) for v in (
            it["id"], it["time_text"], it["user"], it["msg_type"], it["question"],
            "是" if it["answered"] else "否", it["citation"],
            "" if it["score"] is None else it["score"], it["doc"],
            "" if it["latency_ms"] is None else it["latency_ms"], it["delivery"], it["error"],
        )])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
