"""What every reader returns, and the error it raises for a file it cannot read."""

from __future__ import annotations

from dataclasses import dataclass

PROPERTIES_TITLE = "no title found in the text; using the title in the document properties"


class UnreadableFile(ValueError):
    """Why a file's bytes cannot become text; the caller adds the file's name."""


@dataclass(frozen=True)
class Extracted:
    """A file's text, plus a title the file declares outside its body text (if any)."""

    text: str
    title: str = ""
    title_warning: str = ""  # set when ``title`` is only a guess, for staff to check
    # False when every line is a whole paragraph (.docx), so no hard-wrap repair may join
    # them; None lets parse_text judge. (parse_text does not take this hint yet.)
    wrapped: bool | None = None


def plausible_title(title: str | None) -> str:
    """A document-properties title, unless it is a leftover like "Microsoft Word - 1.doc"."""
    title = " ".join((title or "").split())
    cjk = sum(1 for c in title if "\u4e00" <= c <= "\u9fff")
    return title if cjk >= 4 and len(title) <= 100 and "Microsoft" not in title else ""
