"""Safe mode requires encryption and no signed query can be used twice with another body."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import ConfigError
from bot.wechat.replay import NonceCache
from bot.wechat.views import drain
from tests import wechat_peer as peer
from tests.conftest import make_config
from tests.test_webhook import WECHAT


async def app_in(aiohttp_client, tmp_path: Path, knowledge_dir: Path,  # noqa: ANN001
                 mode: str) -> TestClient:
    cfg = make_config(tmp_path, knowledge_dir, "hashing", wechat={**WECHAT, "mode": mode},
                      knowledge={"watch": False})
    return await aiohttp_client(create_app(cfg))


async def send(client: TestClient, query: dict[str, str], body: str) -> tuple[int, str]:
    resp = await client.post("/wechat", params=query, data=body.encode())
    return resp.status, await resp.text()


async def logged(client: TestClient, tmp_path: Path) -> list[str]:
    await drain(client.server.app)
    conn = sqlite3.connect(tmp_path / "querylog.sqlite3")
    return [r[0] for r in conn.execute("SELECT question FROM queries ORDER BY id")]


@pytest.mark.parametrize(
    ("mode", "accepted"),
    [("safe", {"aes", "compat"}), ("compatible", {"aes", "compat", "raw"}), ("plain", {"raw"})],
)
async def test_mode_refuses_what_it_does_not_allow(aiohttp_client, tmp_path: Path,  # noqa: ANN001
                                                   knowledge_dir: Path, mode: str,
                                                   accepted: set[str]) -> None:
    client = await app_in(aiohttp_client, tmp_path, knowledge_dir, mode)
    for envelope in ("aes", "compat", "raw"):
        query, body = peer.envelope(peer.text_xml("文号是多少"), envelope)
        status, text = await send(client, query, body)
        if envelope in accepted:
            assert status == 200 and "云工通" in peer.open_reply(text, query)["Content"]
        else:
            assert status == 403 and f"mode is {mode}" in text, (envelope, text)


async def test_stripped_encrypt_type_is_refused_in_safe_mode(aiohttp_client,  # noqa: ANN001
                                                             tmp_path: Path,
                                                             knowledge_dir: Path) -> None:
    """The forgery: drop encrypt_type and msg_signature, post a plaintext body of one's own."""
    client = await app_in(aiohttp_client, tmp_path, knowledge_dir, "safe")
    query, _ = peer.envelope(peer.text_xml("文号是多少"), "aes")
    forged = {k: v for k, v in query.items() if k not in ("encrypt_type", "msg_signature")}
    status, text = await send(client, forged, peer.text_xml("伪造的问题", user="oVictim"))
    assert status == 403
    assert await logged(client, tmp_path) == []


@pytest.mark.parametrize("mode", ["raw", "aes"])
async def test_signed_query_cannot_carry_another_body(aiohttp_client, tmp_path: Path,  # noqa: ANN001
                                                      knowledge_dir: Path, mode: str) -> None:
    client = await app_in(aiohttp_client, tmp_path, knowledge_dir, "compatible")
    query, body = peer.envelope(peer.text_xml("文号是多少"), mode)
    first = await send(client, query, body)
    assert first[0] == 200
    retry = await send(client, query, body)  # WeChat retrying the same request
    assert retry[0] == 200
    assert peer.open_reply(retry[1], query) == peer.open_reply(first[1], query)
    _, other = peer.envelope(peer.text_xml("伪造的问题", user="oVictim"), "raw")
    status, text = await send(client, query, other)  # captured query, another body
    assert status == 403 and "already used" in text
    assert await logged(client, tmp_path) == ["文号是多少"]
    metrics = await (await client.get("/metrics")).text()
    assert "bot_replays_refused_total 1.0" in metrics


async def test_nonce_cache_forgets_after_the_window_and_stays_bounded() -> None:
    now = [10_000.0]
    cache = NonceCache(window=300, retry_seconds=30, max_entries=100, clock=lambda: now[0])
    stamp = str(int(now[0]))
    assert await cache.check(stamp, "1", b"a")
    assert await cache.check(stamp, "1", b"a")  # the same request again: a retry
    assert not await cache.check(stamp, "1", b"b")
    now[0] += 31
    assert not await cache.check(stamp, "1", b"a")  # too late for a retry: a replay
    now[0] += 300
    assert await cache.check(stamp, "1", b"b")  # the timestamp is out of the window by now anyway
    for n in range(1000):
        await cache.check(str(int(now[0])), str(n), b"x")
    assert len(cache) <= 100 and cache.evicted > 0 and cache.refused == 2


def test_safe_mode_needs_the_aes_key(tmp_path: Path, knowledge_dir: Path) -> None:
    cfg = make_config(tmp_path, knowledge_dir, "hashing",
                      wechat={"token": peer.TOKEN, "mode": "safe"})
    with pytest.raises(ConfigError, match="needs encoding_aes_key and appid"):
        create_app(cfg)
