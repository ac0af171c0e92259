"""The synonyms table: everyday words -> the documents' terms, for both signals."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from bot.config import SHIPPED_REFERENCE, SHIPPED_SYNONYMS
from bot.search.retrieve import Retriever
from bot.search.synonyms import Synonyms
from tests.test_structure import retriever_for


def test_a_table_appends_the_official_term_once_longest_word_first(tmp_path: Path) -> None:
    table = tmp_path / "synonyms.txt"
    table.write_text("# a comment: 不算\n新就业形态劳动者: 外卖, 外卖小哥\n\n没有冒号的行\n"
                     "解除劳动合同: 开除, 辞退\n", encoding="utf-8")
    synonyms = Synonyms.load(table)
    assert synonyms.expand("外卖小哥怎么入会") == "外卖小哥怎么入会（新就业形态劳动者）"
    assert synonyms.expand("被开除还是被辞退") == "被开除还是被辞退（解除劳动合同）"
    named = "解除劳动合同算开除吗"  # the official term is there already
    assert synonyms.expand(named) == named
    assert synonyms.expand("年假有几天") == "年假有几天"
    assert synonyms.expand("不算") == "不算"  # comments are not read


def test_the_shipped_table_carries_the_commonest_labour_words() -> None:
    synonyms = Synonyms.load(SHIPPED_SYNONYMS)
    assert "解除劳动合同" in synonyms.expand("员工旷工公司能直接开除吗")
    assert "延长工作时间的工资报酬" in synonyms.expand("周末加班费怎么算")
    assert "孕期、产期、哺乳期" in synonyms.expand("三期女职工能辞退吗")
    assert "新就业形态劳动者" in synonyms.expand("送外卖的能入会吗")


def test_an_everyday_dismissal_question_meets_the_labour_contract_law(
        tmp_path: Path, model_path: str, real_embedder) -> None:  # noqa: ANN001
    """开除 is the officials' 开除处分 in 职业病防治法's penalties; to a worker it is 解除劳动合同.
    Without the table the penalties' articles come first; with it, 劳动合同法's."""
    folder = tmp_path / "knowledge"
    folder.mkdir()
    for pattern in ("劳动合同法(*.md", "职业病防治法(*.md"):
        shutil.copy(next(SHIPPED_REFERENCE.glob(pattern)), folder)
    shipped = retriever_for(folder, tmp_path / "work", model_path, real_embedder)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    bare = Retriever(shipped.index, real_embedder,
                     dataclasses.replace(shipped.cfg, synonyms=empty))
    question = "员工旷工公司能直接开除吗"
    without = bare.search(question).best
    assert without is not None and without.passage.doc_title == "中华人民共和国职业病防治法"
    found = shipped.search(question)
    assert found.answered and found.best is not None
    assert found.best.passage.doc_title == "中华人民共和国劳动合同法"
