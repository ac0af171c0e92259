"""Ranking with the documents' structure and the off-topic gate, with the real model."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from bot.config import SHIPPED_REFERENCE
from bot.search.index import open_or_build
from bot.search.reference import open_reference
from bot.search.retrieve import Retriever
from tests.conftest import KNOWLEDGE, ROOT, make_config

NOTICES = ROOT / "bench" / "notices"
LABOUR_LAW = next(SHIPPED_REFERENCE.glob("劳动合同法(*.md"))
TRADEMARK_LAW = next(SHIPPED_REFERENCE.glob("*商标法*.md"))
INSURANCE_LAW = next(SHIPPED_REFERENCE.glob("more/保险法(*.md"))


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small reference: two laws (the shipped 28 take a minute to index)."""
    folder = tmp_path_factory.mktemp("reference")
    for law in (LABOUR_LAW, TRADEMARK_LAW):
        shutil.copy(law, folder)
    return folder


def retriever_for(folder: Path, work: Path, model_path: str, embedder,  # noqa: ANN001
                  reference: Path | None = None) -> Retriever:
    cfg = make_config(work, folder, model_path)
    cfg = dataclasses.replace(cfg, retrieval=dataclasses.replace(cfg.retrieval,
                                                                 reference=reference))
    index, _ = open_or_build(cfg.knowledge.dir, cfg.index.dir, embedder)
    return Retriever(index, embedder, cfg.retrieval, open_reference(cfg, embedder))


@pytest.fixture(scope="module")
def notices(tmp_path_factory: pytest.TempPathFactory, model_path: str,
            real_embedder, reference_dir: Path) -> Retriever:  # noqa: ANN001
    """The seed notice and two notices with overlapping topics, and a reference."""
    work = tmp_path_factory.mktemp("notices")
    shutil.copytree(KNOWLEDGE, work / "knowledge")
    for notice in NOTICES.glob("*.txt"):
        shutil.copy(notice, work / "knowledge")
    return retriever_for(work / "knowledge", work, model_path, real_embedder, reference_dir)


def test_topic_matches_the_document_intent_matches_the_section(notices: Retriever) -> None:
    # 职工疗休养活动 is all over the notice (its opening most of all); 报名 only in 三、报名方式.
    # Its items are embedded with the notice's topic, so the intent decides: the bot is sure.
    result = notices.search("职工疗休养活动怎么报名")
    assert result.answered and not result.unsure and result.best is not None
    best = result.best.passage
    assert "疗休养" in best.doc_title and best.section == "三（一）", best.citation
    assert best.section_titles[0] == "报名方式"
    assert "个人申请、基层工会推荐" in best.text


def test_seed_answers_stay_with_overlapping_notices(notices: Retriever) -> None:
    result = notices.search("我是送外卖的，工会能帮我维权吗？")
    assert result.answered and result.best is not None
    assert "新就业形态劳动者" in result.best.passage.text


def test_question_about_a_reference_law_is_refused(notices: Retriever) -> None:
    question = "别人抢先注册了我们公司的商标，我们该怎么办？"
    assert not notices.search(question).answered
    # With no floor at all, the reference laws alone still refuse it, naming the law...
    bare = dataclasses.replace(notices.cfg, min_score=0.0, min_keyword=0.0)
    gated = Retriever(notices.index, notices.embedder, bare, notices.reference)
    result = gated.search(question)
    assert not result.answered and result.elsewhere == "中华人民共和国商标法"
    # ...which without them a notice passage would have answered.
    assert Retriever(notices.index, notices.embedder, bare).search(question).answered


def test_an_insurance_question_is_refused_over_a_labour_folder(tmp_path: Path, model_path: str,
                                                               real_embedder) -> None:  # noqa: ANN001
    """The laws under more/ (scripts/reference_laws.py) name where a question belongs; a
    worker's question about the folder's own law is still answered."""
    folder, reference = tmp_path / "knowledge", tmp_path / "reference"
    folder.mkdir()
    reference.mkdir()
    shutil.copy(LABOUR_LAW, folder)
    shutil.copy(INSURANCE_LAW, reference)
    retriever = retriever_for(folder, tmp_path, model_path, real_embedder, reference)
    question = "保险合同签了以后保险公司能随便解除合同吗"
    result = retriever.search(question)
    assert not result.answered and result.elsewhere == "中华人民共和国保险法"
    bare = retriever_for(folder, tmp_path / "bare", model_path, real_embedder)
    assert bare.search(question).answered  # without it: a confident labour article
    held = retriever.search("公司辞退我要给多少经济补偿")
    assert held.answered and held.best is not None
    assert held.best.passage.doc_title == "中华人民共和国劳动合同法"


def test_a_law_is_named_only_when_its_articles_agree(tmp_path: Path, model_path: str,
                                                     real_embedder) -> None:  # noqa: ANN001
    """One stray article of another law at the top of the reference still refuses the
    question, but the reply does not name a law its other articles do not back."""
    folder, reference = tmp_path / "knowledge", tmp_path / "reference"
    folder.mkdir()
    reference.mkdir()
    shutil.copy(LABOUR_LAW, folder)
    shutil.copy(INSURANCE_LAW, reference)
    (reference / "stray.md").write_text(
        "# 中华人民共和国示例管理法\n\n## 第一章 总则\n\n"
        "第一条 保险合同订立后，保险公司不得随便解除合同。\n\n"
        "第二条 本法自公布之日起施行。\n", encoding="utf-8")
    retriever = retriever_for(folder, tmp_path, model_path, real_embedder, reference)
    question = "保险合同签了以后保险公司能随便解除合同吗"
    assert retriever.reference is not None and retriever.outside is not None
    result = retriever.search(question)
    assert not result.answered and result.elsewhere == ""  # 示例管理法 stands alone at the top
    (reference / "stray.md").unlink()
    named = retriever_for(folder, tmp_path / "named", model_path, real_embedder, reference)
    assert named.search(question).elsewhere == "中华人民共和国保险法"


def test_reference_laws_the_folder_holds_are_answered(tmp_path: Path, model_path: str,
                                                      real_embedder,  # noqa: ANN001
                                                      reference_dir: Path) -> None:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    shutil.copy(LABOUR_LAW, folder)
    retriever = retriever_for(folder, tmp_path, model_path, real_embedder, reference_dir)
    held = retriever.search("劳动者提前多少天书面通知用人单位可以解除劳动合同？")
    assert held.answered and held.best is not None
    assert held.best.passage.citation == "《中华人民共和国劳动合同法》第三十七条"
    assert not retriever.search("别人抢先注册了我们公司的商标，我们该怎么办？").answered


async def test_notice_dropped_into_a_running_bot_is_answered(
        aiohttp_client, tmp_path: Path, knowledge_dir: Path, model_path: str) -> None:  # noqa: ANN001
    """Staff copy the 疗休养 notice in; within seconds its 三、报名方式 answers the question."""
    from bot.app import create_app
    from tests import wechat_peer as peer
    from tests.test_watch import eventually
    from tests.test_webhook import WECHAT, post

    cfg = make_config(tmp_path, knowledge_dir, model_path, wechat=WECHAT,
                      knowledge={"settle_seconds": 0.3})
    client = await aiohttp_client(create_app(cfg))
    status, before = await post(client, peer.text_xml("职工疗休养活动怎么报名"), "aes")
    assert status == 200 and "疗休养" not in before["Content"].rsplit("——", 1)[-1]
    notice = next(NOTICES.glob("*疗休养*.txt"))
    shutil.copy(notice, knowledge_dir / notice.name)
    reply = await eventually(client, "职工疗休养活动怎么报名", "第三部分")
    assert "关于开展2024年度职工疗休养活动的通知" in reply


def test_meaning_without_shared_words_is_answered(tmp_path: Path, model_path: str,
                                                  real_embedder) -> None:  # noqa: ANN001
    """年假 is everyday speech for the law's 年休假: the question shares almost no keyword with
    第三条 (its unknown words count against the share), yet its meaning matches closely."""
    folder = tmp_path / "knowledge"
    folder.mkdir()
    shutil.copy(next(SHIPPED_REFERENCE.glob("职工带薪年休假条例*.md")), folder)
    retriever = retriever_for(folder, tmp_path, model_path, real_embedder)
    question = "工作满十年一年能休几天年假"
    result = retriever.search(question)
    assert result.answered and result.best is not None
    assert result.best.passage.citation == "《职工带薪年休假条例》第三条"
    assert result.best.keyword < retriever.cfg.min_keyword <= retriever.cfg.sure_cosine
    # Without the cosine rule the keyword floor would refuse it...
    strict = dataclasses.replace(retriever.cfg, sure_cosine=1.01)
    assert not Retriever(retriever.index, retriever.embedder, strict).search(question).answered
    # ...while an off-topic question stays refused with it.
    assert not retriever.search("邻居家漏水淹了我家怎么办").answered


def test_closer_than_every_other_law_is_answered(tmp_path: Path, model_path: str,
                                                  real_embedder) -> None:  # noqa: ANN001
    """去公司的路上出车祸算工伤吗 shares almost no word with 工伤保险条例第十四条
    (上下班途中…交通事故; the synonyms table knows 上班路上, not this wording), so the keyword
    floor alone refuses it; with reference laws to compare against, the folder wins."""
    folder = tmp_path / "knowledge"
    folder.mkdir()
    shutil.copy(next(SHIPPED_REFERENCE.glob("工伤保险条例*.md")), folder)
    reference = tmp_path / "reference"
    reference.mkdir()
    for law in (TRADEMARK_LAW, INSURANCE_LAW, next(SHIPPED_REFERENCE.glob("more/道路交通安全法*"))):
        shutil.copy(law, reference)
    question = "去公司的路上出车祸算工伤吗"
    alone = retriever_for(folder, tmp_path / "alone", model_path, real_embedder)
    refused = alone.search(question)
    assert not refused.answered and refused.best is not None
    assert refused.best.keyword < alone.cfg.min_keyword
    assert alone.cfg.reference_cosine <= refused.best.dense < alone.cfg.sure_cosine
    compared = retriever_for(folder, tmp_path / "compared", model_path, real_embedder, reference)
    result = compared.search(question)
    assert result.answered and result.best is not None
    assert result.best.passage.citation == "《工伤保险条例》第十四条"
    # A traffic question the folder only brushes against stays refused, naming the law.
    other = compared.search("开车撞了行人要负什么责任")
    assert not other.answered and "道路交通安全法" in other.elsewhere


def test_a_law_is_named_only_when_it_matches_as_well_as_an_answer(
        tmp_path: Path, model_path: str, real_embedder) -> None:  # noqa: ANN001
    """Weather or "who are you" is refused without naming 民法典: its best article scores
    below the floor an answer needs; a civil question still names it."""
    reference = tmp_path / "reference"
    reference.mkdir()
    for part in ("民法典-总则.md", "民法典-合同编.md"):
        shutil.copy(SHIPPED_REFERENCE / part, reference)
    shutil.copytree(KNOWLEDGE, tmp_path / "knowledge")
    retriever = retriever_for(tmp_path / "knowledge", tmp_path, model_path, real_embedder,
                              reference)
    for question in ("明天会下雨吗", "你是谁"):
        result = retriever.search(question)
        assert not result.answered and result.elsewhere == "", question
    civil = retriever.search("借钱不还怎么办")
    assert not civil.answered and civil.elsewhere == "中华人民共和国民法典"
