"""Knowledge files in every supported format parse to the same passages (bot/formats.py).

The .docx and .pdf fixtures are written from the seed notice's own paragraphs, so a passage
that differs between formats is a reading bug, not a different text.
"""

from __future__ import annotations

import io
import logging
import random
import re
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from docx.document import Document as WordDocument
from docx.oxml import parse_xml
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from bot.config import SHIPPED_REFERENCE
from bot.ingest.formats import PROPERTIES_TITLE, decode_text, docx_text, strip_page_furniture
from bot.ingest.formats.word_numbering import format_number
from bot.ingest.knowledge import KnowledgeError, read_notice, scan
from bot.ingest.parse import Notice, heading_level
from bot.ingest.passages import notice_passages

SEED_DIR = Path(__file__).resolve().parent.parent / "knowledge"
SEED = next(SEED_DIR.glob("*.txt"))
FONT = "STSong-Light"
HEADER = "省总工会文件　学习宣传贯彻重要指示精神"
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


@pytest.fixture(scope="module")
def seed() -> Notice:
    return read_notice(SEED, SEED_DIR)


def seed_paragraphs(notice: Notice) -> list[tuple[str, str]]:
    """(role, text) of every paragraph of the parsed seed, in order, headings included."""
    out = [("doc_no", notice.doc_no), ("title", notice.title),
           ("addressees", notice.addressees + "：")]
    top = None
    for block in notice.blocks:
        if block.path and block.path[0] != top:
            top = block.path[0]
            if not (len(block.path) == 1 and block.kind == "section"):
                out.append(("l1", f"{top}、{block.titles[0]}"))
        out += [(heading_level(p) or "body", p) for p in block.paragraphs]
    return out + [("issuer", notice.issuer), ("date", notice.date), ("printed", notice.printed)]


def write(tmp_path: Path, name: str, data: bytes) -> Notice:
    path = tmp_path / name
    path.write_bytes(data)
    return read_notice(path, tmp_path)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def assert_same_passages(got: Notice, want: Notice) -> None:
    assert (got.title, got.doc_no, got.date) == (want.title, want.doc_no, want.date)
    got_p, want_p = notice_passages(got), notice_passages(want)
    assert [(p.kind, p.path) for p in got_p] == [(p.kind, p.path) for p in want_p]
    for g, w in zip(got_p, want_p, strict=True):
        assert squeeze(g.text) == squeeze(w.text), (g.kind, g.path)


# --- .docx ----------------------------------------------------------------------------------

NUMBERING = f"""
<w:abstractNum xmlns:w="{W_NS}" w:abstractNumId="90">
  <w:multiLevelType w:val="multilevel"/>
  <w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/>
    <w:pStyle w:val="Heading1"/><w:lvlText w:val="%1、"/></w:lvl>
  <w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/>
    <w:suff w:val="nothing"/><w:lvlText w:val="（%2）"/></w:lvl>
  <w:lvl w:ilvl="2"><w:start w:val="1"/><w:numFmt w:val="decimal"/>
    <w:lvlText w:val="%3."/></w:lvl>
  <w:lvl w:ilvl="3"><w:start w:val="1"/><w:numFmt w:val="decimal"/>
    <w:lvlText w:val="（%4）"/></w:lvl>
</w:abstractNum>"""


def add_list(document: WordDocument) -> str:
    """Add the notice-style multilevel list (一、/（一）/1./（1）) and return its numId."""
    numbering = document.part.numbering_part.element
    first_num = numbering.find(qn("w:num"))
    first_num.addprevious(parse_xml(NUMBERING))
    numbering.append(parse_xml(
        f'<w:num xmlns:w="{W_NS}" w:numId="90"><w:abstractNumId w:val="90"/></w:num>'
    ))
    return "90"


def set_numbering(element: BaseOxmlElement, num_id: str, ilvl: int | None = None) -> None:
    """Give a paragraph (or a style) Word numbering: numPr in its pPr."""
    ilvl_xml = "" if ilvl is None else f'<w:ilvl w:val="{ilvl}"/>'
    element.get_or_add_pPr().append(parse_xml(
        f'<w:numPr xmlns:w="{W_NS}">{ilvl_xml}<w:numId w:val="{num_id}"/></w:numPr>'
    ))


def make_docx(paragraphs: list[tuple[str, str]]) -> bytes:
    """The seed as Word writes it: Title style, Heading 1 numbered through its style (一、),
    （一） paragraphs numbered directly; no typed markers at those two levels."""
    document = docx.Document()
    num_id = add_list(document)
    set_numbering(document.styles["Heading 1"].element, num_id)
    for role, text in paragraphs:
        if role == "title":
            document.add_paragraph(text, style="Title")
        elif role == "l1":
            document.add_paragraph(re.sub(r"^[一二三四五六七八九十]+、", "", text),
                                   style="Heading 1")
        elif role == "l2":
            p = document.add_paragraph(re.sub(r"^（[一二三四五六七八九十]+）", "", text))
            set_numbering(p._p, num_id, 1)
        else:
            document.add_paragraph(text)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def test_docx_matches_txt(seed: Notice, tmp_path: Path) -> None:
    notice = write(tmp_path, "notice.docx", make_docx(seed_paragraphs(seed)))
    assert_same_passages(notice, seed)
    assert notice.warnings == []  # the Title style is as good as a title line


def test_docx_table_numbering_and_headings(tmp_path: Path) -> None:
    """Table rows stay in body order; unnumbered heading styles and other list formats get the
    markers a notice would have; tracked deletions are left out."""
    document = docx.Document()
    document.core_properties.title = "关于开展职工疗休养活动的通知"
    num_id = add_list(document)
    document.add_paragraph("各基层工会：")
    document.add_paragraph("为丰富职工生活，现将有关事项通知如下。")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([("序号", "地点", "名额"), ("1", "昆明", "20"), ("2", "大理", "15")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("总体要求", style="Heading 1")
    document.add_paragraph("时间安排", style="Heading 2")
    for text in ("报名截止5月10日。", "活动时间为5月下旬。"):
        set_numbering(document.add_paragraph(text)._p, num_id, 2)
    set_numbering(document.add_paragraph("不得借机旅游。")._p, num_id, 3)
    document.add_paragraph("工作要求", style="Heading 1")
    p = document.add_paragraph("请各单位")
    p._p.append(parse_xml(f'<w:del xmlns:w="{W_NS}" w:id="1" w:author="a">'
                          "<w:r><w:delText>尽快</w:delText></w:r></w:del>"))
    p.add_run("按时报送。")
    buf = io.BytesIO()
    document.save(buf)

    got = docx_text(buf.getvalue())
    assert got.text.split("\n") == [
        "各基层工会：",
        "为丰富职工生活，现将有关事项通知如下。",
        "序号 | 地点 | 名额",
        "1 | 昆明 | 20",
        "2 | 大理 | 15",
        "一、总体要求",
        "（一）时间安排",
        "1.报名截止5月10日。",
        "2.活动时间为5月下旬。",
        "（1）不得借机旅游。",
        "二、工作要求",
        "请各单位按时报送。",
    ]
    assert got.title == "关于开展职工疗休养活动的通知"
    assert got.wrapped is False
    notice = write(tmp_path, "x.docx", buf.getvalue())
    assert notice.title == got.title and notice.warnings == [PROPERTIES_TITLE]
    assert [p.section for p in notice_passages(notice)][2:] == [
        "一（一）1", "一（一）2", "一（一）2（1）", "二", ""
    ]


def test_docx_lines_stay_paragraphs(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("各基层工会：")
    document.add_paragraph("为丰富职工生活，现将有关事项通知如下。")
    places = ["昆明市区", "大理古城", "丽江古城", "曲靖市区", "玉溪市区", "保山市区", "红河州府",
              "文山州府", "普洱市区", "昭通市区"]
    table = document.add_table(rows=len(places) + 1, cols=3)
    for r, row in enumerate([("序号", "地点", "名额")] + [(str(i), p, "120")
                                                          for i, p in enumerate(places, 1)]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    buf = io.BytesIO()
    document.save(buf)
    notice = write(tmp_path, "x.docx", buf.getvalue())
    assert notice.blocks[0].paragraphs[:2] == ("为丰富职工生活，现将有关事项通知如下。",
                                               "序号 | 地点 | 名额")


def test_docx_list_restart_and_continue() -> None:
    """Lists sharing one definition continue their count unless Word restarted one."""
    document = docx.Document()
    add_list(document)
    numbering = document.part.numbering_part.element
    numbering.append(parse_xml(
        f'<w:num xmlns:w="{W_NS}" w:numId="91"><w:abstractNumId w:val="90"/></w:num>'))
    numbering.append(parse_xml(
        f'<w:num xmlns:w="{W_NS}" w:numId="92"><w:abstractNumId w:val="90"/>'
        f'<w:lvlOverride w:ilvl="1"><w:startOverride w:val="1"/></w:lvlOverride></w:num>'))
    for num_id, text in [("90", "甲。"), ("90", "乙。"), ("91", "丙。"), ("92", "丁。"),
                         ("90", "戊。")]:
        set_numbering(document.add_paragraph(text)._p, num_id, 1)
    buf = io.BytesIO()
    document.save(buf)
    assert docx_text(buf.getvalue()).text.split("\n") == [
        "（一）甲。", "（二）乙。", "（三）丙。", "（一）丁。", "（二）戊。"
    ]


def test_docx_heading_as_title(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("云工发〔2024〕3号")
    document.add_paragraph("关于做好2024年春节送温暖工作的安排", style="Heading 1")
    document.add_paragraph("各州（市）总工会：")
    document.add_paragraph("现将有关安排如下。")
    buf = io.BytesIO()
    document.save(buf)
    notice = write(tmp_path, "a.docx", buf.getvalue())
    assert notice.title == "关于做好2024年春节送温暖工作的安排"
    assert notice.doc_no == "云工发〔2024〕3号"
    assert notice.addressees == "各州（市）总工会"
    assert notice.warnings == []


@pytest.mark.parametrize(
    ("n", "fmt", "want"),
    [(1, "chineseCounting", "一"), (10, "chineseCounting", "十"), (12, "chineseCounting", "十二"),
     (20, "chineseCountingThousand", "二十"), (105, "chineseCounting", "一百零五"),
     (115, "chineseCounting", "一百一十五"), (3, "decimalEnclosedCircle", "③"),
     (4, "lowerRoman", "iv"), (28, "upperLetter", "BB"), (7, "decimalZero", "07"),
     (2, "ideographTraditional", "乙"), (5, "bullet", "")],
)
def test_number_formats(n: int, fmt: str, want: str) -> None:
    assert format_number(n, fmt) == want


@pytest.mark.parametrize(
    "data",
    [b"not a zip at all", b"PK\x03\x04broken", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600],
    ids=["text", "broken-zip", "old-doc"],
)
def test_bad_docx(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(KnowledgeError, match=r"^x\.docx: "):
        write(tmp_path, "x.docx", data)


def test_docx_without_text(tmp_path: Path) -> None:
    buf = io.BytesIO()
    docx.Document().save(buf)
    with pytest.raises(KnowledgeError, match="no text"):
        write(tmp_path, "x.docx", buf.getvalue())


# --- .pdf -----------------------------------------------------------------------------------


def wrap(text: str, width: float, size: float, indent: float = 0) -> list[str]:
    """Break text into lines of at most ``width`` points, as a typesetter would: closing
    punctuation never starts a line."""
    lines, current = [], ""
    for char in text:
        room = width - (indent if not lines else 0)
        if current and pdfmetrics.stringWidth(current + char, FONT, size) > room \
                and char not in "，。、；：！？）》”’":
            lines.append(current)
            current = ""
        current += char
    return lines + [current] if current else lines


def make_pdf(paragraphs: list[tuple[str, str]], size: float = 16, chars: int = 28) -> bytes:
    """A notice typeset like the real ones: fixed-width lines, two-character first-line indent,
    a running header, and a "— n —" footer drawn before the body (as pypdf then reads it)."""
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    page_w, page_h = A4
    width = chars * size
    left = (page_w - width) / 2
    placed: list[tuple[float, str]] = []  # (x, text) per visual line
    for role, text in paragraphs:
        if role in ("doc_no", "title"):
            for line in wrap(text, 20 * size, size):
                placed.append(((page_w - pdfmetrics.stringWidth(line, FONT, size)) / 2, line))
        elif role in ("issuer", "date", "printed"):
            placed.append((left + width - pdfmetrics.stringWidth(text, FONT, size), text))
        else:
            indent = 0 if role == "addressees" else 2 * size
            for i, line in enumerate(wrap(text, width, size, indent)):
                placed.append((left + (indent if i == 0 else 0), line))
    per_page, leading = 22, 28
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    for page, start in enumerate(range(0, len(placed), per_page), 1):
        pdf.setFont(FONT, 12)
        pdf.drawCentredString(page_w / 2, 40, f"— {page} —")
        pdf.drawString(left, page_h - 50, HEADER)
        pdf.setFont(FONT, size)
        for i, (x, line) in enumerate(placed[start : start + per_page]):
            pdf.drawString(x, page_h - 100 - i * leading, line)
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def test_pdf_matches_txt(seed: Notice, tmp_path: Path) -> None:
    data = make_pdf(seed_paragraphs(seed))
    notice = write(tmp_path, "notice.pdf", data)
    assert_same_passages(notice, seed)
    texts = "\n".join(p.text for p in notice_passages(notice))
    assert HEADER not in texts and not re.search(r"—\s*\d+\s*—", texts)


def test_pdf_law_is_cited_by_article(tmp_path: Path) -> None:
    """A regulation typeset as a PDF (第一条　为了…) is still a law: the space after 第X条 survives
    the closing of the PDF's letter-spacing gaps, so each article is a passage cited as in its
    Markdown edition."""
    source = next(SHIPPED_REFERENCE.rglob("女职工劳动保护特别规定*.md"))
    markdown = read_notice(source, source.parent)
    text = re.sub(r"<!--.*?-->", "", source.read_text(encoding="utf-8"), flags=re.S)
    lines = [line.strip().lstrip("# ") for line in text.splitlines() if line.strip()]
    paragraphs = [("title", lines[0])] + [("body", line) for line in lines[1:]]
    notice = write(tmp_path, "女职工劳动保护特别规定.pdf", make_pdf(paragraphs))
    assert notice.kind == "law" and notice.title == markdown.title
    cited = [p.citation for p in notice_passages(notice)]
    articles = [c for c in cited if "附录" not in c]
    assert articles == [p.citation for p in notice_passages(markdown) if "附录" not in p.citation]
    assert "《女职工劳动保护特别规定》第七条" in articles
    # the appendix after the last article is cited as such (its items as 附录一（一） here)
    assert cited[len(articles):] and all(
        c.startswith("《女职工劳动保护特别规定》附录") for c in cited[len(articles):])


@pytest.mark.parametrize("footer", ["— {} —", "- {} -", "第{}页", "{}", "第 {} 页 共 9 页", "{}/4"])
def test_page_furniture(footer: str) -> None:
    """Page numbers and running headers go wherever pypdf puts them (first or last lines);
    a lone number in the middle of a page is text."""
    words = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥天地人和"
    body = [[f"正文{words[n]}{words[10 + i]}行" for i in range(8)] for n in range(4)]
    for lines in body:
        lines[4] = "4"
    pages = [[footer.format(n), "云南省总工会文件", *lines] if n % 2 else
             ["云南省总工会文件", *lines, footer.format(n)] for n, lines in enumerate(body, 1)]
    assert strip_page_furniture(pages) == body


def image_only_pdf() -> bytes:
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    pdf.rect(50, 50, 400, 600, fill=1)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def encrypted_pdf() -> bytes:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, encrypt="secret")
    pdf.setFont(FONT, 16)
    pdf.drawString(50, 700, "云南省总工会关于开展职工疗休养活动的通知")
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


@pytest.mark.parametrize(
    ("make", "reason"),
    [(lambda: b"%PDF-1.4\ngarbage", "damaged PDF"),
     (lambda: make_pdf([("body", "正文")])[:300], "damaged PDF"),
     (image_only_pdf, "scanned PDF with no text layer"),
     (encrypted_pdf, "password-protected PDF")],
    ids=["garbage", "truncated", "image-only", "encrypted"],
)
def test_bad_pdf(tmp_path: Path, make: Callable[[], bytes], reason: str) -> None:
    with pytest.raises(KnowledgeError, match=rf"^x\.pdf: {reason}"):
        write(tmp_path, "x.pdf", make())


# --- text encodings -------------------------------------------------------------------------


def test_gbk_and_bom_parse_like_utf8(seed: Notice, tmp_path: Path) -> None:
    text = SEED.read_text(encoding="utf-8")
    for name, data in [("gbk.txt", text.encode("gbk")), ("gb18030.md", text.encode("gb18030")),
                       ("bom.txt", b"\xef\xbb\xbf" + text.encode())]:
        notice = write(tmp_path, name, data)
        notice.source = seed.source
        assert notice_passages(notice) == notice_passages(seed), name


SHORT = ["关于印发通知", "云南省总工会", "职工疗休养活动安排", "请于5月10日前报送。",
         "滇池、洱海职工书屋", "各州（市）总工会：", "劳模精神、劳动精神、工匠精神",
         "习近平新时代中国特色社会主义思想", "“五小”活动", "第一条　为了规范工会经费"]


@pytest.mark.parametrize("text", SHORT)
def test_short_gbk_samples(text: str) -> None:
    assert decode_text(text.encode("gbk")) == text


def random_gbk_pairs(n: int) -> bytes:
    """Bytes that decode as GBK without error but are noise: what GB18030 happily accepts."""
    rng = random.Random(n)
    trail = list(range(0x40, 0x7F)) + list(range(0x80, 0xFF))
    return bytes(b for _ in range(n) for b in (rng.randrange(0x81, 0xFF), rng.choice(trail)))


@pytest.mark.parametrize(
    ("data", "reason"),
    [(random.Random(7).randbytes(3000), "binary"),
     (bytes(range(0x80, 0x100)) * 8, "not UTF-8 or GBK"),
     (random_gbk_pairs(10), "garbled"),
     (random_gbk_pairs(500), "garbled"),
     ("这是一个测试文件，内容是中文。".encode("utf-16"), "UTF-16"),
     ("notice text saved by notepad".encode("utf-16-le"), "UTF-16"),
     (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, "binary"),
     ("雲南省總工會關於學習宣傳貫徹重要指示精神的通知各級工會組織".encode("big5"), "garbled"),
     ("日本語のテキストです。東京都の会議で新しい制度について説明しました。".encode("shift_jis"),
      "garbled"),
     ("正常的UTF-8文本".encode() + b"\xff\xfe" + "后面还有".encode(), "offset 20")],
    ids=["random", "high-bytes", "gbk-noise-10", "gbk-noise-500", "utf16-bom", "utf16-nobom",
         "binary", "big5", "shift-jis", "bad-byte"],
)
def test_undecodable_text(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(KnowledgeError, match=rf"^x\.txt: .*{reason}"):
        write(tmp_path, "x.txt", data)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="empty file"):
        write(tmp_path, "x.txt", b" \n\r\n")


# --- the folder -----------------------------------------------------------------------------


def test_scan_skips_temp_lock_and_hidden(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    keep = ["a.txt", "b.MD", "c.docx", "d.pdf", "sub/e.pdf"]
    skip = ["~$c.docx", ".~lock.c.docx#", ".a.txt.swp", "a.txt.swp", ".hidden.txt", "a.txt~",
            "f.doc", "g.xlsx", "h.tmp", ".git/x.txt", "notes"]
    for name in keep + skip:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    with caplog.at_level(logging.INFO, logger="bot.ingest.knowledge"):
        found = scan(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == sorted(keep)
    assert "save it as .docx" in caplog.text
    assert "~$c.docx (temporary, lock or hidden file)" in caplog.text


def test_seed_paragraphs(seed: Notice) -> None:
    """The fixtures start from every paragraph the seed has (guards the helper above)."""
    roles = [role for role, _ in seed_paragraphs(seed)]
    assert roles.count("l1") == 3 and roles.count("l2") == 12
