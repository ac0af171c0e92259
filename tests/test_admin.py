"""The admin pages and API against the running app: auth, filters, CSV, escaping, retention."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.admin import upkeep as admin_upkeep
from bot.admin.auth import AdminAuth, LoginGuard
from bot.admin.stats import group_id, percentile, question_key
from bot.app import create_app
from bot.config import Config
from bot.keys import ADMIN_AUTH, QUERYLOG
from bot.store import QueryRecord, QueryStore, SQLiteStore, hash_openid
from bot.wechat.views import drain
from tests import wechat_peer as peer
from tests.conftest import make_config
from tests.test_webhook import WECHAT, post

TOKEN = "admin-Secret-令牌-42"
XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']
SOURCE = "云工通〔2023〕7号 云南省总工会关于学习宣传贯彻习近平总书记重要指示精神的通知.txt"
TITLE = "云南省总工会关于学习宣传贯彻习近平总书记重要指示精神的通知"


@pytest.fixture(params=["sqlite", "postgres"])
def config(request: pytest.FixtureRequest, tmp_path: Path, knowledge_dir: Path) -> Config:
    """Every admin feature is checked on both query stores (a real PostgreSQL server)."""
    querylog = {"url": request.getfixturevalue("postgres").database()} \
        if request.param == "postgres" else {}
    # The test client is a local nginx: its forwarded headers are believed only when listed.
    return make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT,
                       admin={"token": TOKEN}, server={"trusted_proxies": ["127.0.0.1/32"]},
                       querylog=querylog)


@pytest.fixture
async def client(aiohttp_client, config: Config) -> TestClient:  # noqa: ANN001
    return await aiohttp_client(create_app(config))


async def login(client: TestClient) -> None:
    resp = await client.post("/admin/login", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def settle(client: TestClient) -> None:
    """Wait for the query-log writes the webhook started beside its replies."""
    await drain(client.server.app)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


def record(question: str, when: datetime, answered: bool = False, user: str = "oUserAAAA1111",
           doc: str = TITLE, source: str = SOURCE, citation: str = "《通知》一",
           latency: float | None = 12.0, score: float = 0.6,
           msg_type: str = "text") -> QueryRecord:
    hits = [{"doc": doc, "doc_no": "云工通〔2023〕7号", "section": "一", "section_title": "",
             "citation": citation, "source": source, "score": score}]
    return QueryRecord(user, msg_type, question, time=when.isoformat(timespec="milliseconds"),
                       answered=answered, reply="回复", hits=hits, latency_ms=latency,
                       delivery="passive")


def querylog(client: TestClient) -> QueryStore:
    return client.server.app[QUERYLOG]


# --- access ----------------------------------------------------------------------------------

async def test_admin_is_off_without_a_token(aiohttp_client, tmp_path: Path,  # noqa: ANN001
                                            knowledge_dir: Path) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, knowledge_dir, "hashing")))
    for path in ("/admin", "/admin/login", "/admin/api/queries", "/admin/stats"):
        assert (await client.get(path, allow_redirects=False)).status == 404
    resp = await client.get("/admin/api/queries", headers={"Authorization": "Bearer "})
    assert resp.status == 404


async def test_every_admin_route_needs_login(client: TestClient) -> None:
    routes = [(r.method, r.resource.canonical) for r in client.server.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/admin")]
    assert len(routes) >= 12
    for method, path in routes:
        path = re.sub(r"\{id[^}]*\}", "1", path)
        resp = await client.request(method, path, allow_redirects=False)
        if path.startswith("/admin/login"):
            assert resp.status in (200, 401), path
        elif path.startswith("/admin/api/"):
            assert resp.status == 401, path
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert "error" in await resp.json()
        else:
            assert resp.status in (302, 303), path
            assert resp.headers["Location"].startswith("/admin/login?next=")


async def test_login_cookie_and_redirect_back(client: TestClient) -> None:
    resp = await client.get("/admin/stats?from=2024-01-01", allow_redirects=False)
    login_url = resp.headers["Location"]
    page = await client.get(login_url)
    assert 'value="/admin/stats?from=2024-01-01"' in await page.text()
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    resp = await client.post("/admin/login", allow_redirects=False, data={
        "token": TOKEN, "next": "/admin/stats?from=2024-01-01"})
    assert resp.status == 303 and resp.headers["Location"] == "/admin/stats?from=2024-01-01"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie
    assert (await client.get("/admin")).status == 200
    assert (await client.get("/admin/api/queries")).status == 200  # the session works there too


async def test_secure_cookie_behind_https_proxy_and_no_open_redirect(client: TestClient) -> None:
    for target in ("//evil.example/x", "https://evil.example", "/admin/../x\\y", "/wechat"):
        resp = await client.post("/admin/login", allow_redirects=False,
                                 headers={"X-Forwarded-Proto": "https"},
                                 data={"token": TOKEN, "next": target})
        assert resp.status == 303 and resp.headers["Location"] == "/admin", target
        assert "Secure" in resp.headers["Set-Cookie"]


async def test_wrong_tokens_are_slowed_down(client: TestClient) -> None:
    guard = client.server.app[ADMIN_AUTH].guard
    now = [1000.0]
    guard.clock = lambda: now[0]
    resp = await client.post("/admin/login", data={"token": "guess"})
    assert resp.status == 401 and "口令不正确" in await resp.text()
    resp = await client.post("/admin/login", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 429 and "秒后再试" in await resp.text()  # even the right token waits
    other = {"X-Forwarded-For": "203.0.113.9"}  # another client (behind the local proxy)
    assert (await client.post("/admin/login", data={"token": TOKEN}, headers=other,
                              allow_redirects=False)).status == 303
    now[0] += 1.1
    assert (await client.post("/admin/login", data={"token": "guess2"})).status == 401
    now[0] += 1.1
    assert await guard.wait("127.0.0.1") > 0  # the second failure doubled the wait
    now[0] += 1.0
    resp = await client.post("/admin/login", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 303
    assert await guard.wait("127.0.0.1") == 0  # success resets the count


async def test_login_guard_backoff_is_capped_and_bounded() -> None:
    now = [0.0]
    guard = LoginGuard(base=1, cap=8, max_clients=3, clock=lambda: now[0])
    assert [await guard.failed("a") for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    for client in "bcd":
        await guard.failed(client)
    assert await guard.wait("a") == 0 and await guard.wait("d") == 1  # the oldest was dropped


async def test_bearer_token_for_scripts(client: TestClient) -> None:
    auth = client.server.app[ADMIN_AUTH]
    auth.guard.clock = lambda: 5000.0
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert (await client.get("/admin/api/queries", headers=ok)).status == 200
    assert (await client.get("/admin", headers=ok)).status == 200
    assert (await client.get("/admin/export.csv", headers=ok)).status == 200
    resp = await client.get("/admin/api/stats", headers={"Authorization": "Bearer nope"})
    assert resp.status == 401
    resp = await client.get("/admin/api/stats", headers=ok)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1


async def test_forged_expired_and_logged_out_sessions_are_refused(client: TestClient) -> None:
    auth: AdminAuth = client.server.app[ADMIN_AUTH]
    good = auth.new_session()
    assert await auth.session(good) is not None
    sid, expires, sig = good.split(".")
    for bad in (f"{sid}.{int(expires) + 999}.{sig}", f"x{sid}.{expires}.{sig}", "", "a.b.c",
                f"{sid}.{expires}.{'0' * 64}", "é.1.é"):
        assert await auth.session(bad) is None, bad
    assert await AdminAuth(TOKEN, 60).session(good) is None  # another secret or token
    now = [0.0]
    short = AdminAuth(TOKEN, 60, clock=lambda: now[0])
    issued = short.new_session()
    now[0] = 59.0
    assert await short.session(issued) is not None
    now[0] = 61.0
    assert await short.session(issued) is None  # expired

    await login(client)
    page = await client.get("/admin")
    token = csrf_of(await page.text())
    assert (await client.post("/admin/logout", data={"csrf": "0" * 64})).status == 403
    resp = await client.post("/admin/logout", data={"csrf": token}, allow_redirects=False)
    assert resp.status == 303
    assert not [c for c in client.session.cookie_jar if c.key == "admin_session" and c.value]
    assert (await client.get("/admin", allow_redirects=False)).status == 302


async def test_logout_revokes_a_copied_cookie(client: TestClient) -> None:
    auth: AdminAuth = client.server.app[ADMIN_AUTH]
    cookie = auth.new_session()
    headers = {"Cookie": f"admin_session={cookie}"}
    page = await client.get("/admin", headers=headers)
    assert page.status == 200
    await client.post("/admin/logout", headers=headers, data={"csrf": csrf_of(await page.text())})
    assert (await client.get("/admin", headers=headers, allow_redirects=False)).status == 302


# --- the pages show what workers asked -------------------------------------------------------

async def test_questions_from_the_webhook_appear_escaped(client: TestClient,
                                                         config: Config) -> None:
    for text in ["文号是多少", "食堂今天中午吃什么", *XSS]:
        status, _ = await post(client, peer.text_xml(text), "aes")
        assert status == 200
    await settle(client)
    await login(client)
    html = await (await client.get("/admin")).text()
    assert "文号是多少" in html and "食堂今天中午吃什么" in html
    assert "oUse…XYZ" in html and "oUser1234567890abcdefXYZ" not in html  # masked openid
    for raw in XSS:
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img" not in html and "<script" not in html

    items = (await (await client.get("/admin/api/queries")).json())["items"]
    assert [i["question"] for i in items] == [*reversed(XSS), "食堂今天中午吃什么", "文号是多少"]
    answered = items[-1]
    assert answered["answered"] is True and answered["citation"] and answered["score"] > 0
    assert answered["time"].endswith("+08:00") and answered["latency_ms"] >= 0
    assert answered["user"] == "oUse…XYZ"

    detail = await client.get(f"/admin/queries/{items[0]['id']}")
    text = await detail.text()
    assert detail.status == 200 and "<img" not in text and "&lt;img src=x" in text
    assert "passive" in text and "检索结果（3）" in text
    one = await (await client.get(f"/admin/api/queries/{answered['id']}")).json()
    assert one["reply"] and len(one["hits"]) == 3 and one["delivery"] == "passive"
    assert all("score" in h and "citation" in h for h in one["hits"])
    assert (await client.get("/admin/queries/999999")).status == 404

    unanswered = await (await client.get("/admin/unanswered")).text()
    assert "食堂今天中午吃什么" in unanswered and "<script>" not in unanswered
    assert "文号是多少" not in unanswered


async def test_filters_dates_in_beijing_time_search_doc_and_pages(client: TestClient) -> None:
    log = querylog(client)
    base = datetime(2024, 5, 1, 15, 30, tzinfo=UTC)  # 23:30 in Beijing, still 1 May
    await log.add(record("五月一日的问题", base, answered=True))
    await log.add(record("五月二日的问题", base + timedelta(hours=1)))  # 00:30 on 2 May
    await log.add(record("100%_确定吗", base + timedelta(hours=2), answered=True,
                        doc="另一份通知", source="other.txt"))
    for i in range(55):
        await log.add(record(f"批量问题{i}", base + timedelta(days=3, minutes=i), answered=i % 2))
    await login(client)

    async def api(**params: str) -> dict:
        resp = await client.get("/admin/api/queries", params=params)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    may1 = await api(**{"from": "2024-05-01", "to": "2024-05-01"})
    assert [i["question"] for i in may1["items"]] == ["五月一日的问题"]
    may2 = await api(**{"from": "2024-05-02", "to": "2024-05-02"})
    assert {i["question"] for i in may2["items"]} == {"五月二日的问题", "100%_确定吗"}
    assert (await api(q="%"))["total"] == 1 and (await api(q="_"))["total"] == 1
    assert (await api(q="0%_"))["items"][0]["question"] == "100%_确定吗"
    assert (await api(q="批量"))["total"] == 55
    assert (await api(answered="false", q="五月"))["total"] == 1
    assert (await api(answered="true", q="批量"))["total"] == 27
    assert (await api(doc="other.txt"))["total"] == 1
    assert (await api(doc="另一份通知"))["total"] == 1
    assert (await api(doc=SOURCE))["total"] == 57
    assert (await api(q="'; DROP TABLE queries; --"))["total"] == 0
    first, second = await api(q="批量"), await api(q="批量", page="2")
    assert len(first["items"]) == 50 and len(second["items"]) == 5
    assert first["items"][0]["question"] == "批量问题54"  # newest first
    assert (await api(page="9"))["items"] == []
    for bad in ({"from": "yesterday"}, {"answered": "maybe"}, {"page": "0"}, {"page": "x"}):
        assert (await client.get("/admin/api/queries", params=bad)).status == 400

    html = await (await client.get("/admin", params={"q": "批量", "answered": "true"})).text()
    assert "第 1 / 1 页，共 27 条" in html
    html = await (await client.get("/admin", params={"q": "批量"})).text()
    assert "下一页" in html and "page=2" in html and "q=%E6%89%B9%E9%87%8F" in html
    assert f'<option value="{SOURCE}" >{TITLE}</option>' in html  # the document choices
    assert (await client.get("/admin?from=nonsense")).status == 400


async def test_csv_export_of_the_current_filter(client: TestClient) -> None:
    log = querylog(client)
    when = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
    await log.add(record("退休职工怎么办理会员证？", when, user="oSecretOpenid0000abc"))
    await log.add(record('=HYPERLINK("http://evil","点我")', when, answered=True))
    await log.add(record("已回答的问题", when, answered=True))
    await login(client)
    resp = await client.get("/admin/export.csv", params={"answered": "false"})
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    body = await resp.read()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:5] == ["id", "时间", "用户", "类型", "问题"]
    assert len(rows) == 2
    assert rows[1][1] == "2024-06-01 10:00:00" and rows[1][2] == "oSec…abc"
    assert rows[1][4] == "退休职工怎么办理会员证？" and rows[1][5] == "否"
    assert b"oSecretOpenid0000abc" not in body
    everything = await (await client.get("/admin/export.csv")).read()
    rows = list(csv.reader(io.StringIO(everything.decode("utf-8-sig"))))
    assert len(rows) == 4
    assert any(r[4] == "'=HYPERLINK(\"http://evil\",\"点我\")" for r in rows)  # not a formula


async def test_unanswered_groups_near_identical_questions_and_review(client: TestClient) -> None:
    log = querylog(client)
    now = datetime.now(UTC)
    for i, text in enumerate(["工会会费怎么交？", "工会会费怎么交吗", " 工会会费 怎么交 ",
                              "请问工会会费怎么交", "ＡＢＣ工会会费怎么交"]):
        await log.add(record(text, now - timedelta(minutes=10 - i), user=f"oUser{i % 2}xxxxxxx"))
    await log.add(record("食堂几点开饭", now - timedelta(minutes=1)))
    await log.add(record("2", now, latency=None, msg_type="followup"))  # not a topic
    await log.add(record("已回答", now, answered=True))
    await login(client)

    data = await (await client.get("/admin/api/unanswered")).json()
    groups = data["groups"]
    assert [(g["question"], g["count"], g["users"]) for g in groups] == [
        ("请问工会会费怎么交", 4, 2), ("食堂几点开饭", 1, 1), ("ＡＢＣ工会会费怎么交", 1, 1)]
    assert set(groups[0]["variants"]) == {"工会会费怎么交？", "工会会费怎么交吗",
                                          " 工会会费 怎么交 "}

    page = await client.get("/admin/unanswered")
    html = await page.text()
    assert "请问工会会费怎么交" in html and "≈ 工会会费怎么交吗" in html
    key = groups[0]["key"]
    assert (await client.post("/admin/unanswered/review", data={"key": key})).status == 403
    resp = await client.post("/admin/unanswered/review", allow_redirects=False, data={
        "key": key, "csrf": csrf_of(html), "next": "/admin/unanswered?show=open"})
    assert resp.status == 303 and resp.headers["Location"] == "/admin/unanswered?show=open"
    open_now = (await (await client.get("/admin/api/unanswered")).json())["groups"]
    assert [g["question"] for g in open_now] == ["食堂几点开饭", "ＡＢＣ工会会费怎么交"]
    reviewed = await (await client.get("/admin/unanswered?show=reviewed")).text()
    assert "请问工会会费怎么交" in reviewed and "重新打开" in reviewed

    await log.add(record("工会会费怎么交呢", datetime.now(UTC) + timedelta(seconds=1)))
    again = (await (await client.get("/admin/api/unanswered")).json())["groups"]
    assert again[0]["key"] == key and again[0]["new_since_review"] == 1
    assert "处理后又问了 1 次" in await (await client.get("/admin/unanswered")).text()

    resp = await client.post("/admin/unanswered/review", data={
        "key": "<script>", "csrf": csrf_of(html)})
    assert resp.status == 400


def test_question_key() -> None:
    assert question_key("工会会费怎么交？") == question_key("请问 工会会费，怎么交吗?")
    assert question_key("ＡＢＣ问题") == question_key("abc问题！")
    assert question_key("什么") == "什么"  # only sentence-final particles go
    assert question_key("？？") == "??"  # nothing but punctuation: kept, normalised
    assert len(group_id("x")) == 32


async def test_stats_page_and_api(client: TestClient) -> None:
    log = querylog(client)
    today = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)  # 09:00 BJT
    for i, latency in enumerate([10.0, 20.0, 30.0, 40.0]):
        await log.add(record(f"问题{i}", today - timedelta(days=1), answered=i < 3, latency=latency,
                            citation=f"《通知》{'一' if i < 2 else '二'}"))
    await log.add(record("很久以前", today - timedelta(days=400), answered=True))
    await login(client)
    stats = await (await client.get("/admin/api/stats")).json()
    assert stats["total"] == 4 and stats["answered"] == 3 and stats["answer_rate"] == 0.75
    assert len(stats["per_day"]) == 30 and sum(d["total"] for d in stats["per_day"]) == 4
    assert stats["hours"][9] == 4
    assert stats["top_documents"] == [{"doc": TITLE, "count": 3}]
    assert stats["top_sections"][0] == {"citation": "《通知》一", "count": 2}
    assert stats["latency_ms"] == {"p50": 20.0, "p95": 40.0, "count": 4}
    wide = await (await client.get("/admin/api/stats", params={"from": "2000-01-01"})).json()
    assert wide["total"] == 5 and len(wide["per_day"]) == 731
    html = await (await client.get("/admin/stats")).text()
    assert "<svg" in html and "75%" in html and "20 ms" in html and "《通知》一" in html
    assert percentile([], 0.5) is None and percentile([5.0], 0.95) == 5.0


# --- privacy -----------------------------------------------------------------------------------

async def test_openids_can_be_stored_as_salted_hashes(aiohttp_client, tmp_path: Path,  # noqa: ANN001
                                                      knowledge_dir: Path) -> None:
    cfg = make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT, admin={"token": TOKEN},
                      querylog={"hash_openids": True, "openid_salt": "pepper"})
    client = await aiohttp_client(create_app(cfg))
    await post(client, peer.text_xml("文号是多少", user="oRealOpenid123456"), "raw")
    await settle(client)
    conn = sqlite3.connect(cfg.querylog.path)
    [openid] = [r[0] for r in conn.execute("SELECT openid FROM queries")]
    assert openid == hash_openid("oRealOpenid123456", "pepper") and openid.startswith("h:")
    assert len(openid) == 26 and hash_openid("oRealOpenid123456", "salt") != openid
    assert b"oRealOpenid123456" not in cfg.querylog.path.read_bytes()
    await login(client)
    items = (await (await client.get("/admin/api/queries")).json())["items"]
    assert items[0]["user"] == openid[:4] + "…" + openid[-3:]


async def test_retention_deletes_old_rows(tmp_path: Path) -> None:
    log = SQLiteStore(tmp_path / "q.sqlite3")
    now = datetime(2024, 6, 30, tzinfo=UTC)
    log.add_sync(record("旧", now - timedelta(days=31)))
    log.add_sync(record("新", now - timedelta(days=29)))
    await log.set_reviewed("a" * 32, True)
    assert await admin_upkeep.purge_old_rows(log, 30, now) == 1
    conn = log.read()
    assert [r["question"] for r in conn.execute("SELECT question FROM queries")] == ["新"]
    assert conn.execute("SELECT count(*) FROM unanswered_reviews").fetchone()[0] == 1
    conn.close()
    log.close()


async def test_retention_task_runs_at_start_and_periodically(
        aiohttp_client, tmp_path: Path, knowledge_dir: Path,  # noqa: ANN001
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_upkeep, "RETENTION_INTERVAL", 0.05)
    old = datetime.now(UTC) - timedelta(days=8)
    path = tmp_path / "querylog.sqlite3"
    seed = SQLiteStore(path)
    seed.add_sync(record("开始前的旧问题", old))
    seed.close()
    cfg = make_config(tmp_path, knowledge_dir, "hashing", querylog={"retention_days": 7})
    app = create_app(cfg)
    client = await aiohttp_client(app)
    log = client.server.app[QUERYLOG]

    async def count() -> int:
        conn = log.read()
        try:
            return conn.execute("SELECT count(*) FROM queries").fetchone()[0]
        finally:
            conn.close()

    for _ in range(100):
        if await count() == 0:
            break
        await asyncio.sleep(0.02)
    assert await count() == 0  # deleted at start
    await log.add(record("运行中的旧问题", old))
    await log.add(record("新问题", datetime.now(UTC)))
    for _ in range(100):
        if await count() == 1:
            break
        await asyncio.sleep(0.02)
    assert await count() == 1  # and again on the next run


async def test_upkeep_needs_the_querylog_first() -> None:
    app = web.Application()
    with pytest.raises(RuntimeError, match="setup_admin"):
        await admin_upkeep.querylog_upkeep_ctx(app).__anext__()


# --- documents -------------------------------------------------------------------------------

async def test_documents_view_lists_files_errors_and_outline(client: TestClient,
                                                             config: Config) -> None:
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert (await client.get("/admin/api/documents")).status == 401
    docs = (await (await client.get("/admin/api/documents", headers=ok)).json())["documents"]
    [seed] = docs
    assert seed["file"] == SOURCE and seed["doc_no"] == "云工通〔2023〕7号"
    assert seed["passages"] == 16 and seed["error"] == ""
    outline = await (await client.get(f"/admin/api/documents/{SOURCE}", headers=ok)).json()
    assert outline["title"] == TITLE and outline["date"] == "2023年5月1日"
    assert [p["section"] for p in outline["passages"]][2:5] == ["一（一）", "一（二）", "一（三）"]
    assert (await client.get("/admin/api/documents/..%2Fconfig.toml", headers=ok)).status == 404
    await login(client)
    html = await (await client.get("/admin/documents")).text()
    assert TITLE in html and "云工通〔2023〕7号" in html
    html = await (await client.get(f"/admin/documents/{SOURCE}")).text()
    assert "第二部分（四）" in html and "切实履行维权服务基本职责" in html
