"""All SQL of linked questions, their audit trail, workers' votes and the review queue.

Written once for both databases: each function takes a DB-API connection whose ``execute``
accepts ``?`` placeholders (sqlite3's own; PostgreSQL's through bot.store.postgres.Translated)
and is run by the query store's ``call`` (one transaction on its writer) or ``call_read``.
Tables: migrations m003_links and m004_feedback of bot.store.sqlite and bot.store.postgres.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.search.links import Link

VOTES = ("helpful", "unhelpful")
ASKED = ("text", "voice", "click", "choice")  # msg_types a vote can be about
VOTE_WINDOW_HOURS = 24  # a vote without a usable reference goes to the latest answer this recent


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Connection(Protocol):
    """What these functions need of a connection: sqlite3's ``execute`` with ``?`` marks."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


def _link(row: Any) -> Link:
    (id_, question, passage_id, source, path, kind, content_hash, citation, query_id,
     created_by, created_at) = tuple(row)
    return Link(id_, question, passage_id, source, tuple(json.loads(path)), kind, content_hash,
                citation, query_id, created_by, created_at)


COLUMNS = ("id, question, passage_id, source, section_path, kind, content_hash, citation, "
           "query_id, created_by, created_at")


def list_links(conn: Connection) -> list[Link]:
    return [_link(r) for r in conn.execute(f"SELECT {COLUMNS} FROM links ORDER BY id")]


def get_link(conn: Connection, link_id: int) -> Link | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM links WHERE id = ?", (link_id,)).fetchone()
    return _link(row) if row else None


def _audit(conn: Connection, actor: str, action: str, link: Link | None,
           detail: str = "") -> None:
    conn.execute(
        "INSERT INTO link_audit (time, actor, action, link_id, question, passage_id, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (now_iso(), actor, action, link.id if link else None, link.question if link else "",
         link.passage_id if link else "", detail))


def save_link(conn: Connection, link: Link, actor: str,
              action: str = "create") -> tuple[Link, bool]:
    """Store ``link`` (its id and time are assigned here); (stored link, created?).

    A question points at one passage: linking it again moves the link (audited as relink).
    """
    old = conn.execute(f"SELECT {COLUMNS} FROM links WHERE question = ?",
                       (link.question,)).fetchone()
    values = (link.passage_id, link.source, json.dumps(list(link.path), ensure_ascii=False),
              link.kind, link.content_hash, link.citation, link.query_id, actor, now_iso())
    if old is None:
        new_id = conn.execute(
            "INSERT INTO links (question, passage_id, source, section_path, kind, content_hash, "
            "citation, query_id, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING id", (link.question, *values)).fetchone()[0]
        stored = get_link(conn, int(new_id))
        created = True
    else:
        before = _link(old)
        conn.execute(
            "UPDATE links SET passage_id = ?, source = ?, section_path = ?, kind = ?, "
            "content_hash = ?, citation = ?, query_id = COALESCE(?, query_id), created_by = ?, "
            "created_at = ? WHERE id = ?", (*values, before.id))
        stored = get_link(conn, before.id)
        created = False
        action = action if action != "create" else "relink"
        if before.passage_id == link.passage_id and before.content_hash == link.content_hash:
            action = "confirm" if action == "relink" else action
    assert stored is not None
    _audit(conn, actor, action, stored,
           "" if created else f"was {_link(old).passage_id} {_link(old).citation}")
    return stored, created


def delete_link(conn: Connection, link_id: int, actor: str) -> Link | None:
    link = get_link(conn, link_id)
    if link is not None:
        conn.execute("DELETE FROM links WHERE id = ?", (link_id,))
        _audit(conn, actor, "delete", link, link.citation)
    return link


def audit_trail(conn: Connection, limit: int = 200) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id, time, actor, action, link_id, question, passage_id, detail "
                        "FROM link_audit ORDER BY id DESC LIMIT ?", (limit,))
    keys = ("id", "time", "actor", "action", "link_id", "question", "passage_id", "detail")
    return [dict(zip(keys, tuple(r), strict=True)) for r in rows]


# --- votes -----------------------------------------------------------------------------------

def record_vote(conn: Connection, vote: str, openid: str, msg_key: str) -> int | None:
    """Attach a vote to the question it is about; returns that query row's id (None: no row).

    ``msg_key`` names the question (given back by the tap); without one, or when it is not this
    worker's, the vote goes to the worker's latest answer within VOTE_WINDOW_HOURS.
    """
    if vote not in VOTES:
        raise ValueError(f"vote must be one of {VOTES}, not {vote!r}")
    row = None
    if msg_key:
        row = conn.execute("SELECT id FROM queries WHERE msg_key = ? AND openid = ? "
                           "ORDER BY id DESC LIMIT 1", (msg_key, openid)).fetchone()
    if row is None:
        since = datetime.now(UTC).timestamp() - VOTE_WINDOW_HOURS * 3600
        cutoff = datetime.fromtimestamp(since, UTC).isoformat(timespec="milliseconds")
        marks = ", ".join("?" for _ in ASKED)
        row = conn.execute(
            f"SELECT id FROM queries WHERE openid = ? AND answered = 1 AND time >= ? "
            f"AND msg_type IN ({marks}) ORDER BY id DESC LIMIT 1",
            (openid, cutoff, *ASKED)).fetchone()
    if row is None:
        return None
    conn.execute("INSERT INTO feedback (query_id, vote, time) VALUES (?, ?, ?) ON CONFLICT"
                 "(query_id) DO UPDATE SET vote = excluded.vote, time = excluded.time",
                 (row[0], vote, now_iso()))
    return int(row[0])


def vote_of(conn: Connection, query_id: int) -> str:
    row = conn.execute("SELECT vote FROM feedback WHERE query_id = ?", (query_id,)).fetchone()
    return str(row[0]) if row else ""


def mark_done(conn: Connection, query_id: int, actor: str) -> None:
    conn.execute("INSERT INTO review_done (query_id, time, actor) VALUES (?, ?, ?) "
                 "ON CONFLICT(query_id) DO NOTHING", (query_id, now_iso(), actor))


# --- the review queue and stats ---------------------------------------------------------------

_OPEN = ("NOT EXISTS (SELECT 1 FROM review_done d WHERE d.query_id = q.id) AND "
         "NOT EXISTS (SELECT 1 FROM links l WHERE l.query_id = q.id)")


def _rows(conn: Connection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [c[0] for c in cursor.description]
    out = []
    for row in cursor:
        item = dict(zip(names, tuple(row), strict=True))
        if isinstance(item.get("hits"), str):  # SQLite TEXT; PostgreSQL's JSONB comes decoded
            item["hits"] = json.loads(item["hits"] or "[]")
        out.append(item)
    return out


def unhelpful(conn: Connection, limit: int = 200) -> list[dict[str, Any]]:
    """Answers a worker marked 没用 that staff have not yet linked or dismissed, newest first."""
    return _rows(conn, "SELECT q.id, q.time, q.question, q.top_citation, q.hits, f.time AS "
                 f"voted FROM queries q JOIN feedback f ON f.query_id = q.id WHERE f.vote = "
                 f"'unhelpful' AND {_OPEN} ORDER BY f.time DESC LIMIT ?", (limit,))


def choices(conn: Connection, limit: int = 200) -> list[dict[str, Any]]:
    """Candidates workers picked ("回复 1/2/3", logged as msg_type choice) awaiting a click."""
    return _rows(conn, f"SELECT q.id, q.time, q.question, q.top_citation, q.hits FROM queries q "
                 f"WHERE q.msg_type = 'choice' AND q.answered = 1 AND {_OPEN} "
                 f"ORDER BY q.id DESC LIMIT ?", (limit,))


def helpful_by_week(conn: Connection) -> list[dict[str, Any]]:
    """Votes per ISO week (UTC): the helpful rate staff watch after teaching the bot."""
    rows = conn.execute("SELECT q.time, f.vote FROM feedback f JOIN queries q "
                        "ON q.id = f.query_id")
    weeks: dict[str, list[int]] = {}
    for time, vote in rows:
        year, week, _ = datetime.fromisoformat(time).isocalendar()
        counts = weeks.setdefault(f"{year}-W{week:02d}", [0, 0])
        counts[0 if vote == "helpful" else 1] += 1
    return [{"week": w, "helpful": h, "unhelpful": u,
             "rate": round(h / (h + u), 3) if h + u else None}
            for w, (h, u) in sorted(weeks.items())]


def signature(conn: Connection) -> tuple:
    """Changes when any link is added, moved or removed (a server follows other processes)."""
    return tuple(conn.execute("SELECT count(*), max(id), max(created_at) FROM links").fetchone())


def question_of(conn: Connection, query_id: int) -> str:
    """The question of a query-log row ("" when there is none): a link's prefilled question."""
    row = conn.execute("SELECT question FROM queries WHERE id = ?", (query_id,)).fetchone()
    return str(row[0]) if row else ""
