"""Notice blocks -> Passages: the units that are embedded, retrieved and quoted word for word.

A passage's ``text`` is the original wording; ``search_text`` adds the section titles (and, for
the metadata passage, the names of its fields) so that retrieval sees the context a reader sees.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass

from bot.ingest.parse import ARTICLE_NUMBER, Block, Notice, citation_section

MAX_CHARS = 400
COUNTRY = "中华人民共和国"
# 关于 + the 事由 + 的 + the document type (通知, 实施办法 …: short, no 的): GB/T 9704's title.
TOPIC = re.compile(r"关于(.+)的[^的]{1,6}$")
SENTENCE = re.compile(r".+?(?:[。！？；!?;][”’」』）)]*|$)", re.S)
# Names of the metadata fields and the words people use for them, so they can be found.
META_WORDS = (
    "文号 发文字号 文件编号 发文单位 发文机关 落款单位 成文日期 发文日期 发文时间 发布日期 "
    "印发日期 主送单位 主送机关 发送对象 下发范围 通过日期 施行日期 生效时间 修正 修订 公布"
)


@dataclass(frozen=True)
class Passage:
    """One quotable passage with everything needed to cite it."""

    id: str
    source: str
    doc_title: str
    doc_no: str
    path: tuple[str, ...]
    section_titles: tuple[str, ...]
    kind: str  # meta | opening | section | closing | ending
    text: str
    search_text: str
    content_hash: str

    @property
    def section(self) -> str:
        return "".join(self.path)

    @property
    def section_title(self) -> str:
        return self.section_titles[-1] if self.section_titles else ""

    @property
    def citation(self) -> str:
        """《title》（文号）第二部分（四）: where the passage stands in the notice."""
        doc_no = f"（{self.doc_no}）" if self.doc_no else ""
        where = {"meta": "文件信息", "opening": "开头部分", "ending": "结尾部分"}.get(self.kind, "")
        return f"《{self.doc_title}》{doc_no}{citation_section(self.path) or where}"

    @property
    def is_article(self) -> bool:
        """Whether the passage is a law's article (or a piece of one): 第X条 ends its path."""
        return bool(self.path) and ARTICLE_NUMBER.fullmatch(self.path[-1]) is not None

    @property
    def keyword_text(self) -> str:
        """The keyword signal's fields: the document title and headings above the text, so a
        question's topic can match the document or chapter while its intent matches the text."""
        return f"{self.doc_title}\n{self.search_text}"

    @property
    def dense_text(self) -> str:
        """What is embedded: the passage with what its document is about, so that a question's
        topic (疗休养, 劳动合同法) matches all of the document's passages alike and its intent
        (报名) decides among them. A notice's passage keeps its titles; a law's article has no
        chapter titles (they only blurred it, measured on real questions)."""
        if self.kind == "meta":
            return self.search_text
        topic = document_topic(self.doc_title)
        if self.is_article:
            return f"{topic}\n{self.text}"
        return f"{topic}\n{self.search_text}"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Passage:
        data = dict(data)
        data["path"] = tuple(data["path"])
        data["section_titles"] = tuple(data["section_titles"])
        return cls(**data)


def document_topic(title: str) -> str:
    """What a document is about: the 事由 of an official title 《（发文机关）关于事由的文种》
    (开展2024年度职工疗休养活动), else the title without 中华人民共和国 (劳动合同法). The issuer,
    the document type and the state's name are shared by many documents: they say nothing."""
    title = short_title(title)
    found = TOPIC.search(title)
    return found.group(1) if found else title


def short_title(title: str) -> str:
    """劳动合同法 for 中华人民共和国劳动合同法: the name people use."""
    return title.removeprefix(COUNTRY)


def split_sentences(text: str) -> list[str]:
    return [s for s in SENTENCE.findall(text) if s]


MIN_SENTENCE = 4  # shorter pieces (（一）, 第二条) say nothing on their own


def sentences(passage: Passage) -> list[str]:
    """The passage's sentences, each embedded too: a question about one fact (a phone
    number, a deadline) matches its sentence better than the whole passage. Empty when the
    passage is one sentence: its own vector already says it."""
    found = [s.strip() for para in passage.text.split("\n") for s in split_sentences(para)]
    found = [s for s in found if len(s) >= MIN_SENTENCE]
    return found if len(found) > 1 else []


def _chunks(paragraphs: tuple[str, ...], limit: int = MAX_CHARS) -> list[str]:
    """Join paragraphs; cut a long block at sentence ends into near-equal pieces ≤ limit."""
    whole = "\n".join(paragraphs)
    if len(whole) <= limit:
        return [whole]
    units: list[str] = []
    for i, para in enumerate(paragraphs):
        sentences = split_sentences(para)
        if i:
            sentences[0] = "\n" + sentences[0]
        units += sentences
    pieces = -(-len(whole) // limit)
    target = len(whole) / pieces
    chunks: list[str] = []
    current = ""
    for unit in units:
        if current and (len(current) + len(unit) > limit or len(current) >= target):
            chunks.append(current)
            current = unit.lstrip("\n")
        else:
            current += unit
    return chunks + [current] if current else chunks


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def _passage(notice: Notice, block: Block, text: str, part: int, search: str) -> Passage:
    path_key = "/".join(block.path)
    return Passage(
        id=_digest(notice.source, block.kind, path_key, str(part))[:16],
        source=notice.source,
        doc_title=notice.title,
        doc_no=notice.doc_no,
        path=block.path,
        section_titles=block.titles,
        kind=block.kind,
        text=text,
        search_text=search,
        content_hash=_digest(notice.title, search),
    )


def metadata_block(notice: Notice) -> Block | None:
    """The notice's header and signature as a passage, so '文号是多少' can be answered."""
    fields = [
        ("标题", f"《{notice.title}》"),
        ("文号", notice.doc_no),
        ("发文单位", notice.issuer),
        ("成文日期", notice.date),
        ("主送", notice.addressees),
        ("印发", notice.printed),
    ]
    lines = tuple(f"{name}：{value}" for name, value in fields if value and name != "成文日期"
                  or name == "成文日期" and value and not notice.info) + tuple(notice.info)
    if len(lines) <= 1:
        return None
    return Block((), (), lines, "meta")


def outline(notice: Notice) -> dict:
    """How a notice will be cited: metadata and one line per passage (CLI and admin page)."""
    return {
        "title": notice.title, "kind": notice.kind, "doc_no": notice.doc_no,
        "issuer": notice.issuer, "date": notice.date, "addressees": notice.addressees,
        "printed": notice.printed, "info": list(notice.info), "warnings": list(notice.warnings),
        "passages": [
            {"section": p.section, "kind": p.kind, "section_title": p.section_title,
             "headings": headings(p), "chars": len(p.text), "citation": p.citation}
            for p in notice_passages(notice)
        ],
    }


def headings(passage: Passage) -> list[str]:
    """The parts, chapters and sections above a law's article: ['第四章 劳动合同的解除和终止']."""
    if not passage.is_article:
        return []
    pairs = zip(passage.path[:-1], passage.section_titles[:-1], strict=True)
    return [f"{n} {t}" if n != t else n for n, t in pairs]


def notice_passages(notice: Notice) -> list[Passage]:
    """All passages of a notice, metadata first, in document order."""
    passages: list[Passage] = []
    meta = metadata_block(notice)
    if meta:
        text = "\n".join(meta.paragraphs)
        passages.append(_passage(notice, meta, text, 0, f"{META_WORDS}\n{text}"))
    for block in notice.blocks:
        for part, text in enumerate(_chunks(block.paragraphs)):
            titles = "；".join(t for t in block.titles if t and t not in text)
            search = f"{titles}\n{text}" if titles else text
            passages.append(_passage(notice, block, text, part, search))
    return passages
