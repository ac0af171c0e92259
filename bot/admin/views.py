"""Admin pages and JSON API: staff's only window on what workers ask and what goes unanswered.

``setup_admin(app)`` registers every /admin route through one guard (token login or Bearer),
and always installs the query log's upkeep (openid hashing, retention).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.admin.auth import (
    BEARER,
    COOKIE,
    AdminAuth,
    clear_session_cookie,
    set_session_cookie,
)
from bot.admin.documents import api_document, api_documents, document_outline, documents
from bot.admin.guard import add_security_headers, guarded, safe_next
from bot.admin.links import ROUTES as LINK_ROUTES
from bot.admin.links import feedback_stats
from bot.admin.queries import PAGE_SIZE, FilterError, Filters, detail, export_csv, item
from bot.admin.stats import bar_chart, compute_stats, page_of, unanswered_groups
from bot.admin.upkeep import querylog_upkeep_ctx
from bot.config import ConfigError
from bot.keys import (
    ADMIN_AUTH,
    ADMIN_SESSION,
    ADMIN_TEMPLATES,
    ADMIN_TZ,
    CONFIG,
    ENGINE,
    QUERYLOG,
    STATE,
)
from bot.ops.proxy import client_address

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


# --- helpers ---------------------------------------------------------------------------------

def load_timezone(name: str) -> tzinfo:
    """Staff read and filter times in their own zone ([admin] timezone), not in UTC."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        if name == "Asia/Shanghai":  # no tz database installed; China has no daylight saving
            return timezone(timedelta(hours=8), "CST")
        raise ConfigError(f"[admin] timezone: unknown time zone {name!r}") from exc


def filters_of(request: web.Request) -> Filters:
    try:
        return Filters.parse(request.query)
    except FilterError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc


def render(request: web.Request, name: str, context: dict[str, Any],
           status: int = 200) -> web.Response:
    sid = request.get(ADMIN_SESSION)
    cfg = request.app[CONFIG].admin
    common = {
        "csrf": request.app[ADMIN_AUTH].csrf_token(sid) if sid and sid != BEARER else "",
        "path": request.path, "here": request.path_qs,
        "tz_label": "北京时间" if cfg.timezone == "Asia/Shanghai" else cfg.timezone,
    }
    return aiohttp_jinja2.render_template(name, request, {**common, **context},
                                          app_key=ADMIN_TEMPLATES, status=status)


def url(path: str, params: dict[str, str]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def doc_choices(request: web.Request, current: str) -> list[tuple[str, str]]:
    """(value, label) of every indexed notice, for the document filter."""
    engine = request.app.get(ENGINE)
    files = engine.index.files if engine is not None else {}
    choices = sorted(((src, rec.title or src) for src, rec in files.items() if rec.passages),
                     key=lambda c: c[1])
    if current and current not in {v for v, _ in choices}:
        choices.append((current, current))
    return choices


def pager(path: str, filters: Filters, total: int, **extra: str) -> dict[str, Any]:
    """Previous/next links that keep the current filters."""
    pages = max(1, -(-total // PAGE_SIZE))

    def link(page: int) -> str:
        return url(path, {**filters.params(page=page), **extra})
    return {"page": filters.page, "pages": pages, "total": total,
            "prev": link(filters.page - 1) if filters.page > 1 else "",
            "next": link(filters.page + 1) if filters.page < pages else ""}


# --- pages and API ---------------------------------------------------------------------------

async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", {"next": safe_next(request.query.get("next", ""))})


async def login(request: web.Request) -> web.Response:
    """Token in, session cookie out; wrong tokens make the next try wait longer."""
    auth = request.app[ADMIN_AUTH]
    form = await request.post()
    target = safe_next(str(form.get("next", "")))
    client = client_address(request)
    wait = await auth.guard.wait(client)
    if wait:
        return render(request, "login.html", {"next": target, "wait": int(wait) + 1}, 429)
    if not auth.token_ok(str(form.get("token", ""))):
        delay = await auth.guard.failed(client)
        log.warning("admin: wrong token from %s; next try in %.0f s", client, delay)
        return render(request, "login.html", {"next": target, "wrong": True}, 401)
    await auth.guard.succeeded(client)
    log.info("admin: login from %s", client)
    response = web.HTTPSeeOther(target)
    set_session_cookie(response, request, auth.new_session(), auth.session_seconds)
    raise response


async def logout(request: web.Request) -> web.Response:
    await request.app[ADMIN_AUTH].revoke(request.cookies.get(COOKIE))
    response = web.HTTPSeeOther("/admin/login")
    clear_session_cookie(response, request)
    raise response


async def queries_page(request: web.Request) -> web.Response:
    filters = filters_of(request)
    tz, mask = request.app[ADMIN_TZ], request.app[CONFIG].admin.mask_openids
    total, rows = await request.app[QUERYLOG].page(filters, tz, PAGE_SIZE)
    return render(request, "queries.html", {
        "filters": filters, "items": [item(r, tz, mask) for r in rows],
        "docs": doc_choices(request, filters.doc), "pager": pager("/admin", filters, total),
        "export": url("/admin/export.csv", filters.params(page=1)),
    })


async def query_detail(request: web.Request) -> web.Response:
    tz, mask = request.app[ADMIN_TZ], request.app[CONFIG].admin.mask_openids
    found = detail(await request.app[QUERYLOG].detail(int(request.match_info["id"])), tz, mask)
    if found is None:
        raise web.HTTPNotFound(text="no such query")
    return render(request, "query.html", {"q": found})


def _show(request: web.Request) -> str:
    show = request.query.get("show", "open")
    return show if show in ("open", "reviewed", "all") else "open"


async def unanswered_page(request: web.Request) -> web.Response:
    filters, show, tz = filters_of(request), _show(request), request.app[ADMIN_TZ]
    groups = await unanswered_groups(request.app[QUERYLOG], filters, tz, show)
    return render(request, "unanswered.html", {
        "filters": filters, "show": show, "groups": page_of(groups, filters.page),
        "pager": pager("/admin/unanswered", filters, len(groups), show=show),
        "local": lambda stamp: item_time(stamp, tz),
    })


def item_time(stamp: str, tz: tzinfo) -> str:
    return datetime.fromisoformat(stamp).astimezone(tz).strftime("%Y-%m-%d %H:%M")


async def review(request: web.Request) -> web.Response:
    """Mark a group of unanswered questions as seen (or open it again)."""
    form = await request.post()
    key = str(form.get("key", ""))
    if len(key) != 32 or any(c not in "0123456789abcdef" for c in key):
        raise web.HTTPBadRequest(text="bad group key")
    await request.app[QUERYLOG].set_reviewed(key, form.get("action") != "reopen")
    raise web.HTTPSeeOther(safe_next(str(form.get("next", "/admin/unanswered"))))


async def _stats(request: web.Request) -> tuple[Filters, dict[str, Any]]:
    filters, tz = filters_of(request), request.app[ADMIN_TZ]
    stats = await compute_stats(request.app[QUERYLOG], filters, tz, datetime.now(tz).date())
    return filters, {**stats, "feedback": await feedback_stats(request)}


async def stats_page(request: web.Request) -> web.Response:
    filters, stats = await _stats(request)
    days = bar_chart([(d["date"], d["total"], d["answered"]) for d in stats["per_day"]])
    hours = bar_chart([(f"{h:02d}时", n, 0) for h, n in enumerate(stats["hours"])], 480, 100)
    return render(request, "stats.html", {"filters": filters, "s": stats, "days": days,
                                          "hours": hours})


async def export(request: web.Request) -> web.Response:
    filters, tz = filters_of(request), request.app[ADMIN_TZ]
    rows = await request.app[QUERYLOG].rows(filters, tz)
    body = export_csv(rows, tz, request.app[CONFIG].admin.mask_openids)
    name = f"queries-{datetime.now(tz):%Y%m%d-%H%M}.csv"
    return web.Response(body=body, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def api_queries(request: web.Request) -> web.Response:
    filters = filters_of(request)
    tz, mask = request.app[ADMIN_TZ], request.app[CONFIG].admin.mask_openids
    total, rows = await request.app[QUERYLOG].page(filters, tz, PAGE_SIZE)
    return web.json_response({"page": filters.page, "per_page": PAGE_SIZE, "total": total,
                              "items": [item(r, tz, mask) for r in rows]})


async def api_query(request: web.Request) -> web.Response:
    tz, mask = request.app[ADMIN_TZ], request.app[CONFIG].admin.mask_openids
    found = detail(await request.app[QUERYLOG].detail(int(request.match_info["id"])), tz, mask)
    if found is None:
        raise web.HTTPNotFound(text='{"error": "no such query"}', content_type="application/json")
    return web.json_response(found)


async def api_unanswered(request: web.Request) -> web.Response:
    filters, show, tz = filters_of(request), _show(request), request.app[ADMIN_TZ]
    groups = await unanswered_groups(request.app[QUERYLOG], filters, tz, show)
    return web.json_response({"total": len(groups), "groups": [
        {"key": g.id, "question": g.question, "count": g.count, "users": len(g.users),
         "last_seen": g.last_seen, "variants": g.variants, "reviewed": g.reviewed,
         "new_since_review": g.new_since_review}
        for g in page_of(groups, filters.page)]})


async def api_stats(request: web.Request) -> web.Response:
    return web.json_response((await _stats(request))[1])


async def documents_page(request: web.Request) -> web.Response:
    return render(request, "documents.html", {"docs": documents(request)})


async def document_page(request: web.Request) -> web.Response:
    return render(request, "document.html", {"d": await document_outline(request)})


async def to_list(request: web.Request) -> web.Response:
    raise web.HTTPFound("/admin")


async def admin_auth_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sessions signed with the secret all instances share (created by the first to start)."""
    cfg = app[CONFIG].admin
    app[ADMIN_AUTH] = await AdminAuth.shared(cfg.token, cfg.session_hours * 3600, app[STATE])
    yield


def setup_admin(app: web.Application) -> None:
    """Register the admin routes (only when a token is set) and the query log's upkeep.

    Call after the query log's cleanup_ctx is added: the upkeep context uses it.
    """
    app.cleanup_ctx.append(querylog_upkeep_ctx)
    cfg = app[CONFIG].admin
    if not cfg.token:
        log.info("admin: pages off; set [admin] token or ADMIN_TOKEN to turn them on")
        return
    app.cleanup_ctx.append(admin_auth_ctx)
    app[ADMIN_TZ] = load_timezone(cfg.timezone)
    aiohttp_jinja2.setup(app, app_key=ADMIN_TEMPLATES, autoescape=True,
                         loader=jinja2.FileSystemLoader(TEMPLATES),
                         undefined=jinja2.StrictUndefined)
    app.on_response_prepare.append(add_security_headers)
    r = app.router
    r.add_get("/admin/login", login_page)
    r.add_post("/admin/login", login)
    for method, path, handler, api in [
        ("GET", "/admin", queries_page, False),
        ("GET", "/admin/", to_list, False),
        ("POST", "/admin/logout", logout, False),
        ("GET", r"/admin/queries/{id:\d{1,18}}", query_detail, False),
        ("GET", "/admin/unanswered", unanswered_page, False),
        ("POST", "/admin/unanswered/review", review, False),
        ("GET", "/admin/stats", stats_page, False),
        ("GET", "/admin/export.csv", export, False),
        ("GET", "/admin/api/queries", api_queries, True),
        ("GET", r"/admin/api/queries/{id:\d{1,18}}", api_query, True),
        ("GET", "/admin/api/unanswered", api_unanswered, True),
        ("GET", "/admin/api/stats", api_stats, True),
        ("GET", "/admin/documents", documents_page, False),
        ("GET", "/admin/documents/{name:.+}", document_page, False),
        ("GET", "/admin/api/documents", api_documents, True),
        ("GET", "/admin/api/documents/{name:.+}", api_document, True),
        *LINK_ROUTES,
    ]:
        r.add_route(method, path, guarded(handler, api))
    log.info("admin: pages on at /admin")

