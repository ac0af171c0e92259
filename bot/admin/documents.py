"""Admin: the documents the bot answers from, their parse errors, and how each will be cited."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

from aiohttp import web

from bot.ingest.knowledge import KnowledgeError, read_notice
from bot.ingest.passages import outline
from bot.keys import CONFIG, ENGINE


def documents(request: web.Request) -> list[dict]:
    """One row per knowledge file the index knows, failed ones first."""
    files = request.app[ENGINE].index.files
    rows = [{"file": name, **asdict(record)} for name, record in files.items()]
    return sorted(rows, key=lambda r: (not r["error"], r["file"]))


def _outline(root: Path, name: str) -> dict:
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise web.HTTPNotFound(text="no such document")
    try:
        return {"file": name, "error": "", **outline(read_notice(path, root.resolve()))}
    except KnowledgeError as exc:
        return {"file": name, "error": str(exc), "passages": [], "warnings": []}


async def document_outline(request: web.Request) -> dict:
    """Parse the file now (off the loop), as `bot index --check` does."""
    name = request.match_info["name"]
    if name not in request.app[ENGINE].index.files:
        raise web.HTTPNotFound(text="no such document")
    root = request.app[CONFIG].knowledge.dir
    return await asyncio.get_running_loop().run_in_executor(None, _outline, root, name)


async def api_documents(request: web.Request) -> web.Response:
    return web.json_response({"documents": documents(request)})


async def api_document(request: web.Request) -> web.Response:
    return web.json_response(await document_outline(request))
