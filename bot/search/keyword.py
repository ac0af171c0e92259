"""Keyword scoring: BM25 over jieba words plus character bigrams.

Bigrams catch words jieba splits differently in question and notice (维权 / 维权服务); jieba
words keep whole terms strong. Besides BM25 (for ranking) each hit gets a coverage in [0, 1]:
the share of the question's term weight found in the passage, an absolute measure used to
tell answerable questions from out-of-scope ones.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import jieba
import numpy as np

jieba.setLogLevel(logging.WARNING)

CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
WORD = re.compile(r"[\u4e00-\u9fff]+|[A-Za-z]+|\d+")
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 吗 呢 吧 啊 呀 么 什么 怎么 怎样 如何 哪些 哪个 哪 多少 几 为什么 "
    "我 我们 你 你们 他 她 它 这 那 这个 那个 这份 这些 有 没有 能 能不能 可以 要 会 就 都 也 "
    "还 对 把 被 让 给 请问 一下 是不是 有没有 吗 个 一个".split()
)
K1, B = 1.2, 0.75


def tokenize(text: str) -> list[str]:
    """jieba search-mode words plus '#'-marked character bigrams, stopwords left out.

    Bigrams are taken inside runs of non-stopwords only, so that 我是 or 的维 never count.
    """
    cut = jieba.lcut(text)
    tokens: list[str] = []
    run = ""
    for word in cut + [""]:
        if CJK_RUN.fullmatch(word) and word not in STOPWORDS:
            run += word
            continue
        tokens += ["#" + run[i : i + 2] for i in range(len(run) - 1)]
        run = ""
    return words(text, cut) + tokens


def words(text: str, cut: list[str] | None = None) -> list[str]:
    """jieba search-mode words, lower-cased, stopwords and single characters left out.

    ``cut`` is ``jieba.lcut(text)`` when the caller has it already: search mode is that cut
    plus the dictionary's 2- and 3-grams of long words, so jieba need not run twice.
    """
    return [
        w.lower() for w in search_mode(jieba.lcut(text) if cut is None else cut)
        if WORD.fullmatch(w) and w not in STOPWORDS and (len(w) > 1 or not CJK_RUN.match(w))
    ]


def search_mode(cut: list[str]) -> list[str]:
    """``jieba.lcut_for_search`` of the text ``cut`` came from (the same steps, same order)."""
    known = jieba.dt.FREQ
    found: list[str] = []
    for word in cut:
        if len(word) > 2:
            found += [g for g in (word[i : i + 2] for i in range(len(word) - 1)) if known.get(g)]
        if len(word) > 3:
            found += [g for g in (word[i : i + 3] for i in range(len(word) - 2)) if known.get(g)]
        found.append(word)
    return found


class KeywordIndex:
    """An inverted index of BM25 weights: a question looks only at its own terms' postings.

    Postings are stored term by term (CSC-like: ``starts[t]:starts[t + 1]`` into ``docs`` and
    ``weights``), built with numpy from token ids and saved as arrays, so 100k passages load
    in seconds; a question costs its rare terms' postings (see ``KeywordMatch.top``), not the
    collection's size.
    """

    def __init__(
        self, texts: list[str], tokenizer: Callable[[str], list[str]] = tokenize,
        tokens: list[list[str] | None] | None = None,
    ) -> None:
        """``tokens`` (by position, None where unknown) skips tokenising those texts again:
        jieba is most of the cost of building the index."""
        known = tokens or [None] * len(texts)
        lists = [t if t is not None else tokenizer(text) for text, t in zip(
            texts, known, strict=True)]
        vocab: dict[str, int] = {}
        ids = np.fromiter((vocab.setdefault(t, len(vocab)) for doc in lists for t in doc),
                          dtype=np.int32)
        offsets = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum([len(doc) for doc in lists], out=offsets[1:])
        self._setup(list(vocab), ids, offsets, tokenizer)

    def save(self, folder: Path) -> None:
        """Tokens and postings as arrays (``load`` reads them back without any sorting)."""
        (folder / "keyword_vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False),
                                                   encoding="utf-8")
        np.savez(folder / "keyword.npz", ids=self.token_ids, offsets=self.offsets,
                 docs=self.docs, weights=self.weights, starts=self.starts)

    @classmethod
    def load(cls, folder: Path, count: int,
             tokenizer: Callable[[str], list[str]] = tokenize) -> KeywordIndex | None:
        """The index ``save`` wrote for ``count`` passages; None if missing or inconsistent."""
        try:
            vocab = json.loads((folder / "keyword_vocab.json").read_text(encoding="utf-8"))
            with np.load(folder / "keyword.npz", allow_pickle=False) as saved:
                arrays = {name: saved[name] for name in saved.files}
            ids, offsets, starts = arrays["ids"], arrays["offsets"], arrays["starts"]
            docs, weights = arrays["docs"], arrays["weights"]
        except (OSError, ValueError, KeyError, EOFError):
            return None
        if (not isinstance(vocab, list) or len(offsets) != count + 1 or offsets[0] != 0
                or offsets[-1] != len(ids) or len(starts) != len(vocab) + 1
                or starts[-1] != len(docs) or len(weights) != len(docs)
                or (len(ids) and not 0 <= ids.min() <= ids.max() < len(vocab))
                or (len(docs) and not 0 <= docs.min() <= docs.max() < count)):
            return None
        index = cls.__new__(cls)
        index._arrays(vocab, ids, offsets, tokenizer)
        index.docs = docs.astype(np.int32, copy=False)  # see KeywordMatch.at
        index.weights, index.starts = weights, starts
        index.df = np.diff(starts)
        index.peaks = index._peaks()
        index.max_idf = index.idf(0)
        return index

    def _arrays(self, vocab: list[str], ids: np.ndarray, offsets: np.ndarray,
                tokenizer: Callable[[str], list[str]]) -> None:
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.term_ids = {t: i for i, t in enumerate(vocab)}
        self.token_ids = np.asarray(ids, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.size = len(self.offsets) - 1

    def _setup(self, vocab: list[str], ids: np.ndarray, offsets: np.ndarray,
               tokenizer: Callable[[str], list[str]]) -> None:
        self._arrays(vocab, ids, offsets, tokenizer)
        counts = np.diff(self.offsets)
        lengths = counts.astype(np.float32)
        avg = float(lengths.mean()) if self.size else 1.0
        # The same float32 steps as a per-passage loop would take: scores do not move.
        norm = K1 * (1 - B + B * lengths / max(avg, 1.0))
        # One (term, passage) pair per token, counted: sorted by term, then passage.
        doc_of = np.repeat(np.arange(self.size, dtype=np.int64), counts)
        pairs, tf = np.unique(self.token_ids.astype(np.int64) * max(self.size, 1) + doc_of,
                              return_counts=True)
        terms = pairs // max(self.size, 1)
        self.docs = (pairs % max(self.size, 1)).astype(np.int32)
        tf_float = tf.astype(np.float64)
        self.weights = ((tf_float * (K1 + 1)).astype(np.float32)
                        / (tf_float.astype(np.float32) + norm[self.docs]))
        self.df = np.bincount(terms, minlength=len(vocab)).astype(np.int64)
        self.starts = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(self.df, out=self.starts[1:])
        self.peaks = self._peaks()
        # Unknown terms weigh as much as the rarest known ones: they count against coverage.
        self.max_idf = self.idf(0)

    def _peaks(self) -> np.ndarray:
        """Each term's highest weight in any passage (bounds what it adds to a score)."""
        if not len(self.docs):
            return np.zeros(len(self.vocab), dtype=np.float32)
        return np.maximum.reduceat(self.weights, self.starts[:-1])

    @property
    def tokens(self) -> list[list[str]]:
        """Each passage's tokens (for the cache by content hash; built on demand)."""
        return [self.tokens_of(i) for i in range(self.size)]

    def tokens_of(self, i: int) -> list[str]:
        """Passage ``i``'s tokens (reused by content hash when an index is rebuilt)."""
        return [self.vocab[t] for t in self.token_ids[self.offsets[i]:self.offsets[i + 1]].tolist()]

    def idf(self, df: int) -> float:
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def term_idf(self, term: str) -> float:
        """The idf of ``term`` (unknown terms: the rarest's)."""
        t = self.term_ids.get(term)
        return self.idf(int(self.df[t])) if t is not None else self.max_idf

    def query(self, question: str) -> KeywordMatch:
        """The question's terms with their postings: scores are computed for the passages
        asked about (``KeywordMatch.at``) or the best ones (``top``), never for all."""
        parts: list[Term] = []
        total = 0.0
        for term, count in question_terms(self.tokenizer, question):
            t = self.term_ids.get(term)
            idf = self.idf(int(self.df[t])) if t is not None else self.max_idf
            total += idf * count
            if t is not None:
                start, end = self.starts[t], self.starts[t + 1]
                parts.append(Term(self.docs[start:end], self.weights[start:end], idf * count,
                                  idf * count * float(self.peaks[t])))
        return KeywordMatch(self.size, parts, total)

    def score(self, question: str) -> tuple[np.ndarray, np.ndarray]:
        """(bm25, coverage) for every passage (O(passages): prefer ``query``)."""
        return self.query(question).dense()


@lru_cache(maxsize=1024)
def question_terms(tokenizer: Callable[[str], list[str]], text: str) -> tuple[tuple[str, int], ...]:
    """A question's terms and counts, tokenised once for every index that scores it."""
    return tuple(Counter(tokenizer(text)).items())


class Term(NamedTuple):
    """One question term: its postings (passages ascending), its weight idf × count, and the
    most it can add to any passage's BM25."""

    docs: np.ndarray
    weights: np.ndarray
    weight: float
    bound: float


class KeywordMatch:
    """BM25 and coverage for one question, computed only where asked.

    Scores are added term by term in the question's order, in float32, exactly as the dense
    scoring did, so they are the same to the bit (tests/test_keyword.py).
    """

    def __init__(self, size: int, terms: list[Term], total: float) -> None:
        self.size = size
        self.terms = terms
        self.total = total

    def at(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bm25, coverage) of the passages ``ids``; 0 where the question has no term."""
        bm25, covered = self._scores(ids, True)
        return bm25, covered / self.total if self.total else covered

    def bm25(self, ids: np.ndarray) -> np.ndarray:
        """BM25 alone of the passages ``ids`` (no coverage sum: an order, not a gate)."""
        return self._scores(ids, False)[0]

    def _scores(self, ids: np.ndarray, coverage: bool) -> tuple[np.ndarray, np.ndarray]:
        """BM25 of ``ids`` and, if asked, the question weight each holds (top-k needs only
        BM25: the ranking of thousands of candidates skips half the work)."""
        # The postings' own dtype: searchsorted would otherwise copy each posting list
        # (up to one entry per passage) into the ids' wider type on every call.
        ids = np.asarray(ids, dtype=np.int32)
        bm25 = np.zeros(len(ids), dtype=np.float32)
        covered = np.zeros(len(ids) if coverage else 0, dtype=np.float32)
        zero = np.float32(0)
        for term in self.terms:
            at = np.minimum(np.searchsorted(term.docs, ids), len(term.docs) - 1)
            found = term.docs[at] == ids
            weight = np.float32(term.weight)
            bm25 += np.where(found, weight * term.weights[at], zero)
            if coverage:
                covered += np.where(found, weight, zero)
        return bm25, covered

    def touched(self, terms: list[Term] | None = None,
                allowed: np.ndarray | None = None) -> np.ndarray:
        """The passages holding any of ``terms`` (default: all), ascending."""
        chosen = self.terms if terms is None else terms
        if not chosen:
            return np.zeros(0, dtype=np.int32)
        ids = np.concatenate([t.docs for t in chosen])
        if len(chosen) > 1:  # sorted runs: a stable (merge) sort is nearly linear
            ids.sort(kind="stable")
            ids = ids[np.concatenate(([True], ids[1:] != ids[:-1]))]
        return ids if allowed is None else ids[allowed[ids]]

    def top(self, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """The ``k`` passages with the highest BM25 (among ``allowed`` ones, a mask).

        Max-score pruning: the terms that can add the most are searched first; once the
        k-th best score found beats what all remaining terms together could add, passages
        holding only those terms cannot enter, and their (long) postings are only looked up
        for the candidates. With fewer than ``k`` matching passages the rest is filled as the
        dense ranking always did, so the candidates stay exactly the same.
        """
        if k >= self.size:
            return np.arange(self.size)  # every passage (the caller filters by allowed)
        ranked = sorted(self.terms, key=lambda t: -t.bound)
        left = np.cumsum([t.bound for t in ranked][::-1])[::-1]  # left[i]: ranked[i:] at most
        used, ids = 0, np.zeros(0, dtype=np.int64)
        while len(ids) < k and used < len(ranked):
            used += 1
            ids = self.touched(ranked[:used], allowed)
        if len(ids) < k:
            return self._dense_top(k, allowed)
        bm25, _ = self._scores(ids, False)
        threshold = float(np.partition(bm25, len(bm25) - k)[len(bm25) - k])
        needed = next((i for i in range(len(ranked)) if left[i] * (1 + 1e-5) < threshold),
                      len(ranked))
        if needed > used:  # the threshold does not rule the other terms out yet
            ids = self.touched(ranked[:needed], allowed)
            bm25, _ = self._scores(ids, False)
        return ids[np.argpartition(-bm25, k - 1)[:k]] if k < len(ids) else ids

    def _dense_top(self, k: int, allowed: np.ndarray | None) -> np.ndarray:
        """Fewer than ``k`` passages match: the same array the dense ranking partitioned
        (negated BM25, left-out passages at 1), built in place: one pass over the passages."""
        ids = self.touched()
        if not len(ids) and allowed is None:
            return _unmatched_top(self.size, k).copy()
        negated = np.zeros(self.size, dtype=np.float32)
        if len(ids):
            negated[ids] = self._scores(ids, False)[0]
        if allowed is not None:
            negated[~allowed] = -1.0
        np.negative(negated, out=negated)
        return np.argpartition(negated, k - 1)[:k]

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """(bm25, coverage) as arrays over every passage."""
        bm25 = np.zeros(self.size, dtype=np.float32)
        coverage = np.zeros(self.size, dtype=np.float32)
        ids = self.touched()
        bm25[ids], coverage[ids] = self.at(ids)
        return bm25, coverage


@lru_cache(maxsize=64)
def _unmatched_top(size: int, k: int) -> np.ndarray:
    """The dense ranking's k passages for a question matching none (all scores zero): the
    same partition of the same array every time, so it is done once per (size, k)."""
    return np.argpartition(-np.zeros(size, dtype=np.float32), k - 1)[:k]
