"""Shared state on both backends (memory; a real redis-server), its outage fallback, and the
features built on it that several instances share: token refresh, sessions, the brake."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.admin.auth import AdminAuth
from bot.state import MemoryState, SharedState, wait_for_value
from bot.state.redis import RedisState
from bot.wechat.customer_service import CustomerService
from tests import wechat_peer as peer
from tests.servers import Redis
from tests.test_late_delivery import SECRET, FakeWeChatAPI


@pytest.fixture
def redis_url(redis_server: Redis) -> str:
    """An empty Redis for each test."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[SharedState]:
    if request.param == "memory":
        made: SharedState = MemoryState()
    else:
        made = await RedisState.open(request.getfixturevalue("redis_url"))
    yield made
    await made.aclose()


async def test_values_lifetimes_and_set_if_absent(state: SharedState) -> None:
    assert await state.get("a") is None
    assert await state.add("a", "first", 0.3) and not await state.add("a", "second", 5)
    assert await state.get("a") == "first"
    await state.set("b", "值", None)
    assert await state.get("b") == "值"
    await asyncio.sleep(0.4)
    assert await state.get("a") is None and await state.add("a", "again", 5)
    await state.delete("b")
    assert await state.get("b") is None
    waiter = asyncio.ensure_future(wait_for_value(state, "later", 5))
    await asyncio.sleep(0.1)
    await state.set("later", "here")
    assert await waiter == "here"
    assert await wait_for_value(state, "never", 0.1) is None


async def test_lock_is_held_by_one_at_a_time(state: SharedState) -> None:
    inside, most = 0, 0

    async def work() -> None:
        nonlocal inside, most
        async with state.lock("job", timeout=5):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(work() for _ in range(5)))
    assert most == 1


async def test_two_instances_share_through_redis(redis_url: str) -> None:
    a, b = await RedisState.open(redis_url), await RedisState.open(redis_url)
    assert await a.add("claim:m1", "1", 30) and not await b.add("claim:m1", "1", 30)
    await a.set("reply:m1", "答复", 30)
    assert await b.get("reply:m1") == "答复"
    first = await AdminAuth.shared("tok", 60, a)
    second = await AdminAuth.shared("tok", 60, b)
    cookie = first.new_session()
    assert await second.session(cookie) is not None  # a login on A works on B
    await second.revoke(cookie)
    assert await first.session(cookie) is None  # a logout on B ends it on A
    assert await first.guard.failed("10.0.0.9") == 1
    assert await second.guard.wait("10.0.0.9") > 0  # the brake is shared too
    await a.aclose()
    await b.aclose()


async def test_redis_outage_falls_back_to_memory_and_recovers(
        redis_server: Redis, redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    state = await RedisState.open(redis_url)
    await state.set("k", "shared")
    redis_server.stop()
    try:
        with caplog.at_level(logging.ERROR, "bot.state.redis"):
            assert await state.get("k") is None  # not an error: this instance's memory
            assert await state.add("claim:x", "1", 30)
            async with state.lock("t", timeout=1):
                pass
        assert state.degraded >= 3
        assert [r for r in caplog.records if "Redis unreachable" in r.message]
    finally:
        redis_server.start()
    await asyncio.sleep(1.1)  # RETRY_AFTER
    assert await state.get("k") is None  # read from the restarted (empty) Redis again
    await state.set("k2", "back")
    other = await RedisState.open(redis_url)
    assert await other.get("k2") == "back"
    await state.aclose()
    await other.aclose()


@pytest.fixture
async def api() -> AsyncIterator[FakeWeChatAPI]:
    fake = FakeWeChatAPI()
    server = TestServer(fake.app)
    await server.start_server()
    fake.base = str(server.make_url(""))  # type: ignore[attr-defined]
    yield fake
    await server.close()


async def test_one_token_refresh_across_instances(redis_url: str, api: FakeWeChatAPI) -> None:
    """Fetching a token invalidates the previous one: instances must not log each other out."""
    states = [await RedisState.open(redis_url) for _ in range(3)]
    async with aiohttp.ClientSession() as session:
        senders = [CustomerService(session, peer.APPID, SECRET, s, api.base)  # type: ignore
                   for s in states]
        await asyncio.gather(*(s.send_text(f"oUser{i}", "你好") for i, s in enumerate(senders)
                               for _ in range(3)))
        assert api.tokens_issued == 1 and len(api.sent) == 9
        api.expire_next = True  # WeChat refuses the token once: one refresh, shared by all
        await senders[0].send_text("oUserX", "再见")
        await asyncio.gather(*(s.send_text("oUserY", "好") for s in senders))
        assert api.tokens_issued == 2 and len(api.sent) == 13
    for s in states:
        await s.aclose()


async def test_a_retry_takes_over_when_the_claiming_instance_died(
        aiohttp_client, hashing_config) -> None:  # noqa: ANN001
    """Another instance claimed the message and died: once its claim lapses, this one answers."""
    from bot.app import create_app
    from bot.keys import STATE
    from tests.test_webhook import WECHAT, post

    cfg = dataclasses.replace(hashing_config, wechat=dataclasses.replace(
        hashing_config.wechat, **WECHAT))
    client = await aiohttp_client(create_app(cfg))
    xml = peer.text_xml("文号是多少", msg_id=424242)
    await client.app[STATE].add("claim:msg:oUser1234567890abcdefXYZ:424242", "1", 1.0)
    status, reply = await post(client, xml, "aes")
    assert status == 200 and "云工通〔2023〕7号" in reply["Content"]


async def test_a_replay_to_another_instance_is_refused(redis_url: str) -> None:
    from bot.wechat.replay import NonceCache

    a, b = await RedisState.open(redis_url), await RedisState.open(redis_url)
    first, second = NonceCache(300, state=a), NonceCache(300, state=b)
    stamp = str(int(time.time()))
    assert await first.check(stamp, "n1", b"<xml>1</xml>")
    assert await second.check(stamp, "n1", b"<xml>1</xml>")  # WeChat's retry: same body
    assert not await second.check(stamp, "n1", b"<xml>forged</xml>")
    assert second.refused == 1
    await a.aclose()
    await b.aclose()


async def test_memory_state_drops_expired_keys_before_live_ones() -> None:
    """Short-lived keys (claims, replies) must not push out long-lived ones (logouts)."""
    state = MemoryState(max_entries=50)
    await state.set("admin:logout:s1", "1", 3600)
    for n in range(40):
        await state.set(f"claim:{n}", "1", 0.05)
    await asyncio.sleep(0.1)
    for n in range(40):
        await state.set(f"reply:{n}", "x", 60)
    assert await state.get("admin:logout:s1") == "1"
    assert len(state._values) == 41
