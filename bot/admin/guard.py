"""The one gate every admin route passes: session cookie or Bearer token, CSRF on POST.

Routes are registered through ``guarded`` in one list, so none can be added unchecked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

from bot.admin.auth import BEARER, COOKIE, AdminAuth
from bot.keys import ADMIN_AUTH, ADMIN_SESSION
from bot.ops.proxy import client_address

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SECURITY_HEADERS = {
    # Defence in depth behind autoescaping: no script runs, nothing loads from elsewhere.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def safe_next(target: str) -> str:
    """Only back into the admin pages: a login link cannot send anyone elsewhere."""
    if (target.startswith("/admin") and not target.startswith("/admin/login")
            and "\\" not in target and "//" not in target):
        return target
    return "/admin"


def _refused(message: str, retry_after: float = 0) -> web.HTTPException:
    headers = {"WWW-Authenticate": 'Bearer realm="admin"'}
    cls: type[web.HTTPException] = web.HTTPUnauthorized
    if retry_after:
        headers["Retry-After"] = str(int(retry_after) + 1)
        cls = web.HTTPTooManyRequests
    return cls(text=json.dumps({"error": message}), content_type="application/json",
               headers=headers)


async def check_bearer(request: web.Request, auth: AdminAuth, token: str, where: str) -> None:
    """The one brake and audit for Bearer tokens (admin API and /metrics): 429 while the
    client must wait after wrong tokens, 401 (and a log line) for a wrong one."""
    client = client_address(request)
    wait = await auth.guard.wait(client)
    if wait:
        raise _refused("too many wrong tokens; wait", wait)
    if auth.token_ok(token):
        await auth.guard.succeeded(client)
        return
    delay = await auth.guard.failed(client)
    log.warning("%s: wrong bearer token from %s; next try in %.0f s", where, client, delay)
    raise _refused("wrong token")


async def authenticate(request: web.Request, api: bool) -> str:
    """The session id, or BEARER for scripts; otherwise 401 (API) or a redirect to login."""
    auth = request.app[ADMIN_AUTH]
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        await check_bearer(request, auth, header[7:].strip(), "admin")
        return BEARER
    sid = await auth.session(request.cookies.get(COOKIE))
    if sid is not None:
        return sid
    if api:
        raise _refused("login or Authorization: Bearer <token> required")
    login = "/admin/login?" + urlencode({"next": request.path_qs})
    raise web.HTTPSeeOther(login) if request.method == "POST" else web.HTTPFound(login)


def guarded(handler: Handler, api: bool = False) -> Handler:
    """Every admin route but the login goes through here; POSTs also need the CSRF token."""
    async def checked(request: web.Request) -> web.StreamResponse:
        sid = await authenticate(request, api)
        if request.method == "POST":
            form = await request.post()
            if not request.app[ADMIN_AUTH].csrf_ok(sid, str(form.get("csrf", ""))):
                raise web.HTTPForbidden(text="CSRF token missing or wrong; reload the page")
        request[ADMIN_SESSION] = sid
        return await handler(request)
    return checked


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == "/admin" or request.path.startswith("/admin/"):
        response.headers.update(SECURITY_HEADERS)
