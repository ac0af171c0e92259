"""Hot reload while the app runs: staff add, change and delete notices; no restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import Config
from bot.keys import ENGINE
from bot.search.answer import CANDIDATES_HEAD
from bot.wechat.conversation import SEARCH_FAILED
from tests import wechat_peer as peer
from tests.conftest import make_config
from tests.test_webhook import WECHAT, post

NOTICE = (
    "滇工发〔2024〕12号\n\n云南省总工会关于开展职工疗休养活动的通知\n\n各州（市）总工会：\n\n"
    "为关心关爱一线职工，现就开展职工疗休养活动通知如下。\n\n"
    "一、活动安排\n\n"
    "（一）疗休养对象。重点安排一线职工、劳动模范和高技能人才参加疗休养。\n\n"
    "（二）疗休养时间。每批次疗休养时间为五天，在抚仙湖职工疗休养基地开展。\n\n"
    "云南省总工会\n\n2024年3月1日\n"
)


@pytest.fixture
def config(tmp_path: Path, knowledge_dir: Path) -> Config:
    # The hashing embedder's cosine carries no meaning: the gate leans on keywords alone.
    return make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT,
                       knowledge={"settle_seconds": 0.3}, retrieval={"min_score": 0.2})


@pytest.fixture
async def client(aiohttp_client, config: Config) -> TestClient:  # noqa: ANN001
    return await aiohttp_client(create_app(config))


async def ask(client: TestClient, question: str) -> str:
    status, reply = await post(client, peer.text_xml(question), "aes")
    assert status == 200
    return reply["Content"]


async def eventually(client: TestClient, question: str, expect: str, timeout: float = 10) -> str:
    """Ask until the reply contains ``expect``; every request meanwhile must succeed."""
    deadline = time.monotonic() + timeout
    while True:
        reply = await ask(client, question)
        if expect in reply:
            return reply
        assert time.monotonic() < deadline, f"{expect!r} not answered in {timeout} s: {reply}"
        await asyncio.sleep(0.2)


async def test_add_change_delete(client: TestClient, config: Config) -> None:
    kdir = config.knowledge.dir
    question = "疗休养基地在哪里开展"
    assert "抚仙湖" not in await ask(client, question)
    (kdir / "疗休养通知.txt").write_text(NOTICE, encoding="utf-8")
    reply = await eventually(client, question, "抚仙湖")
    title = "《云南省总工会关于开展职工疗休养活动的通知》"
    answer = reply.partition("\n\n这个回答：")[0]  # without the 有用/没用 links
    assert answer.endswith(f"{title}（滇工发〔2024〕12号）第一部分（二）")

    (kdir / "疗休养通知.txt").write_text(NOTICE.replace("抚仙湖", "阳宗海"), encoding="utf-8")
    await eventually(client, question, "阳宗海")
    engine = client.app[ENGINE]
    assert engine.last_report is not None and engine.last_report.embedded == 1

    (kdir / "疗休养通知.txt").rename(kdir / "疗休养通知（修订）.txt")
    await eventually(client, question, "阳宗海")
    (kdir / "疗休养通知（修订）.txt").unlink()
    deadline = time.monotonic() + 10
    while any(p.source.startswith("疗休养") for p in engine.index.passages):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert "阳宗海" not in await ask(client, question)


async def test_broken_files_reported_others_still_answered(client: TestClient,
                                                           config: Config) -> None:
    kdir = config.knowledge.dir
    (kdir / "坏文件.pdf").write_bytes(b"%PDF-1.7\n this is not really a pdf")
    (kdir / "乱码.txt").write_bytes(b"\x00\x01\x02\xff\xfe\x80\x81" * 40)
    (kdir / "疗休养通知.txt").write_text(NOTICE, encoding="utf-8")
    await eventually(client, "疗休养基地在哪里开展", "抚仙湖")
    files = client.app[ENGINE].index.files
    assert files["坏文件.pdf"].error and files["乱码.txt"].error
    assert "文号" in await ask(client, "文号是多少")


async def test_file_written_in_two_steps_is_indexed_once_complete(client: TestClient,
                                                                   config: Config) -> None:
    engine = client.app[ENGINE]
    builds: list[list[str]] = []
    rebuild = engine.rebuild

    def recording_rebuild():  # noqa: ANN202
        report = rebuild()
        builds.append(report.added + report.changed)
        return report

    engine.rebuild = recording_rebuild  # type: ignore[method-assign]
    path = config.knowledge.dir / "疗休养通知.txt"
    half = len(NOTICE) // 2
    with open(path, "w", encoding="utf-8") as f:
        f.write(NOTICE[:half])
        f.flush()
        await asyncio.sleep(0.15)
        f.write(NOTICE[half:])
    await eventually(client, "疗休养基地在哪里开展", "抚仙湖")
    await asyncio.sleep(1.0)
    assert [b for b in builds if b] == [["疗休养通知.txt"]]


async def test_requests_during_reload_never_fail(client: TestClient, config: Config) -> None:
    """Every question asked while notices are added gets a real answer (not the search-failed
    reply, which is still a 200), and the additions are all indexed without a failed reload."""
    kdir = config.knowledge.dir
    engine = client.app[ENGINE]

    async def writer() -> None:
        for i in range(5):
            (kdir / f"n{i}.txt").write_text(NOTICE.replace("五天", f"{i + 5}天"), "utf-8")
            await asyncio.sleep(0.3)

    async def asker() -> list[str]:
        replies = []
        for _ in range(40):
            replies.append(await ask(client, "文号是多少"))
            await asyncio.sleep(0.03)
        return replies

    _, replies = await asyncio.gather(writer(), asker())
    # An answer cites its passage; near-identical notices may make it a list of candidates.
    failed = [r for r in replies if r == SEARCH_FAILED
              or ("——《" not in r and not r.startswith(CANDIDATES_HEAD))]
    assert failed == [] and len(replies) == 40
    deadline = time.monotonic() + 10
    while {f"n{i}.txt" for i in range(5)} - set(engine.index.files):
        assert time.monotonic() < deadline, sorted(engine.index.files)
        await asyncio.sleep(0.2)
    assert engine.reloads >= 1 and engine.reload_failures == 0
