"""The knowledge folder: which files count, and file -> Notice.

Staff drop files into the folder by hand or through a synced share, so temporary, lock and hidden
files are skipped, and a broken file is reported by name instead of stopping everything else.
Turning a file's bytes into text (encodings, .docx, .pdf) is ``bot.ingest.formats``' job.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from bot.ingest.formats import SUFFIXES, UnreadableFile, extract_text
from bot.ingest.lawtext import parse_markdown
from bot.ingest.parse import DOC_NO, Notice, parse_text

log = logging.getLogger(__name__)

OLD_OFFICE = {".doc", ".wps"}  # binary formats staff can re-save as .docx


class KnowledgeError(ValueError):
    """A knowledge file that cannot be read; the message says which and why."""


def skip_reason(path: Path) -> str | None:
    """Why a file is not a notice (temporary, lock, hidden, other type), or None if it is one."""
    name = path.name
    if name.startswith((".", "~")) or name.endswith(("~", ".swp", ".tmp", ".part", "#")):
        return "temporary, lock or hidden file"
    suffix = path.suffix.lower()
    if suffix in OLD_OFFICE:
        return f"old {suffix} format: save it as .docx to include it"
    if suffix not in SUFFIXES:
        return "not a notice file type (.txt .md .docx .pdf)"
    return None


def is_candidate(path: Path) -> bool:
    """A file staff meant as a notice: supported extension, not a temp, lock or hidden file."""
    return skip_reason(path) is None


def scan(root: Path) -> list[Path]:
    """Notice files below ``root``, sorted; other files are logged and skipped."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts[:-1]):
            continue
        reason = skip_reason(path)
        if reason:
            log.info("knowledge: skipping %s (%s)", rel, reason)
        else:
            found.append(path)
    return found


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
    try:
        doc = extract_text(data, path.suffix.lower())
    except UnreadableFile as exc:
        raise KnowledgeError(f"{rel}: {exc}") from exc
    if path.suffix.lower() == ".md":
        notice = parse_markdown(doc.text, rel, doc.title or title_from_name(path), doc.wrapped)
    else:
        notice = parse_text(doc.text, rel, doc.title or title_from_name(path), doc.wrapped)
    untitled = [w for w in notice.warnings if w.startswith("no title")]
    if doc.title and untitled:
        # parse_text found no title line and took the file's own: its warning blames the name.
        notice.warnings = [w for w in notice.warnings if w not in untitled]
        if doc.title_warning:
            notice.warnings.insert(0, doc.title_warning)
    if not notice.doc_no:
        m = DOC_NO.search(path.stem)
        notice.doc_no = re.sub(r"\s+", "", m.group(0)) if m else ""
    return notice
