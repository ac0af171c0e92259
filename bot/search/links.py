"""Linked questions: staff point a question at the passage that answers it; similar questions
then get that passage first (its original text and citation, never new words).

A link is keyed by the passage's document, section path and content hash, so it survives a
re-index; when the passage's text changed or it is gone, the link needs review and takes no
part in retrieval until staff confirm it. Linked questions are embedded (cached by text, so a
new link embeds one question) and keyword-indexed with the passage index's term weights.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from bot.ingest.passages import Passage
from bot.search.embed import Embedder
from bot.search.index import Index
from bot.search.keyword import tokenize
from bot.search.retrieve import DENSE_CEIL as PASSAGE_CEIL
from bot.search.retrieve import DENSE_FLOOR as PASSAGE_FLOOR
from bot.search.retrieve import Hit, Result, Retriever, typed

Status = Literal["ok", "changed", "missing"]
# A linked question's score for a new question: 0.65 x how close the two questions are (0.5
# rescaled cosine of their plain embeddings + 0.5 weighted term overlap) + 0.35 x how well the
# linked passage itself fits the new question (the retriever's fused score). The link's passage
# goes first when that score is at least LINK_MIN and at least the retriever's own best score
# plus LINK_LEAD (negative: not more than 0.20 below it), so a question the passages answer
# well keeps its answer. Calibrated on
# tests/data/links_eval.json (BENCHMARKS.md: "Linked questions").
DENSE_FLOOR, DENSE_CEIL = 0.86, 0.96
QUESTION_WEIGHT = 0.65
LINK_MIN = 0.40
LINK_LEAD = -0.20


@dataclass(frozen=True)
class Link:
    """A question staff pointed at a passage, as stored."""

    id: int
    question: str
    passage_id: str
    source: str
    path: tuple[str, ...]
    kind: str
    content_hash: str
    citation: str
    query_id: int | None = None
    created_by: str = ""
    created_at: str = ""

    def to_json(self) -> dict:
        return {"id": self.id, "question": self.question, "passage_id": self.passage_id,
                "source": self.source, "section_path": list(self.path), "kind": self.kind,
                "content_hash": self.content_hash, "citation": self.citation,
                "query_id": self.query_id, "created_by": self.created_by,
                "created_at": self.created_at}


def link_to(question: str, passage: Passage, query_id: int | None = None) -> Link:
    """An unsaved link of ``question`` to ``passage`` (the store assigns id and time)."""
    return Link(0, question.strip(), passage.id, passage.source, passage.path, passage.kind,
                passage.content_hash, passage.citation, query_id)


def locate(link: Link, index: Index) -> tuple[Passage | None, Status]:
    """The passage a link points at in ``index`` and whether it is still the same text."""
    position = positions(index).get(link.passage_id)
    passage = index.passages[position] if position is not None else None
    if passage is None:  # re-parsed differently: same document and section, any part
        passage = next((p for p in index.passages if p.source == link.source
                        and p.path == link.path and p.kind == link.kind), None)
    if passage is None:
        return None, "missing"
    return passage, "ok" if passage.content_hash == link.content_hash else "changed"


_positions: dict[int, tuple[Index, dict[str, int]]] = {}
_positions_lock = threading.Lock()


def positions(index: Index) -> dict[str, int]:
    """Passage id -> position, built once per Index (an Index is never changed, only replaced)."""
    with _positions_lock:
        cached = _positions.get(id(index))
        if cached is None or cached[0] is not index:
            if len(_positions) > 4:
                _positions.clear()  # only the current index (and one in flight) matter
            cached = (index, {p.id: i for i, p in enumerate(index.passages)})
            _positions[id(index)] = cached
        return cached[1]


class LinkIndex:
    """The live links of one Index: their question vectors and a small inverted term index."""

    def __init__(self, index: Index, links: Sequence[tuple[Link, Passage]], vectors: np.ndarray,
                 query_text: Callable[[str], str]) -> None:
        """``vectors`` are the linked questions' plain embeddings: questions are compared with
        questions in the model's own space (the retriever hands over the plain question
        vector; its adapter only re-orders passages). Their words are compared as the workers
        typed them: the synonyms table's official terms (年假 → 年休假) would be shared by every
        question of a topic, so they count only where a passage is matched (``query_text``)."""
        self.index = index
        self.links = [link for link, _ in links]
        self.passages = [p for _, p in links]
        self.vectors = vectors
        self.query_text = query_text
        self.postings: dict[str, list[int]] = {}
        self.totals = np.zeros(len(self.links), dtype=np.float32)
        for i, link in enumerate(self.links):
            terms = self.terms(typed(link.question))
            for term, weight in terms.items():
                self.postings.setdefault(term, []).append(i)
                self.totals[i] += weight

    def weight(self, term: str) -> float:
        """A term weighs its idf in the passage index: 工会 counts little, 年休假 a lot."""
        return self.index.keyword.term_idf(term)

    def terms(self, text: str) -> dict[str, float]:
        return {t: self.weight(t) for t in Counter(tokenize(text))}

    def closeness(self, vector: np.ndarray, text: str) -> np.ndarray:
        """How close the question is to each linked question: 0.5 cosine + 0.5 term overlap
        (``text`` as typed, without the synonyms table's terms)."""
        cosine = self.vectors @ vector
        dense = np.clip((cosine - DENSE_FLOOR) / (DENSE_CEIL - DENSE_FLOOR), 0.0, 1.0)
        overlap = np.zeros(len(self.links), dtype=np.float32)
        terms = self.terms(text)
        for term, weight in terms.items():
            for i in self.postings.get(term, ()):
                overlap[i] += weight
        total = sum(terms.values())
        recall = overlap / total if total else overlap
        precision = overlap / np.maximum(self.totals, 1e-6)
        keyword = np.where(overlap > 0, 2 * recall * precision /
                           np.maximum(recall + precision, 1e-6), 0.0)
        return 0.5 * dense + 0.5 * keyword

    def scores(self, vector: np.ndarray, text: str) -> np.ndarray:
        """Every live link's score (see LINK_MIN): question closeness and passage fit."""
        where = positions(self.index)
        rows = np.array([where[p.id] for p in self.passages], dtype=np.int64)
        _, coverage = self.index.keyword.query(self.query_text(text)).at(rows)
        # The whole passage's cosine, as calibrated: reading its best sentence too, as the
        # retriever does since 823e67c, hijacked more unrelated questions (BENCHMARKS.md).
        cosine = self.index.vectors[rows] @ vector
        fit = 0.5 * np.clip((cosine - PASSAGE_FLOOR) / (PASSAGE_CEIL - PASSAGE_FLOOR), 0, 1) \
            + 0.5 * coverage
        return QUESTION_WEIGHT * self.closeness(vector, text) + (1 - QUESTION_WEIGHT) * fit

    def best(self, vector: np.ndarray, text: str) -> tuple[Link, Passage, float] | None:
        if not self.links:
            return None
        scores = self.scores(vector, text)
        i = int(np.argmax(scores))
        return self.links[i], self.passages[i], float(scores[i])

    def __call__(self, result: Result, vector: np.ndarray) -> Result:
        """``result`` with the linked passage first when a linked question is close enough."""
        found = self.best(vector, typed(result.question)) if result.question else None
        baseline = result.hits[0].score if result.hits else 0.0
        if found is None or found[2] < LINK_MIN or found[2] < baseline + LINK_LEAD:
            return result
        _, passage, score = found
        rest = [h for h in result.hits if h.passage.id != passage.id]
        same = next((h for h in result.hits if h.passage.id == passage.id), None)
        top = max([score] + [h.score for h in result.hits])
        if same is not None:
            hit = replace(same, score=top)
        else:
            cosine = float(self.index.vectors[positions(self.index)[passage.id]] @ vector)
            hit = Hit(passage, top, cosine, 0.0)
        return Result(result.question, [hit, *rest][: max(len(result.hits), 1)], True)


class Links:
    """The links the engine serves: replaced whole when staff add or remove one (hot reload)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.links: list[Link] = []
        self._vectors: dict[str, np.ndarray] = {}  # query text -> unit vector
        self._lock = threading.Lock()

    def set(self, links: list[Link]) -> None:
        with self._lock:
            self.links = list(links)

    def index_for(self, retriever: Retriever) -> LinkIndex:
        """The LinkIndex of ``retriever``'s index: embeds only questions not embedded before, as
        the model embeds them (plain, like the vector search_vector hands over). Off the loop."""
        index, query_text = retriever.index, retriever.query_text
        with self._lock:
            live = []
            for link in self.links:
                passage, status = locate(link, index)
                if passage is not None and status == "ok":
                    live.append((link, passage))
            texts = [query_text(link.question) for link, _ in live]
            missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
            if missing:
                encoded = self.embedder.encode_queries(missing)
                self._vectors.update(zip(missing, encoded, strict=True))
            vectors = (np.stack([self._vectors[t] for t in texts]).astype(np.float32) if texts
                       else np.zeros((0, index.dim or self.embedder.dim), dtype=np.float32))
        return LinkIndex(index, live, vectors, query_text)
