"""``bot links export`` / ``bot links import FILE``: links as JSONL staff can version and move.

An import checks every line against the current index first and stores nothing if one is bad
(one clear line per problem); a link whose passage changed since the export is kept with its
old content hash, so it shows as "needs review" instead of silently pointing elsewhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
import logging
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

from bot.config import Config
from bot.search.index import Index
from bot.search.links import Link, Links, locate
from bot.search.retrieve import Retriever
from bot.store import StoreUnavailable, open_store
from bot.store import links as linkstore

log = logging.getLogger(__name__)
T = TypeVar("T")

FIELDS = ("question", "passage_id", "source", "section_path", "kind", "content_hash",
          "citation", "created_by", "created_at")


def _call(cfg: Config, fn: Callable[..., T], *args: Any) -> T:
    """``fn(conn, *args)`` in one transaction of the configured query log (either database)."""
    async def run() -> T:
        querylog = await open_store(dataclasses.replace(cfg.querylog, pool_size=1))
        try:
            return await querylog.call(fn, *args)
        finally:
            await querylog.aclose()
    return asyncio.run(run())


def stored_links(cfg: Config) -> list[Link]:
    """The links in the query log; none when it has none yet (or cannot be read)."""
    path = cfg.querylog.path
    if cfg.querylog.url:
        try:
            return _call(cfg, linkstore.list_links)
        except StoreUnavailable as exc:
            log.warning("links: not read (%s)", exc)
            return []
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return linkstore.list_links(conn)
        finally:
            conn.close()
    except sqlite3.Error:  # an old query log without the links table, or not a database
        return []


def attach_links(cfg: Config, retriever: Retriever) -> int:
    """Let ``bot ask`` answer as the server does: with the links in the query log, if any."""
    links = stored_links(cfg)
    if links:
        held = Links(retriever.embedder)
        held.set(links)
        retriever.links = held.index_for(retriever)
    return len(links)


def export_links(cfg: Config, out: TextIO) -> int:
    """Every stored link, one JSON object a line; returns how many."""
    links = _call(cfg, linkstore.list_links)
    for link in links:
        data = link.to_json()
        out.write(json.dumps({k: data[k] for k in FIELDS}, ensure_ascii=False) + "\n")
    return len(links)


def parse_line(number: int, line: str, index: Index) -> tuple[Link | None, str]:
    """(link ready to store, "") or (None, why not)."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"line {number}: not JSON ({exc.msg})"
    if not isinstance(data, dict) or not isinstance(data.get("question"), str) \
            or not data["question"].strip():
        return None, f"line {number}: needs a non-empty \"question\""
    path = data.get("section_path", [])
    if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
        return None, f"line {number}: \"section_path\" must be a list of strings"
    wanted = Link(0, data["question"].strip(), str(data.get("passage_id", "")),
                  str(data.get("source", "")), tuple(path), str(data.get("kind", "section")),
                  str(data.get("content_hash", "")), str(data.get("citation", "")))
    passage, _ = locate(wanted, index)
    if passage is None:
        return None, (f"line {number}: no passage {wanted.passage_id or '-'} "
                      f"({wanted.citation or wanted.source}) in the current index")
    # Keep the exported hash (a changed passage then shows as needing review).
    return Link(0, wanted.question, passage.id, passage.source, passage.path, passage.kind,
                wanted.content_hash or passage.content_hash, passage.citation), ""


def import_links(cfg: Config, file: Path, index: Index) -> int:
    """Store the links of ``file``; exit code 0, or 1 (nothing stored) when a line is bad."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {file}: {exc}", file=sys.stderr)
        return 1
    parsed = [parse_line(n, line, index) for n, line in enumerate(lines, 1) if line.strip()]
    problems = [why for link, why in parsed if link is None]
    for why in problems:
        print(f"error: {file}: {why}", file=sys.stderr)
    if problems:
        print(f"links: nothing imported ({len(problems)} bad lines)", file=sys.stderr)
        return 1
    actor = f"bot links import {file.name} by {getpass.getuser()}"
    links = [link for link, _ in parsed if link is not None]

    def store(conn):  # noqa: ANN001, ANN202 - one transaction: all lines or none
        return [linkstore.save_link(conn, link, actor, "import")[1] for link in links]
    created = _call(cfg, store)
    print(f"links: imported {len(links)} ({sum(created)} new, {len(links) - sum(created)} "
          "updated); a running bot serve serves them within seconds")
    return 0
