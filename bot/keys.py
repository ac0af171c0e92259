"""The typed keys of everything the aiohttp app shares, declared in one place."""

from __future__ import annotations

import asyncio
from datetime import tzinfo

import aiohttp
import jinja2
from aiohttp import web
from wechatpy.crypto import WeChatCrypto

from bot.admin.auth import AdminAuth
from bot.config import Config
from bot.engine import Engine
from bot.state import SharedState
from bot.store import QueryStore
from bot.wechat.conversation import Conversation
from bot.wechat.customer_service import CustomerService
from bot.wechat.dedupe import Inflight
from bot.wechat.replay import NonceCache

CONFIG = web.AppKey("config", Config)
ENGINE = web.AppKey("engine", Engine)
QUERYLOG: web.AppKey[QueryStore] = web.AppKey("querylog")
STATE: web.AppKey[SharedState] = web.AppKey("state")
CONVERSATION = web.AppKey("conversation", Conversation)
INFLIGHT = web.AppKey("inflight", Inflight)
NONCES = web.AppKey("nonces", NonceCache)
CRYPTO: web.AppKey[WeChatCrypto | None] = web.AppKey("crypto")
HTTP = web.AppKey("http", aiohttp.ClientSession)
CUSTOMER_SERVICE: web.AppKey[CustomerService | None] = web.AppKey("customer_service")
BACKGROUND: web.AppKey[set[asyncio.Task]] = web.AppKey("background")
ADMIN_AUTH = web.AppKey("admin_auth", AdminAuth)
ADMIN_TZ = web.AppKey("admin_tz", tzinfo)
ADMIN_TEMPLATES = web.AppKey("admin_templates", jinja2.Environment)
ADMIN_SESSION = web.RequestKey("admin_session", str)  # session id, or "bearer" for scripts
