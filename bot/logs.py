"""Logging: plain or JSON lines, and one structured line per HTTP request with a request id.

Query strings are never logged (they carry signatures, nonces and openids) and openids only
masked, so a log file can be shared with whoever helps debug the service.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.config import LogConfig

log = logging.getLogger("bot.access")
REQUEST_ID = "X-Request-Id"
LOG_EXTRA = web.RequestKey("log_extra", dict[str, object])


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
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", {})
        return line + "".join(f" {k}={v}" for k, v in fields.items()) if fields else line


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
    request_id = request.headers.get(REQUEST_ID) or uuid.uuid4().hex[:12]
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
