"""When unsure, the bot lists candidates; the worker's choice gets the original text and is
logged against the question as a label for staff."""

from __future__ import annotations

import json
from pathlib import Path

from bot.app import create_app
from bot.ingest.passages import Passage
from bot.search.answer import CANDIDATES_HEAD, render_answer
from bot.search.retrieve import Hit, Result
from tests import wechat_peer as peer
from tests.conftest import make_config
from tests.test_webhook import WECHAT, post, rows


def article(number: str, text: str) -> Passage:
    return Passage(number, "l.md", "中华人民共和国劳动合同法", "", ("第四章", number),
                   ("劳动合同的解除和终止", ""), "section", f"{number} {text}", text, number)


def test_candidates_reply_lists_citation_and_first_words() -> None:
    hits = [Hit(article("第四十条", "有下列情形之一的，用人单位提前三十日以书面形式通知劳动者本人"
                        "或者额外支付劳动者一个月工资后，可以解除劳动合同"), 0.62, 0.9, 0.5),
            Hit(article("第四十一条", "需要裁减人员二十人以上的"), 0.61, 0.9, 0.5),
            Hit(article("第四十六条", "有下列情形之一的，用人单位应当向劳动者支付经济补偿"), 0.60,
                0.9, 0.5)]
    reply = render_answer(Result("公司辞退我", hits, True, unsure=True), 0.45, min_score=0.4)
    lines = reply.splitlines()
    assert lines[0] == CANDIDATES_HEAD
    assert lines[1] == "1. 《中华人民共和国劳动合同法》第四十条"
    assert lines[2].startswith("有下列情形之一的，用人单位提前三十日") and lines[2].endswith("……")
    assert lines[3] == "2. 《中华人民共和国劳动合同法》第四十一条"
    assert lines[-1] == "回复 1、2、3 查看原文。"
    sure = render_answer(Result("公司辞退我", hits, True, unsure=False), 0.45, min_score=0.4)
    assert sure.startswith("第四十条 有下列情形之一的")  # the original text, not a list


def test_a_notice_item_shows_the_titles_above_it() -> None:
    def item(number: str, title: str, text: str) -> Passage:
        return Passage(number, "n.txt", "关于开展职工疗休养活动的通知", "滇工发〔2024〕12号",
                       ("三", number), ("报名方式", title), "section", text, text, number)
    hits = [Hit(item("（二）", "填写报名表", "（二）填写报名表。被推荐职工须如实填写报名表"), 0.62,
                0.9, 0.5),
            Hit(item("（一）", "基层工会推荐", "（一）基层工会推荐。报名采取个人申请的方式"), 0.61,
                0.9, 0.5)]
    lines = render_answer(Result("怎么报名", hits, True, unsure=True), 0.45,
                          min_score=0.4).splitlines()
    assert lines[1] == ("1. 《关于开展职工疗休养活动的通知》（滇工发〔2024〕12号）第三部分（二）"
                        "（报名方式／填写报名表）")
    assert lines[3].endswith("第三部分（一）（报名方式／基层工会推荐）")


def test_not_found_names_the_law_it_belongs_to() -> None:
    reply = render_answer(Result("商标被抢注", [], False, elsewhere="中华人民共和国商标法"), 0.45)
    assert reply.startswith("您的问题可能涉及《中华人民共和国商标法》，不在工会收录的文件范围内。")


async def test_choice_gets_the_text_and_is_logged(aiohttp_client, tmp_path: Path,  # noqa: ANN001
                                                  knowledge_dir: Path) -> None:
    # Every answer counts as unsure here, whatever the embedder scores.
    cfg = make_config(tmp_path, knowledge_dir, "hashing", wechat=WECHAT,
                      retrieval={"min_score": 0.0, "min_keyword": 0.0, "unsure_margin": 1.0})
    client = await aiohttp_client(create_app(cfg))
    question = "工会要怎么加强党建"
    _, first = await post(client, peer.text_xml(question))
    lines = first["Content"].splitlines()
    assert lines[0] == CANDIDATES_HEAD and lines[-1] == "回复 1、2、3 查看原文。"
    second = next(line[3:] for line in lines if line.startswith("2. "))
    _, chosen = await post(client, peer.text_xml("2"))
    cited = chosen["Content"].rsplit("\n\n——", 1)[1]
    assert second.startswith(cited)  # the second candidate's original text and citation
    logged = await rows(client, cfg)
    assert [r["msg_type"] for r in logged] == ["text", "choice"]
    choice = logged[1]
    assert choice["question"] == question and choice["answered"] == 1
    assert json.loads(choice["hits"])[0]["chosen"] == 2
