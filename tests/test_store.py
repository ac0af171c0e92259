"""The PostgreSQL query store against a real server: migrations, retention, hashing, outages.

The admin features themselves run on both stores in test_admin.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg

from bot.config import QueryLogConfig
from bot.store import Filters, QueryRecord, hash_openid, open_store
from bot.store.postgres import MIGRATIONS, PostgresStore
from tests.servers import Postgres


def rec(question: str, when: datetime | None = None, openid: str = "oUserPG0001") -> QueryRecord:
    stamp = (when or datetime.now(UTC)).isoformat(timespec="milliseconds")
    return QueryRecord(openid, "text", question, time=stamp, answered=True,
                       hits=[{"doc": "文件", "source": "a.txt", "citation": "《文件》一"}])


async def test_migrations_are_named_recorded_and_applied_once(postgres: Postgres) -> None:
    url = postgres.database()
    stores = await asyncio.gather(*(PostgresStore.open(url) for _ in range(3)))  # racing starts
    with psycopg.connect(url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    for store in stores:
        await store.aclose()


async def test_rows_delivery_retention_and_hashed_openids(postgres: Postgres) -> None:
    cfg = QueryLogConfig(url=postgres.database(), hash_openids=True, openid_salt="pepper")
    store = await open_store(cfg)
    now = datetime(2024, 6, 30, tzinfo=UTC)
    old = await store.add(rec("旧", now - timedelta(days=31)))
    new = await store.add(rec("新", now - timedelta(days=29), openid="oRealOpenid123"))
    assert isinstance(old, int) and isinstance(new, int) and new > old
    await store.set_delivery(new, "failed", "customer service: 45015")
    await store.set_delivery(new, "failed")  # an empty error keeps the first one
    row = await store.detail(new)
    assert row is not None and row["delivery"] == "failed"
    assert row["error"] == "customer service: 45015"
    assert row["openid"] == hash_openid("oRealOpenid123", "pepper")
    assert row["hits"][0]["citation"] == "《文件》一" and row["top_doc"] == "文件"
    await store.set_reviewed("a" * 32, True)
    assert await store.delete_before(now - timedelta(days=30)) == 1
    assert await store.count() == 1 and list(await store.reviews()) == ["a" * 32]
    await store.aclose()


async def test_rows_are_held_while_the_database_is_down(postgres: Postgres) -> None:
    """An outage loses nothing the instance can hold: rows are written when it returns."""
    store = await PostgresStore.open(postgres.database(), max_pending=100)
    store.retry_delay = 0.1
    assert await store.add(rec("之前")) is not None
    postgres.stop()
    try:
        held = [asyncio.ensure_future(store.add(rec(f"停机中{i}"))) for i in range(5)]
        for _ in range(200):
            if store.pending == 5:
                break
            await asyncio.sleep(0.05)
        assert store.pending == 5 and not any(t.done() for t in held)
    finally:
        await asyncio.to_thread(postgres.start)
    ids = await asyncio.wait_for(asyncio.gather(*held), 30)
    assert all(isinstance(i, int) for i in ids) and store.pending == 0
    assert await store.count() == 6 and store.failures == 0
    await store.aclose()


async def test_beyond_max_pending_rows_are_counted_as_failed(postgres: Postgres) -> None:
    store = await PostgresStore.open(postgres.database(), max_pending=2)
    store.retry_delay = 0.1
    postgres.stop()
    try:
        held = [asyncio.ensure_future(store.add(rec(f"停机中{i}"))) for i in range(2)]
        await asyncio.sleep(0.5)
        assert await store.add(rec("第三条")) is None and store.failures == 1
    finally:
        await asyncio.to_thread(postgres.start)
    assert all(isinstance(i, int) for i in await asyncio.wait_for(asyncio.gather(*held), 30))
    await store.aclose()


async def test_webhook_answers_while_postgres_is_down(aiohttp_client, tmp_path,  # noqa: ANN001
                                                      knowledge_dir, postgres: Postgres) -> None:
    """No 5xx and no lost question: the row is written once the database is back."""
    from bot.app import create_app
    from bot.keys import QUERYLOG
    from bot.wechat.views import drain
    from tests import wechat_peer as peer
    from tests.conftest import make_config
    from tests.test_webhook import WECHAT, post

    url = postgres.database()
    cfg = make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT,
                      knowledge={"watch": False}, querylog={"url": url})
    client = await aiohttp_client(create_app(cfg))
    client.app[QUERYLOG].retry_delay = 0.1
    postgres.stop()
    try:
        status, reply = await post(client, peer.text_xml("文号是多少"), "aes")
        assert status == 200 and "云工通〔2023〕7号" in reply["Content"]
        for _ in range(300):  # the row is held once the pool gives up on the database
            if client.app[QUERYLOG].pending == 1:
                break
            await asyncio.sleep(0.05)
        assert client.app[QUERYLOG].pending == 1
    finally:
        await asyncio.to_thread(postgres.start)
    await asyncio.wait_for(drain(client.app), 30)
    rows = await client.app[QUERYLOG].rows(Filters(), UTC)
    assert [(r["question"], r["delivery"]) for r in rows] == [("文号是多少", "passive")]
