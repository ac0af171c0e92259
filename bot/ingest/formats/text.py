"""Plain text (.txt, .md): UTF-8 or GBK/GB18030 bytes -> text, refusing what is not text."""

from __future__ import annotations

import codecs
import unicodedata

from bot.ingest.formats.extracted import UnreadableFile


def _odd(char: str, legacy: bool) -> bool:
    """A character that real notice text hardly ever contains."""
    category = unicodedata.category(char)
    if category in ("Cc", "Co", "Cn", "Cs") or char == "\ufffd":
        return True
    if not legacy or char.isascii() or category[0] != "L":
        return False
    try:
        code = char.encode("gb2312")
    except UnicodeEncodeError:
        return True
    # GB2312 level 2 (lead byte >= 0xD8) holds rare characters: scarce in real text, but the
    # bulk of what other encodings (Big5, Shift-JIS, binary) turn into when read as GBK.
    return code[0] >= 0xD8


def implausible(text: str, legacy: bool = False) -> bool:
    """True when the text is unlikely to be what its author wrote: controls, private-use
    characters, or (for a legacy GBK decode, which accepts almost any bytes) rare characters."""
    chars = [c for c in text if not c.isspace()]
    odd = sum(1 for c in chars if _odd(c, legacy))
    return odd >= 3 and odd > 0.25 * len(chars)


def decode_text(data: bytes) -> str:
    """Bytes -> text: UTF-8 (with or without BOM), else GB18030 (a superset of GBK/GB2312)."""
    zeros = (data[0::2].count(0), data[1::2].count(0))
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
        abs(zeros[0] - zeros[1]) > len(data) // 8 > 0
    ):
        raise UnreadableFile("UTF-16 text is not supported: save it as UTF-8")
    if b"\x00" in data:
        raise UnreadableFile("binary data, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as utf8_error:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as gb_error:
            where = max(utf8_error.start, gb_error.start)
            raise UnreadableFile(
                f"not UTF-8 or GBK/GB18030 text (bad byte at offset {where}): save it as UTF-8"
            ) from None
        if implausible(text, legacy=True):
            raise UnreadableFile(
                "reads as GBK only as garbled characters (wrong encoding?): save it as UTF-8"
            ) from None
        return text
    if implausible(text):
        raise UnreadableFile("binary data, not text")
    return text


# --- Word .docx -----------------------------------------------------------------------------
