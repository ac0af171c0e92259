"""Links, their audit trail, workers' votes and the review queue in both query logs (issue 11).

The same admin API, webhook and review page over SQLite and over a real throwaway PostgreSQL
server (tests/servers.py); rows are checked in the database itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import Config
from bot.keys import ENGINE
from bot.wechat.views import drain
from tests import wechat_peer as peer
from tests.conftest import NO_REFERENCE, make_config
from tests.servers import Postgres
from tests.test_admin import TOKEN, csrf_of, login
from tests.test_links import BEARER, bot_cli
from tests.test_webhook import WECHAT, post


def backend_config(backend: str, tmp_path: Path, knowledge_dir: Path, postgres: Postgres | None,
                   **sections: dict) -> Config:
    querylog = {"url": postgres.database()} if postgres is not None and backend == "postgres" \
        else {}
    return make_config(tmp_path, knowledge_dir, "hashing", admin={"token": TOKEN},
                       wechat=WECHAT, knowledge={"watch": False}, querylog=querylog, **sections)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> tuple[str, Postgres | None]:
    if request.param == "sqlite":
        return "sqlite", None
    return "postgres", request.getfixturevalue("postgres")


def db_rows(config: Config, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows straight from the configured database (``?`` placeholders)."""
    if config.querylog.url:
        with psycopg.connect(config.querylog.url) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()  # type: ignore[arg-type]
    lite = sqlite3.connect(config.querylog.path)
    try:
        return lite.execute(sql, params).fetchall()
    finally:
        lite.close()


async def api(client: TestClient, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    resp = await client.request(method, path, headers=BEARER, **kw)
    return resp.status, await resp.json()


async def test_links_votes_and_the_queue_on_postgres(aiohttp_client, tmp_path: Path,  # noqa: ANN001
                                                     knowledge_dir: Path,
                                                     postgres: Postgres) -> None:
    config = backend_config("postgres", tmp_path, knowledge_dir, postgres)
    client = await aiohttp_client(create_app(config))
    engine = client.server.app[ENGINE]
    passage = next(p for p in engine.index.passages if p.kind == "section" and len(p.text) > 40)

    status, link = await api(client, "POST", "/admin/api/links", json={
        "question": "厂里拖欠工资工会管不管", "passage_id": passage.id, "by": "王芳"})
    assert status == 201, link
    assert link["passage_id"] == passage.id and link["status"] == "ok"
    assert "王芳" in link["created_by"]
    status, refused = await api(client, "POST", "/admin/api/links",
                                json={"question": "q", "passage_id": "0000000000000000"})
    assert status == 400 and "unknown passage id" in refused["error"]
    status, listed = await api(client, "GET", "/admin/api/links")
    assert [x["id"] for x in listed["links"]] == [link["id"]]
    assert [x.id for x in engine.retriever.links.links] == [link["id"]]  # served at once
    stored = db_rows(config, "SELECT question, passage_id, section_path, content_hash FROM links")
    assert stored == [("厂里拖欠工资工会管不管", passage.id,
                       json.dumps(list(passage.path), ensure_ascii=False), passage.content_hash)]

    # The linked question through the encrypted webhook gets the linked passage first.
    user = "oWorkerPG000000000000001"
    _, answer = await post(client, peer.text_xml("厂里拖欠工资工会管不管", user=user), "aes")
    assert answer["Content"].split("\n\n这个回答：")[0].endswith("——" + passage.citation)
    tap = re.search(r'msgmenucontent=没用&msgmenuid=(\d+)">', answer["Content"])
    assert tap is not None
    _, thanks = await post(client, peer.message_xml(
        "text", {"Content": "没用", "bizmsgmenuid": tap.group(1)}, user=user), "aes")
    assert "已记录" in thanks["Content"]
    await drain(client.server.app)
    [(row_id, hits)] = db_rows(config, "SELECT id, hits FROM queries")  # the tap is no question
    assert hits[0]["id"] == passage.id
    assert db_rows(config, "SELECT query_id, vote FROM feedback") == [(row_id, "unhelpful")]
    status, review = await api(client, "GET", "/admin/api/review")
    assert [q["id"] for q in review["unhelpful"]] == [row_id]
    assert review["unhelpful"][0]["hits"][0]["id"] == passage.id  # JSONB comes back decoded
    assert review["helpful_by_week"][0]["unhelpful"] == 1
    status, stats = await api(client, "GET", "/admin/api/stats")
    assert stats["feedback"]["to_review"]["unhelpful"] == 1
    await login(client)
    assert "厂里拖欠工资工会管不管" in await (await client.get("/admin/review")).text()
    prefilled = await (await client.get(f"/admin/links?query_id={row_id}")).text()
    assert 'name="question" value="厂里拖欠工资工会管不管"' in prefilled

    status, _ = await api(client, "DELETE", f"/admin/api/links/{link['id']}")
    assert status == 200 and engine.retriever.links.links == []
    status, audit = await api(client, "GET", "/admin/api/links/audit")
    assert [(a["action"], a["link_id"]) for a in audit["audit"]] == \
        [("delete", link["id"]), ("create", link["id"])]
    assert all("api token from" in a["actor"] for a in audit["audit"])
    await client.close()

    # Links are read back by a restarted server, and moved by the command line.
    status, _ = await api(again := await aiohttp_client(create_app(config)), "POST",
                          "/admin/api/links", json={"question": "重启后还在吗",
                                                    "passage_id": passage.id})
    assert status == 201
    await again.close()
    third = await aiohttp_client(create_app(config))
    assert [x.question for x in third.server.app[ENGINE].retriever.links.links] == ["重启后还在吗"]
    await third.close()
    conf = tmp_path / "pg.toml"
    conf.write_text(f'[knowledge]\ndir = "{config.knowledge.dir}"\n[index]\ndir = '
                    f'"{config.index.dir}"\n[model]\nname = "hashing"\n[querylog]\nurl = '
                    f'"{config.querylog.url}"\n{NO_REFERENCE}', encoding="utf-8")
    exported = bot_cli(conf, "links", "export")
    assert exported.returncode == 0, exported.stderr
    assert [json.loads(x)["question"] for x in exported.stdout.splitlines()] == ["重启后还在吗"]
    other = tmp_path / "other.toml"
    other.write_text(conf.read_text(encoding="utf-8").replace(config.querylog.url,
                                                               postgres.database()))
    file = tmp_path / "links.jsonl"
    file.write_text(exported.stdout, encoding="utf-8")
    done = bot_cli(other, "links", "import", str(file))
    assert done.returncode == 0 and "imported 1 (1 new" in done.stdout, done.stderr
    asked = bot_cli(other, "ask", "--json", "重启后还在吗")
    assert json.loads(asked.stdout)["hits"][0]["id"] == passage.id


async def test_a_workers_choice_becomes_a_link_in_one_click(
        aiohttp_client, tmp_path: Path, knowledge_dir: Path,  # noqa: ANN001
        backend: tuple[str, Postgres | None]) -> None:
    """The bot offers candidates; the worker replies 2; the review queue's one button links
    the question to that passage; the same question is then answered with it."""
    # Every answer counts as unsure here, whatever the hashing embedder scores.
    config = backend_config(backend[0], tmp_path, knowledge_dir, backend[1], retrieval={
        "min_score": 0.0, "min_keyword": 0.0, "unsure_margin": 1.0})
    client = await aiohttp_client(create_app(config))
    user = "oChooser0000000000000001"
    question = "工会要怎么加强党建"
    _, first = await post(client, peer.text_xml(question, user=user), "aes")
    assert first["Content"].splitlines()[-1] == "回复 1、2、3 查看原文。"
    _, chosen = await post(client, peer.text_xml("2", user=user), "aes")
    citation = chosen["Content"].rsplit("\n\n——", 1)[1]
    await drain(client.server.app)
    [(choice_id, hits)] = db_rows(config, "SELECT id, hits FROM queries WHERE msg_type = ?",
                                  ("choice",))
    hits = json.loads(hits) if isinstance(hits, str) else hits
    passage_id = hits[0]["id"]

    await login(client)
    html = await (await client.get("/admin/review")).text()
    section = html.split('id="choices"', 1)[1].split("</table>", 1)[0]
    assert question in section and f'value="{passage_id}"' in section
    form = re.search(r'<form method="post" action="/admin/links">(.*?)</form>', section)
    assert form is not None
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(1)))
    assert fields["query_id"] == str(choice_id) and fields["csrf"] == csrf_of(html)
    resp = await client.post("/admin/links", data=fields, allow_redirects=False)  # the click
    assert resp.status == 303, await resp.text()

    status, listed = await api(client, "GET", "/admin/api/links")
    [link] = listed["links"]
    assert (link["question"], link["passage_id"], link["query_id"]) == \
        (question, passage_id, choice_id)
    assert "admin page session" in link["created_by"]
    _, review = await api(client, "GET", "/admin/api/review")
    assert review["choices"] == []  # confirmed: out of the queue
    _, again = await post(client, peer.text_xml(question, user="oSomeoneElse000000000001"), "aes")
    assert again["Content"].split("\n\n这个回答：")[0].endswith("——" + citation)


async def test_a_link_made_on_one_instance_is_served_by_the_other(
        aiohttp_client, tmp_path: Path, knowledge_dir: Path,  # noqa: ANN001
        postgres: Postgres) -> None:
    config = backend_config("postgres", tmp_path, knowledge_dir, postgres)
    a = await aiohttp_client(create_app(config))
    b = await aiohttp_client(create_app(config))
    passage = a.server.app[ENGINE].index.passages[3]
    status, link = await api(a, "POST", "/admin/api/links",
                             json={"question": "在A上关联的问题", "passage_id": passage.id})
    assert status == 201
    served = b.server.app[ENGINE].retriever
    for _ in range(50):  # B polls the shared log (POLL_SECONDS)
        if served.links is not None and served.links.links:
            break
        await asyncio.sleep(0.2)
        served = b.server.app[ENGINE].retriever
    assert [x.id for x in served.links.links] == [link["id"]]
    _, listed = await api(b, "GET", "/admin/api/links")
    assert [x["question"] for x in listed["links"]] == ["在A上关联的问题"]


async def test_staff_actions_say_when_postgres_is_down_and_work_after(
        aiohttp_client, tmp_path: Path, knowledge_dir: Path,  # noqa: ANN001
        postgres: Postgres) -> None:
    config = backend_config("postgres", tmp_path, knowledge_dir, postgres)
    client = await aiohttp_client(create_app(config))
    passage = client.server.app[ENGINE].index.passages[3]
    assert (await api(client, "GET", "/admin/api/links"))[0] == 200  # the staff pool is open
    postgres.stop()
    try:
        status, body = await api(client, "POST", "/admin/api/links",
                                 json={"question": "数据库停了", "passage_id": passage.id})
        assert status == 503 and "query log is unreachable" in body["error"]
    finally:
        await asyncio.to_thread(postgres.start)
    # The pool's connections died with the server: the next action runs on a fresh one.
    status, link = await api(client, "POST", "/admin/api/links",
                             json={"question": "数据库恢复了", "passage_id": passage.id})
    assert status == 201, link
    _, listed = await api(client, "GET", "/admin/api/links")
    assert [x["question"] for x in listed["links"]] == ["数据库恢复了"]
