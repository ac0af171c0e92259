"""The admin pages in a real browser: headless Chromium (Debian's) driven by Playwright.

The app runs for real in a background thread with its own event loop (Playwright's sync API
wants none running); questions arrive through the signed webhook, as from WeChat.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import create_app
from bot.config import Config
from bot.wechat.views import drain
from tests import wechat_peer as peer
from tests.conftest import make_config
from tests.test_webhook import WECHAT

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "browser-test-token"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
QUESTIONS = ["文号是多少", "新就业形态劳动者权益维护", "食堂今天中午吃什么", "食堂今天中午吃什么？",
             "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium (scripts/install.sh installs it)")


class BackgroundServer:
    """The aiohttp app on 127.0.0.1:<free port>, served from a thread of its own."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        self.url = ""
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=120)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def settle(self) -> None:
        """Wait for the query-log writes the webhook started beside its replies."""
        asyncio.run_coroutine_threadsafe(drain(self.app), self.loop).result(timeout=60)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def ask(base: str, text: str, user: str) -> None:
    """A worker's question, signed and encrypted the way WeChat sends it."""
    query, body = peer.envelope(peer.text_xml(text, user=user), "aes")
    request = urllib.request.Request(f"{base}/wechat?{urllib.parse.urlencode(query)}",
                                     data=body.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200


@pytest.fixture
def server(tmp_path: Path, knowledge_dir: Path) -> Iterator[BackgroundServer]:
    cfg: Config = make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT,
                              admin={"token": TOKEN})
    with BackgroundServer(create_app(cfg)) as running:
        for i, text in enumerate(QUESTIONS):
            ask(running.url, text, f"oWorker{i:02d}abcdefghijklmn")
        running.settle()
        yield running


def test_login_filter_unanswered_open_detail_screenshot(server: BackgroundServer,
                                                        tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="zh-CN")
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{server.url}/admin")
            assert "/admin/login" in page.url
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url(f"{server.url}/admin")
            body = page.inner_text("table")
            for question in QUESTIONS:
                assert question in body  # shown as text, scripts and all
            assert page.locator("table img").count() == 0

            page.select_option("select[name=answered]", "false")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**/admin?*answered=false*")
            rows = page.locator("tbody tr")
            assert rows.count() == 4
            assert "文号是多少" not in page.inner_text("table")
            page.screenshot(path=tmp_path / "unanswered-queries.png", full_page=True)

            page.click("text=未回答")
            page.wait_for_url("**/admin/unanswered")
            groups = page.locator("tbody tr")
            assert groups.count() == 3  # the two canteen questions are one group
            assert groups.first.locator("td.num").first.inner_text() == "2"

            page.goto(f"{server.url}/admin?answered=false")
            page.locator("td.q a").first.click()
            page.wait_for_url("**/admin/queries/*")
            assert page.inner_text("dd.question") == QUESTIONS[-1]
            assert "检索结果" in page.inner_text("main")
            shot = tmp_path / "detail.png"
            page.screenshot(path=shot, full_page=True)

            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.context.add_cookies(page.context.cookies())
            phone.goto(f"{server.url}/admin")
            phone.screenshot(path=tmp_path / "queries-phone.png", full_page=True)
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways
            phone.goto(f"{server.url}/admin/unanswered")
            phone.screenshot(path=tmp_path / "unanswered-phone.png", full_page=True)
            phone.goto(f"{server.url}/admin/stats")
            assert phone.locator("svg").count() == 2
            phone.screenshot(path=tmp_path / "stats-phone.png", full_page=True)
        finally:
            browser.close()
    assert dialogs == []  # no alert() ever ran
    for name in ("detail.png", "unanswered-queries.png", "queries-phone.png",
                 "unanswered-phone.png", "stats-phone.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
