"""create_app(config): routes and the resources every request shares, opened once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bot.admin.links import links_ctx
from bot.admin.views import setup_admin
from bot.config import Config, ConfigError
from bot.engine import Engine
from bot.keys import (
    BACKGROUND,
    CONFIG,
    CONVERSATION,
    CRYPTO,
    CUSTOMER_SERVICE,
    ENGINE,
    HTTP,
    INFLIGHT,
    NONCES,
    QUERYLOG,
    STATE,
)
from bot.ops.logs import request_log
from bot.ops.metrics import setup_metrics
from bot.ops.watch import watch_ctx
from bot.state import open_state
from bot.store import open_store
from bot.wechat import views
from bot.wechat.conversation import Conversation
from bot.wechat.customer_service import CustomerService
from bot.wechat.dedupe import Inflight
from bot.wechat.protocol import make_crypto
from bot.wechat.replay import NonceCache

log = logging.getLogger(__name__)


async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the model and index once, off the event loop."""
    owned = ENGINE not in app
    if owned:
        engine, _ = await asyncio.get_running_loop().run_in_executor(
            None, Engine.open, app[CONFIG]
        )
        app[ENGINE] = engine
    app[CONVERSATION] = Conversation(app[CONFIG].wechat, app[ENGINE], app[STATE])
    yield
    if owned:
        await app[ENGINE].aclose()


async def state_ctx(app: web.Application) -> AsyncIterator[None]:
    """Shared state first: nonces, the conversation, admin sessions and the token use it."""
    app[STATE] = await open_state(app[CONFIG].state)
    app[NONCES] = NonceCache(app[CONFIG].wechat.timestamp_window, state=app[STATE])
    yield
    await app[STATE].aclose()


async def querylog_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG].querylog
    if cfg.hash_openids and not cfg.openid_salt:
        log.warning("querylog: hash_openids without openid_salt; set QUERYLOG_SALT")
    app[QUERYLOG] = await open_store(cfg)
    yield
    await app[QUERYLOG].aclose()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """Outgoing HTTP for customer-service messages; waits for late deliveries on shutdown."""
    cfg = app[CONFIG].wechat
    session = aiohttp.ClientSession()
    app[HTTP] = session
    app[CUSTOMER_SERVICE] = (
        CustomerService(session, cfg.appid, cfg.appsecret, app[STATE], cfg.api_base)
        if cfg.appid and cfg.appsecret else None
    )
    yield
    pending: set[asyncio.Task] = app[BACKGROUND]
    if pending:
        await asyncio.wait(pending, timeout=10)
    await session.close()


def create_app(cfg: Config, engine: Engine | None = None) -> web.Application:
    """The web application for ``cfg``; ``engine`` lets tests share one loaded model."""
    app = web.Application(client_max_size=cfg.wechat.max_body_bytes, middlewares=[request_log])
    app[CONFIG] = cfg
    app[CRYPTO] = make_crypto(cfg.wechat.token, cfg.wechat.encoding_aes_key, cfg.wechat.appid)
    if cfg.wechat.mode == "safe" and app[CRYPTO] is None:
        raise ConfigError('[wechat] mode = "safe" needs encoding_aes_key and appid '
                          "(WECHAT_AES_KEY, WECHAT_APPID)")
    app[INFLIGHT] = Inflight()
    app[BACKGROUND] = set()
    if engine is not None:
        app[ENGINE] = engine
    app.cleanup_ctx.extend([state_ctx, querylog_ctx, engine_ctx, links_ctx, http_ctx,
                            watch_ctx])
    app.router.add_get(cfg.wechat.path, views.verify)
    app.router.add_post(cfg.wechat.path, views.receive)
    app.router.add_get("/healthz", views.healthz)
    setup_metrics(app)
    setup_admin(app)
    return app
