"""Keyword scoring: BM25 over jieba words plus character bigrams.

Bigrams catch words jieba splits differently in question and notice (维权 / 维权服务); jieba
words keep whole terms strong. Besides BM25 (for ranking) each hit gets a coverage in [0, 1]:
the share of the question's term weight found in the passage, an absolute measure used to
tell answerable questions from out-of-scope ones.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable

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
    tokens: list[str] = []
    run = ""
    for word in jieba.lcut(text) + [""]:
        if CJK_RUN.fullmatch(word) and word not in STOPWORDS:
            run += word
            continue
        tokens += ["#" + run[i : i + 2] for i in range(len(run) - 1)]
        run = ""
    return words(text) + tokens


def words(text: str) -> list[str]:
    """jieba search-mode words, lower-cased, stopwords and single characters left out."""
    return [
        w.lower() for w in jieba.lcut_for_search(text)
        if WORD.fullmatch(w) and w not in STOPWORDS and (len(w) > 1 or not CJK_RUN.match(w))
    ]


class KeywordIndex:
    """BM25 postings as numpy arrays, one per term: scoring a question is a few vector adds."""

    def __init__(
        self, texts: list[str], tokenizer: Callable[[str], list[str]] = tokenize,
        tokens: list[list[str] | None] | None = None,
    ) -> None:
        """``tokens`` (by position, None where unknown) skips tokenising those texts again:
        jieba is most of the cost of building the index."""
        self.tokenizer = tokenizer
        known = tokens or [None] * len(texts)
        self.tokens = [t if t is not None else tokenizer(text) for text, t in zip(
            texts, known, strict=True)]
        docs = [Counter(t) for t in self.tokens]
        self.size = len(docs)
        lengths = np.array([sum(d.values()) for d in docs], dtype=np.float32)
        avg = float(lengths.mean()) if len(docs) else 1.0
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for i, doc in enumerate(docs):
            norm = K1 * (1 - B + B * lengths[i] / max(avg, 1.0))
            for term, tf in doc.items():
                ids, weights = postings.setdefault(term, ([], []))
                ids.append(i)
                weights.append(tf * (K1 + 1) / (tf + norm))
        self.postings = {
            t: (np.array(ids, dtype=np.int64), np.array(w, dtype=np.float32))
            for t, (ids, w) in postings.items()
        }
        # Unknown terms weigh as much as the rarest known ones: they count against coverage.
        self.max_idf = self.idf(0)

    def idf(self, df: int) -> float:
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def score(self, question: str) -> tuple[np.ndarray, np.ndarray]:
        """(bm25, coverage) for every passage."""
        bm25 = np.zeros(self.size, dtype=np.float32)
        covered = np.zeros(self.size, dtype=np.float32)
        total = 0.0
        for term, count in Counter(self.tokenizer(question)).items():
            entry = self.postings.get(term)
            idf = self.idf(len(entry[0])) if entry else self.max_idf
            total += idf * count
            if entry:
                ids, weights = entry
                bm25[ids] += idf * count * weights
                covered[ids] += idf * count
        coverage = covered / total if total else covered
        return bm25, coverage
