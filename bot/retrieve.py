"""Question -> ranked Hits: dense (FAISS) and keyword (BM25) candidates, fused, then gated.

Both signals are mapped to [0, 1] on an absolute scale (keyword: coverage of the question's
term weight; dense: cosine rescaled between a floor and a ceiling typical of the model), so the
fused score means the same thing for every question and one threshold can say "not found".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bot.config import RetrievalConfig
from bot.embed import Embedder
from bot.index import Index
from bot.passages import Passage
from bot.synonyms import Synonyms

Mode = Literal["fused", "dense", "keyword"]
DENSE_FLOOR, DENSE_CEIL = 0.80, 0.92
MAX_QUESTION = 300


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    dense: float
    keyword: float


@dataclass(frozen=True)
class Result:
    question: str
    hits: list[Hit]
    answered: bool

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


class Retriever:
    """Ranks the passages of one Index for a question; never loads anything per query."""

    def __init__(self, index: Index, embedder: Embedder, cfg: RetrievalConfig) -> None:
        self.index = index
        self.embedder = embedder
        self.cfg = cfg
        self.synonyms = Synonyms.load(cfg.synonyms)
        # Staff's linked questions (bot.links.LinkIndex), set by the engine; None: no links.
        self.links: Callable[[Result, np.ndarray], Result] | None = None

    def query_text(self, question: str) -> str:
        """What is actually searched: the question with official terms for everyday words.

        Only the first MAX_QUESTION characters count: a real question is short, and jieba's
        time grows with the square of an unbroken run of text (a 60 KB message took 4 s).
        """
        return self.synonyms.expand(question.strip()[:MAX_QUESTION])

    def search(self, question: str, mode: Mode = "fused") -> Result:
        return self.search_many([question], mode)[0]

    def search_many(self, questions: list[str], mode: Mode = "fused") -> list[Result]:
        """One model call for all ``questions``, then the (cheap) per-question ranking."""
        texts = [self.query_text(q) for q in questions]
        results = [Result(q.strip(), [], False) for q in questions]
        wanted = [i for i, t in enumerate(texts) if t and self.index.passages]
        if wanted:
            vectors = self.embedder.encode_queries([texts[i] for i in wanted])
            for row, i in enumerate(wanted):
                results[i] = self.search_vector(questions[i].strip(), vectors[row], mode)
        return results

    def search_vector(self, question: str, vector: np.ndarray, mode: Mode = "fused") -> Result:
        """Rank with an already encoded ``query_text`` (lets callers batch the encoding)."""
        index, cfg = self.index, self.cfg
        if not question.strip() or not index.passages:
            return Result(question, [], False)
        k = min(cfg.candidates, len(index.passages))
        bm25, coverage = index.keyword.score(self.query_text(question))
        _, dense_ids = index.faiss.search(vector.reshape(1, -1).astype(np.float32), k)
        keyword_ids = np.argpartition(-bm25, k - 1)[:k] if k < len(bm25) else np.arange(k)
        ids = np.unique(np.concatenate([dense_ids[0][dense_ids[0] >= 0], keyword_ids]))
        cosine = index.vectors[ids] @ vector
        dense = np.clip((cosine - DENSE_FLOOR) / (DENSE_CEIL - DENSE_FLOOR), 0.0, 1.0)
        keyword = coverage[ids]
        if mode == "dense":
            fused = dense
        elif mode == "keyword":
            fused = keyword
        else:
            total = cfg.dense_weight + cfg.keyword_weight
            fused = (cfg.dense_weight * dense + cfg.keyword_weight * keyword) / total
        # Ties (common for keyword coverage) are broken by BM25, then by cosine.
        order = np.lexsort((-cosine, -bm25[ids], -np.round(fused, 6)))[: cfg.top_k]
        hits = [
            Hit(index.passages[ids[i]], float(fused[i]), float(cosine[i]), float(keyword[i]))
            for i in order
        ]
        answered = bool(hits) and hits[0].score >= cfg.min_score and (
            mode == "dense" or hits[0].keyword >= cfg.min_keyword
        )
        result = Result(question, hits, answered)
        return self.links(result, vector) if self.links is not None else result
