"""Word .docx -> one line per paragraph, with the numbering Word shows (一、（一）1.) written
out, since notices are often numbered by Word's lists rather than by hand."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import docx
from docx.document import Document as WordDocument
from lxml import etree

from bot.ingest.formats.extracted import (
    PROPERTIES_TITLE,
    Extracted,
    UnreadableFile,
    plausible_title,
)
from bot.ingest.formats.word_numbering import NS, Lists, W, chinese_number, to_int, val
from bot.ingest.parse import TERMINAL, heading_level

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .doc/.wps: Office's pre-2007 binary format


TITLE_STYLES = {"title", "标题"}
HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.I)
# Markers for headings that Word does not number, by depth, as notices number them by hand.
HEADING_MARKERS = ("{cn}、", "（{cn}）", "{n}.", "（{n}）")

@dataclass
class _Style:
    id: str
    name: str
    based_on: str | None
    num_id: str | None
    ilvl: int | None
    outline: int | None


def _read_styles(root: etree._Element) -> tuple[dict[str, _Style], str | None]:
    """Styles by id, and the default paragraph style's id."""
    styles: dict[str, _Style] = {}
    default = None
    for el in root.findall("w:style", NS):
        style_id = el.get(f"{W}styleId") or ""
        ppr = el.find("w:pPr", NS)
        styles[style_id] = _Style(
            id=style_id,
            name=(val(el, "w:name") or style_id).strip().lower(),
            based_on=val(el, "w:basedOn"),
            num_id=val(ppr, "w:numPr/w:numId"),
            ilvl=to_int(val(ppr, "w:numPr/w:ilvl")),
            outline=to_int(val(ppr, "w:outlineLvl")),
        )
        if el.get(f"{W}type") == "paragraph" and el.get(f"{W}default") in ("1", "true"):
            default = style_id
    return styles, default


def _style_chain(styles: dict[str, _Style], style_id: str | None) -> Iterator[_Style]:
    """A style and the styles it is based on, nearest first."""
    seen: set[str] = set()
    while style_id and style_id in styles and style_id not in seen:
        seen.add(style_id)
        yield styles[style_id]
        style_id = styles[style_id].based_on


def _paragraph_text(p: etree._Element) -> str:
    """The text Word shows: runs (also inside hyperlinks, fields and tracked insertions),
    without deleted text, text boxes or field codes."""
    parts: list[str] = []
    for el in p.iterfind(".//w:r/*", NS):
        if any(a.tag in (f"{W}del", f"{W}moveFrom", f"{W}txbxContent", f"{{{NS['mc']}}}Fallback")
               for a in el.iterancestors()):
            continue
        if el.tag == f"{W}t":
            parts.append(el.text or "")
        elif el.tag == f"{W}tab":
            parts.append(" ")
        elif el.tag == f"{W}noBreakHyphen":
            parts.append("-")
        elif el.tag in (f"{W}br", f"{W}cr") and el.get(f"{W}type") in (None, "textWrapping"):
            parts.append("\n")
    return "".join(parts)


def _body_items(parent: etree._Element) -> Iterator[etree._Element]:
    """Paragraphs and tables in document order, also inside content controls."""
    for child in parent:
        if child.tag in (f"{W}p", f"{W}tbl"):
            yield child
        elif child.tag in (f"{W}sdt", f"{W}customXml"):
            content = child.find("w:sdtContent", NS) if child.tag == f"{W}sdt" else child
            if content is not None:
                yield from _body_items(content)


def _table_rows(tbl: etree._Element) -> list[str]:
    """One line per row, cells joined by " | "; nested tables are flattened into their cell."""
    rows = []
    for tr in tbl.iterfind("w:tr", NS):
        cells = []
        for tc in tr.iterfind("w:tc", NS):
            paragraphs = (_paragraph_text(p) for p in tc.iterfind(".//w:p", NS))
            cells.append(" ".join(" ".join(t.split()) for t in paragraphs if t.strip()))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


@dataclass
class _Paragraph:
    text: str
    style: str  # lower-case style name
    marker: str = ""  # from Word's list numbering
    heading: int | None = None  # outline level of an unnumbered heading style


def _read_paragraphs(document: WordDocument) -> list[_Paragraph]:
    """The document's non-empty paragraphs and table rows, with their list numbers rendered."""
    styles, default_style = _read_styles(document.styles.element)
    try:
        numbering = document.part.numbering_part.element
    except (KeyError, NotImplementedError):
        numbering = None
    lists = Lists.read(numbering, styles)
    out: list[_Paragraph] = []
    for item in _body_items(document.element.body):
        if item.tag == f"{W}tbl":
            out += [_Paragraph(row, "") for row in _table_rows(item)]
            continue
        ppr = item.find("w:pPr", NS)
        style_id = val(ppr, "w:pStyle") or default_style
        chain = list(_style_chain(styles, style_id))
        num_id = val(ppr, "w:numPr/w:numId")
        ilvl = to_int(val(ppr, "w:numPr/w:ilvl"))
        from_style = next((s for s in chain if s.num_id), None)
        if num_id is None and from_style:
            num_id = from_style.num_id or ""
            if ilvl is None:
                ilvl = from_style.ilvl
            if ilvl is None:
                ilvl = lists.level_for_style(num_id, {s.id for s in chain})
        marker = lists.marker(num_id, ilvl or 0) if num_id and num_id != "0" else ""
        text = _paragraph_text(item)
        if text.strip():
            outline = to_int(val(ppr, "w:outlineLvl"))
            outline = next((o for o in [outline, *map(_outline, chain)] if o is not None), None)
            heading = outline if outline is not None and outline < 9 and not marker else None
            out.append(_Paragraph(text, chain[0].name if chain else "", marker, heading))
    return out


def _outline(style: _Style) -> int | None:
    """A style's outline level: its w:outlineLvl, or N-1 for a style named Heading N."""
    m = HEADING_STYLE.match(style.name)
    return style.outline if style.outline is not None or not m else int(m.group(1)) - 1


def _is_header_line(p: _Paragraph) -> bool:
    """A short line that may stand above a title: 文号, issuer's red head, 签发人."""
    text = p.text.strip()
    return len(text) <= 40 and text[-1] not in TERMINAL and not p.marker and p.heading is None


def _is_title(p: _Paragraph) -> bool:
    return p.style in TITLE_STYLES


def _is_heading_title(p: _Paragraph) -> bool:
    return p.heading == 0 and not heading_level(p.text.strip())


def _title_run(paragraphs: list[_Paragraph]) -> tuple[int, int]:
    """Where the title is, by style: the first run of Title paragraphs near the top, else an
    unnumbered top-level heading above any body text (Heading 1 is often used for the title)."""
    wanted: Callable[[_Paragraph], bool] = _is_title
    start = next((i for i, p in enumerate(paragraphs[:5]) if _is_title(p)), None)
    if start is None:
        wanted = _is_heading_title
        start = next((i for i, p in enumerate(paragraphs[:4]) if not _is_header_line(p)), None)
        if start is None or not wanted(paragraphs[start]):
            return 0, 0
    end = start
    while end < len(paragraphs) and wanted(paragraphs[end]):
        end += 1
    return start, end


def _number_headings(paragraphs: list[_Paragraph]) -> None:
    """Give unnumbered heading-style paragraphs the marker their depth has in a notice."""
    depths = sorted({p.heading for p in paragraphs if p.heading is not None})
    counts = [0] * len(depths)
    for p in paragraphs:
        if p.heading is None:
            continue
        depth = depths.index(p.heading)
        counts[depth] += 1
        counts[depth + 1 :] = [0] * (len(counts) - depth - 1)
        if depth < len(HEADING_MARKERS) and not heading_level(p.text.strip()):
            n = counts[depth]
            p.marker = HEADING_MARKERS[depth].format(cn=chinese_number(n), n=n)




def docx_text(data: bytes) -> Extracted:
    """A Word document's paragraphs and table rows in order, one per line, with list numbers."""
    if data.startswith(OLE_MAGIC):
        raise UnreadableFile("an old Word .doc/.wps file renamed to .docx: save it as .docx")
    try:
        document = docx.Document(io.BytesIO(data))
        paragraphs = _read_paragraphs(document)
        core_title = document.core_properties.title
    except zipfile.BadZipFile:
        raise UnreadableFile("not a .docx file (damaged, or another format renamed)") from None
    except (KeyError, ValueError, etree.XMLSyntaxError) as exc:
        raise UnreadableFile(f"damaged .docx file ({exc})") from None
    start, end = _title_run(paragraphs)
    title = "".join(p.text.strip() for p in paragraphs[start:end])
    body = paragraphs[:start] + paragraphs[end:]
    _number_headings(body)
    lines = [
        line
        for p in body
        for i, part in enumerate(p.text.split("\n"))
        if (line := ((p.marker if i == 0 else "") + part).strip())
    ]
    if not lines and not title:
        raise UnreadableFile("no text in the document")
    if title:
        return Extracted("\n".join(lines), title, wrapped=False)
    return Extracted("\n".join(lines), plausible_title(core_title), PROPERTIES_TITLE, False)


# --- PDF ------------------------------------------------------------------------------------
