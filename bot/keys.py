"""The typed keys of everything the aiohttp app shares, declared in one place."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from wechatpy.crypto import WeChatCrypto

from bot.config import Config
from bot.conversation import Conversation
from bot.customer_service import CustomerService
from bot.dedupe import Inflight
from bot.engine import Engine
from bot.querylog import QueryLog

CONFIG = web.AppKey("config", Config)
ENGINE = web.AppKey("engine", Engine)
QUERYLOG = web.AppKey("querylog", QueryLog)
CONVERSATION = web.AppKey("conversation", Conversation)
INFLIGHT = web.AppKey("inflight", Inflight)
CRYPTO = web.AppKey("crypto", WeChatCrypto | None)
HTTP = web.AppKey("http", aiohttp.ClientSession)
CUSTOMER_SERVICE = web.AppKey("customer_service", CustomerService | None)
BACKGROUND = web.AppKey("background", set[asyncio.Task])
