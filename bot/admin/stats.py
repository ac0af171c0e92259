"""Summaries for staff: unanswered questions grouped by topic, and usage statistics.

Both aggregate in Python over rows the QueryStore returns: days and hours then follow the
configured time zone exactly, whatever the server's own zone or database.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, timedelta, tzinfo
from typing import Any

from bot.admin.queries import PAGE_SIZE, local_time
from bot.store import QueryStore
from bot.store.filters import Filters

MAX_UNANSWERED_ROWS = 20000  # newest unanswered rows grouped; older ones matter less
DEFAULT_STATS_DAYS = 30
MAX_STATS_DAYS = 731
TRAILING_PARTICLES = "吗呢啊呀吧"


def question_key(text: str) -> str:
    """Near-identical questions share this: width, case, punctuation, spaces, 请问/吗 ignored."""
    plain = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(ch for ch in plain if unicodedata.category(ch)[0] not in "PSZC")
    kept = kept.removeprefix("请问").rstrip(TRAILING_PARTICLES)
    return kept or plain.strip()


def group_id(key: str) -> str:
    """What a review mark stores: a digest, so no question text outlives retention there."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass
class Group:
    """Unanswered questions that are near-identical, newest wording first."""

    id: str
    question: str
    last_seen: str
    first_seen: str
    count: int = 0
    users: set[str] = field(default_factory=set)
    variants: list[str] = field(default_factory=list)
    reviewed_at: str | None = None
    new_since_review: int = 0
    times: list[str] = field(default_factory=list)

    @property
    def reviewed(self) -> bool:
        """Reviewed, and nobody has asked again since."""
        return self.reviewed_at is not None and self.new_since_review == 0


async def unanswered_groups(store: QueryStore, filters: Filters, tz: tzinfo,
                            show: str) -> list[Group]:
    """Groups most asked first; ``show`` is open, reviewed or all."""
    rows = await store.unanswered_rows(filters, tz, MAX_UNANSWERED_ROWS)
    groups: dict[str, Group] = {}
    for row in rows:
        question, when, openid = row["question"], row["time"], row["openid"]
        gid = group_id(question_key(question))
        group = groups.get(gid)
        if group is None:
            group = groups[gid] = Group(gid, question, when, when)
        group.count += 1
        group.first_seen = when
        group.users.add(openid)
        group.times.append(when)
        if question != group.question and question not in group.variants \
                and len(group.variants) < 5:
            group.variants.append(question)
    for gid, reviewed_at in (await store.reviews()).items():
        if gid in groups:
            groups[gid].reviewed_at = reviewed_at
            groups[gid].new_since_review = sum(t > reviewed_at for t in groups[gid].times)
    chosen = [g for g in groups.values()
              if show == "all" or (g.reviewed if show == "reviewed" else not g.reviewed)]
    chosen.sort(key=lambda g: (g.count, len(g.users), g.last_seen), reverse=True)
    return chosen


def percentile(sorted_values: list[float], share: float) -> float | None:
    """Nearest-rank percentile: a latency some request really had."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * share // 1))
    return sorted_values[int(rank) - 1]


def stats_range(filters: Filters, today: date) -> tuple[date, date]:
    """The days the stats cover: the filter's, else the last 30; never more than two years."""
    end = filters.date_to or max(today, filters.date_from or today)
    start = filters.date_from or end - timedelta(days=DEFAULT_STATS_DAYS - 1)
    if start > end:
        start, end = end, start
    return max(start, end - timedelta(days=MAX_STATS_DAYS - 1)), end


async def compute_stats(store: QueryStore, filters: Filters, tz: tzinfo,
                        today: date) -> dict[str, Any]:
    """Queries per day, answer rate, busiest hours, most cited documents, latency p50/p95."""
    start, end = stats_range(filters, today)
    rows = await store.stats_rows(replace(filters, date_from=start, date_to=end), tz)
    days = {start + timedelta(days=i): [0, 0] for i in range((end - start).days + 1)}
    hours = [0] * 24
    docs: Counter[str] = Counter()
    sections: Counter[str] = Counter()
    latencies = []
    for row in rows:
        when, answered, latency = row["time"], row["answered"], row["latency_ms"]
        citation, doc = row["top_citation"], row["top_doc"]
        local = local_time(when, tz)
        day = days.setdefault(local.date(), [0, 0])
        day[0] += 1
        day[1] += answered
        hours[local.hour] += 1
        if answered:
            docs[doc or "?"] += 1
            sections[citation or "?"] += 1
        if latency is not None:
            latencies.append(float(latency))
    latencies.sort()
    answered_total = sum(d[1] for d in days.values())
    return {
        "from": start.isoformat(), "to": end.isoformat(), "total": len(rows),
        "answered": answered_total,
        "answer_rate": round(answered_total / len(rows), 4) if rows else None,
        "per_day": [{"date": d.isoformat(), "total": t, "answered": a}
                    for d, (t, a) in sorted(days.items())],
        "hours": hours,
        "top_documents": [{"doc": d, "count": c} for d, c in docs.most_common(10)],
        "top_sections": [{"citation": s, "count": c} for s, c in sections.most_common(10)],
        "latency_ms": {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
                       "count": len(latencies)},
    }


def bar_chart(points: list[tuple[str, int, int]], width: int = 720,
              height: int = 160) -> dict[str, Any]:
    """Geometry of an SVG bar chart of (label, total, answered): the template only draws it."""
    top = max((t for _, t, _ in points), default=0) or 1
    step = width / max(len(points), 1)
    bars = []
    for i, (label, total, answered) in enumerate(points):
        bars.append({
            "x": round(i * step + step * 0.1, 2), "w": round(max(step * 0.8, 0.5), 2),
            "h": round(total / top * height, 2), "ha": round(answered / top * height, 2),
            "label": label, "total": total, "answered": answered,
        })
    return {"width": width, "height": height, "max": top if any(p[1] for p in points) else 0,
            "bars": bars, "first": points[0][0] if points else "",
            "last": points[-1][0] if points else ""}


def page_of(items: list[Any], page: int) -> list[Any]:
    return items[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
