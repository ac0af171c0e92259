"""A knowledge file's bytes -> text lines for ``bot.ingest.parse.parse_text``, whatever its format.

Each reader keeps the document's own wording and gives ``parse_text`` what it expects: one line
per paragraph (.docx, and .txt/.md written that way) or one line per visual line (.pdf, and text
copied out of a PDF), whose hard wraps ``parse_text`` repairs. A new format is one module here
and one line in READERS.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.ingest.formats.docx import docx_text
from bot.ingest.formats.extracted import PROPERTIES_TITLE, Extracted, UnreadableFile
from bot.ingest.formats.pdf import pdf_text, strip_page_furniture
from bot.ingest.formats.text import decode_text

__all__ = ["PROPERTIES_TITLE", "READERS", "SUFFIXES", "Extracted", "UnreadableFile",
           "decode_text", "docx_text", "extract_text", "pdf_text", "strip_page_furniture"]


def _plain(data: bytes) -> Extracted:
    return Extracted(decode_text(data))


READERS: dict[str, Callable[[bytes], Extracted]] = {
    ".txt": _plain, ".md": _plain, ".docx": docx_text, ".pdf": pdf_text,
}
SUFFIXES = set(READERS)


def extract_text(data: bytes, suffix: str) -> Extracted:
    """Dispatch on the (lower-case) suffix; raise UnreadableFile with a reason staff can act on."""
    reader = READERS.get(suffix)
    if reader is None:
        raise UnreadableFile(f"unsupported file type {suffix or '(none)'}")
    return reader(data)
