"""Faults while serving or starting: the bot keeps answering from memory or says why it stops."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import Config
from bot.ingest.knowledge import KnowledgeError
from bot.keys import ENGINE, QUERYLOG
from bot.wechat.views import drain
from tests import wechat_peer as peer
from tests.conftest import NO_REFERENCE, ROOT, make_config
from tests.test_webhook import WECHAT, post


@pytest.fixture
def config(tmp_path: Path, knowledge_dir: Path) -> Config:
    return make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT,
                       knowledge={"watch": False})


@pytest.fixture
async def client(aiohttp_client, config: Config) -> TestClient:  # noqa: ANN001
    return await aiohttp_client(create_app(config))


async def answer(client: TestClient) -> str:
    status, reply = await post(client, peer.text_xml("文号是多少"), "aes")
    assert status == 200
    return reply["Content"]


async def test_index_files_deleted_or_corrupted_while_serving(client: TestClient,
                                                              config: Config) -> None:
    engine = client.app[ENGINE]
    shutil.rmtree(config.index.dir)
    assert "云工通〔2023〕7号" in await answer(client)  # served from memory
    (config.knowledge.dir / "new.txt").write_text("关于测试的通知\n一、总则\n（一）测试内容。\n",
                                                  encoding="utf-8")
    engine.rebuild()
    assert (config.index.dir / "CURRENT").exists()  # written again, atomically
    version = config.index.dir / (config.index.dir / "CURRENT").read_text()
    (version / "passages.jsonl").write_text("{broken", encoding="utf-8")
    assert "云工通〔2023〕7号" in await answer(client)


async def test_knowledge_folder_gone_while_serving(client: TestClient, config: Config) -> None:
    engine = client.app[ENGINE]
    before = len(engine.index.passages)
    moved = config.knowledge.dir.with_name("elsewhere")
    config.knowledge.dir.rename(moved)
    with pytest.raises(KnowledgeError, match="missing or unreadable"):
        engine.rebuild()
    assert engine.reload_failures == 1 and len(engine.index.passages) == before
    assert "云工通〔2023〕7号" in await answer(client)
    moved.rename(config.knowledge.dir)
    assert not engine.rebuild().touched


def run_bot(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "--config", str(config), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('[querylog]\npath = "a-directory"\n', "cannot open the query log"),
        ('[model]\nname = "./no/such/model"\n', "model directory ./no/such/model does not exist"),
        ('[knowledge]\ndir = "missing"\n', "knowledge folder"),
    ],
)
def test_refuses_to_start_with_a_one_line_reason(tmp_path: Path, knowledge_dir: Path,
                                                 setting: str, message: str) -> None:
    (tmp_path / "a-directory").mkdir()
    base = {"knowledge": f'[knowledge]\ndir = "{knowledge_dir}"\n',
            "model": '[model]\nname = "hashing"\n', "querylog": "",
            "retrieval": NO_REFERENCE}
    for section in base:
        if setting.startswith(f"[{section}]"):
            base[section] = setting
    config = tmp_path / "config.toml"
    config.write_text("".join(base.values()) + "[server]\nport = 1\n", encoding="utf-8")
    done = run_bot(config, "serve")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, done.stderr


async def test_locked_query_log_never_delays_or_loses_silently(aiohttp_client,  # noqa: ANN001
                                                               tmp_path: Path,
                                                               knowledge_dir: Path) -> None:
    cfg = make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT,
                      knowledge={"watch": False}, querylog={"busy_timeout": 0.3})
    client = await aiohttp_client(create_app(cfg))
    querylog = client.app[QUERYLOG]
    held = threading.Event()  # the log's writer is stuck until the test lets it go on
    insert = querylog._write_now

    def stuck_insert(sql, params):  # noqa: ANN001, ANN202
        held.wait(30)
        return insert(sql, params)

    querylog._write_now = stuck_insert  # type: ignore[method-assign]
    locker = sqlite3.connect(cfg.querylog.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # e.g. a backup or a stuck admin tool
    try:
        assert "云工通〔2023〕7号" in await answer(client)  # while the write cannot have run
        assert querylog.writes == 0 and querylog.failures == 0
        held.set()
        await drain(client.app)
    finally:
        held.set()
        locker.execute("ROLLBACK")
        locker.close()
    assert querylog.failures >= 1  # counted (and logged), exposed in /metrics
    text = await (await client.get("/metrics")).text()
    assert f"bot_querylog_write_failures_total {float(querylog.failures)}" in text
    assert "云工通〔2023〕7号" in await answer(client)
    await drain(client.app)
    rows = sqlite3.connect(cfg.querylog.path).execute("SELECT question FROM queries").fetchall()
    assert rows == [("文号是多少",)]
