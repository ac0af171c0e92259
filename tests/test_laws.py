"""Laws in LawRefBook Markdown (the shipped reference laws) and plain text parse as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.__main__ import check_file
from bot.config import SHIPPED_REFERENCE
from bot.ingest.knowledge import read_notice
from bot.ingest.lawtext import parse_markdown
from bot.ingest.parse import APPENDIX, CN_NUM, parse_text
from bot.ingest.passages import MAX_CHARS, notice_passages

LAWS = sorted(SHIPPED_REFERENCE.rglob("*.md"))  # more/ too
ARTICLE = re.compile(rf"第[{CN_NUM}]+条")


def law(name: str) -> Path:
    return next(p for p in LAWS if p.name.startswith(name))


def test_the_shipped_laws_are_there() -> None:
    assert len(LAWS) >= 46


@pytest.mark.parametrize("path", LAWS, ids=[p.stem for p in LAWS])
def test_every_law_parses_by_article(path: Path) -> None:
    notice = read_notice(path, path.parent)
    first_heading = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
    assert notice.title == first_heading
    assert notice.kind == "law" and notice.warnings == []
    passages = notice_passages(notice)
    for p in passages:
        assert "<!--" not in p.text and "INFO END" not in p.text
        if p.kind == "meta":
            continue
        if p.kind == "opening":  # a judicial interpretation's preamble
            assert not ARTICLE.match(p.text)
            continue
        if APPENDIX.match(p.path[0]):  # 附录 after the last article
            assert p.citation == f"《{notice.title}》{p.path[0]}"
            continue
        number = p.path[-1]
        assert ARTICLE.fullmatch(number), p.path
        assert p.citation == f"《{notice.title}》{number}"
        assert len(p.text) <= MAX_CHARS
    starts = [p for p in passages if p.kind == "section" and p.text.startswith("第")]
    assert all(p.text.startswith(p.path[-1]) for p in starts)


def test_labour_contract_law() -> None:
    path = law("劳动合同法(")
    notice = read_notice(path, path.parent)
    passages = notice_passages(notice)
    articles = [p for p in passages if p.kind == "section"]
    assert len({p.path[-1] for p in articles}) == 98
    fortieth = next(p for p in articles if p.path[-1] == "第四十条")
    assert fortieth.citation == "《中华人民共和国劳动合同法》第四十条"
    assert fortieth.path == ("第四章", "第四十条")
    assert fortieth.section_titles[0] == "劳动合同的解除和终止"
    assert "（一）劳动者患病或者非因工负伤" in fortieth.text  # items stay inside the article
    assert "劳动合同的解除和终止" in fortieth.search_text  # headings are searched, not cited
    assert fortieth.dense_text == f"劳动合同法\n{fortieth.text}"  # embedded with its law alone
    meta = passages[0]
    assert meta.kind == "meta" and "2007年6月29日" in meta.text and "修正" in meta.text
    assert notice.date == "2012年12月28日"  # the version, amended on that day


def test_dates_are_adoption_not_effect() -> None:
    path = law("职工带薪年休假条例")
    notice = read_notice(path, path.parent)
    assert notice.date == "2007年12月14日"  # 公布; 施行 was 2008年1月1日
    assert any("施行" in line for line in notice.info)


def test_civil_code_parts_are_one_document() -> None:
    titles = set()
    for path in LAWS:
        if path.name.startswith("民法典"):
            notice = read_notice(path, path.parent)
            titles.add(notice.title)
            part = notice_passages(notice)[1]
            assert part.section_titles[0].endswith(("编", "总则"))  # the 编 is a heading
    assert titles == {"中华人民共和国民法典"}
    marriage = read_notice(law("民法典-婚姻家庭编"), SHIPPED_REFERENCE)
    first = notice_passages(marriage)[1]
    assert first.citation == "《中华人民共和国民法典》第一千零四十条"
    assert first.path == ("婚姻家庭编", "第一章", "第一千零四十条")


def test_long_article_pieces_keep_the_number() -> None:
    long = [p for path in LAWS for p in notice_passages(read_notice(path, path.parent))
            if p.kind == "section"]
    keys = [(p.doc_title, p.path) for p in long if not APPENDIX.match(p.path[0])]
    split = {key for key in keys if keys.count(key) > 1}
    assert split, "some article is longer than one passage"
    for key in split:
        pieces = [p for p in long if (p.doc_title, p.path) == key]
        assert pieces[0].text.startswith(key[1][-1])
        assert len({p.citation for p in pieces}) == 1 and len({p.id for p in pieces}) > 1


def test_a_line_break_inside_a_sentence_is_mended() -> None:
    """工资支付暂行规定 in LawRefBook breaks 第十三条's items mid-word (劳动合 / 同规定的): the
    pieces must still split at item ends, and nothing shown may stop inside a sentence."""
    path = law("工资支付暂行规定")
    pieces = [p for p in notice_passages(read_notice(path, path.parent))
              if p.path[-1:] == ("第十三条",)]
    assert len(pieces) == 2
    whole = "按照不低于劳动合同规定的劳动者本人日或小时工资标准的３００％支付劳动者工资。"
    assert whole in pieces[0].text
    for piece in pieces:
        assert all(line[-1] in "。；：" for line in piece.text.splitlines()), piece.text
    path = law("劳动法(")
    article = next(p for p in notice_passages(read_notice(path, path.parent))
                   if p.path[-1:] == ("第三十七条",))
    assert article.text.endswith("合理确定其劳动定额和计件报酬标准。")


def test_an_appendix_is_not_the_last_article() -> None:
    """女职工劳动保护特别规定's 附录 (the work women may not do in pregnancy …) is cited as 附录:
    it used to be a piece of 第十六条 (本规定自公布之日起施行)."""
    path = law("女职工劳动保护特别规定")
    passages = notice_passages(read_notice(path, path.parent))
    last = next(p for p in passages if p.path[-1:] == ("第十六条",))
    assert "禁忌" not in last.text
    appendix = [p for p in passages if p.path == ("附录",)]
    assert appendix and all(p.citation == "《女职工劳动保护特别规定》附录" for p in appendix)
    assert any("女职工在孕期禁忌从事的劳动范围" in p.text for p in appendix)
    notice = parse_text("某某规定\n第一条 总则。\n第二条 自公布之日起施行。\n第三条 附则。\n附件："
                        "\n一、甲\n", "x.txt", wrapped=False)
    assert [b.path[0] for b in notice.blocks][-1] == "附件"
    assert parse_text("关于某事的通知\n一、甲。\n附件：\n1.报名表\n", "n.txt").kind == "notice"


def test_articles_without_the_space_after_their_number() -> None:
    """Copied without the space (第一条为了…), a law is still cited by article; a paragraph that
    only starts by citing one (第一条规定的…) is not taken for an article."""
    text = ("某某条例\n第一条为了保障职工权益，制定本条例。\n第二条本条例适用于本省。\n"
            "第一条规定的职工包括农民工。\n第三条工会依法维护职工权益。\n")
    notice = parse_text(text, "x.txt", wrapped=False)
    passages = [p for p in notice_passages(notice) if p.kind == "section"]
    assert notice.kind == "law"
    assert [p.citation for p in passages] == [f"《某某条例》第{n}条" for n in "一二三"]
    assert passages[0].text == "第一条 为了保障职工权益，制定本条例。"
    assert "第一条规定的职工包括农民工。" in passages[1].text
    markdown = parse_markdown("# 某某条例\n\n" + text.split("\n", 1)[1], "x.md")
    assert markdown.kind == "law" and len(markdown.blocks) == 3


def test_table_rows_and_items_are_not_joined() -> None:
    text = ("# 某某法\n\n第一条 总则。\n\n第二条 税率如下：\n\n税率表一（综合所得适用）\n\n"
            "级数 全年应纳税所得额 税率（%）\n\n1 不超过36000元的 3\n\n2 超过36000元的部分 10\n\n"
            "第三条 有下列情形之一的\n\n（一）甲；\n\n（二）乙。\n")
    notice = parse_markdown(text, "某某法.md")
    second, third = (b.paragraphs for b in notice.blocks[1:3])
    assert len(second) == 5 and len(third) == 3


def test_markdown_front_matter_and_comments_never_reach_a_passage() -> None:
    text = ("---\ntitle: x\ntags: [a]\n---\n# 某某市职工权益保障条例\n\n<!-- 备注：内部 -->\n"
            "2020年1月1日 某某市人民代表大会常务委员会通过\n\n<!-- INFO END -->\n\n"
            "## 第一章 总则\n\n第一条 为了保障职工权益，制定本条例。\n\n"
            "第二条 本条例适用于本市。<!-- 旧条文 -->\n\n第三条 工会依法维护职工权益。\n")
    notice = parse_markdown(text, "x.md")
    passages = notice_passages(notice)
    assert notice.title == "某某市职工权益保障条例"
    assert notice.info == ["2020年1月1日 某某市人民代表大会常务委员会通过"]
    assert [p.citation for p in passages[1:]] == [
        "《某某市职工权益保障条例》第一条", "《某某市职工权益保障条例》第二条",
        "《某某市职工权益保障条例》第三条"]
    assert all("title:" not in p.text and "<!--" not in p.text and "备注" not in p.text
               for p in passages)


def test_markdown_notice_keeps_its_title() -> None:
    text = "# 关于开展职工疗休养活动的通知\n\n各基层工会：\n\n一、活动对象\n\n全体会员。\n"
    notice = parse_markdown(text, "n.md")
    assert notice.title == "关于开展职工疗休养活动的通知" and notice.kind == "notice"
    assert notice.addressees == "各基层工会"


def test_plain_text_law_is_cited_by_article() -> None:
    text = ("中华人民共和国劳动合同法\n"
            "2007年6月29日 第十届全国人民代表大会常务委员会第二十八次会议通过\n"
            "第一章 总则\n第一条 为了完善劳动合同制度，制定本法。\n"
            "第二条 本法适用于境内的企业。\n第三条 订立劳动合同，应当遵循合法原则。\n")
    notice = parse_text(text, "law.txt")
    passages = notice_passages(notice)
    assert notice.title == "中华人民共和国劳动合同法" and notice.kind == "law"
    assert notice.date == "2007年6月29日"
    assert [p.citation for p in passages if p.kind == "section"] == [
        "《中华人民共和国劳动合同法》第一条", "《中华人民共和国劳动合同法》第二条",
        "《中华人民共和国劳动合同法》第三条"]


def test_index_check_shows_the_structure(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_file(law("劳动合同法(")) == 0
    out = capsys.readouterr().out
    assert "标题: 中华人民共和国劳动合同法" in out
    assert "第四章 劳动合同的解除和终止" in out
    assert "《中华人民共和国劳动合同法》第四十条" in out
    assert out.index("第四章 劳动合同的解除和终止") < out.index("第四十条")
