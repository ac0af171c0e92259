"""The filters staff apply to the query log (list, API, CSV, stats), parsed from the URL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

TRUE_WORDS = {"true", "1", "yes", "answered"}
FALSE_WORDS = {"false", "0", "no", "unanswered"}


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


def utc_stamp(day: date, tz: tzinfo) -> str:
    """Local midnight of ``day`` in the stored format, so string comparison orders correctly."""
    return datetime.combine(day, time(), tz).astimezone(UTC).isoformat(timespec="milliseconds")
