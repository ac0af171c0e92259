"""HTTP handlers: the WeChat webhook (GET verification, POST messages) and the health check."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from bot.keys import (
    BACKGROUND,
    CONFIG,
    CONVERSATION,
    CRYPTO,
    CUSTOMER_SERVICE,
    ENGINE,
    INFLIGHT,
    NONCES,
    QUERYLOG,
    STATE,
)
from bot.ops.logs import LOG_EXTRA, mask_openid
from bot.ops.metrics import METRICS
from bot.state import wait_for_value
from bot.wechat.conversation import SHED, Outcome
from bot.wechat.dedupe import message_key
from bot.wechat.feedback import save_vote
from bot.wechat.protocol import Incoming, ProtocolError, read_message, render_reply, verify_request

log = logging.getLogger(__name__)
Logged = asyncio.Task | None  # the query-log insert of a question, giving its row id
CLAIM_GRACE = 1.0  # seconds a message's claim outlasts the reply budget
CLAIM_RECHECK = 0.25  # seconds a waiting retry polls for the reply before re-trying the claim
LOG_WAIT = 1.0  # most seconds a reply waits for its log row (a healthy insert takes ~1 ms)
REPLY_TTL = 60.0  # seconds a computed reply stays readable by retries (WeChat's come within 15)


def _refuse(request: web.Request, exc: ProtocolError) -> web.Response:
    log.warning("wechat: %s %s refused (%d): %s", request.method, request.path, exc.status,
                exc.reason)
    return web.Response(status=exc.status, text=exc.reason)


async def verify(request: web.Request) -> web.Response:
    """URL verification when the server address is saved in the Official Account settings."""
    cfg = request.app[CONFIG].wechat
    try:
        verify_request(cfg.token, dict(request.query), cfg.timestamp_window)
    except ProtocolError as exc:
        return _refuse(request, exc)
    return web.Response(text=request.query.get("echostr", ""))


async def _read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The whole body, refused when too big (413) or too slow to arrive (408): a peer trickling
    bytes must not hold a connection and its buffer for ever."""
    if request.content_length is not None and request.content_length > limit:
        raise ProtocolError(413, f"body of {request.content_length} bytes exceeds {limit}")
    body = bytearray()  # read() returns what has arrived so far: loop until EOF or over limit
    try:
        async with asyncio.timeout(timeout):
            while len(body) <= limit:
                chunk = await request.content.read(limit + 1 - len(body))
                if not chunk:
                    break
                body += chunk
    except TimeoutError:
        raise ProtocolError(408, f"body not received within {timeout:g} s") from None
    if len(body) > limit:
        raise ProtocolError(413, f"body exceeds {limit} bytes")
    return bytes(body)


def background(app: web.Application, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
    """Run ``coro`` beside the reply; shutdown waits for these (nothing logged is dropped)."""
    task = asyncio.ensure_future(coro)
    app[BACKGROUND].add(task)
    task.add_done_callback(app[BACKGROUND].discard)
    return task


async def drain(app: web.Application) -> None:
    """Wait until the work started beside replies (query-log writes, late sends) is done."""
    pending: set[asyncio.Task] = app[BACKGROUND]
    while pending:
        await asyncio.gather(*list(pending), return_exceptions=True)


async def _compute(app: web.Application, incoming: Incoming) -> tuple[Outcome, Logged, int]:
    """The work done once per message: answer, and start logging it (the reply waits for the
    log at most LOG_WAIT, so a locked database cannot make WeChat time out)."""
    outcome = await app[CONVERSATION].respond(incoming.message)
    logged = None
    record = outcome.record
    if record is not None:
        record.msg_key = message_key(incoming.message)
        result = ("shed" if record.delivery == SHED else "error" if record.error
                  else "answered" if record.answered else "not_found")
        app[METRICS].questions.labels(record.msg_type, result).inc()
        logged = background(app, app[QUERYLOG].add(record))
    if outcome.vote is not None:
        background(app, save_vote(app[QUERYLOG], incoming.message.source, *outcome.vote))
    return outcome, logged, int(time.time())


async def _compute_once(app: web.Application, incoming: Incoming,
                        key: str) -> tuple[Outcome, Logged, int, bool]:
    """Single flight across instances: the instance that claims ``key`` computes and publishes
    the reply; a retry reaching another instance waits for it, and takes over if the claim
    lapses unanswered (its owner died). The last item says whether this instance owns the
    message (logs its delivery, sends it late)."""
    state = app[STATE]
    # The owner replies (or hands over to a late send) within the budget; after that its
    # claim only matters if it died, and then a retry elsewhere should answer.
    claim_ttl = app[CONFIG].wechat.reply_budget + CLAIM_GRACE
    counted = False
    while not await state.add("claim:" + key, "1", claim_ttl):
        if not counted:
            counted = True
            app[METRICS].deduplicated_shared.inc()
        found = await wait_for_value(state, "reply:" + key, CLAIM_RECHECK)
        if found is not None:
            shared = json.loads(found)
            return Outcome(shared["reply"]), None, int(shared["created"]), False
    outcome, logged, created = await _compute(app, incoming)
    shared = json.dumps({"reply": outcome.reply, "created": created}, ensure_ascii=False)
    background(app, state.set("reply:" + key, shared, REPLY_TTL))  # retries poll for it
    return outcome, logged, created, True


async def _mark(app: web.Application, logged: Logged, delivery: str, error: str = "") -> None:
    """Record how the reply went out, once the question's row exists."""
    if logged is not None:
        await app[QUERYLOG].set_delivery(await logged, delivery, error)


async def _deliver_late(app: web.Application, job: asyncio.Task, openid: str) -> None:
    """The answer missed the reply budget: send it as a customer-service message."""
    outcome, logged, _, owner = await job
    if not outcome.reply or not owner:
        return
    sender = app[CUSTOMER_SERVICE]
    if sender is None:
        log.error("wechat: answer for %s too late; no appid/appsecret", mask_openid(openid))
        await _mark(app, logged, "failed", "late; customer service not configured")
        return
    try:
        await sender.send_text(openid, outcome.reply)
    except Exception as exc:  # noqa: BLE001 - recorded for admins, never retried in a loop
        log.error("wechat: customer-service send to %s failed: %s", mask_openid(openid), exc)
        await _mark(app, logged, "failed", f"customer service: {exc}")
        return
    app[METRICS].cs_sent.inc()
    await _mark(app, logged, "customer_service")


async def receive(request: web.Request) -> web.Response:
    """A message from WeChat: verify, decrypt, answer once per message, reply in its mode."""
    with request.app[METRICS].latency.time():
        response = await _receive(request)
    request.app[METRICS].requests.labels(str(response.status)).inc()
    return response


async def _receive(request: web.Request) -> web.Response:
    app = request.app
    cfg = app[CONFIG].wechat
    try:
        body = await _read_body(request, cfg.max_body_bytes, cfg.body_timeout)
        query = dict(request.query)
        verify_request(cfg.token, query, cfg.timestamp_window)
        if not await app[NONCES].check(query["timestamp"], query["nonce"], body):
            raise ProtocolError(403, "timestamp and nonce already used for another request")
        incoming = read_message(body, query, cfg.token, app[CRYPTO], cfg.mode)
    except ProtocolError as exc:
        return _refuse(request, exc)
    message = incoming.message
    request[LOG_EXTRA].update(msg_type=message.type, user=mask_openid(message.source or ""),
                              encrypted=incoming.encrypted)
    key = message_key(incoming.message)
    started = time.monotonic()
    job, first = app[INFLIGHT].get_or_start(key, lambda: _compute_once(app, incoming, key))
    try:
        outcome, logged, created, owner = await asyncio.wait_for(asyncio.shield(job),
                                                                 cfg.reply_budget)
    except TimeoutError:
        if first:
            background(app, _deliver_late(app, job, incoming.message.source))
        return web.Response(text="success")
    first = first and owner
    failed: Exception | None = None
    try:  # while the question's row is being written (another thread)
        xml = render_reply(incoming, outcome.reply, app[CRYPTO], created)
    except Exception as exc:  # noqa: BLE001 - the question is logged; record the failure
        log.exception("wechat: rendering the reply failed")
        xml, failed = "success", exc
    if logged is not None and first:
        # The reply waits briefly for the question's row: a 200 then means the row is stored,
        # even if this instance is killed right after. A slow or unreachable database delays
        # the reply by at most LOG_WAIT (within the budget); the row is then written later.
        left = min(cfg.reply_budget - (time.monotonic() - started), LOG_WAIT)
        await asyncio.wait({logged}, timeout=max(left, 0))
    if failed is not None:
        if first:
            background(app, _mark(app, logged, "failed", f"render: {failed!r}"))
        return web.Response(text="success")
    if first and outcome.record is not None and outcome.record.delivery == SHED:
        return web.Response(text=xml)  # "success"; the row already says shed
    if first:
        background(app, _mark(app, logged, "passive"))
    return web.Response(text=xml, content_type="application/xml" if xml != "success"
                        else "text/plain")


async def healthz(request: web.Request) -> web.Response:
    """Ready once the index is loaded: how many documents and passages it serves."""
    engine = request.app.get(ENGINE)
    if engine is None:
        return web.json_response({"ready": False}, status=503)
    index = engine.index
    return web.json_response({
        "ready": True, "model": index.model, "passages": len(index.passages),
        "documents": sum(1 for f in index.files.values() if f.passages),
        "built_at": index.built_at,
    })
