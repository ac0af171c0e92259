"""Operations: /metrics, per-request log lines, and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import sqlite3
import textwrap
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import Config
from bot.keys import ADMIN_AUTH
from bot.ops.logs import PlainFormatter
from tests import wechat_peer as peer
from tests.conftest import NO_REFERENCE, make_config
from tests.test_serve import request, start
from tests.test_webhook import WECHAT, post


@pytest.fixture
def config(tmp_path: Path, knowledge_dir: Path) -> Config:
    return make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT,
                       admin={"token": "admin-secret"}, metrics={"allow": ["10.1.0.0/16"]},
                       knowledge={"watch": False}, server={"trusted_proxies": ["127.0.0.1/32"]})


@pytest.fixture
async def client(aiohttp_client, config: Config) -> TestClient:  # noqa: ANN001
    return await aiohttp_client(create_app(config))


def metric(text: str, name: str) -> float:
    """The value of one sample (``name`` with its labels, as Prometheus prints it)."""
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return float(samples[name])


async def test_metrics_after_webhook_requests(client: TestClient) -> None:
    await post(client, peer.text_xml("文号是多少"), "aes")
    await post(client, peer.text_xml("明天会下雨吗"), "raw")
    xml = peer.text_xml("文号是多少", msg_id=4242)
    await post(client, xml, "raw")
    await post(client, xml, "raw")  # a retry
    query = dict(peer.signed_query(), signature="0" * 40)
    await client.post("/wechat", params=query, data=b"<xml/>")
    text = await (await client.get("/metrics")).text()
    assert metric(text, 'bot_questions_total{outcome="answered",type="text"}') == 2
    assert metric(text, 'bot_questions_total{outcome="not_found",type="text"}') == 1
    assert metric(text, "bot_retries_deduplicated_total") == 1
    assert metric(text, 'bot_webhook_requests_total{status="403"}') == 1
    assert metric(text, "bot_reply_latency_seconds_count") == 5
    assert metric(text, "bot_index_passages") == 16
    assert metric(text, "bot_index_reload_failures_total") == 0
    assert metric(text, "bot_index_last_reload_timestamp_seconds") > 0


async def test_metrics_access(client: TestClient) -> None:
    assert (await client.get("/metrics")).status == 200  # loopback
    outside = {"X-Forwarded-For": "203.0.113.7"}
    assert (await client.get("/metrics", headers=outside)).status == 403
    allowed = {"X-Forwarded-For": "10.1.2.3"}
    assert (await client.get("/metrics", headers=allowed)).status == 200
    bearer = {**outside, "Authorization": "Bearer admin-secret"}
    assert (await client.get("/metrics", headers=bearer)).status == 200
    wrong = {**outside, "Authorization": "Bearer nope"}
    assert (await client.get("/metrics", headers=wrong)).status == 401


async def test_wrong_metrics_tokens_are_braked_and_logged_like_admin(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    guard = client.server.app[ADMIN_AUTH].guard
    now = [1000.0]
    guard.clock = lambda: now[0]  # frozen: the brake, not the speed of this machine, decides
    outside = {"X-Forwarded-For": "203.0.113.7"}
    statuses = Counter()
    for i in range(3000):
        headers = {**outside, "Authorization": f"Bearer guess{i}"}
        statuses[(await client.get("/metrics", headers=headers)).status] += 1
    assert statuses == {401: 1, 429: 2999}  # one token tried; the rest refused unchecked
    right = {**outside, "Authorization": "Bearer admin-secret"}
    resp = await client.get("/metrics", headers=right)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert (await client.get("/admin/api/stats", headers=right)).status == 429  # one brake
    audit = [r.getMessage() for r in caplog.records if "wrong bearer token" in r.getMessage()]
    assert audit == ["metrics: wrong bearer token from 203.0.113.7; next try in 1 s"]
    now[0] += 2
    assert (await client.get("/metrics", headers=right)).status == 200
    other = {"X-Forwarded-For": "203.0.113.8", "Authorization": "Bearer nope"}
    assert (await client.get("/metrics", headers=other)).status == 401  # per client


async def test_forwarded_headers_only_from_configured_proxies(aiohttp_client,  # noqa: ANN001
                                                              tmp_path: Path,
                                                              knowledge_dir: Path) -> None:
    cfg = make_config(tmp_path, knowledge_dir, "hashing", admin={"token": "admin-secret"},
                      knowledge={"watch": False})  # trusted_proxies = []: not even loopback
    client = await aiohttp_client(create_app(cfg))
    assert (await client.get("/metrics")).status == 200  # a local caller
    # A proxy on this host that is not configured: its clients must not look local.
    forwarded = {"X-Forwarded-For": "10.1.2.3"}
    assert (await client.get("/metrics", headers=forwarded)).status == 403
    resp = await client.post("/admin/login", allow_redirects=False,
                             headers={"X-Forwarded-Proto": "https"},
                             data={"token": "admin-secret", "next": "/admin"})
    assert resp.status == 303 and "Secure" not in resp.headers["Set-Cookie"]


async def test_one_log_line_per_request_without_secrets(client: TestClient,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.access")
    user = "oSecretOpenid1234567890Z"
    query, body = peer.envelope(peer.text_xml("文号是多少", user=user), "aes")
    resp = await client.post("/wechat", params=query, data=body)
    request_id = resp.headers["X-Request-Id"]
    [record] = [r for r in caplog.records if r.name == "bot.access"]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["request_id"] == request_id and fields["status"] == 200
    assert fields["path"] == "/wechat" and fields["msg_type"] == "text"
    everything = caplog.text + json.dumps(fields, ensure_ascii=False)
    for secret in (user, query["signature"], query["msg_signature"], peer.TOKEN, peer.AES_KEY):
        assert secret not in everything


async def test_plain_log_lines_cannot_be_forged(client: TestClient) -> None:
    """A path, request id or openid carrying a newline stays on its own log line, escaped."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PlainFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("bot.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        await client.get("/x%0AINFO bot.access: GET /admin 200\u2028y")
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     + "X-Request-Id: id\u2028INFO forged\r\n\r\n".encode())
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200") and b"forged" not in answer
        await post(client, peer.text_xml("文号是多少", user="oAb\nINFO forged line\nxyz"))
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and all(line.startswith("INFO bot.access: ") for line in lines)
    assert "\\nINFO bot.access: GET /admin 200\\u2028y" in lines[0]
    assert "forged" not in lines[1] and "user=oAb\\n…" in lines[2]


HARNESS = textwrap.dedent("""
    import sys, time
    from aiohttp import web
    from bot.app import create_app
    from bot.config import load_config
    from bot.engine import Engine
    from bot.ops.logs import configure

    cfg = load_config(sys.argv[1])
    configure(cfg.log)
    engine, _ = Engine.open(cfg)
    encode = engine.embedder.encode_queries

    def slow(texts):  # every answer takes 1.5 s: long enough to send SIGTERM meanwhile
        time.sleep(1.5)
        return encode(texts)

    engine.embedder.encode_queries = slow
    web.run_app(create_app(cfg, engine), host="127.0.0.1", port=cfg.server.port,
                access_log=None, shutdown_timeout=cfg.server.shutdown_timeout, print=None)
""")


def test_sigterm_finishes_the_reply_in_flight(tmp_path: Path, knowledge_dir: Path) -> None:
    config = (f'[knowledge]\ndir = "{knowledge_dir}"\nwatch = false\n[index]\ndir = "index"\n'
              f'[model]\nname = "hashing"\n[querylog]\npath = "q.sqlite3"\n'
              f'[wechat]\nreply_budget = 4.0\n{NO_REFERENCE}')
    proc, base = start(tmp_path, config, ["-c", HARNESS, "{config}"])
    query, body = peer.envelope(peer.text_xml("文号是多少"), "aes")
    answer: dict = {}

    def ask() -> None:
        answer["status"], text = request(f"{base}/wechat?{urlencode(query)}", body.encode())
        answer["reply"] = peer.open_reply(text, query)

    thread = threading.Thread(target=ask)
    thread.start()
    time.sleep(0.5)  # the question is being answered now
    proc.send_signal(signal.SIGTERM)
    thread.join(timeout=20)
    assert proc.wait(timeout=30) == 0
    assert answer["status"] == 200 and "云工通〔2023〕7号" in answer["reply"]["Content"]
    rows = sqlite3.connect(tmp_path / "q.sqlite3").execute(
        "SELECT question, delivery FROM queries").fetchall()
    assert rows == [("文号是多少", "passive")]
    with pytest.raises(OSError):
        urllib.request.urlopen(base + "/healthz", timeout=2)
