"""Logging: plain or JSON lines, and one structured line per HTTP request with a request id.

Query strings are never logged (they carry signatures, nonces and openids) and openids only
masked, so a log file can be shared with whoever helps debug the service.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.config import LogConfig

log = logging.getLogger("bot.access")
REQUEST_ID = "X-Request-Id"
LOG_EXTRA = web.RequestKey("log_extra", dict[str, object])
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Control characters (C0, DEL, C1) and Unicode line breaks, written as escapes: a request path,
# request id or openid cannot start a new, forged line in a plain-text log.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028",
                 0x2029: "\\u2029"})


def escape(text: str) -> str:
    """``text`` on one line: newlines and other control characters escaped."""
    return text.translate(_ESCAPES)


def mask_openid(openid: str) -> str:
    """oAbc…xyz: enough to tell users apart in a log or page, not enough to identify anyone."""
    if len(openid) <= 8:
        return openid[:2] + "…"
    return f"{openid[:4]}…{openid[-3:]}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """One line per record (a traceback still follows on its own lines), values escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return escape(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", {})
        return line + "".join(f" {k}={escape(str(v))}" for k, v in fields.items())


def configure(cfg: LogConfig) -> None:
    """Root logging for the command line and the server."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if cfg.json
        else PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(cfg.level.upper())
    for noisy in ("faiss", "aiohttp.access", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@web.middleware
async def request_log(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Give every request an id (or keep the proxy's) and log one line when it is done."""
    request_id = request.headers.get(REQUEST_ID, "")
    if not _REQUEST_ID.fullmatch(request_id):  # a proxy's id is kept only if it is plain
        request_id = uuid.uuid4().hex[:12]
    request[LOG_EXTRA] = {}
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        fields: dict[str, object] = {
            "request_id": request_id, "method": request.method, "path": request.path,
            "status": status, "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        extra: dict[str, object] = request[LOG_EXTRA]
        fields.update(extra)
        log.info("%s %s %d", request.method, request.path, status, extra={"fields": fields})
