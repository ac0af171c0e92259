"""Answers that miss the reply budget go out as customer-service messages.

The WeChat API is faked at the boundary the tests cannot reach, speaking its real protocol:
GET /cgi-bin/token and POST /cgi-bin/message/custom/send with WeChat's JSON and error codes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import create_app
from bot.config import Config
from bot.engine import Engine
from tests import wechat_peer as peer
from tests.conftest import make_config
from tests.test_webhook import WECHAT, post

SECRET = "s3cret"


class FakeWeChatAPI:
    """Token issuing and customer-service sending, with the quirks the bot must handle."""

    def __init__(self) -> None:
        self.tokens_issued = 0
        self.sent: list[dict] = []
        self.silent_users: set[str] = set()  # users outside the 48-hour window
        self.expire_next = False
        self.app = web.Application()
        self.app.router.add_get("/cgi-bin/token", self.token)
        self.app.router.add_post("/cgi-bin/message/custom/send", self.send)

    async def token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("appid") != peer.APPID or q.get("secret") != SECRET:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        self.tokens_issued += 1
        return web.json_response({"access_token": f"TOKEN{self.tokens_issued}",
                                  "expires_in": 7200})

    async def send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token")
        if token != f"TOKEN{self.tokens_issued}" or self.expire_next:
            self.expire_next = False
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        payload = await request.json()
        if payload["touser"] in self.silent_users:
            return web.json_response({"errcode": 45015, "errmsg": "response out of time limit"})
        self.sent.append(payload)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


@pytest.fixture
async def api() -> FakeWeChatAPI:
    fake = FakeWeChatAPI()
    server = TestServer(fake.app)
    await server.start_server()
    fake.base = str(server.make_url(""))  # type: ignore[attr-defined]
    yield fake
    await server.close()


def slow_engine(config: Config, delay: float, gate: threading.Semaphore | None = None) -> Engine:
    """Answers take ``delay`` s, or each waits until the test releases ``gate`` once."""
    engine, _ = Engine.open(config)
    encode = engine.embedder.encode_queries

    def slow(texts: list[str]):  # noqa: ANN202
        if gate is not None:
            gate.acquire(timeout=30)
        else:
            time.sleep(delay)
        return encode(texts)

    engine.embedder.encode_queries = slow  # type: ignore[method-assign]
    return engine


def delivery(config: Config) -> list[tuple[str, str]]:
    conn = sqlite3.connect(config.querylog.path)
    return conn.execute("SELECT delivery, error FROM queries ORDER BY id").fetchall()


async def wait_for(condition, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_late_answer_sent_by_customer_service(aiohttp_client, api: FakeWeChatAPI,  # noqa: ANN001
                                                    tmp_path: Path, knowledge_dir: Path) -> None:
    cfg = make_config(tmp_path, knowledge_dir, "hashing",
                      wechat={**WECHAT, "appsecret": SECRET, "api_base": api.base,
                              "reply_budget": 0.2})
    gate = threading.Semaphore(0)
    client = await aiohttp_client(create_app(cfg, slow_engine(cfg, 0, gate)))
    status, reply = await post(client, peer.text_xml("文号是多少", user="oLate"), "aes")
    assert status == 200 and reply == {} and api.sent == []  # replied before the answer
    gate.release()
    await wait_for(lambda: len(api.sent) == 1)
    assert api.sent[0]["touser"] == "oLate" and "云工通" in api.sent[0]["text"]["content"]
    await wait_for(lambda: delivery(cfg) == [("customer_service", "")])

    api.expire_next = True  # an expired token is refreshed once, then the send succeeds
    assert (await post(client, peer.text_xml("文号是多少", user="oLate"), "raw"))[1] == {}
    gate.release()
    await wait_for(lambda: len(api.sent) == 2)
    assert api.tokens_issued == 2

    api.silent_users.add("oSilent")
    assert (await post(client, peer.text_xml("文号是多少", user="oSilent"), "raw"))[1] == {}
    gate.release()
    await wait_for(lambda: len(delivery(cfg)) == 3 and delivery(cfg)[2][0] == "failed")
    assert "45015" in delivery(cfg)[2][1]
    assert len(api.sent) == 2


async def test_late_answer_without_credentials_is_recorded(aiohttp_client, tmp_path: Path,  # noqa: ANN001
                                                           knowledge_dir: Path) -> None:
    cfg = make_config(tmp_path, knowledge_dir, "hashing", wechat={**WECHAT, "reply_budget": 0.1})
    client = await aiohttp_client(create_app(cfg, slow_engine(cfg, 0.4)))
    status, reply = await post(client, peer.text_xml("文号是多少"), "raw")
    assert status == 200 and reply == {}
    await wait_for(lambda: delivery(cfg) and delivery(cfg)[0][0] == "failed")
    assert "not configured" in delivery(cfg)[0][1]
