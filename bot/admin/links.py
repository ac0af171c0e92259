"""Admin: link questions to passages, the review queue, and their JSON API (issue 11).

Every change goes through the query log's writer (with an audit row: who, when) and is then
served at once: the engine's links are replaced whole, embedding only the new question.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.admin.auth import BEARER
from bot.admin.stats import unanswered_groups
from bot.ingest.passages import Passage
from bot.keys import ADMIN_SESSION, ADMIN_TZ, ENGINE, QUERYLOG
from bot.ops.proxy import client_address
from bot.search.index import Index
from bot.search.links import Link, link_to, locate, positions
from bot.store import Filters, QueryStore, StoreUnavailable
from bot.store import links as linkstore

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_QUESTION = 500
SEARCH_HITS = 10
UNANSWERED_SHOWN = 50
POLL_SECONDS = 2.0  # how soon links imported by another process are served
OUTLINE_WORDS = 60  # characters of each passage shown when browsing a document


def _json_error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}, ensure_ascii=False),
                  content_type="application/json")


def actor(request: web.Request, by: str = "") -> str:
    """Who did it, for the audit trail: the name staff give (if any), how, and from where."""
    sid = request.get(ADMIN_SESSION, "")
    how = "api token" if sid == BEARER else f"admin page session {sid[:8]}"
    name = " ".join(by.split())[:60]
    return f"{name + ' / ' if name else ''}{how} from {client_address(request)}"


def store_of(where: web.Request | web.Application) -> QueryStore:
    """The query log, where links, their audit trail and votes are kept (either database)."""
    return (where.app if isinstance(where, web.Request) else where)[QUERYLOG]


async def read(where: web.Request | web.Application, fn: Callable[..., Any],
               *args: Any) -> Any:
    """``fn(conn, *args)`` of bot.store.links on a read connection, off the event loop."""
    try:
        return await store_of(where).call_read(fn, *args)
    except StoreUnavailable as exc:
        raise _json_error(web.HTTPServiceUnavailable, str(exc)) from None


async def write(request: web.Request, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(conn, *args)`` of bot.store.links in one transaction; 503 while the log is down."""
    try:
        return await store_of(request).call(fn, *args)
    except StoreUnavailable as exc:
        raise _json_error(web.HTTPServiceUnavailable, str(exc)) from None


async def reload_links(app: web.Application) -> None:
    """Serve the stored links from the next question on (no restart, no full re-embed)."""
    engine = app[ENGINE]
    links = await read(app, linkstore.list_links)
    await asyncio.get_running_loop().run_in_executor(None, engine.set_links, links)


async def follow_links(app: web.Application, seen: tuple,
                       every: float = POLL_SECONDS) -> None:
    """Pick up links changed by another process (``bot links import``, a second server)
    since the store's ``seen`` signature."""
    while True:
        await asyncio.sleep(every)
        try:
            now = await read(app, linkstore.signature)
            if now != seen:
                await reload_links(app)
                seen = now
        except web.HTTPServiceUnavailable as exc:  # the log is down: said once per poll
            log.warning("links: not reloaded: %s", exc.text)
        except Exception:  # noqa: BLE001 - keep serving the links already loaded
            log.exception("links: reloading the links failed")


async def links_ctx(app: web.Application) -> Any:
    """Load the links with the index when the server starts, and follow outside changes.

    The signature is read before the links: a link saved in between is then seen as a change
    (the follower once read it after its task started, and missed a link saved meanwhile).
    """
    seen = await read(app, linkstore.signature)
    await reload_links(app)
    task = asyncio.create_task(follow_links(app, seen))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def passage_json(passage: Passage, score: float | None = None) -> dict[str, Any]:
    found = {"id": passage.id, "citation": passage.citation, "text": passage.text,
             "source": passage.source, "section": passage.section}
    return found if score is None else {**found, "score": round(score, 4)}


async def search_passages(request: web.Request, q: str) -> list[dict[str, Any]]:
    """The same retriever workers get (a passage's own text finds it first); an id finds itself."""
    engine = request.app[ENGINE]
    index = engine.index
    if q in positions(index):
        return [passage_json(index.passages[positions(index)[q]], 1.0)]
    if not q.strip():
        return []
    retriever = engine.retriever
    result = await asyncio.get_running_loop().run_in_executor(
        None, lambda: retriever.search_many([q])[0])
    hits = [passage_json(h.passage, h.score) for h in result.hits]
    if len(hits) < SEARCH_HITS:  # widen with more keyword matches so staff can pick further down
        seen = {h["id"] for h in hits}
        match = index.keyword.query(retriever.query_text(q))  # its terms' postings only
        ids = match.top(min(SEARCH_HITS * 2, len(index.passages)))
        bm25 = match.bm25(ids)
        ranked = sorted(zip(ids.tolist(), bm25.tolist(), strict=True), key=lambda pair: -pair[1])
        for i, score in ranked:
            if score > 0 and index.passages[i].id not in seen and len(hits) < SEARCH_HITS:
                hits.append(passage_json(index.passages[i], 0.0))
                seen.add(index.passages[i].id)
    return hits


def browse(index: Index, doc: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The link picker's other way in: (documents, the passages of ``doc`` in their order),
    each passage with its citation and first words, for staff who know where the answer is."""
    counts: dict[str, int] = {}
    for passage in index.passages:
        counts[passage.source] = counts.get(passage.source, 0) + 1
    docs = [{"file": name, "title": record.title or name, "passages": counts.get(name, 0)}
            for name, record in sorted(index.files.items()) if counts.get(name)]
    outline = [{"id": p.id, "citation": p.citation, "first_words": words[:OUTLINE_WORDS],
                "more": len(words) > OUTLINE_WORDS}
               for p in index.passages if p.source == doc
               for words in [" ".join(p.text.split())]] if doc else []
    return docs, outline


def local_time(request: web.Request, stamp: str) -> str:
    """A stored UTC time in the admin's zone, as the other admin pages show times."""
    if not stamp or ADMIN_TZ not in request.app:
        return stamp
    return datetime.fromisoformat(stamp).astimezone(request.app[ADMIN_TZ]).strftime(
        "%Y-%m-%d %H:%M:%S")


def link_view(link: Link, request: web.Request) -> dict[str, Any]:
    """A stored link with its state against the current index (needs review when not ok)."""
    passage, status = locate(link, request.app[ENGINE].index)
    return {**link.to_json(), "status": status, "needs_review": status != "ok",
            "current_citation": passage.citation if passage else "",
            "created_local": local_time(request, link.created_at)}


async def create_link(request: web.Request, question: str, passage_id: str,
                      query_id: int | None, by: str = "") -> tuple[Link, bool]:
    """Validate, store (audited) and serve a link; HTTPBadRequest says what is wrong."""
    question = question.strip()
    if not question:
        raise _json_error(web.HTTPBadRequest, "question is empty")
    if len(question) > MAX_QUESTION:
        raise _json_error(web.HTTPBadRequest, f"question longer than {MAX_QUESTION} characters")
    index = request.app[ENGINE].index
    position = positions(index).get(passage_id.strip())
    if position is None:
        raise _json_error(web.HTTPBadRequest, f"unknown passage id {passage_id[:40]!r}: use the "
                          "id of a hit from GET /admin/api/search?q=...")
    link = link_to(question, index.passages[position], query_id)
    stored, created = await write(request, linkstore.save_link, link, actor(request, by))
    await reload_links(request.app)
    log.info("admin: link %d %s -> %s", stored.id, "created" if created else "moved",
             stored.citation)
    return stored, created


async def remove_link(request: web.Request, link_id: int) -> Link | None:
    removed = await write(request, linkstore.delete_link, link_id, actor(request))
    if removed is not None:
        await reload_links(request.app)
    return removed


# --- JSON API --------------------------------------------------------------------------------

async def api_search(request: web.Request) -> web.Response:
    q = request.query.get("q", "")[:2000]
    return web.json_response({"hits": await search_passages(request, q)})


async def api_links(request: web.Request) -> web.Response:
    links = await read(request, linkstore.list_links)
    return web.json_response({"links": [link_view(link, request) for link in links]})


def _query_id(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not str(value).isdigit():
        raise _json_error(web.HTTPBadRequest, "query_id must be a query's number")
    return int(value)


async def api_create_link(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        raise _json_error(web.HTTPBadRequest, "body must be JSON: "
                          '{"question": "...", "passage_id": "..."}') from None
    if not isinstance(body, dict) or not isinstance(body.get("question"), str) \
            or not isinstance(body.get("passage_id"), str):
        raise _json_error(web.HTTPBadRequest,
                          'body must be {"question": "...", "passage_id": "..."}')
    stored, created = await create_link(request, body["question"], body["passage_id"],
                                        _query_id(body.get("query_id")), str(body.get("by", "")))
    return web.json_response(link_view(stored, request), status=201 if created else 200)


async def api_delete_link(request: web.Request) -> web.Response:
    removed = await remove_link(request, int(request.match_info["id"]))
    if removed is None:
        raise _json_error(web.HTTPNotFound, "no such link")
    return web.json_response({"deleted": removed.to_json()})


async def api_audit(request: web.Request) -> web.Response:
    return web.json_response({"audit": await read(request, linkstore.audit_trail)})


async def review_queue(request: web.Request) -> dict[str, Any]:
    links = [link_view(link, request) for link in await read(request, linkstore.list_links)]
    groups = await unanswered_groups(request.app[QUERYLOG], Filters(), request.app[ADMIN_TZ],
                                     "open")
    return {
        "unanswered": [{"key": g.id, "question": g.question, "count": g.count,
                        "users": len(g.users), "last_seen": g.last_seen}
                       for g in groups[:UNANSWERED_SHOWN]],
        "unhelpful": await read(request, linkstore.unhelpful),
        "choices": await read(request, linkstore.choices),
        "links_needing_review": [v for v in links if v["needs_review"]],
        "helpful_by_week": await read(request, linkstore.helpful_by_week),
    }


async def feedback_stats(request: web.Request) -> dict[str, Any]:
    """For the stats page: helpful rate by week and how much waits in the review queue."""
    queue = await review_queue(request)
    return {"helpful_by_week": queue["helpful_by_week"],
            "to_review": {k: len(queue[k]) for k in ("unanswered", "unhelpful", "choices",
                                                     "links_needing_review")}}


async def api_review(request: web.Request) -> web.Response:
    return web.json_response(await review_queue(request))


# --- pages -----------------------------------------------------------------------------------

def render(request: web.Request, name: str, context: dict[str, Any]) -> web.Response:
    from bot.admin.views import render as render_page  # bot.admin.views imports this module

    return render_page(request, name, context)


async def links_page(request: web.Request) -> web.Response:
    """The links, a search to make a new one (prefilled from a query or a group)."""
    question = request.query.get("question", "")[:MAX_QUESTION]
    query_id = request.query.get("query_id", "")
    if query_id.isdigit() and not question:
        question = await read(request, linkstore.question_of, int(query_id))
    q = request.query.get("q", question)[:2000]
    links = [link_view(link, request) for link in await read(request, linkstore.list_links)]
    doc = request.query.get("doc", "")[:500]
    docs, outline = browse(request.app[ENGINE].index, doc)
    if doc and not outline:
        raise web.HTTPNotFound(text="no such document in the index")
    return render(request, "links.html", {
        "question": question, "query_id": query_id if query_id.isdigit() else "", "q": q,
        "hits": await search_passages(request, q) if q else [], "links": links,
        "docs": docs, "doc": doc, "outline": outline,
        "doc_title": next((d["title"] for d in docs if d["file"] == doc), ""),
        "audit": [{**a, "time_local": local_time(request, a["time"])}
                  for a in (await read(request, linkstore.audit_trail))[:30]],
        "saved": request.query.get("saved", ""),
    })


async def links_post(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        stored, _ = await create_link(request, str(form.get("question", "")),
                                      str(form.get("passage_id", "")),
                                      _query_id(form.get("query_id")), str(form.get("by", "")))
    except web.HTTPBadRequest as exc:
        raise web.HTTPBadRequest(
            text=json.loads(exc.text or "{}").get("error", "bad link")) from None
    raise web.HTTPSeeOther(f"/admin/links?saved={stored.id}")


async def link_delete_post(request: web.Request) -> web.Response:
    await remove_link(request, int(request.match_info["id"]))
    raise web.HTTPSeeOther("/admin/links")


async def link_confirm_post(request: web.Request) -> web.Response:
    """Staff checked a link that needs review: point it at the passage as it is now."""
    link = await read(request, linkstore.get_link, int(request.match_info["id"]))
    if link is None:
        raise web.HTTPNotFound(text="no such link")
    passage, _ = locate(link, request.app[ENGINE].index)
    if passage is None:
        raise web.HTTPBadRequest(text="the passage is gone: delete the link or link again")
    await create_link(request, link.question, passage.id, link.query_id)
    raise web.HTTPSeeOther("/admin/links")


async def review_page(request: web.Request) -> web.Response:
    return render(request, "review.html", {"r": await review_queue(request)})


async def review_done(request: web.Request) -> web.Response:
    form = await request.post()
    query_id = _query_id(form.get("query_id")) if str(form.get("query_id", "")).isdigit() \
        else None
    if query_id is None:
        raise web.HTTPBadRequest(text="query_id missing")
    await write(request, linkstore.mark_done, query_id, actor(request))
    raise web.HTTPSeeOther("/admin/review")


ROUTES: list[tuple[str, str, Handler, bool]] = [
    ("GET", "/admin/api/search", api_search, True),
    ("GET", "/admin/api/links", api_links, True),
    ("POST", "/admin/api/links", api_create_link, True),
    ("DELETE", r"/admin/api/links/{id:\d{1,18}}", api_delete_link, True),
    ("GET", "/admin/api/links/audit", api_audit, True),
    ("GET", "/admin/api/review", api_review, True),
    ("GET", "/admin/links", links_page, False),
    ("POST", "/admin/links", links_post, False),
    ("POST", r"/admin/links/{id:\d{1,18}}/delete", link_delete_post, False),
    ("POST", r"/admin/links/{id:\d{1,18}}/confirm", link_confirm_post, False),
    ("GET", "/admin/review", review_page, False),
    ("POST", "/admin/review/done", review_done, False),
]
