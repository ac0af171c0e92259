"""Linked questions through the admin API: storage, audit, needs-review, escaping (issue 11)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import Config
from bot.keys import ENGINE, QUERYLOG
from bot.store import links as linkstore
from bot.wechat import feedback
from bot.wechat.views import drain
from tests import wechat_peer as peer
from tests.conftest import NO_REFERENCE, ROOT, make_config
from tests.test_admin import TOKEN, XSS, login
from tests.test_webhook import WECHAT, assert_huge_question_cut, post

BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def config(tmp_path: Path, knowledge_dir: Path) -> Config:
    return make_config(tmp_path, knowledge_dir, "hashing", admin={"token": TOKEN}, wechat=WECHAT)


@pytest.fixture
async def client(aiohttp_client, config: Config) -> TestClient:  # noqa: ANN001
    return await aiohttp_client(create_app(config))


async def search(client: TestClient, q: str) -> list[dict]:
    resp = await client.get("/admin/api/search", params={"q": q}, headers=BEARER)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["hits"]


async def test_search_finds_a_passage_by_its_own_text(client: TestClient) -> None:
    passages = client.server.app[ENGINE].index.passages
    for passage in passages[1:6]:
        hits = await search(client, passage.text)
        assert hits[0]["id"] == passage.id
        assert set(hits[0]) >= {"id", "citation", "text"}
        assert hits[0]["text"] == passage.text and hits[0]["citation"] == passage.citation


async def test_search_widens_with_keyword_matches_only(client: TestClient) -> None:
    """Beyond the retriever's few hits, staff see more passages holding the words, best first,
    never one that holds none of them."""
    hits = await search(client, "职工服务")
    assert 3 < len(hits) <= 10 and len({h["id"] for h in hits}) == len(hits)
    assert all("职工" in h["text"] or "服务" in h["text"] for h in hits[3:])
    assert len(await search(client, "zzzz qqqq")) <= 3


async def test_api_needs_the_token(client: TestClient) -> None:
    for method, path in (("GET", "/admin/api/search?q=x"), ("GET", "/admin/api/links"),
                         ("POST", "/admin/api/links"), ("DELETE", "/admin/api/links/1")):
        resp = await client.request(method, path)
        assert resp.status == 401, (method, path)


async def test_create_list_delete_with_audit(client: TestClient) -> None:
    passage = client.server.app[ENGINE].index.passages[3]
    resp = await client.post("/admin/api/links", headers=BEARER, json={
        "question": " 我们厂的工会能帮我讨薪吗 ", "passage_id": passage.id, "by": "李明"})
    assert resp.status == 201, await resp.text()
    link = await resp.json()
    assert link["question"] == "我们厂的工会能帮我讨薪吗"
    assert link["passage_id"] == passage.id and link["citation"] == passage.citation
    assert link["source"] == passage.source and link["section_path"] == list(passage.path)
    assert link["content_hash"] == passage.content_hash and link["status"] == "ok"
    assert "李明" in link["created_by"] and "api token" in link["created_by"]
    assert link["created_at"]

    listed = (await (await client.get("/admin/api/links", headers=BEARER)).json())["links"]
    assert [x["id"] for x in listed] == [link["id"]]
    # The engine serves it at once: the retriever carries the new link.
    assert client.server.app[ENGINE].retriever.links.links[0].id == link["id"]

    resp = await client.delete(f"/admin/api/links/{link['id']}", headers=BEARER)
    assert resp.status == 200
    assert (await (await client.get("/admin/api/links", headers=BEARER)).json())["links"] == []
    assert (await client.delete(f"/admin/api/links/{link['id']}", headers=BEARER)).status == 404
    audit = (await (await client.get("/admin/api/links/audit", headers=BEARER)).json())["audit"]
    assert [a["action"] for a in audit] == ["delete", "create"]
    assert all(a["time"] and "api token from" in a["actor"] for a in audit)
    assert audit[1]["question"] == "我们厂的工会能帮我讨薪吗"


@pytest.mark.parametrize("body, message", [
    ({"question": "q", "passage_id": "0000000000000000"}, "unknown passage id"),
    ({"question": "  ", "passage_id": "x"}, "question is empty"),
    ({"question": "q"}, "body must be"),
    (["q"], "body must be"),
])
async def test_bad_links_are_refused_clearly(client: TestClient, body: object,
                                             message: str) -> None:
    resp = await client.post("/admin/api/links", headers=BEARER, json=body)
    assert resp.status == 400
    assert message in (await resp.json())["error"]
    resp = await client.post("/admin/api/links", headers=BEARER, data=b"{not json",
                             )
    assert resp.status == 400


async def test_relinking_a_question_moves_it(client: TestClient) -> None:
    a, b = client.server.app[ENGINE].index.passages[2:4]
    first = await client.post("/admin/api/links", headers=BEARER,
                              json={"question": "同一个问题", "passage_id": a.id})
    second = await client.post("/admin/api/links", headers=BEARER,
                               json={"question": "同一个问题", "passage_id": b.id})
    assert first.status == 201 and second.status == 200
    assert (await second.json())["passage_id"] == b.id
    links = (await (await client.get("/admin/api/links", headers=BEARER)).json())["links"]
    assert len(links) == 1


async def test_a_huge_question_is_compared_by_its_start_with_links_live(
        client: TestClient, monkeypatch) -> None:  # noqa: ANN001
    """Links compare the words a worker typed, cut as the retriever cuts them: jieba's time
    grows with the square of an unbroken run, so a 21,000-character message must not reach it."""
    passage = client.server.app[ENGINE].index.passages[2]
    resp = await client.post("/admin/api/links", headers=BEARER,
                             json={"question": "工会工作怎么做", "passage_id": passage.id})
    assert resp.status == 201
    await assert_huge_question_cut(client, monkeypatch)


async def test_links_survive_a_restart(aiohttp_client, config: Config) -> None:  # noqa: ANN001
    client = await aiohttp_client(create_app(config))
    passage = client.server.app[ENGINE].index.passages[4]
    await client.post("/admin/api/links", headers=BEARER,
                      json={"question": "重启后还在吗", "passage_id": passage.id})
    await client.close()
    again = await aiohttp_client(create_app(config))
    links = again.server.app[ENGINE].retriever.links
    assert [link.question for link in links.links] == ["重启后还在吗"]


async def test_editing_the_passage_flags_the_link(client: TestClient, config: Config) -> None:
    engine = client.server.app[ENGINE]
    passage = next(p for p in engine.index.passages if p.kind == "section" and len(p.text) > 40)
    await client.post("/admin/api/links", headers=BEARER,
                      json={"question": "改了原文怎么办", "passage_id": passage.id})
    path = config.knowledge.dir / passage.source
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(passage.text[:20], passage.text[:20] + "（已修订）", 1),
                    encoding="utf-8")
    await asyncio.get_running_loop().run_in_executor(None, engine.rebuild)
    link = (await (await client.get("/admin/api/links", headers=BEARER)).json())["links"][0]
    assert link["status"] == "changed" and link["needs_review"]
    assert engine.retriever.links.links == []  # a link needing review answers nothing
    review = await (await client.get("/admin/api/review", headers=BEARER)).json()
    assert [x["question"] for x in review["links_needing_review"]] == ["改了原文怎么办"]
    path.unlink()
    await asyncio.get_running_loop().run_in_executor(None, engine.rebuild)
    link = (await (await client.get("/admin/api/links", headers=BEARER)).json())["links"][0]
    assert link["status"] == "missing"


async def test_pages_escape_what_workers_typed(client: TestClient) -> None:
    passage = client.server.app[ENGINE].index.passages[2]
    for text in XSS:  # unanswered groups on /admin/review (asked before they are linked)
        await post(client, peer.text_xml(text), "aes")
    await drain(client.server.app)
    for text in XSS:
        resp = await client.post("/admin/api/links", headers=BEARER,
                                 json={"question": text, "passage_id": passage.id})
        assert resp.status == 201
    await login(client)
    assert "&lt;script&gt;" in await (await client.get("/admin/review")).text()
    for page in ("/admin/links", "/admin/review", f"/admin/links?question={XSS[0]}&q=工会"):
        html = await (await client.get(page)).text()
        for text in XSS:
            assert text not in html
    html = await (await client.get("/admin/links")).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_store_functions_round_trip(client: TestClient) -> None:
    querylog = client.server.app[QUERYLOG]
    passage = client.server.app[ENGINE].index.passages[2]
    from bot.search.links import link_to

    stored, created = await querylog.call(linkstore.save_link, link_to("问", passage), "me")
    assert created and stored.id > 0
    assert json.loads(json.dumps(stored.to_json()))["section_path"] == list(passage.path)


def query_rows(config: Config) -> list[dict]:
    import sqlite3

    conn = sqlite3.connect(config.querylog.path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM queries ORDER BY id")]
    finally:
        conn.close()


async def test_unhelpful_tap_marks_the_row_and_gets_no_answer(client: TestClient,
                                                              config: Config) -> None:
    user = "oWorker00000000000000001"
    _, answer = await post(client, peer.text_xml("文号是多少", user=user), "aes")
    assert answer["_encrypted"] and "云工通〔2023〕7号" in answer["Content"]
    found = re.search(r'msgmenucontent=没用&msgmenuid=(\d+)">没用</a>', answer["Content"])
    assert found and "msgmenucontent=有用" in answer["Content"]
    assert len(answer["Content"].encode()) <= 2048
    # Another worker's question in between: the tap still finds its own row.
    await post(client, peer.text_xml("文号是多少", user="oOther000000000000000001"), "aes")
    tap = peer.message_xml("text", {"Content": "没用", "bizmsgmenuid": found.group(1)}, user=user)
    _, thanks = await post(client, tap, "aes")
    assert thanks["Content"] == feedback.THANKS["unhelpful"] and "——" not in thanks["Content"]
    await drain(client.server.app)
    rows = query_rows(config)
    assert [r["question"] for r in rows] == ["文号是多少", "文号是多少"]  # the tap is no question
    review = await (await client.get("/admin/api/review", headers=BEARER)).json()
    assert [q["id"] for q in review["unhelpful"]] == [rows[0]["id"]]
    assert review["helpful_by_week"][0]["unhelpful"] == 1
    assert review["helpful_by_week"][0]["rate"] == 0.0
    await post(client, peer.text_xml("食堂今天中午吃什么", user=user), "aes")
    await drain(client.server.app)
    review = await (await client.get("/admin/api/review", headers=BEARER)).json()
    assert [g["question"] for g in review["unanswered"]] == ["食堂今天中午吃什么"]
    await login(client)
    html = await (await client.get("/admin/review")).text()
    assert f'href="/admin/queries/{rows[0]["id"]}"' in html and "0%" in html
    stats = await (await client.get("/admin/api/stats", headers=BEARER)).json()
    assert stats["feedback"]["to_review"]["unhelpful"] == 1
    assert stats["feedback"]["helpful_by_week"][0]["rate"] == 0.0
    assert "有用率" in await (await client.get("/admin/stats")).text()
    # Typed without a menu id (test accounts, old clients): the worker's latest answer.
    _, thanks = await post(client, peer.text_xml("有用", user=user), "aes")
    assert thanks["Content"] == feedback.THANKS["helpful"]
    await drain(client.server.app)
    review = await (await client.get("/admin/api/review", headers=BEARER)).json()
    assert review["unhelpful"] == [] and review["helpful_by_week"][0]["helpful"] == 1


async def test_linking_from_the_queue_clears_it(client: TestClient, config: Config) -> None:
    user = "oWorker00000000000000002"
    await post(client, peer.text_xml("文号是多少", user=user), "aes")
    await post(client, peer.text_xml("没用", user=user), "aes")
    await drain(client.server.app)
    row = query_rows(config)[0]
    assert len((await (await client.get("/admin/api/review", headers=BEARER)).json())
               ["unhelpful"]) == 1
    passage = client.server.app[ENGINE].index.passages[0]
    resp = await client.post("/admin/api/links", headers=BEARER, json={
        "question": row["question"], "passage_id": passage.id, "query_id": row["id"]})
    assert resp.status == 201
    assert (await (await client.get("/admin/api/review", headers=BEARER)).json())[
        "unhelpful"] == []


def bot_cli(config_file: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", "--config", str(config_file), *args],
                          input=stdin, capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)


async def test_export_and_import_move_links(client: TestClient, config: Config,
                                            tmp_path: Path) -> None:
    passages = client.server.app[ENGINE].index.passages
    for i, question in enumerate(["导出的问题一", "导出的问题二"]):
        await client.post("/admin/api/links", headers=BEARER,
                          json={"question": question, "passage_id": passages[2 + i].id})
    source = tmp_path / "source.toml"
    source.write_text(f'[knowledge]\ndir = "{config.knowledge.dir}"\n[index]\ndir = '
                      f'"{config.index.dir}"\n[model]\nname = "hashing"\n[querylog]\npath = '
                      f'"{config.querylog.path}"\n{NO_REFERENCE}', encoding="utf-8")
    exported = bot_cli(source, "links", "export")
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [x["question"] for x in lines] == ["导出的问题一", "导出的问题二"]
    assert lines[0]["passage_id"] == passages[2].id and lines[0]["section_path"]

    # Another deployment: same documents, its own index and query log.
    target = tmp_path / "target.toml"
    target.write_text(source.read_text(encoding="utf-8").replace(
        str(config.index.dir), str(tmp_path / "index2")).replace(
        str(config.querylog.path), str(tmp_path / "q2.sqlite3")), encoding="utf-8")
    file = tmp_path / "links.jsonl"
    file.write_text(exported.stdout + '{"question": "坏的", "passage_id": "nope"}\nnot json\n',
                    encoding="utf-8")
    refused = bot_cli(target, "links", "import", str(file))
    assert refused.returncode == 1
    assert "line 3: no passage nope" in refused.stderr and "line 4: not JSON" in refused.stderr
    assert bot_cli(target, "links", "export").stdout == ""  # all or nothing
    file.write_text(exported.stdout, encoding="utf-8")
    done = bot_cli(target, "links", "import", str(file))
    assert done.returncode == 0, done.stderr
    assert "imported 2 (2 new, 0 updated)" in done.stdout
    again = [json.loads(line) for line in bot_cli(target, "links", "export").stdout.splitlines()]
    assert [(x["question"], x["passage_id"]) for x in again] == \
        [(x["question"], x["passage_id"]) for x in lines]
    assert all(x["created_by"].startswith("bot links import links.jsonl") for x in again)
    asked = bot_cli(target, "ask", "--json", "导出的问题一")  # bot ask answers with links too
    assert json.loads(asked.stdout)["hits"][0]["id"] == passages[2].id


async def test_a_running_server_follows_imported_links(client: TestClient,
                                                       config: Config) -> None:
    from bot.search.links import link_to

    passage = client.server.app[ENGINE].index.passages[3]
    await client.server.app[QUERYLOG].call(linkstore.save_link, link_to("别处导入的", passage),
                                           "another process")
    engine = client.server.app[ENGINE]
    for _ in range(50):
        if engine.retriever.links is not None and engine.retriever.links.links:
            break
        await asyncio.sleep(0.2)
    assert [link.question for link in engine.retriever.links.links] == ["别处导入的"]


async def test_the_picker_browses_a_documents_outline(client: TestClient) -> None:
    passages = client.server.app[ENGINE].index.passages
    source = passages[0].source
    await login(client)
    html = await (await client.get("/admin/links", params={"question": XSS[0]})).text()
    assert 'id="docs"' in html and XSS[0] not in html
    html = await (await client.get("/admin/links", params={"question": XSS[0],
                                                           "doc": source})).text()
    ids = re.findall(r'name="passage_id" value="([0-9a-f]+)"',
                     html.split('id="outline"', 1)[1].split("</table>", 1)[0])
    assert ids == [p.id for p in passages if p.source == source]  # every passage, in order
    assert XSS[0] not in html
    assert (await client.get("/admin/links", params={"doc": "../config.toml"})).status == 404
