"""Two `bot serve` processes behind one address, sharing PostgreSQL, Redis and knowledge/.

Real servers throughout: a throwaway PostgreSQL cluster and redis-server (tests/servers.py),
the bot as separate processes, the WeChat API faked at the boundary with its real protocol.
The hashing embedder keeps start-up fast: these tests are about what instances share.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psycopg
import pytest
from aiohttp.test_utils import TestServer

from tests import wechat_peer as peer
from tests.instances import ADMIN_TOKEN, ROOT, Instance, ask, shared_config, start
from tests.servers import Postgres, Redis
from tests.test_late_delivery import SECRET, FakeWeChatAPI

LOAD_SECONDS = float(os.environ.get("INSTANCES_LOAD_SECONDS", "60"))
RELATED = '[retrieval]\nmin_score = 0.0\nrelated_min_score = 0.0\nreference = ""\n'
_ids = itertools.count(8_100_000_000)


def pg_rows(url: str, sql: str, params: list | None = None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params or []).fetchall()  # type: ignore[arg-type]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """knowledge/ copy and its index, built once before the instances start."""
    shutil.copytree(ROOT / "knowledge", tmp_path / "knowledge")
    return tmp_path


def build_index(folder: Path, config_text: str) -> None:
    config = folder / "build.toml"
    config.write_text(config_text, encoding="utf-8")
    subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "index"], cwd=ROOT,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True, capture_output=True)


@pytest.fixture
async def api() -> AsyncIterator[FakeWeChatAPI]:
    fake = FakeWeChatAPI()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    fake.base = str(server.make_url(""))  # type: ignore[attr-defined]
    yield fake
    await server.close()


@pytest.fixture
def redis_url(redis_server: Redis) -> str:
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


async def pair(folder: Path, config_text: str) -> tuple[Instance, Instance]:
    await asyncio.to_thread(build_index, folder, config_text)
    a, b = await asyncio.gather(start(folder, "a", config_text), start(folder, "b", config_text))
    return a, b


async def test_two_instances_share_replies_followups_and_the_log(
        folder: Path, postgres: Postgres, redis_url: str) -> None:
    pg = postgres.database()
    a, b = await pair(folder, shared_config(folder, folder / "knowledge", pg, redis_url,
                                            "hashing", RELATED))
    try:
        async with aiohttp.ClientSession() as session:
            # A WeChat retry reaching the other instance: the same message to both at once.
            for n in range(5):
                msg_id = next(_ids)
                xml = peer.text_xml(f"职工技术技能大赛{n}", msg_id=msg_id)
                envelope = peer.envelope(xml, "aes")
                (sa, ra), (sb, rb) = await asyncio.gather(ask(session, a, "", envelope),
                                                          ask(session, b, "", envelope))
                assert sa == sb == 200 and ra["Content"] == rb["Content"]
                assert ra["CreateTime"] == rb["CreateTime"]
                key = f"msg:oUser1234567890abcdefXYZ:{msg_id}"
                assert pg_rows(pg, "SELECT count(*) FROM queries WHERE msg_key = %s",
                               [key]) == [(1,)]
            shared = 0  # each message was computed on one instance and shared with the other
            for instance in (a, b):
                async with session.get(instance.base + "/metrics") as resp:
                    for line in (await resp.text()).splitlines():
                        if line.startswith("bot_retries_deduplicated_shared_total "):
                            shared += int(float(line.split()[1]))
            assert shared == 5
            # A question on A, then "1" on B: the first related clause A offered.
            user = "oFollowUp000000000000000"
            _, first = await ask(session, a, peer.text_xml("工会要怎么加强党建", user=user))
            answer = first["Content"].partition("\n\n这个回答：")[0]  # without 有用/没用
            assert answer.endswith("回复 1、2 查看相关条款")
            cited = [line[3:] for line in first["Content"].splitlines() if line[:3] == "1. "]
            _, one = await ask(session, b, peer.text_xml("1", user=user))
            assert one["Content"].endswith("——" + cited[0])
            # The admin pages on A list what B logged; a login on A works on B.
            _, only_b = await ask(session, b, peer.text_xml("只问了实例B的问题"))
            bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            async with session.get(a.base + "/admin/api/queries", params={"q": "只问了实例B"},
                                   headers=bearer) as resp:
                items = (await resp.json())["items"]
            assert [i["question"] for i in items] == ["只问了实例B的问题"]
            async with session.post(a.base + "/admin/login", data={"token": ADMIN_TOKEN},
                                    allow_redirects=False) as resp:
                assert resp.status == 303
                cookie = resp.cookies["admin_session"].value
            async with session.get(b.base + "/admin/api/stats",
                                   headers={"Cookie": f"admin_session={cookie}"}) as resp:
                assert resp.status == 200 and (await resp.json())["total"] >= 8
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def test_one_token_request_for_both_instances(
        folder: Path, postgres: Postgres, redis_url: str, api: FakeWeChatAPI) -> None:
    """Every answer is late (no reply budget), so each instance needs the access token."""
    extra = (f'[wechat]\nreply_budget = 0.0\nappsecret = "{SECRET}"\n'
             f'api_base = "{api.base}"\n')  # type: ignore[attr-defined]
    a, b = await pair(folder, shared_config(folder, folder / "knowledge", postgres.database(),
                                            redis_url, "hashing", extra))
    try:
        async with aiohttp.ClientSession() as session:
            for n, instance in enumerate([a, b, a, b]):
                status, reply = await ask(session, instance,
                                          peer.text_xml("职工技术技能大赛叫什么名字",
                                                        user=f"oLate{n}00000000000000000"))
                assert status == 200 and reply == {}  # empty now, the answer follows
            for _ in range(200):
                if len(api.sent) == 4:
                    break
                await asyncio.sleep(0.05)
        assert len(api.sent) == 4 and api.tokens_issued == 1
        assert {m["touser"] for m in api.sent} == {f"oLate{n}00000000000000000" for n in range(4)}
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def test_load_survives_a_killed_instance_and_a_redis_outage(
        folder: Path, postgres: Postgres, redis_server: Redis, redis_url: str) -> None:
    """LOAD_SECONDS (at least ~20) of load over both; Redis stopped for 10 s; then A is
    SIGKILLed and B carries on alone."""
    pg = postgres.database()
    a, b = await pair(folder, shared_config(folder, folder / "knowledge", pg, redis_url,
                                            "hashing"))
    outage = (LOAD_SECONDS * 0.15, LOAD_SECONDS * 0.15 + 10)
    kill_at = max(LOAD_SECONDS * 0.5, outage[1] + 2)
    seconds = max(LOAD_SECONDS, kill_at + 5)  # B must be seen answering alone
    results: list[tuple[float, str, int, str]] = []  # (t, instance, status, msg_key)
    started = time.monotonic()
    dead: set[str] = set()

    async def worker(n: int) -> None:
        order = itertools.cycle([a, b] if n % 2 else [b, a])
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while (now := time.monotonic() - started) < seconds:
                instance = next(order)
                if instance.name in dead:
                    continue
                msg_id, user = next(_ids), f"oLoad{n}000000000000000000"
                xml = peer.text_xml("新就业形态劳动者权益怎么维护", msg_id=msg_id, user=user)
                try:
                    status, _ = await ask(session, instance, xml)
                except (aiohttp.ClientError, TimeoutError):
                    status = 0  # refused or cut: nginx would try the next upstream
                results.append((now, instance.name, status, f"msg:{user}:{msg_id}"))

    async def events() -> None:
        await asyncio.sleep(outage[0])
        await asyncio.to_thread(redis_server.stop)
        await asyncio.sleep(outage[1] - outage[0])
        await asyncio.to_thread(redis_server.start)
        await asyncio.sleep(kill_at - (time.monotonic() - started))
        dead.add("a")
        a.kill()

    try:
        await asyncio.gather(events(), *(worker(n) for n in range(4)))
    finally:
        await b.stop()
        await a.proc.wait()
    statuses = {s for _, _, s, _ in results}
    assert not {s for s in statuses if s >= 500}, statuses
    during = [r for r in results if outage[0] + 0.5 < r[0] < outage[1] - 0.5]
    assert {r[1] for r in during if r[2] == 200} == {"a", "b"}  # answers kept flowing
    assert "Redis unreachable" in b.log.read_text()  # degraded, and said so
    after_kill = [r for r in results if r[0] > kill_at + 1 and r[1] == "b"]
    assert after_kill and all(r[2] == 200 for r in after_kill)  # B kept answering
    answered = {r[3] for r in results if r[2] == 200}
    logged = {k for (k,) in pg_rows(pg, "SELECT msg_key FROM queries")}
    assert len(answered) > 20
    assert not answered - logged, f"{len(answered - logged)} replies (200) have no log row"
