"""`bot serve` as an operator runs it: a real process, real model, encrypted messages."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bot.search.answer import CANDIDATES_HEAD
from tests import wechat_peer as peer
from tests.conftest import NO_REFERENCE, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, body: bytes | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def start(tmp_path: Path, config_text: str, command: list[str]) -> tuple[subprocess.Popen, str]:
    """Run python ``command`` ("{config}" stands for the config file) with the WeChat secrets
    in the environment, and wait until /healthz says ready."""
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text + f"[server]\nport = {port}\n", encoding="utf-8")
    env = dict(os.environ, WECHAT_TOKEN=peer.TOKEN, WECHAT_APPID=peer.APPID,
               WECHAT_AES_KEY=peer.AES_KEY, PYTHONPATH=str(ROOT))
    log = tmp_path / "serve.log"
    with open(log, "w") as err:
        args = [str(config) if arg == "{config}" else arg for arg in command]
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stderr=err)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while not _ready(base):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "server did not become ready"
        time.sleep(0.2)
    return proc, base


def serve_config(knowledge_dir: Path, model_path: str) -> str:
    """`bot serve` over ``knowledge_dir`` with the real model (no reference laws: faster)."""
    return (f'[knowledge]\ndir = "{knowledge_dir}"\n[index]\ndir = "index"\n'
            f'[model]\nname = "{model_path}"\n[querylog]\npath = "q.sqlite3"\n'
            f'{NO_REFERENCE}')


@pytest.fixture
def server(tmp_path: Path, knowledge_dir: Path, model_path: str) -> Iterator[str]:
    config = serve_config(knowledge_dir, model_path)
    proc, base = start(tmp_path, config, ["-m", "bot", "--config", "{config}", "serve"])
    yield base
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()


def _ready(base: str) -> bool:
    try:
        return request(base + "/healthz")[0] == 200
    except OSError:
        return False


def test_encrypted_question_answered_by_running_service(server: str) -> None:
    query, body = peer.envelope(peer.text_xml("职工技术技能大赛叫什么名字"), "aes")
    status, text = request(f"{server}/wechat?{urlencode(query)}", body.encode())
    assert status == 200
    reply = peer.open_reply(text, query)
    assert reply["_encrypted"] and "匠心创造 技能兴滇" in reply["Content"]
    answer = reply["Content"].partition("\n\n这个回答：")[0]  # without the 有用/没用 links
    assert answer.endswith("（云工通〔2023〕7号）第二部分（三）")
    bad = dict(query, signature="0" * 40)
    assert request(f"{server}/wechat?{urlencode(bad)}", body.encode())[0] == 403
    assert request(f"{server}/wechat?{urlencode(peer.signed_query())}", b"<xml>")[0] == 400


def test_a_notice_dropped_into_the_running_service_answers_within_10_s(
        tmp_path: Path, knowledge_dir: Path, model_path: str) -> None:
    """Issue 10's case: the 疗休养 notice is copied into the folder of a running `bot serve`;
    within 10 s its 报名 question is answered from 三、报名方式 (its topic words are all over the
    notice, its intent word only in that heading): 三（一）'s own text, not a candidates list."""
    notices = ROOT / "bench" / "notices"
    for notice in notices.glob("云工发*.txt"):
        (knowledge_dir / notice.name).write_bytes(notice.read_bytes())
    proc, base = start(tmp_path, serve_config(knowledge_dir, model_path),
                       ["-m", "bot", "--config", "{config}", "serve"])
    try:
        def reply(question: str) -> str:
            query, body = peer.envelope(peer.text_xml(question), "aes")
            status, text = request(f"{base}/wechat?{urlencode(query)}", body.encode())
            assert status == 200
            return peer.open_reply(text, query)["Content"]

        question = "职工疗休养活动怎么报名"
        assert "滇工发〔2024〕12号" not in reply(question)
        notice = next(notices.glob("滇工发*.txt"))
        (knowledge_dir / notice.name).write_bytes(notice.read_bytes())
        dropped, answer = time.monotonic(), ""
        while "滇工发〔2024〕12号" not in answer:
            assert time.monotonic() - dropped < 10, f"not answered from the new notice: {answer}"
            time.sleep(0.2)
            answer = reply(question)
        assert not answer.startswith(CANDIDATES_HEAD), answer
        assert answer.startswith("（一）基层工会推荐。报名采取“个人申请、基层工会推荐"), answer
        assert "》（滇工发〔2024〕12号）第三部分（一）" in answer, answer
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()
