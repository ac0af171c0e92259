"""Parsing the seed notice: structure, metadata, and original wording preserved."""

from __future__ import annotations

import re

from bot.ingest.parse import clean_lines, join_paragraphs, parse_text
from bot.ingest.passages import document_topic, notice_passages


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_metadata(seed_text: str) -> None:
    notice = parse_text(seed_text, "seed.txt")
    assert notice.title == "云南省总工会关于学习宣传贯彻习近平总书记重要指示精神的通知"
    assert notice.doc_no == "云工通〔2023〕7号"
    assert notice.issuer == "云南省总工会"
    assert notice.date == "2023年5月1日"
    assert notice.addressees.startswith("各州（市）总工会")
    assert notice.addressees.endswith("直属事业单位")
    assert notice.warnings == []


def test_sections(seed_text: str) -> None:
    passages = notice_passages(parse_text(seed_text, "seed.txt"))
    sections = [(p.kind, p.section) for p in passages]
    assert sections == [
        ("meta", ""), ("opening", ""),
        ("section", "一（一）"), ("section", "一（二）"), ("section", "一（三）"),
        ("closing", "一"),
        ("section", "二（一）"), ("section", "二（二）"), ("section", "二（三）"),
        ("section", "二（四）"), ("section", "二（五）"),
        ("section", "三（一）"), ("section", "三（二）"), ("section", "三（三）"),
        ("section", "三（四）"), ("ending", ""),
    ]
    by_section = {p.section: p for p in passages if p.kind == "section"}
    assert by_section["一（一）"].section_title == "深刻领会习近平总书记一如既往的人民情怀"
    assert by_section["三（二）"].section_titles[0].startswith("加强组织领导、注重工作实效")
    first = by_section["一（一）"].text
    assert first.startswith("（一）深刻领会习近平总书记一如既往的人民情怀。党的")
    closing = next(p for p in passages if p.kind == "closing")
    assert closing.text.startswith("各级工会组织要把学习宣传贯彻")
    assert passages[-1].text.endswith("请及时报告省总工会。")


def test_wording_preserved_and_no_page_markers(seed_text: str) -> None:
    # The source as printed: the page markers between pages are not part of the wording.
    source = squeeze(re.sub(r"(?m)^\s*—\s*\d+\s*—\s*$", "", seed_text))
    for p in notice_passages(parse_text(seed_text, "seed.txt")):
        assert not re.search(r"—\s*\d+\s*—", p.text)
        if p.kind != "meta":
            assert squeeze(p.text) in source, p.section
        assert "\n\n" not in p.text


def test_meta_values_come_from_the_source(seed_text: str) -> None:
    meta = notice_passages(parse_text(seed_text, "seed.txt"))[0]
    source = squeeze(seed_text)
    for line in meta.text.splitlines():
        value = line.split("：", 1)[1].strip("《》")
        assert squeeze(value) in source, line


def test_citation(seed_text: str) -> None:
    passages = notice_passages(parse_text(seed_text, "seed.txt"))
    p = next(p for p in passages if p.section == "二（四）")
    assert p.citation == (
        "《云南省总工会关于学习宣传贯彻习近平总书记重要指示精神的通知》（云工通〔2023〕7号）第二部分（四）"
    )


def test_a_notice_is_embedded_with_its_topic(seed_text: str) -> None:
    """The 事由 of an official title, not its issuer or document type, goes with every passage
    but the metadata into what is embedded; what is quoted stays the original text."""
    assert document_topic("云南省总工会关于开展2024年度职工疗休养活动的通知") == \
        "开展2024年度职工疗休养活动"
    assert document_topic("关于转发《关于加强职工之家建设的意见》的通知") == \
        "转发《关于加强职工之家建设的意见》"
    assert document_topic("云南省总工会2024年工作要点") == "云南省总工会2024年工作要点"
    assert document_topic("中华人民共和国劳动合同法") == "劳动合同法"
    passages = notice_passages(parse_text(seed_text, "seed.txt"))
    item = next(p for p in passages if p.section == "二（四）")
    assert item.dense_text.startswith("学习宣传贯彻习近平总书记重要指示精神\n")
    assert item.dense_text.endswith(item.text) and item.text.startswith("（四）")
    meta = next(p for p in passages if p.kind == "meta")
    assert meta.dense_text == meta.search_text


def test_ids_stable_and_hash_follows_content(seed_text: str) -> None:
    first = notice_passages(parse_text(seed_text, "a.txt"))
    again = notice_passages(parse_text(seed_text, "a.txt"))
    assert [p.id for p in first] == [p.id for p in again]
    assert len({p.id for p in first}) == len(first)
    edited = seed_text.replace("时时放心不下", "时刻放心不下")
    changed = notice_passages(parse_text(edited, "a.txt"))
    diff = [a.section for a, b in zip(first, changed, strict=True)
            if a.content_hash != b.content_hash]
    assert diff == ["二（四）"]


def test_hard_wrap_join_and_page_markers() -> None:
    body = (
        "一、总体要求\n\n"
        "（一）坚持问题导向。各级工会要围绕职工群众最关心最直接最现实\n\n"
        "的利益问题，切实把工作做到职工心坎上，做到让职工满意放心\n\n"
        "— 2 —\n\n"
        "- 3 -\n\n"
        "第3页\n\n"
        "，为职工办实事。\n\n"
        "（二）坚持系统观念。统筹推进各项工作，确保各项任务落到实处。\n\n"
        "二、主要任务\n\n"
        "1.加强组织建设。要把各类职工组织到工会中来，扩大工会组织的覆盖面，\n\n"
        "增强工会组织的吸引力凝聚力和战斗力，把工会建成职工之家。\n\n"
        "（1）建会入会。推动新就业形态劳动者入会。\n\n"
        "（2）服务职工。开展送温暖活动，帮助困难职工解决实际困难。\n"
    )
    lines = clean_lines(body)
    assert not any("2 —" in x or x == "- 3 -" or x == "第3页" for x in lines)
    assert any("职工心坎上" in p and "为职工办实事" in p for p in join_paragraphs(lines))
    notice = parse_text(body, "x.txt", "测试通知")
    paths = [b.path for b in notice.blocks]
    assert ("一", "（一）") in paths and ("一", "（二）") in paths
    assert ("二", "1", "（1）") in paths and ("二", "1", "（2）") in paths


def test_articles_and_spaced_dates() -> None:
    text = (
        "某某市总工会职工互助保障办法\n"
        "第一章 总则\n"
        "第一条 为了保障职工权益，制定本办法。\n"
        "第二条 本办法适用于本市各级工会会员。\n"
        "第二章 保障内容\n"
        "第三条 保障包括住院津贴和重大疾病补助，具体如下：\n"
        "（一）住院津贴每天五十元；\n"
        "（二）重大疾病补助一次性五千元。\n"
        "某某市总工会\n"
        "2024 年 3 月 8 日\n"
    )
    notice = parse_text(text, "b.txt")
    assert notice.title == "某某市总工会职工互助保障办法"
    assert notice.date == "2024年3月8日"
    assert notice.issuer == "某某市总工会"
    paths = ["".join(b.path) for b in notice.blocks]
    assert paths == ["第一章第一条", "第一章第二条", "第二章第三条"]
    assert "重大疾病补助一次性五千元" in notice.blocks[-1].paragraphs[-1]


def test_long_section_is_split_at_sentence_ends() -> None:
    sentence = "要坚持以职工为中心的工作导向，切实加大对重点群体的权益维护和服务。"
    text = "关于测试的通知\n一、总体要求\n（一）长段落。" + sentence * 30 + "\n"
    passages = notice_passages(parse_text(text, "c.txt"))
    parts = [p for p in passages if p.section == "一（一）"]
    assert len(parts) > 1
    assert all(len(p.text) <= 400 for p in parts)
    assert all(p.text.endswith("。") for p in parts)
    assert "".join(p.text for p in parts) == "（一）长段落。" + sentence * 30
