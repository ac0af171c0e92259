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
from bot.ingest.passages import Passage
from bot.search.adapter import load_adapter
from bot.search.cited import Articles
from bot.search.embed import Embedder
from bot.search.index import Index
from bot.search.synonyms import Synonyms

Mode = Literal["fused", "dense", "keyword"]
DENSE_FLOOR, DENSE_CEIL = 0.80, 0.92
MAX_QUESTION = 300
CITED_LIFT = 10.0  # above any fused score plus the adapter's lift: a cited article goes first


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
    unsure: bool = False  # the best hit is not clearly ahead: offer the candidates instead
    elsewhere: str = ""  # a reference law not in the folder matches better: off-topic

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


@dataclass(frozen=True)
class Scored:
    """Both signals and their fusion for a set of candidate passages of one index."""

    ids: np.ndarray
    fused: np.ndarray  # on the absolute scale the gate reads
    rank: np.ndarray  # what orders the hits: fused, lifted by the adapted question's cosine
    cosine: np.ndarray
    keyword: np.ndarray
    bm25: np.ndarray

    def order(self) -> np.ndarray:
        # Ties (common for keyword coverage) are broken by BM25, then by cosine.
        return np.lexsort((-self.cosine, -self.bm25, -np.round(self.rank, 6)))


def score(index: Index, text: str, vector: np.ndarray, cfg: RetrievalConfig,
          mode: Mode = "fused", allowed: np.ndarray | None = None,
          adapted: np.ndarray | None = None, cited: np.ndarray | None = None) -> Scored:
    """Candidates of ``index`` from both signals, each mapped to 0..1 and fused.

    ``allowed`` (a boolean mask over the passages) leaves some passages out, e.g. reference
    laws the folder itself holds. ``adapted`` is the question vector after the adapter: it
    brings its own candidates and re-orders them (its cosines live on another scale, so they
    move the ranking, never the absolute score the gate reads). ``cited`` passages (an article
    the question names, bot.search.cited) join the candidates and go first.
    """
    k = min(cfg.candidates, len(index.passages))
    match = index.keyword.query(text)  # only the passages sharing a term with the question
    wide = k if allowed is None else min(len(index.passages), 4 * k)
    queries = np.stack([vector] if adapted is None or mode == "keyword" else [vector, adapted])
    _, dense_ids = index.faiss.search(queries.astype(np.float32), wide)
    keyword_ids = match.top(k, allowed)
    extra = cited if cited is not None else np.zeros(0, dtype=np.int64)
    ids = np.unique(np.concatenate([dense_ids[dense_ids >= 0], keyword_ids, extra]))
    if allowed is not None:
        ids = ids[allowed[ids]]
    # The passage as a whole and its best sentence count alike: one fact asked about (a
    # phone number, a deadline) is drowned in a long passage's vector, not in its sentence's.
    own = index.vectors[ids] @ vector
    cosine = (own + index.sentence_cosine(ids, vector, own)) / 2
    dense = np.clip((cosine - DENSE_FLOOR) / (DENSE_CEIL - DENSE_FLOOR), 0.0, 1.0)
    bm25, keyword = match.at(ids)
    if mode == "dense":
        fused = dense
    elif mode == "keyword":
        fused = keyword
    else:
        total = cfg.dense_weight + cfg.keyword_weight
        fused = (cfg.dense_weight * dense + cfg.keyword_weight * keyword) / total
    rank = fused
    if adapted is not None and mode != "keyword" and len(ids) > 1:
        lifted = index.vectors[ids] @ adapted
        spread = float(lifted.max() - lifted.min())
        rank = fused + cfg.adapter_weight * (lifted - lifted.min()) / max(spread, 1e-9)
    if len(extra):
        rank = rank + CITED_LIFT * np.isin(ids, extra)
    return Scored(ids, fused, rank, cosine, keyword, bm25)


def typed(question: str) -> str:
    """The question as the worker typed it, cut to MAX_QUESTION characters (see
    Retriever.query_text): what links compare questions by."""
    return question.strip()[:MAX_QUESTION]


class Retriever:
    """Ranks the passages of one Index for a question; never loads anything per query.

    ``reference`` is an index of laws the folder may not hold: a question that matches one of
    them better than anything in the folder is about something else and gets "not found".
    """

    def __init__(self, index: Index, embedder: Embedder, cfg: RetrievalConfig,
                 reference: Index | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.cfg = cfg
        self.synonyms = Synonyms.load(cfg.synonyms)
        self.adapter = load_adapter(cfg.adapter, embedder.name, embedder.dim)
        self.reference = reference
        self.articles = Articles(index.passages)
        self.outside: np.ndarray | None = None
        if reference is not None and reference.passages:
            held = {p.doc_title for p in index.passages}
            # Articles only: another law's metadata or preamble says nothing about a topic.
            self.outside = np.array([p.doc_title not in held and p.kind == "section"
                                     for p in reference.passages])
            if not self.outside.any():
                self.reference = self.outside = None
        # Staff's linked questions (bot.search.links.LinkIndex), set by the engine; None: no links.
        self.links: Callable[[Result, np.ndarray], Result] | None = None

    def query_text(self, question: str) -> str:
        """What is actually searched: the question with official terms for everyday words.

        Only the first MAX_QUESTION characters count: a real question is short, and jieba's
        time grows with the square of an unbroken run of text (a 60 KB message took 4 s).
        """
        return self.synonyms.expand(typed(question))

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
        text = self.query_text(question)
        adapted = self.adapter.apply(vector[None])[0] if self.adapter is not None else None
        cited = np.array(self.articles.cited(question) if mode == "fused" else [], np.int64)
        found = score(index, text, vector, cfg, mode, adapted=adapted, cited=cited)
        order = found.order()[: cfg.top_k]
        hits = [
            Hit(index.passages[found.ids[i]], float(found.fused[i]), float(found.cosine[i]),
                float(found.keyword[i]))
            for i in order
        ]
        ranks = found.rank[order]
        if len(cited) and found.ids[order[0]] in cited:
            # The question names the article: answer it, asking only which law when it names
            # none and several hold that number.
            laws = {index.passages[i].doc_title for i in cited}
            answered, unsure, elsewhere = True, len(laws) > 1, ""
        else:
            # The folder's best match is its best fused score, whichever passage the
            # adapter puts first: the reference's side is read the same way.
            answered, elsewhere = self._gate(hits, text, vector, mode, adapted,
                                            float(found.fused.max()))
            unsure = answered and len(hits) > 1 and bool(
                ranks[1] >= ranks[0] - cfg.unsure_margin)
        result = Result(question, hits, answered, unsure, elsewhere)
        return self.links(result, vector) if self.links is not None else result

    def _gate(self, hits: list[Hit], text: str, vector: np.ndarray, mode: Mode,
              adapted: np.ndarray | None, folder: float) -> tuple[bool, str]:
        """(answered, the reference law to name when it is elsewhere) for the ranked hits;
        ``folder`` is the folder's best fused score, compared with the reference's best."""
        cfg = self.cfg
        above_floor = bool(hits) and hits[0].score >= cfg.min_score
        answered = above_floor and (
            mode == "dense" or hits[0].keyword >= cfg.min_keyword
            or hits[0].dense >= cfg.sure_cosine
        )
        if not hits or mode != "fused" or self.reference is None or (
            answered and folder >= cfg.reference_ceiling
        ):
            return answered, ""
        # Also for a question the floor refused: the reply can then name the law.
        other = score(self.reference, text, vector, cfg, mode, self.outside, adapted)
        if not len(other.ids):
            return answered, ""
        top = np.argsort(-other.fused, kind="stable")[:3]
        if (above_floor and not answered and hits[0].dense >= cfg.reference_cosine
                and other.fused[top[0]] < folder):
            # Refused only by the keyword floor, yet close in meaning and closer than every
            # other law: the folder is where the question belongs (上班路上出车祸算工伤吗 shares
            # only 工伤 with 工伤保险条例第十四条's 上下班途中…交通事故).
            return True, ""
        if other.fused[top[0]] <= folder + cfg.reference_margin:
            return answered, ""
        # The reply names the law only when two of its three best articles agree (one stray
        # article named the wrong law half the time, BENCHMARKS.md) and the best would itself
        # pass the answer floor (嗯嗯 or 明天会下雨吗 is not about 民法典).
        titles = [self.reference.passages[other.ids[i]].doc_title for i in top]
        agree = titles.count(titles[0]) >= min(2, len(titles))
        return False, titles[0] if agree and other.fused[top[0]] >= cfg.min_score else ""
