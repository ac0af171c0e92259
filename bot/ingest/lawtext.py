"""Markdown documents and laws -> Notice: titles, parts, chapters, articles, info block.

Laws arrive as Markdown the way LawRefBook publishes them (``# 中华人民共和国劳动合同法``, a second
``#`` for the part of a code, ``##``/``###`` for 章/节, 通过/修正/施行 lines closed by
``<!-- INFO END -->``) or as plain text with 第X章/第X条 lines. A law is cited by article
(《中华人民共和国劳动合同法》第四十条), so each article becomes one block whose path ends with
its number; chapter and section titles stay in the path's titles for the outline and search.
"""

from __future__ import annotations

import re

from bot.ingest.parse import (
    APPENDIX,
    ARTICLE_LINE,
    CN_NUM,
    Block,
    Notice,
    heading_level,
    is_law,
    parse_text,
    space_articles,
    version_date,
)

FRONT_MATTER = re.compile(r"\A\ufeff?---\n.*?\n---[ \t]*\n", re.S)
COMMENT = re.compile(r"<!--(.*?)-->", re.S)
INFO_END = "INFO END"
MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
ARTICLE = ARTICLE_LINE
NUMBERED_HEADING = re.compile(rf"^(第[{CN_NUM}\d]+(?:分编|编|章|节))[\s\u3000]*(.*)$")
# A paragraph that stops inside a sentence (on a character or a comma) and one that goes on with
# a character: a line break the file's conversion left mid-sentence (劳动合 / 同规定的), never a
# table row (those end and start with figures) nor a title in brackets.
MID_SENTENCE = re.compile(r"[\u4e00-\u9fff，、]$")
GOES_ON = re.compile(r"^[\u4e00-\u9fff]")
INFO_LINE = re.compile(
    r"^(?:19|20)\d{2}\s*年.*(?:通过|修正|修订|公布|施行|执行|发布|印发)"
)


def _strip_markup(text: str) -> list[str]:
    """Lines without front matter and HTML comments.

    An INFO END marker's place is kept as a line of its own so the info block can be cut there.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    text = FRONT_MATTER.sub("", text)
    text = COMMENT.sub(lambda m: f"\n{INFO_END}\n" if INFO_END in m.group(1) else "\n", text)
    lines = [line.strip(" \t\u3000\u00a0\f") for line in text.split("\n")]
    return [line for line in lines if line]


def _heading_parts(text: str) -> tuple[str, str]:
    """'第一章　总则' -> ('第一章', '总则'); an unnumbered heading is all title."""
    m = NUMBERED_HEADING.match(text)
    if m:
        return m.group(1), re.sub(r"[\s\u3000]+", "", m.group(2))
    return "", re.sub(r"[\s\u3000]+", "", text)


def parse_markdown(
    text: str, source: str, fallback_title: str = "", wrapped: bool | None = None
) -> Notice:
    """Parse a Markdown file: a law by its articles, anything else as a notice."""
    lines = space_articles(_strip_markup(text))
    title = ""
    rest: list[str] = []
    for line in lines:
        m = MD_HEADING.match(line)
        if m and len(m.group(1)) == 1 and not title:
            title = re.sub(r"[\s\u3000]+", "", m.group(2))
            continue
        rest.append(line)
    plain = [MD_HEADING.sub(r"\2", x) for x in rest]
    if not is_law(plain):
        body = "\n".join(([title] if title else []) + [x for x in plain if x != INFO_END])
        return parse_text(body, source, fallback_title, wrapped)
    notice = Notice(source=source, title=title or fallback_title or source, kind="law")
    if not title:
        notice.warnings.append("no # title found; using the file name")
    if INFO_END in rest:
        cut = rest.index(INFO_END)
        head, rest = rest[:cut], rest[cut + 1 :]
        notice.info = [x for x in head if not MD_HEADING.match(x)]
        rest = [x for x in head if MD_HEADING.match(x)] + rest
    else:
        while rest and INFO_LINE.match(rest[0]):
            notice.info.append(rest.pop(0))
    rest = [x for x in rest if x != INFO_END]
    notice.date = version_date(notice.info)
    notice.blocks = law_blocks(rest)
    if not notice.blocks:
        notice.warnings.append("no body text found")
    return notice


def law_blocks(lines: list[str]) -> list[Block]:
    """One block per article (its paragraphs and items), plus any preamble under a heading.

    ``lines`` are paragraphs; Markdown headings (``#`` depth = level) or 第X编/章/节 lines open
    the parts, chapters and sections that stand above the articles.
    """
    stack: list[tuple[int, str, str]] = []  # (depth, number, title)
    blocks: list[Block] = []
    article: list[str] = []
    loose: list[str] = []

    def heads() -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(n or t for _, n, t in stack), tuple(t for _, _, t in stack)

    def flush() -> None:
        path, titles = heads()
        if loose:
            kind = "section" if stack else "opening"
            blocks.append(Block(path, titles, tuple(loose), kind))
            loose.clear()
        if article:
            number = ARTICLE.match(article[0])
            assert number is not None
            blocks.append(Block(path + (number.group(0),), titles + ("",), tuple(article),
                                "section"))
            article.clear()

    for line in lines:
        m = MD_HEADING.match(line)
        plain = m.group(2) if m else line
        number, title = _heading_parts(plain)
        appendix = APPENDIX.match(plain) if blocks or article else None
        if appendix:
            number, title = appendix.group(1), ""
        if m or appendix or (number and len(plain) <= 40 and not ARTICLE.match(plain)):
            flush()
            depth = len(m.group(1)) if m else 1 if appendix else _plain_depth(number)
            while stack and stack[-1][0] >= depth:
                stack.pop()
            stack.append((depth, number, title))
        elif ARTICLE.match(line):
            flush()
            article.append(line)
        else:
            paragraphs = article if article else loose
            if paragraphs and _continues(paragraphs[-1], line):
                paragraphs[-1] += line
            else:
                paragraphs.append(line)
    flush()
    return blocks


def _continues(previous: str, line: str) -> bool:
    """``line`` is the rest of ``previous``'s sentence, broken off by a stray line break."""
    return (MID_SENTENCE.search(previous) is not None and GOES_ON.match(line) is not None
            and heading_level(line) is None)


def _plain_depth(number: str) -> int:
    """Depth of a 编/分编/章/节 line in a plain-text law (Markdown gives it by ``#``)."""
    for depth, unit in enumerate(("编", "分编", "章", "节"), start=1):
        if number.endswith(unit) and not (unit == "编" and number.endswith("分编")):
            return depth
    return 5
