"""PDF -> one line per visual line (parse_text repairs the hard wraps), running headers and
footers dropped.

PDF text comes from pypdf rather than pdfminer.six: it is already installed, pure Python and
about four times faster, both return the exact Chinese characters, and pypdf gives one line per
visual line where pdfminer adds a blank line after each. pypdf follows the drawing order, so a
page's footer may come first; running headers and footers are therefore looked for at both ends
of every page.
"""

from __future__ import annotations

import io
import re
from collections import Counter

from pypdf import PdfReader
from pypdf.errors import DependencyError

from bot.ingest.formats.extracted import (
    PROPERTIES_TITLE,
    Extracted,
    UnreadableFile,
    plausible_title,
)
from bot.ingest.formats.text import implausible
from bot.ingest.parse import CN_NUM

EDGE_LINES = 3  # running headers/footers are looked for among a page's first and last lines
DASHES = r"[\s\-—–－―~·]*"
PAGE_NUMBER = re.compile(
    rf"^{DASHES}(?:第\s*)?\d{{1,4}}(?:\s*页)?(?:\s*[/／]\s*\d{{1,4}}|\s*[，,]?\s*共\s*\d{{1,4}}\s*页)?"
    rf"{DASHES}$|^page\s*\d{{1,4}}(?:\s*of\s*\d{{1,4}})?$",
    re.I,
)
CJK = r"\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"
CJK_GAP = re.compile(rf"(?<=[{CJK}])[ \t]+(?=[{CJK}])")
# The space after a leading 第X条 (or 章/节/编) is what tells an article or a heading from a line
# that only mentions one (第三十六条规定的…), so it stays: one space, as the law is printed.
NUMBER_GAP = re.compile(rf"^(第[{CN_NUM}\d]+[条章节编])[ \t\u3000]+(?=\S)")


def close_gaps(line: str) -> str:
    """A PDF's spaces between Chinese characters (letter spacing) closed, except after a
    leading 第X条: an article must stay an article."""
    m = NUMBER_GAP.match(line)
    if m:
        return m.group(1) + " " + CJK_GAP.sub("", line[m.end():])
    return CJK_GAP.sub("", line)


def _running_key(line: str) -> str:
    """Header/footer lines differ from page to page only in their numbers."""
    return re.sub(r"\d+", "#", "".join(line.split()))


def strip_page_furniture(pages: list[list[str]]) -> list[list[str]]:
    """Drop page numbers and the running header/footer lines found at an edge of most pages."""
    edges = [
        set(range(min(EDGE_LINES, len(p)))) | set(range(max(0, len(p) - EDGE_LINES), len(p)))
        for p in pages
    ]
    seen = Counter(
        key for p, e in zip(pages, edges, strict=True) for key in {_running_key(p[i]) for i in e}
    )
    need = max(2, -(-len(pages) // 2))
    running = {k for k, n in seen.items() if n >= need}
    return [
        [line for i, line in enumerate(p)
         if i not in e or not (PAGE_NUMBER.match(line) or _running_key(line) in running)]
        for p, e in zip(pages, edges, strict=True)
    ]


def pdf_text(data: bytes) -> Extracted:
    """A PDF's text layer, one line per visual line, without headers, footers or page numbers."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile("password-protected PDF: save a copy without the password")
        raw = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except UnreadableFile:
        raise
    except DependencyError as exc:
        raise UnreadableFile(f"encrypted PDF that cannot be opened here ({exc})") from None
    except Exception as exc:  # pypdf raises many kinds of error on a damaged file
        raise UnreadableFile(f"damaged PDF, cannot be read ({exc})") from None
    if not raw:
        raise UnreadableFile("PDF with no pages")
    pages = [[s for line in text.splitlines() if (s := line.strip())] for text in raw]
    lines = [close_gaps(line) for page in strip_page_furniture(pages) for line in page]
    text = "\n".join(lines)
    if len("".join(text.split())) < 10:
        raise UnreadableFile("scanned PDF with no text layer: cannot be read (OCR it, or use "
                             "the original Word file)")
    if implausible(text):
        raise UnreadableFile("PDF text layer is garbled (fonts without a Unicode map): use the "
                             "original Word file")
    return Extracted(text, plausible_title(meta_title), PROPERTIES_TITLE)
