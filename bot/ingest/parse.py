"""Chinese official notices as text -> Notice (metadata plus numbered sections).

Text extracted from PDFs arrives hard-wrapped, with page markers and a blank line after every
line; the repair here rebuilds the paragraphs before the numbering (一、/（一）/1./（1）,
第一章/第一条) is read, so that every passage keeps the document's original wording.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

CN_NUM = "一二三四五六七八九十百千零〇"
PAGE_MARKER = re.compile(
    r"^(?:[—–\-－―]+\s*\d{1,4}\s*[—–\-－―]+|第\s*\d{1,4}\s*页(?:\s*[，,/]?\s*共\s*\d{1,4}\s*页)?"
    r"|\d{1,4}\s*/\s*\d{1,4})$"
)
DOC_NO = re.compile(
    r"[\u4e00-\u9fff]{1,12}\s*[〔［\[【（(]\s*(?:19|20)\d{2}\s*[〕］\]】）)]\s*\d{1,4}\s*号"
)
DATE = re.compile(r"((?:19|20)\d{2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
CN_DATE = re.compile(
    r"([一二〇零○]{4})年([一二三四五六七八九十]{1,2})月([一二三四五六七八九十]{1,3})日"
)
TITLE_END = re.compile(
    r"(通知|意见|办法|规定|决定|方案|通报|报告|函|公告|批复|细则|纲要|规划|要点|条例|章程|指引|"
    r"指南|须知|决议|纪要|请示|计划|制度|规则|措施|公报|说明|法|解释|（[一二三四五六七八九十]+）)$"
)
TERMINAL = "。！？；：!?;:…"
CLOSERS = "”’」』）)》"
DOC_CLOSING = re.compile(r"特此通知|请.{0,40}(?:报告|反馈|报送|执行|落实)|遵照执行|认真贯彻执行")

# Heading levels, outermost first. Each: (rank, pattern matching the marker at the start).
LEVELS: list[tuple[str, re.Pattern[str]]] = [
    ("chapter", re.compile(rf"^第[{CN_NUM}\d]+章")),
    ("part", re.compile(rf"^第[{CN_NUM}\d]+节")),
    ("article", re.compile(rf"^第[{CN_NUM}\d]+条(?=[\s　])")),
    ("l1", re.compile(rf"^[{CN_NUM}]+、")),
    ("l2", re.compile(rf"^[（(][{CN_NUM}]+[）)]")),
    ("l3", re.compile(r"^\d{1,2}[\.．、](?!\d)")),
    ("l4", re.compile(r"^[（(]\d{1,2}[）)]")),
]
ARTICLE_NUMBER = re.compile(rf"第[{CN_NUM}\d]+条")
INFO_LINE = re.compile(r"^(?:19|20)\d{2}\s*年.*(?:通过|修正|修订|公布|施行|执行|发布)$")
RANK = {name: i for i, (name, _) in enumerate(LEVELS)}
ARTICLE_LINE = LEVELS[RANK["article"]][1]  # 第X条 and a space: an article, not a mention
MIN_ARTICLES = 3
# A law's appendix after its articles (附录：, 附件一) stands above every level: it is cited as
# 附录, not as part of the last article. Only after an article: a notice's 附件 list is unchanged.
APPENDIX = re.compile(rf"^(附(?:录|件|表)[{CN_NUM}\d]*)[：:]?$")
RANK["appendix"] = -1


@dataclass
class Section:
    """One numbered section: its marker, title and paragraphs, and its sub-sections."""

    level: str
    number: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)
    closing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Block:
    """A run of paragraphs that becomes one passage (before long ones are split)."""

    path: tuple[str, ...]
    titles: tuple[str, ...]
    paragraphs: tuple[str, ...]
    kind: str  # opening | section | closing | ending


@dataclass
class Notice:
    """A parsed notice: metadata from the header and signature, and its text blocks."""

    source: str
    title: str
    doc_no: str = ""
    issuer: str = ""
    date: str = ""
    addressees: str = ""
    printed: str = ""
    kind: str = "notice"  # notice | law (cited by article)
    info: list[str] = field(default_factory=list)  # a law's 通过/修正/施行 lines, as written
    blocks: list[Block] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
UNITS = {"十": 10, "百": 100, "千": 1000}
UNSPACED_ARTICLE = re.compile(rf"^第([{CN_NUM}\d]+)条(?=[\u4e00-\u9fff（(“])")


def article_number(numeral: str) -> int | None:
    """四十 -> 40, 一百零八 -> 108, 1043 -> 1043; None if it is not a plain numeral."""
    if numeral.isdigit():
        return int(numeral)
    total, digit = 0, None
    for ch in numeral:
        if ch in DIGITS:
            digit = DIGITS[ch]
        elif ch in UNITS:
            total += (1 if digit is None else digit) * UNITS[ch]
            digit = None
        else:
            return None
    return total + (digit or 0)


def is_law(lines: list[str]) -> bool:
    """A law or regulation: numbered articles (第X条) are its units."""
    return sum(1 for line in lines if ARTICLE_LINE.match(line)) >= MIN_ARTICLES


def space_articles(lines: list[str]) -> list[str]:
    """第一条为了… -> 第一条 为了… when a text copied without the space after its article numbers
    numbers them 1, 2, 3… in order: it is still a law. A line that only cites an article
    (第三十六条规定的…) does not continue the run, so it is left as it is."""
    if is_law(lines):
        return lines
    out, expected = [], 1
    for line in lines:
        m = UNSPACED_ARTICLE.match(line)
        if m and article_number(m.group(1)) == expected:
            line = f"{line[: m.end()]} {line[m.end():]}"
            expected += 1
        out.append(line)
    return out if expected > MIN_ARTICLES else lines


def _width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WFA" else 1 for c in line)


def clean_lines(text: str) -> list[str]:
    """Lines stripped of stray spaces, with blank lines and page markers dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    lines = []
    for raw in text.split("\n"):
        line = raw.strip(" \t\u3000\u00a0\f")
        if line.startswith("#"):
            line = line.lstrip("#").strip()
        if line and not PAGE_MARKER.match(line):
            lines.append(line)
    return lines


def heading_level(line: str) -> str | None:
    for name, pattern in LEVELS:
        if pattern.match(line):
            return name
    return None


def _is_hard_wrapped(lines: list[str]) -> tuple[bool, int]:
    """Hard-wrapped text has many lines of (almost) the same width: the page width."""
    widths = sorted((_width(x) for x in lines), reverse=True)
    if len(widths) < 6:
        return False, 0
    full = widths[len(widths) // 10]
    near = sum(1 for w in widths if full - 4 <= w <= full + 2)
    return near >= 0.35 * len(widths) and full <= 160, full


def join_paragraphs(lines: list[str]) -> list[str]:
    """Re-join hard-wrapped lines: a line break inside a sentence is not a paragraph break."""
    wrapped, full = _is_hard_wrapped(lines)
    if not wrapped:
        return list(lines)
    paragraphs: list[str] = []
    current = ""
    for i, line in enumerate(lines):
        current += line
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        # A paragraph's first line is indented by two characters; its last line is short and
        # ends a sentence; a heading's last line is short with no punctuation.
        slack = 6 if not current[: -len(line)] else 2
        width = _width(line)
        ends_sentence = line.rstrip(CLOSERS)[-1:] in TERMINAL
        if nxt is None or heading_level(nxt) or width < full - 8 or (
            ends_sentence and width < full - slack
        ):
            paragraphs.append(current)
            current = ""
    return paragraphs


def normal_date(text: str) -> str:
    m = DATE.search(text)
    if m:
        return f"{m.group(1)}年{int(m.group(2))}月{int(m.group(3))}日"
    m = CN_DATE.search(text)
    return m.group(0) if m else ""


def version_date(info: list[str]) -> str:
    """A law's version date: its last 通过/修正/公布 line (not the day it took effect)."""
    dated = [line for line in info if normal_date(line)]
    adopted = [line for line in dated if re.search(r"通过|修正|修订|公布|发布", line)]
    undated = [line for line in dated if not re.search(r"施行|执行|生效", line)]
    chosen = adopted or undated
    return normal_date(chosen[-1]) if chosen else ""


def _split_header(lines: list[str], notice: Notice) -> list[str]:
    """Take 文号, title and 主送 off the top; return the remaining lines."""
    i = 0
    for j in range(min(3, len(lines))):
        m = DOC_NO.search(lines[j])
        if m and len(lines[j]) <= 40:
            notice.doc_no = re.sub(r"\s+", "", m.group(0))
            i = j + 1
            break
    for j in range(i, min(i + 5, len(lines))):
        if heading_level(lines[j]) or lines[j][-1] in TERMINAL:
            break
        if TITLE_END.search(lines[j]) and len("".join(lines[i : j + 1])) <= 100:
            notice.title = "".join(lines[i : j + 1])
            i = j + 1
            break
    while i < len(lines) and INFO_LINE.match(lines[i]):  # a law's 通过/修正/施行 lines
        notice.info.append(lines[i])
        i += 1
    for j in range(i, min(i + 5, len(lines))):
        if heading_level(lines[j]) or len("".join(lines[i : j + 1])) > 200:
            break
        if lines[j].endswith(("：", ":")):
            notice.addressees = "".join(lines[i : j + 1]).rstrip("：:")
            i = j + 1
            break
        if lines[j][-1] in TERMINAL:
            break
    return lines[i:]


def _split_signature(lines: list[str], notice: Notice) -> list[str]:
    """Take issuer, date and 印发 line off the bottom; return the remaining lines."""
    end = len(lines)
    while end > 0:
        line = lines[end - 1]
        short = len(line) <= 40
        if short and ("印发" in line or line.endswith("印")) and normal_date(line):
            notice.printed = re.sub(r"(\d)\s+|\s+(\d)", r"\1\2", line)
        elif short and normal_date(line) and DATE.sub("", CN_DATE.sub("", line)).strip() == "":
            notice.date = normal_date(line)
        elif short and notice.date and not notice.issuer and line[-1] not in TERMINAL + "，,、":
            notice.issuer = line
        elif short and line[0] in "（(" and line[-1] in "）)" and not heading_level(line):
            pass  # e.g. （此件公开发布）
        else:
            break
        end -= 1
    return lines[:end]


def _heading(paragraph: str, level: str) -> tuple[str, str]:
    """(number, title) of a heading paragraph; the title is its first sentence."""
    marker = next(p for n, p in LEVELS if n == level).match(paragraph)
    assert marker is not None
    number = marker.group(0).replace("(", "（").replace(")", "）").rstrip("、.．")
    rest = paragraph[marker.end() :].strip()
    if level == "article":
        return number, ""
    m = re.search(r"[。！？；!?;]", rest)
    title = rest[: m.start()] if m else rest
    return number, title.strip()


def _build_tree(paragraphs: list[str]) -> Section:
    root = Section("root", "", "")
    stack = [root]
    seen_article = False
    for para in paragraphs:
        level = heading_level(para)
        in_article = any(s.level == "article" for s in stack)
        seen_article = seen_article or in_article
        appendix = APPENDIX.match(para) if seen_article else None
        if appendix:
            level = "appendix"
        if level and not (in_article and RANK[level] > RANK["article"]):
            while len(stack) > 1 and RANK[stack[-1].level] >= RANK[level]:
                stack.pop()
            number, title = (appendix.group(1), "") if appendix else _heading(para, level)
            section = Section(level, number, title, [para])
            stack[-1].children.append(section)
            stack.append(section)
        else:
            target = stack[-1]
            (target.closing if target.children else target.paragraphs).append(para)
    _move_closings(root)
    return root


def _move_closings(section: Section) -> None:
    """Paragraphs after a last sub-section belong to the parent when every earlier sibling
    was a single paragraph (as in 一（三） followed by 一's closing paragraph)."""
    for child in section.children:
        _move_closings(child)
    kids = section.children
    if len(kids) >= 2 and all(len(k.paragraphs) == 1 and not k.children for k in kids[:-1]):
        last = kids[-1]
        if not last.children and len(last.paragraphs) > 1:
            section.closing[:0] = last.paragraphs[1:]
            del last.paragraphs[1:]
        elif last.children and last.closing and section.level != "root":
            section.closing[:0] = last.closing
            last.closing.clear()


SENTENCE_END = re.compile(r"[。！？；!?;]")


def _blocks(section: Section, path: tuple[str, ...], titles: tuple[str, ...]) -> list[Block]:
    blocks: list[Block] = []
    own = list(section.paragraphs)
    if section.children and own and section.level != "root" and not SENTENCE_END.search(own[0]):
        own = own[1:]  # a heading with no body text is only a title, not a passage of its own
    if own:
        kind = "opening" if section.level == "root" else "section"
        blocks.append(Block(path, titles, tuple(own), kind))
    for child in section.children:
        blocks += _blocks(child, path + (child.number,), titles + (child.title,))
    if section.closing:
        kind = "ending" if section.level == "root" else "closing"
        blocks.append(Block(path, titles, tuple(section.closing), kind))
    return blocks


def _detach_document_ending(root: Section, addressees: str) -> None:
    """The final request to the addressees (…请及时报告省总工会) closes the whole notice."""
    node = root
    while node.children and not node.closing:
        node = node.children[-1]
    if node is root:
        return
    holder = node.closing or node.paragraphs[1:]
    if not holder:
        return
    last = holder[-1]
    if DOC_CLOSING.search(last) or (addressees and last.startswith(addressees[:4])):
        (node.closing or node.paragraphs).pop()
        root.closing.append(last)


def parse_text(
    text: str, source: str, fallback_title: str = "", wrapped: bool | None = None
) -> Notice:
    """Parse a notice's text into metadata and blocks; problems become warnings, not errors.

    ``wrapped=False`` says each line is already a paragraph (docx); None lets the text tell.
    """
    notice = Notice(source=source, title="")
    lines = space_articles(clean_lines(text))
    body = _split_signature(_split_header(lines, notice), notice)
    if not notice.title:
        notice.title = fallback_title or source
        notice.warnings.append("no title found in the text; using the file name")
    paragraphs = list(body) if wrapped is False else join_paragraphs(body)
    root = _build_tree(paragraphs)
    _detach_document_ending(root, notice.addressees)
    notice.blocks = _blocks(root, (), ())
    if any(ARTICLE_NUMBER.fullmatch(p) for b in notice.blocks for p in b.path):
        notice.kind = "law"
    if not notice.blocks:
        notice.warnings.append("no body text found")
    if not notice.date:
        notice.date = version_date(notice.info) if notice.info else (
            normal_date(" ".join(paragraphs[-3:])) if paragraphs else ""
        )
    return notice


def section_path(path: tuple[str, ...]) -> str:
    """("二", "（四）") -> "二（四）"; numbers like "1" keep a dot only when needed."""
    return "".join(path)


def citation_section(path: tuple[str, ...]) -> str:
    """How a section is cited: ("二", "（四）") -> 第二部分（四）."""
    if not path:
        return ""
    articles = [i for i, p in enumerate(path) if ARTICLE_NUMBER.fullmatch(p)]
    if articles:  # laws are cited by article alone: 第四十条, not 第四章第四十条
        path = path[articles[0] :]
        return "".join(path)
    first, rest = path[0], path[1:]
    if re.fullmatch(f"[{CN_NUM}]+", first):
        first = f"第{first}部分"
    return first + "".join(f"{p}." if p.isdigit() else p for p in rest)
