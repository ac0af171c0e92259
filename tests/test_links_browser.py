"""Linking by hand in the admin page, in headless Chromium (Debian's) driven by Playwright:
open a wrongly answered query, search the passages, pick one, see it saved and listed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import create_app
from bot.keys import ENGINE
from tests.conftest import make_config
from tests.test_admin_browser import CHROMIUM, FLAGS, BackgroundServer, ask
from tests.test_webhook import WECHAT

TOKEN = "links-browser-token"
QUESTIONS = ["食堂今天中午吃什么", '"><img src=x onerror=alert(1)>大赛叫啥']

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium (scripts/install.sh installs it)")


@pytest.fixture
def server(tmp_path: Path, knowledge_dir: Path) -> Iterator[BackgroundServer]:
    cfg = make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT, admin={"token": TOKEN})
    with BackgroundServer(create_app(cfg)) as running:
        for i, text in enumerate(QUESTIONS):
            ask(running.url, text, f"oWorker{i:02d}abcdefghijklmn")
        running.settle()
        yield running


def test_link_a_query_to_a_passage_by_hand(server: BackgroundServer, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    engine = server.app[ENGINE]
    contest = next(p for p in engine.index.passages if "匠心创造 技能兴滇" in p.text)
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="zh-CN")
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{server.url}/admin/login")
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url(f"{server.url}/admin")

            for question in QUESTIONS:
                page.goto(f"{server.url}/admin")
                page.locator("td.q a", has_text=question).first.click()
                page.wait_for_url("**/admin/queries/*")
                page.click("text=关联到正确原文")
                page.wait_for_url("**/admin/links?query_id=*")
                assert page.input_value("input[name=question]") == question
                page.fill("input[name=q]", "职工技术技能大赛 匠心创造 技能兴滇")
                page.click("#search button[type=submit]")
                page.wait_for_selector("#hits")
                first = page.locator("#hits tbody tr").first
                assert contest.citation in first.inner_text()
                first.locator("button", has_text="选这段").click()
                page.wait_for_url("**/admin/links?saved=*")
                assert "已保存关联" in page.inner_text("#saved")
                listed = page.locator("#links tbody tr", has_text=question)
                assert listed.count() == 1 and contest.citation in listed.inner_text()
                assert "有效" in listed.inner_text()
            page.screenshot(path=tmp_path / "links.png", full_page=True)
            assert page.locator("main img").count() == 0 and dialogs == []
            assert page.locator("#audit tbody tr").count() == 2
            assert "admin page session" in page.inner_text("#audit")

            # Served at once: the worker's question now gets the linked passage.
            result = engine.search(QUESTIONS[0])
            assert result.answered and result.hits[0].passage.id == contest.id
        finally:
            browser.close()


def test_link_by_browsing_a_documents_outline(server: BackgroundServer) -> None:
    """The picker's other way in: list the documents, open one, see its passages in order
    (citation and first words), pick one: saved and listed."""
    from playwright.sync_api import sync_playwright

    engine = server.app[ENGINE]
    contest = next(p for p in engine.index.passages if "匠心创造 技能兴滇" in p.text)
    in_order = [p for p in engine.index.passages if p.source == contest.source]
    title = engine.index.files[contest.source].title
    question = "今年技能大赛的主题是什么"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="zh-CN")
            page.goto(f"{server.url}/admin/login")
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url(f"{server.url}/admin")
            page.goto(f"{server.url}/admin/links")
            page.fill("input[name=question]", question)
            page.click("#search button[type=submit]")  # the question now rides along
            page.locator("#docs a", has_text=title).click()
            page.wait_for_selector("#outline")
            assert page.inner_text("#doc-title") == title
            rows = page.locator("#outline tbody tr")
            assert rows.count() == len(in_order)
            for i, passage in enumerate(in_order):  # the document's passages, in order
                text = rows.nth(i).inner_text()
                assert passage.citation in text
                assert " ".join(passage.text.split())[:20] in text
            row = rows.nth(in_order.index(contest))
            row.locator("button", has_text="选这段").click()
            page.wait_for_url("**/admin/links?saved=*")
            listed = page.locator("#links tbody tr", has_text=question)
            assert listed.count() == 1 and contest.citation in listed.inner_text()
            assert "有效" in listed.inner_text()
            assert page.locator("#audit tbody tr", has_text=question).count() == 1
        finally:
            browser.close()
    [link] = engine.links.links
    assert (link.question, link.passage_id) == (question, contest.id)
