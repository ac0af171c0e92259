"""Build, save and load the index: passages, their embeddings, FAISS and the keyword index.

Builds are incremental: a file whose bytes are unchanged is not re-parsed, and a passage whose
content hash is unchanged is not re-embedded. Each build is written to a fresh folder and made
current by atomically replacing the ``CURRENT`` pointer, so a crash never leaves a half index.

Several writers may share one index folder (instances' watchers, `bot index` beside `bot
serve`): an flock on ``.lock`` serialises switching ``CURRENT`` and deleting old versions, and
readers hold it shared while they load, so the version ``CURRENT`` names, and a version being
read, are never deleted. A version is written as ``tmp-*`` and renamed to ``v-*`` only under the
lock, so no writer deletes another's version in progress.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

from bot.ingest.knowledge import KnowledgeError, file_digest, read_notice, scan
from bot.ingest.passages import Passage, notice_passages, sentences
from bot.search.embed import Embedder
from bot.search.keyword import KeywordIndex

log = logging.getLogger(__name__)
FORMAT = 8  # bump whenever parsing, passage text, what is embedded or keyword tokens change
HNSW_EF_SEARCH, IVF_NPROBE = 128, 16  # recall 0.991 and 0.794 at 100k (BENCHMARKS.md)


class IndexUnusable(RuntimeError):
    """The index on disk is missing, corrupt or built with another model: rebuild it."""


@dataclass
class FileRecord:
    """What the index knows of one knowledge file (shown to admins)."""

    sha256: str
    title: str = ""
    doc_no: str = ""
    date: str = ""
    passages: int = 0
    indexed_at: str = ""
    warnings: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class BuildReport:
    documents: int = 0
    passages: int = 0
    embedded: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.failed)

    def summary(self) -> str:
        return (
            f"{self.documents} documents, {self.passages} passages, {self.embedded} embedded; "
            f"added {len(self.added)}, changed {len(self.changed)}, removed {len(self.removed)}, "
            f"failed {len(self.failed)}; {self.seconds:.1f} s"
        )


def ann_index(vectors: np.ndarray, kind: str = "flat") -> faiss.Index:
    """The FAISS index over unit vectors (inner product = cosine).

    flat is exact and fast enough for thousands of passages; hnsw and ivf trade a little
    recall for speed on very large collections (see BENCHMARKS.md for the measured recall).
    """
    n, dim = vectors.shape[0], max(vectors.shape[1], 1)
    index: faiss.Index
    if kind == "hnsw" and n:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf" and n >= 1000:
        lists = int(4 * np.sqrt(n))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        ivf.train(vectors)
        ivf.nprobe = IVF_NPROBE
        index = ivf
    elif kind in ("flat", "hnsw", "ivf"):
        index = faiss.IndexFlatIP(dim)
    else:
        raise ValueError(f"[index] type must be flat, hnsw or ivf, not {kind!r}")
    if n:
        index.add(vectors)
    return index


class Index:
    """Everything a query needs, loaded once and then only read (a rebuild makes a new one)."""

    def __init__(
        self, model: str, passages: list[Passage], vectors: np.ndarray,
        files: dict[str, FileRecord], built_at: str = "", kind: str = "flat",
        tokens: dict[str, list[str]] | None = None,
        sentences: tuple[np.ndarray, np.ndarray] | None = None,
        keyword: KeywordIndex | None = None,
        ann: faiss.Index | None = None,
    ) -> None:
        """``tokens`` maps content hashes to keyword tokens already known (not re-tokenised);
        ``sentences`` is (rows, start): passage i's sentence vectors are rows[start[i]:start[i+1]];
        ``keyword`` and ``ann`` are the keyword and FAISS indexes of exactly these passages,
        loaded ready-made."""
        self.model = model
        self.passages = passages
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.files = files
        self.built_at = built_at or datetime.now(UTC).isoformat(timespec="seconds")
        self.dim = int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0
        self.kind = kind
        self.faiss = ann or ann_index(self.vectors if self.vectors.ndim == 2  # 0 passages
                                      else self.vectors.reshape(len(passages), -1), kind)
        known = tokens or {}
        self.keyword = keyword or KeywordIndex([p.keyword_text for p in passages],
                                               tokens=[known.get(p.content_hash) for p in passages])
        # Without sentence vectors (the reference laws) a passage's own cosine stands alone.
        self.has_sentences = sentences is not None
        rows, start = sentences or (np.zeros((0, self.dim), np.float16),
                                    np.zeros(len(passages) + 1, np.int64))
        # float16: sentences are several per passage; the cosines need no more precision.
        self.sentences = rows.astype(np.float16, copy=False)
        self.sentence_start = start.astype(np.int64, copy=False)

    def sentence_vectors(self, i: int) -> np.ndarray:
        return self.sentences[self.sentence_start[i]:self.sentence_start[i + 1]]

    def sentence_cosine(self, ids: np.ndarray, vector: np.ndarray,
                        own: np.ndarray) -> np.ndarray:
        """Each passage's best sentence cosine with ``vector``; ``own`` (the passages' own
        cosines, which the caller has already) stands for a passage without sentences."""
        best = own.copy()
        starts, ends = self.sentence_start[ids], self.sentence_start[ids + 1]
        counts = ends - starts
        has = counts > 0
        if not has.any():
            return best
        first = np.cumsum(counts) - counts
        rows = np.repeat(starts - first, counts) + np.arange(int(counts.sum()))
        sims = self.sentences[rows].astype(np.float32) @ vector
        best[has] = np.maximum.reduceat(sims, first[has])
        return best

    def _rows(self, wanted: set[str]) -> list[tuple[int, str]]:
        return [(i, p.content_hash) for i, p in enumerate(self.passages)
                if p.content_hash in wanted]

    def vectors_by_hash(self, wanted: set[str]) -> dict[str, np.ndarray]:
        """The vectors of the ``wanted`` passages (by content hash) this index holds."""
        return {h: self.vectors[i] for i, h in self._rows(wanted)}

    def tokens_by_hash(self, wanted: set[str]) -> dict[str, list[str]]:
        return {h: self.keyword.tokens_of(i) for i, h in self._rows(wanted)}

    def sentences_by_hash(self, wanted: set[str]) -> dict[str, np.ndarray]:
        return {h: self.sentence_vectors(i) for i, h in self._rows(wanted)}


def _collect(
    root: Path, previous: Index | None, report: BuildReport
) -> tuple[list[Passage], dict[str, FileRecord]]:
    """Parse new and changed files; reuse what is known of unchanged ones."""
    old_files = previous.files if previous else {}
    old_passages: dict[str, list[Passage]] = {}
    for p in previous.passages if previous else []:
        old_passages.setdefault(p.source, []).append(p)
    passages: list[Passage] = []
    files: dict[str, FileRecord] = {}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if not root.is_dir() or not os.access(root, os.R_OK | os.X_OK):
        # Never read a vanished or unreadable folder as "every notice was deleted".
        raise KnowledgeError(f"knowledge folder {root} is missing or unreadable")
    for path in scan(root):
        rel = path.relative_to(root).as_posix()
        data: bytes | None
        try:
            data = path.read_bytes()
            digest = file_digest(data)
        except OSError:
            data, digest = None, "unreadable"  # read_notice below says why
        old = old_files.get(rel)
        if old and old.sha256 == digest and not old.error:
            files[rel] = old
            passages += old_passages.get(rel, [])
            continue
        try:
            notice = read_notice(path, root, data)
            found = notice_passages(notice)
        except Exception as exc:  # one bad file must never stop the others
            reason = str(exc) if isinstance(exc, KnowledgeError) else f"{rel}: {exc!r}"
            log.error("knowledge: %s", reason)
            report.failed.append(rel)
            # Keep serving the last good version of this file, if there was one.
            kept = old_passages.get(rel, [])
            passages += kept
            files[rel] = FileRecord(
                digest, old.title if old else "", old.doc_no if old else "",
                old.date if old else "", len(kept), now, [], reason,
            )
            continue
        (report.changed if old else report.added).append(rel)
        for warning in notice.warnings:
            log.warning("knowledge: %s: %s", rel, warning)
        files[rel] = FileRecord(
            digest, notice.title, notice.doc_no, notice.date, len(found), now, notice.warnings
        )
        passages += found
    report.removed = sorted(set(old_files) - set(files))
    return passages, files


def build_index(
    knowledge_dir: Path, embedder: Embedder, previous: Index | None = None,
    progress: bool = False, kind: str | None = None, donor: Index | None = None,
    with_sentences: bool = True,
) -> tuple[Index, BuildReport]:
    """A new Index over the knowledge folder, re-embedding only passages that changed.

    ``donor`` is another index of the same model (the reference laws) whose passages are
    reused by content hash too: a labour law copied into the folder is not embedded again.
    ``with_sentences=False`` embeds no sentence vectors (the reference laws: BENCHMARKS.md).
    """
    started = time.perf_counter()
    report = BuildReport()
    if previous is not None and previous.model != embedder.name:
        previous = None
    passages, files = _collect(knowledge_dir, previous, report)
    passages = _distinct(passages)
    sources = [i for i in (donor, previous) if i is not None and i.model == embedder.name]
    wanted = {p.content_hash for p in passages}
    known = {h: v for i in sources for h, v in i.vectors_by_hash(wanted).items()}
    missing = list(dict.fromkeys(p.content_hash for p in passages if p.content_hash not in known))
    if missing:
        texts = {p.content_hash: p.dense_text for p in passages}
        vectors = embedder.encode_passages([texts[h] for h in missing], progress=progress)
        known.update(zip(missing, vectors, strict=True))
    matrix = (
        np.stack([known[p.content_hash] for p in passages]) if passages
        else np.zeros((0, embedder.dim), dtype=np.float32)
    )
    index = Index(embedder.name, passages, matrix, files,
                  kind=kind or (previous.kind if previous else "flat"),
                  tokens={h: t for i in sources for h, t in i.tokens_by_hash(wanted).items()},
                  sentences=_sentence_vectors(passages, embedder, sources, wanted, progress)
                  if with_sentences else None)
    report.documents = sum(1 for f in files.values() if f.passages)
    report.passages = len(passages)
    report.embedded = len(missing)
    report.seconds = time.perf_counter() - started
    return index, report


def _distinct(passages: list[Passage]) -> list[Passage]:
    """The first of identical passages of one document (the 民法典's part files each carry
    the same metadata): a repeat would only crowd the hits with the same text."""
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for p in passages:
        key = (p.doc_title, p.kind, p.text)
        if key not in seen:
            seen.add(key)
            kept.append(p)
    return kept


def stack_sentences(per: list[np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-passage sentence vectors -> (rows, start) as the Index keeps them."""
    counts = np.array([len(v) for v in per], dtype=np.int64)
    rows = np.concatenate(per) if counts.sum() else np.zeros((0, dim), np.float16)
    return rows.astype(np.float16), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _sentence_vectors(passages: list[Passage], embedder: Embedder, sources: list[Index],
                      wanted: set[str], progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each passage's sentence vectors, embedding only those of passages no source holds (a
    source without sentence vectors holds none)."""
    known = {h: v for i in sources if i.has_sentences
             for h, v in i.sentences_by_hash(wanted).items()}
    texts = {p.content_hash: sentences(p) for p in passages if p.content_hash not in known}
    flat = [s for found in texts.values() for s in found]
    if flat:
        vectors = embedder.encode_passages(flat, progress=progress).astype(np.float16)
        start = 0
        for digest, found in texts.items():
            known[digest] = vectors[start:start + len(found)]
            start += len(found)
    empty = np.zeros((0, embedder.dim), np.float16)
    return stack_sentences([known.get(p.content_hash, empty) for p in passages], embedder.dim)


LOCK_FILE = ".lock"
STALE_TMP_SECONDS = 3600.0  # a tmp-* folder this old belongs to a builder that crashed


@contextlib.contextmanager
def index_lock(index_dir: Path, exclusive: bool) -> Iterator[None]:
    """Exclusive to switch versions and delete old ones, shared to load. A read-only index
    folder (nobody can write it) is read without the lock."""
    try:
        handle = open(index_dir / LOCK_FILE, "a+b")
    except OSError:
        if exclusive:
            raise
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prune(index_dir: Path, keep: str) -> None:
    """Delete versions other than ``keep`` and tmp folders of crashed builders (lock held)."""
    for old in index_dir.glob("v-*"):
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in index_dir.glob("tmp-*"):
        with contextlib.suppress(OSError):
            if time.time() - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                shutil.rmtree(tmp, ignore_errors=True)


def save_index(index: Index, index_dir: Path) -> Path:
    """Write a new version folder, then atomically point ``CURRENT`` at it (under the lock)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="tmp-", dir=index_dir))
    manifest = {
        "format": FORMAT,
        "model": index.model,
        "dim": index.dim,
        "count": len(index.passages),
        "built_at": index.built_at,
        "sentences": index.has_sentences,
        "files": {k: asdict(v) for k, v in index.files.items()},
    }
    with open(building / "passages.jsonl", "w", encoding="utf-8") as f:
        for p in index.passages:
            f.write(json.dumps(p.to_json(), ensure_ascii=False) + "\n")
    np.save(building / "vectors.npy", index.vectors)
    np.save(building / "sentences.npy", index.sentences)
    np.save(building / "sentence_start.npy", index.sentence_start)
    index.keyword.save(building)
    if not isinstance(index.faiss, faiss.IndexFlat):  # a graph or lists: slow to build
        faiss.write_index(index.faiss, str(building / f"faiss-{index.kind}.index"))
    (building / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    with index_lock(index_dir, exclusive=True):
        version = index_dir / ("v-" + building.name.removeprefix("tmp-"))
        os.rename(building, version)
        pointer = index_dir / "CURRENT.tmp"
        pointer.write_text(version.name, encoding="utf-8")
        os.replace(pointer, index_dir / "CURRENT")
        _prune(index_dir, version.name)
    return version


def load_index(index_dir: Path, model: str, kind: str = "flat") -> Index:
    """The current index on disk; IndexUnusable says why it cannot be used as it is."""
    try:
        with index_lock(index_dir, exclusive=False):
            return _load(index_dir, model, kind)
    except FileNotFoundError as exc:
        raise IndexUnusable(f"no index at {index_dir} ({exc.filename} missing)") from exc


def _load(index_dir: Path, model: str, kind: str) -> Index:
    try:
        version = index_dir / (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
        manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT:
            raise IndexUnusable(f"index format {manifest.get('format')} is not {FORMAT}")
        if manifest.get("model") != model:
            raise IndexUnusable(f"index was built with model {manifest.get('model')!r}")
        with open(version / "passages.jsonl", encoding="utf-8") as f:
            passages = [Passage.from_json(json.loads(line)) for line in f]
        vectors = np.load(version / "vectors.npy", allow_pickle=False)
        sentence_rows = np.load(version / "sentences.npy", allow_pickle=False)
        start = np.load(version / "sentence_start.npy", allow_pickle=False)
        files = {k: FileRecord(**v) for k, v in manifest["files"].items()}
        keyword = KeywordIndex.load(version, len(passages))
        tokens = _saved_tokens(version / "tokens.jsonl", passages) if keyword is None else {}
    except FileNotFoundError as exc:
        raise IndexUnusable(f"no index at {index_dir} ({exc.filename} missing)") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexUnusable(f"index at {index_dir} is corrupt: {exc}") from exc
    if len(passages) != manifest["count"] or vectors.shape != (len(passages), manifest["dim"]):
        raise IndexUnusable(f"index at {index_dir} is corrupt: sizes do not match the manifest")
    if len(start) != len(passages) + 1 or start[-1] != len(sentence_rows):
        raise IndexUnusable(f"index at {index_dir} is corrupt: sentence rows do not match")
    return Index(model, passages, vectors, files, manifest.get("built_at", ""), kind, tokens,
                 (sentence_rows, start) if manifest.get("sentences", True) else None, keyword,
                 _saved_ann(version, kind, len(passages)))


def _saved_ann(version: Path, kind: str, count: int) -> faiss.Index | None:
    """The saved FAISS index of ``kind`` (flat is rebuilt: adding vectors is instant)."""
    path = version / f"faiss-{kind}.index"
    if kind == "flat" or not path.exists():
        return None
    try:
        ann = faiss.read_index(str(path))  # already the concrete type
    except RuntimeError:
        return None
    if ann.ntotal != count:
        return None
    if isinstance(ann, faiss.IndexHNSWFlat):
        ann.hnsw.efSearch = HNSW_EF_SEARCH
    elif isinstance(ann, faiss.IndexIVFFlat):
        ann.nprobe = IVF_NPROBE
    return ann


def _saved_tokens(path: Path, passages: list[Passage]) -> dict[str, list[str]]:
    """Keyword tokens as an index saved before the token ids wrote them, by content hash
    ({} if missing or not matching)."""
    try:
        with open(path, encoding="utf-8") as f:
            saved = [json.loads(line) for line in f]
    except (OSError, ValueError):
        return {}
    if len(saved) != len(passages):
        return {}
    return {p.content_hash: t for p, t in zip(passages, saved, strict=True)}


def open_or_build(
    knowledge_dir: Path, index_dir: Path, embedder: Embedder, progress: bool = False,
    kind: str = "flat", donor: Index | None = None, with_sentences: bool = True,
) -> tuple[Index, BuildReport]:
    """Load the saved index, bring it up to date with the folder, and save it if anything moved
    (``donor`` and ``with_sentences``: see ``build_index``)."""
    try:
        previous: Index | None = load_index(index_dir, embedder.name, kind)
    except IndexUnusable as exc:
        log.info("index: %s; building from scratch", exc)
        previous = None
    try:
        index, report = build_index(knowledge_dir, embedder, previous, progress, kind, donor,
                                    with_sentences)
    except KnowledgeError:
        if previous is None:
            raise
        log.exception("index: cannot read the knowledge folder; serving the saved index")
        return previous, BuildReport(documents=len(previous.files),
                                     passages=len(previous.passages))
    if previous is None or report.touched or previous.has_sentences != with_sentences:
        save_index(index, index_dir)
    return index, report
