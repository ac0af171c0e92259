"""Reply text: original wording, citation kept, WeChat's 2048-byte limit respected."""

from __future__ import annotations

from bot.ingest.passages import Passage
from bot.search.answer import NOT_FOUND, fit_text, render_answer, render_passage
from bot.search.retrieve import Hit, Result


def passage(text: str, section: tuple[str, ...] = ("二", "（四）")) -> Passage:
    return Passage("id", "f.txt", "某某通知", "某工〔2024〕1号", section, ("标题",), "section",
                   text, text, "h")


def test_answer_is_text_then_citation() -> None:
    p = passage("（四）切实履行维权服务基本职责。要保障职工权益。")
    result = Result("q", [Hit(p, 0.9, 0.9, 0.9)], True)
    reply = render_answer(result, 0.5)
    assert reply.startswith(p.text)
    assert reply.endswith("——《某某通知》（某工〔2024〕1号）第二部分（四）")


def test_related_clauses_offered_when_good_enough() -> None:
    a, b, c = passage("甲。"), passage("乙。", ("三",)), passage("丙。", ("一",))
    result = Result("q", [Hit(a, 0.9, 0, 0), Hit(b, 0.6, 0, 0), Hit(c, 0.1, 0, 0)], True)
    reply = render_answer(result, 0.5)
    assert "1. 《某某通知》（某工〔2024〕1号）第三部分" in reply and "第一部分" not in reply
    assert reply.endswith("回复 1 查看相关条款")


def test_not_found() -> None:
    assert render_answer(Result("q", [], False), 0.5) == NOT_FOUND


def test_long_passage_cut_at_sentence_end_within_limit() -> None:
    text = "要坚持以职工为中心的工作导向，切实加大对重点群体的权益维护和服务。" * 40
    reply = render_passage(passage(text))
    assert len(reply.encode("utf-8")) <= 2048
    body, citation = reply.split("\n\n——")
    assert body.endswith("。……") and citation.endswith("第二部分（四）")


def test_never_cut_mid_character() -> None:
    text = "长" * 3000
    cut = fit_text(text, 100)
    assert len(cut.encode("utf-8")) <= 100 and cut.endswith("……")
    cut.encode("utf-8").decode("utf-8")
