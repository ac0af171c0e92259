"""A question that cites an article by number gets that article (bot.search.cited)."""

from __future__ import annotations

import copy
import shutil

import pytest

from bot.config import SHIPPED_REFERENCE
from bot.ingest.knowledge import read_notice
from bot.ingest.passages import notice_passages
from bot.search.cited import Articles, article_number
from bot.search.retrieve import Retriever
from tests.test_structure import retriever_for

LAWS = [next(SHIPPED_REFERENCE.glob(f"{name}(*.md"))
        for name in ("劳动合同法", "劳动合同法实施条例", "工伤保险条例")]


@pytest.mark.parametrize(("numeral", "number"), [
    ("十", 10), ("十四", 14), ("四十", 40), ("一百零八", 108), ("一百一十", 110),
    ("一千零四十三", 1043), ("两百", 200), ("47", 47), ("第", None),
])
def test_article_numbers(numeral: str, number: int | None) -> None:
    assert article_number(numeral) == number


@pytest.fixture(scope="module")
def articles() -> Articles:
    passages = [p for law in LAWS for p in notice_passages(read_notice(law, law.parent))]
    return Articles(passages)


def cited(articles: Articles, question: str) -> set[str]:
    return {articles.passages[i].citation for i in articles.cited(question)}


def test_the_named_law_and_number(articles: Articles) -> None:
    fortieth = {"《中华人民共和国劳动合同法》第四十条"}
    assert cited(articles, "劳动合同法第四十条是什么") == fortieth
    assert cited(articles, "《劳动合同法》第40条怎么规定的") == fortieth
    # The longest name the question holds: the regulation, not the law it implements.
    assert cited(articles, "劳动合同法实施条例第十条") == {
        "《中华人民共和国劳动合同法实施条例》第十条"}
    # Two laws named: the one right before the number.
    assert cited(articles, "劳动合同法和工伤保险条例第十条") == {"《工伤保险条例》第十条"}


def test_a_short_name_of_the_law(articles: Articles) -> None:
    assert cited(articles, "工伤条例第十四条怎么说") == {"《工伤保险条例》第十四条"}
    assert cited(articles, "劳动合同实施条例第十条") == {
        "《中华人民共和国劳动合同法实施条例》第十条"}
    # Voice recognition's homophones: one character off.
    assert cited(articles, "劳动和同法第四十条") == {"《中华人民共和国劳动合同法》第四十条"}


def test_no_law_named_gives_every_law_with_that_number(articles: Articles) -> None:
    assert cited(articles, "第十条讲的什么") == {
        "《中华人民共和国劳动合同法》第十条", "《中华人民共和国劳动合同法实施条例》第十条",
        "《工伤保险条例》第十条"}


def test_a_law_the_folder_does_not_hold_or_no_such_article(articles: Articles) -> None:
    assert cited(articles, "公司法第四十条是什么") == set()
    assert cited(articles, "劳动合同法第五百条") == set()
    assert cited(articles, "公司辞退我要给多少补偿") == set()
    # A long text that cites an article in passing is not a request for it.
    assert cited(articles, "根据劳动合同法第四十条的规定" + "，公司" * 20) == set()


@pytest.fixture(scope="module")
def labour(tmp_path_factory: pytest.TempPathFactory, model_path: str,
           real_embedder) -> Retriever:  # noqa: ANN001
    work = tmp_path_factory.mktemp("cited")
    (work / "knowledge").mkdir()
    for law in LAWS:
        shutil.copy(law, work / "knowledge")
    return retriever_for(work / "knowledge", work, model_path, real_embedder)


def test_the_cited_article_is_the_answer(labour: Retriever) -> None:
    # 第十四条 cites "本法第三十九条和第四十条", and the scores put it first without the lookup.
    result = labour.search("劳动合同法第四十条是什么")
    assert result.answered and not result.unsure and result.best is not None
    assert result.best.passage.citation == "《中华人民共和国劳动合同法》第四十条"
    result = labour.search("工伤保险条例第十四条")
    assert result.best is not None and result.best.passage.citation == "《工伤保险条例》第十四条"


def test_which_law_is_asked_when_none_is_named(labour: Retriever) -> None:
    result = labour.search("第十条讲的什么")
    assert result.answered and result.unsure
    assert all(h.passage.citation.endswith("第十条") for h in result.hits[:3])


def without_lookup(retriever: Retriever) -> Retriever:
    plain = copy.copy(retriever)
    plain.articles = Articles([])
    return plain


def test_the_scores_alone_miss_it(labour: Retriever) -> None:
    """What the lookup is for: ranked by the scores, these come second or later."""
    for question, article in (("劳动合同法第四十条是什么", "第四十条"),
                              ("工伤保险条例第十四条", "第十四条")):
        best = without_lookup(labour).search(question).best
        assert best is not None and not best.passage.citation.endswith(article)


def test_an_ordinary_question_is_untouched(labour: Retriever) -> None:
    question = "公司辞退我要给多少补偿"
    ranked = [h.passage.id for h in labour.search(question).hits]
    assert ranked == [h.passage.id for h in without_lookup(labour).search(question).hits]
