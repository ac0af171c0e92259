"""The knowledge folder: which files count, how their bytes become text, and text -> Notice.

Staff drop files into the folder by hand or through a synced share, so temporary and lock files
are skipped, encodings are detected (UTF-8, UTF-8 with BOM, GB18030/GBK) and a broken file is
reported by name instead of stopping everything else.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from bot.parse import DOC_NO, Notice, parse_text

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md"}
SUFFIXES = TEXT_SUFFIXES


class KnowledgeError(ValueError):
    """A knowledge file that cannot be read; the message says which and why."""


def is_candidate(path: Path) -> bool:
    """A file staff meant as a notice: supported extension, not a temp, lock or hidden file."""
    name = path.name
    if name.startswith((".", "~$", ".~lock")) or name.endswith(("~", ".swp", ".tmp", ".part")):
        return False
    return path.suffix.lower() in SUFFIXES


def scan(root: Path) -> list[Path]:
    """Notice files below ``root``, sorted; other files are logged once and skipped."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts[:-1]):
            continue
        if is_candidate(path):
            found.append(path)
        else:
            log.info("knowledge: skipping %s (not a notice file)", rel)
    return found


def _implausible(text: str) -> bool:
    """GB18030 decodes almost any bytes; real Chinese text is mostly common CJK and ASCII."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return False
    odd = sum(1 for c in chars if not (c.isascii() or "\u4e00" <= c <= "\u9fff"
                                       or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef"
                                       or c in "“”‘’—…·《》〔〕"))
    return odd / len(chars) > 0.2


def decode(data: bytes, name: str) -> str:
    """Bytes -> text, trying UTF-8 (with or without BOM) and then GB18030."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == "gb18030" and _implausible(text):
            break
        return text
    raise KnowledgeError(f"{name}: not valid UTF-8 or GBK/GB18030 text")


def title_from_name(path: Path) -> str:
    """A fallback title: the file name without a leading 文号."""
    return DOC_NO.sub("", path.stem).strip(" _-") or path.stem


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_notice(path: Path, root: Path, data: bytes | None = None) -> Notice:
    """Parse one knowledge file (``data`` if already read) into a Notice.

    Raises KnowledgeError with the file name and a reason staff can act on.
    """
    rel = path.relative_to(root).as_posix()
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise KnowledgeError(f"{rel}: cannot read ({exc.strerror})") from exc
    if not data.strip():
        raise KnowledgeError(f"{rel}: empty file")
    text = decode(data, rel)
    notice = parse_text(text, rel, title_from_name(path))
    if not notice.doc_no:
        m = DOC_NO.search(path.stem)
        notice.doc_no = re.sub(r"\s+", "", m.group(0)) if m else ""
    return notice
