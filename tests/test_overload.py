"""Overload: bounded waiting for the model, fresh questions first, the rest shed and logged."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.app import create_app
from bot.engine import Engine
from bot.ops.admission import Admission, Shed
from bot.wechat.views import drain
from tests import wechat_peer as peer
from tests.conftest import make_config
from tests.test_ops import metric
from tests.test_webhook import WECHAT, post


async def until(condition) -> None:  # noqa: ANN001
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never met")


async def test_fresh_questions_first_oldest_shed_when_full() -> None:
    gate = Admission(slots=1, max_waiting=2, max_wait=60)
    release = asyncio.Event()
    order: list[str] = []

    async def work(name: str) -> str:
        order.append(name)
        if name == "a":
            await release.wait()
        return name

    tasks = {}
    for name, settled in (("a", lambda: order == ["a"]), ("b", lambda: gate.waiting == 1),
                          ("c", lambda: gate.waiting == 2), ("d", lambda: tasks["b"].done())):
        tasks[name] = asyncio.create_task(gate.run(lambda n=name: work(n)))
        await until(settled)
    with pytest.raises(Shed, match="queue full"):
        await tasks["b"]  # the oldest waiting one made room for d
    release.set()
    assert await asyncio.gather(tasks["a"], tasks["c"], tasks["d"]) == ["a", "c", "d"]
    assert order == ["a", "d", "c"]  # newest first
    assert gate.shed == {"queue full": 1} and gate.active == 0 and gate.waiting == 0


async def test_waiting_too_long_is_shed_and_frees_nothing_it_did_not_hold() -> None:
    gate = Admission(slots=1, max_waiting=5, max_wait=0.05)
    release = asyncio.Event()
    holder = asyncio.create_task(gate.run(release.wait))
    await until(lambda: gate.active == 1)
    with pytest.raises(Shed, match="waited too long"):
        await gate.run(release.wait)
    release.set()
    await holder
    assert gate.active == 0 and gate.shed == {"waited too long": 1}
    assert await gate.run(lambda: asyncio.sleep(0, "next")) == "next"  # the slot is free


async def test_flooded_webhook_sheds_logs_and_counts(aiohttp_client, tmp_path: Path,  # noqa: ANN001
                                                     knowledge_dir: Path) -> None:
    cfg = make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT,
                      knowledge={"watch": False}, server={"max_waiting": 1, "max_wait": 1.0})
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, query_batch=1))
    engine, _ = Engine.open(cfg)
    blocked = threading.Event()
    encode = engine.embedder.encode_queries

    def gated(texts: list[str]):  # noqa: ANN202 - the model is busy until the test says
        blocked.wait(30)
        return encode(texts)

    engine.embedder.encode_queries = gated  # type: ignore[method-assign]
    client = await aiohttp_client(create_app(cfg, engine))
    gate = engine.admission  # 2 slots (query_batch 1), 1 may wait

    def ask(n: int) -> asyncio.Task:
        return asyncio.create_task(post(client, peer.text_xml("文号是多少",
                                                              user=f"oFlood{n:020d}")))

    first = [ask(0), ask(1)]
    await until(lambda: gate.active == 2)
    stale = ask(2)
    await until(lambda: gate.waiting == 1)
    fresh = ask(3)  # the queue is full: the stale question is shed at once
    status, reply = await stale
    assert status == 200 and reply == {}
    status, reply = await fresh  # nothing frees a slot within max_wait: shed too
    assert status == 200 and reply == {}
    blocked.set()
    for task in first:
        status, reply = await task
        assert status == 200 and "云工通" in reply["Content"]
    await drain(client.app)
    rows = sqlite3.connect(cfg.querylog.path).execute(
        "SELECT openid, delivery, error FROM queries ORDER BY openid").fetchall()
    assert [row[1:] for row in rows] == [("passive", ""), ("passive", ""),
                                         ("shed", "shed: queue full"),
                                         ("shed", "shed: waited too long (over 1.0 s)")]
    text = await (await client.get("/metrics")).text()
    assert metric(text, 'bot_questions_shed_total{reason="queue full"}') == 1
    assert metric(text, 'bot_questions_shed_total{reason="waited too long"}') == 1
    assert metric(text, 'bot_questions_total{outcome="shed",type="text"}') == 2
    assert metric(text, "bot_questions_waiting") == 0
    status, reply = await post(client, peer.text_xml("文号是多少"))  # after the flood
    assert status == 200 and "云工通" in reply["Content"]


async def test_waiting_is_cut_short_when_the_answer_would_miss_the_budget() -> None:
    gate = Admission(slots=1, max_waiting=5, max_wait=10, budget=1.0)
    gate.pace = 0.95  # the model has recently taken 0.95 s per answer: 0.05 s left to wait
    release = asyncio.Event()
    holder = asyncio.create_task(gate.run(release.wait))
    await until(lambda: gate.active == 1)
    with pytest.raises(Shed, match=r"waited too long \(over 0\.1 s\)"):
        await gate.run(release.wait)
    release.set()
    await holder
