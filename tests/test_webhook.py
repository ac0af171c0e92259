"""The webhook against the running app: real signed and encrypted WeChat XML."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import Config
from bot.engine import Engine
from bot.wechat.views import drain
from tests import wechat_peer as peer
from tests.conftest import make_config

WECHAT = {"token": peer.TOKEN, "appid": peer.APPID, "encoding_aes_key": peer.AES_KEY,
          "menu": {"RIGHTS": "新就业形态劳动者权益维护", "ABOUT": "=工会服务热线12351"}}


@pytest.fixture
def config(tmp_path: Path, knowledge_dir: Path) -> Config:
    return make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT)


@pytest.fixture
async def client(aiohttp_client, config: Config) -> TestClient:  # noqa: ANN001
    return await aiohttp_client(create_app(config))


async def post(client: TestClient, xml: str, mode: str = "raw", **kw) -> tuple[int, dict]:  # noqa: ANN003
    query, body = peer.envelope(xml, mode, **kw)
    resp = await client.post("/wechat", params=query, data=body.encode())
    text = await resp.text()
    return resp.status, peer.open_reply(text, query) if resp.status == 200 else {"error": text}


async def rows(client: TestClient, config: Config) -> list[sqlite3.Row]:
    """The query log once the writes started beside the replies have finished."""
    await drain(client.app)
    conn = sqlite3.connect(config.querylog.path)
    conn.row_factory = sqlite3.Row
    return conn.execute("SELECT * FROM queries ORDER BY id").fetchall()


async def test_url_verification(client: TestClient) -> None:
    query = peer.signed_query()
    resp = await client.get("/wechat", params={**query, "echostr": "e-123"})
    assert resp.status == 200 and await resp.text() == "e-123"
    query["signature"] = "0" * 40
    resp = await client.get("/wechat", params={**query, "echostr": "e-123"})
    assert resp.status == 403


@pytest.mark.parametrize("mode", ["raw", "compat", "aes"])
async def test_text_answer_in_all_three_modes(client: TestClient, config: Config,
                                              mode: str) -> None:
    status, reply = await post(client, peer.text_xml("文号是多少"), mode)
    assert status == 200
    assert reply.get("_encrypted", False) == (mode != "raw")
    assert reply["MsgType"] == "text" and reply["ToUserName"] == "oUser1234567890abcdefXYZ"
    assert reply["FromUserName"] == peer.SERVICE
    assert len(reply["Content"].encode()) <= 2048
    [row] = await rows(client, config)
    assert row["question"] == "文号是多少" and row["delivery"] == "passive"
    assert row["reply"] == reply["Content"]


async def test_bad_signature_stale_timestamp_big_body_broken_xml(client: TestClient,
                                                                 config: Config) -> None:
    query, body = peer.envelope(peer.text_xml("你好"), "raw")
    bad = dict(query, signature="f" * 40)
    assert (await client.post("/wechat", params=bad, data=body)).status == 403
    stale, body = peer.envelope(peer.text_xml("你好"), "raw", timestamp=int(time.time()) - 3600)
    assert (await client.post("/wechat", params=stale, data=body)).status == 403
    query = peer.signed_query()
    big = b"<xml>" + b"a" * 70000 + b"</xml>"
    assert (await client.post("/wechat", params=query, data=big)).status == 413
    for broken in (b"<xml><MsgType>text", b"not xml at all", b"\xff\xfe\x00",
                   b'<!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>', b"<xml></xml>"):
        resp = await client.post("/wechat", params=peer.signed_query(), data=broken)
        assert resp.status == 400, broken
    assert await rows(client, config) == []


async def test_broken_ciphertext_and_wrong_msg_signature(client: TestClient) -> None:
    query, body = peer.envelope(peer.text_xml("你好"), "aes")
    tampered = body.replace("<Encrypt><![CDATA[", "<Encrypt><![CDATA[AAAA")
    query_t = dict(query, msg_signature=peer.sign(peer.TOKEN, query["timestamp"],
                                                  query["nonce"],
                                                  tampered.split("CDATA[")[2].split("]]")[0]))
    assert (await client.post("/wechat", params=query_t, data=tampered)).status == 400
    assert (await client.post("/wechat", params=dict(query, msg_signature="0" * 40),
                              data=body)).status == 403
    cut = dict(query)
    truncated = body.replace("]]></Encrypt>", "").replace("<Encrypt><![CDATA[", "<Encrypt>")
    assert (await client.post("/wechat", params=cut, data=truncated)).status in (400, 403)


@pytest.mark.parametrize(
    ("msg_type", "fields", "expect"),
    [
        ("voice", {"MediaId": "m", "Format": "amr", "Recognition": "文号是多少"}, "云工通"),
        ("voice", {"MediaId": "m", "Format": "amr", "Recognition": ""}, "文字"),
        ("image", {"PicUrl": "http://x/y.jpg", "MediaId": "m"}, "文字提问"),
        ("video", {"MediaId": "m", "ThumbMediaId": "t"}, "文字提问"),
        ("location", {"Location_X": "25.04", "Location_Y": "102.71", "Scale": "15",
                      "Label": "昆明"}, "文字提问"),
        ("link", {"Title": "t", "Description": "d", "Url": "http://x"}, "文字提问"),
        ("file", {"Title": "a.pdf", "FileKey": "k", "FileMd5": "m", "FileTotalLen": "1"},
         "文字提问"),
        ("text", {"Content": "   "}, "请直接输入问题"),
        ("text", {"Content": "帮助"}, "请直接输入问题"),
        ("text", {"Content": "你好！"}, "请直接输入问题"),
        ("text", {"Content": "Hello"}, "请直接输入问题"),
        ("text", {"Content": "谢谢🙏"}, "不客气"),
        ("text", {"Content": "知道了。"}, "不客气"),
    ],
)
async def test_message_types(client: TestClient, msg_type: str, fields: dict,
                             expect: str) -> None:
    status, reply = await post(client, peer.message_xml(msg_type, fields), "aes")
    assert status == 200 and expect in reply["Content"]


@pytest.mark.parametrize(
    ("event", "fields", "expect"),
    [
        ("subscribe", {}, "欢迎关注"),
        ("unsubscribe", {}, None),
        ("CLICK", {"EventKey": "ABOUT"}, "工会服务热线12351"),
        ("CLICK", {"EventKey": "RIGHTS"}, "新就业形态劳动者"),
        ("LOCATION", {"Latitude": "25.0", "Longitude": "102.7", "Precision": "65"}, None),
        ("VIEW", {"EventKey": "https://example.org"}, None),
        ("TEMPLATESENDJOBFINISH", {"Status": "success"}, None),
        ("MASSSENDJOBFINISH", {"Status": "send success"}, None),
        ("SOMETHING_NEW", {}, None),
    ],
)
async def test_events(client: TestClient, event: str, fields: dict,
                      expect: str | None) -> None:
    xml = peer.message_xml("event", {"Event": event, **fields}, msg_id=False)
    status, reply = await post(client, xml, "raw")
    assert status == 200
    if expect is None:
        assert reply == {}
    else:
        assert expect in reply["Content"]


async def test_retries_share_one_computation(aiohttp_client, config: Config) -> None:  # noqa: ANN001
    engine, _ = Engine.open(config)
    calls = 0
    original = engine.embedder.encode_queries

    def slow_encode(texts: list[str]):  # noqa: ANN202
        nonlocal calls
        calls += len(texts)
        time.sleep(0.3)
        return original(texts)

    engine.embedder.encode_queries = slow_encode  # type: ignore[method-assign]
    client = await aiohttp_client(create_app(config, engine))
    xml = peer.text_xml("文号是多少", msg_id=777)
    results = await asyncio.gather(*(post(client, xml, "aes") for _ in range(3)))
    assert calls == 1
    contents = {r[1]["Content"] for r in results}
    assert len(contents) == 1 and all(r[0] == 200 for r in results)
    created = {r[1]["CreateTime"] for r in results}
    assert len(created) == 1
    status, again = await post(client, xml, "raw")
    assert again["Content"] in contents and calls == 1
    assert len(await rows(client, config)) == 1


async def test_followups_are_per_user(aiohttp_client, tmp_path: Path,  # noqa: ANN001
                                      knowledge_dir: Path) -> None:
    # Thresholds at zero: every answer offers two related clauses, whatever the embedder.
    cfg = make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT,
                      retrieval={"min_score": 0.0, "related_min_score": 0.0})
    client = await aiohttp_client(create_app(cfg))
    alice, bob = "oAlice000000000000000000", "oBob00000000000000000000"
    _, first = await post(client, peer.text_xml("工会要怎么加强党建", user=alice))
    assert first["Content"].partition("\n\n这个回答：")[0].endswith("回复 1、2 查看相关条款")
    cited = [line[3:] for line in first["Content"].splitlines() if line[:3] in ("1. ", "2. ")]
    _, none_for_bob = await post(client, peer.text_xml("1", user=bob))
    assert "没有可查看的相关条款" in none_for_bob["Content"]
    _, second = await post(client, peer.text_xml("2", user=alice))
    assert second["Content"].endswith("——" + cited[1])
    _, more = await post(client, peer.text_xml("更多", user=alice))
    assert more["Content"].endswith("——" + cited[0])
    _, exhausted = await post(client, peer.text_xml("更多", user=alice))
    assert "没有可查看的相关条款" in exhausted["Content"]


async def test_question_logged_even_when_rendering_fails(client: TestClient, config: Config,
                                                        monkeypatch) -> None:  # noqa: ANN001
    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("render exploded")

    monkeypatch.setattr("bot.wechat.views.render_reply", broken)
    query, body = peer.envelope(peer.text_xml("数字工会要怎么建设"), "raw")
    resp = await client.post("/wechat", params=query, data=body)
    assert resp.status == 200 and await resp.text() == "success"
    [row] = await rows(client, config)
    assert row["question"] == "数字工会要怎么建设" and row["delivery"] == "failed"
    assert "render exploded" in row["error"]


async def test_healthz(client: TestClient) -> None:
    resp = await client.get("/healthz")
    data = await resp.json()
    assert resp.status == 200 and data["ready"] and data["passages"] == 16


async def assert_huge_question_cut(client: TestClient, monkeypatch) -> None:  # noqa: ANN001
    """A 21,000-character message is answered, and jieba sees no more than its start."""
    import bot.search.keyword

    seen: list[int] = []
    lcut = bot.search.keyword.jieba.lcut

    def recording(text: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.append(len(text))
        return lcut(text, *args, **kwargs)

    monkeypatch.setattr(bot.search.keyword.jieba, "lcut", recording)
    bot.search.keyword.question_terms.cache_clear()  # another test may have asked it before
    status, reply = await post(client, peer.text_xml("工" * 21000), "raw")
    assert status == 200 and reply["Content"]
    assert seen and max(seen) <= 1000


async def test_huge_question_is_searched_by_its_start(client: TestClient,
                                                      monkeypatch) -> None:  # noqa: ANN001
    """jieba's time grows with the square of an unbroken run: only the start is searched."""
    await assert_huge_question_cut(client, monkeypatch)


async def test_nonce_must_be_alphanumeric(client: TestClient) -> None:
    query, body = peer.envelope(peer.text_xml("文号是多少"), "raw", nonce="a]]>b")
    assert (await client.post("/wechat", params=query, data=body)).status == 400


async def test_slow_body_times_out(aiohttp_client, tmp_path: Path,  # noqa: ANN001
                                   knowledge_dir: Path) -> None:
    """A peer that announces a body and then trickles (or stops) gets 408, not a held slot."""
    cfg = make_config(tmp_path, knowledge_dir, "hashing", wechat={**WECHAT, "body_timeout": 0.5})
    client = await aiohttp_client(create_app(cfg))
    query, body = peer.envelope(peer.text_xml("文号是多少"), "raw")
    reader, writer = await asyncio.open_connection(client.host, client.port)
    head = (f"POST /wechat?{urlencode(query)} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(body.encode())}\r\n\r\n")
    writer.write(head.encode() + body.encode()[:20])  # the rest never comes
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 30)  # fails, not hangs, without a limit
    writer.close()
    assert status.startswith(b"HTTP/1.1 408"), status
    assert await rows(client, cfg) == []
