"""The inverted keyword index scores exactly as the dense BM25 it replaced, and only touches the
postings of the question's terms."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from bot.ingest.passages import split_sentences
from bot.search.keyword import K1, B, KeywordIndex, tokenize
from tests.conftest import ROOT

QUESTIONS = [
    "单位不给交社保怎么办", "年休假没休完单位要给多少补偿", "工会经费怎么使用",
    "女职工产假有多少天", "加班费怎么算", "劳动合同到期不续签有补偿吗", "工伤认定要多久",
    "商标被人抢注怎么办", "法", "", "！？", "xyz 123 劳动者", "试用期最长多久？试用期工资",
]


def dense_reference(tokens: list[list[str]], question: str) -> tuple[np.ndarray, np.ndarray]:
    """The dense BM25 every passage used to get (the code before the inverted index)."""
    docs = [Counter(t) for t in tokens]
    size = len(docs)
    lengths = np.array([sum(d.values()) for d in docs], dtype=np.float32)
    avg = float(lengths.mean())
    postings: dict[str, tuple[list[int], list[float]]] = {}
    for i, doc in enumerate(docs):
        norm = K1 * (1 - B + B * lengths[i] / max(avg, 1.0))
        for term, tf in doc.items():
            ids, weights = postings.setdefault(term, ([], []))
            ids.append(i)
            weights.append(tf * (K1 + 1) / (tf + norm))
    arrays = {t: (np.array(i, dtype=np.int64), np.array(w, dtype=np.float32))
              for t, (i, w) in postings.items()}

    def idf(df: int) -> float:
        return math.log(1 + (size - df + 0.5) / (df + 0.5))

    bm25 = np.zeros(size, dtype=np.float32)
    covered = np.zeros(size, dtype=np.float32)
    total = 0.0
    for term, count in Counter(tokenize(question)).items():
        entry = arrays.get(term)
        value = idf(len(entry[0])) if entry else idf(0)
        total += value * count
        if entry:
            bm25[entry[0]] += value * count * entry[1]
            covered[entry[0]] += value * count
    return bm25, (covered / total if total else covered)


@pytest.fixture(scope="module")
def laws() -> list[str]:
    """A few hundred real passages: sentences of three labour laws, some repeated."""
    texts: list[str] = []
    for name in ("劳动合同法(2012-12-28).md", "工会法(2021-12-24).md",
                 "女职工劳动保护特别规定(2012-04-28).md"):
        text = (ROOT / "bot" / "data" / "reference" / name).read_text(encoding="utf-8")
        texts += [s for s in split_sentences(text) if len(s.strip()) > 4]
    return texts[:400] + texts[:20]  # duplicates tie exactly


def test_scores_identical_to_the_dense_bm25(laws: list[str]) -> None:
    index = KeywordIndex(laws)
    tokens = [tokenize(t) for t in laws]
    for question in QUESTIONS:
        want_bm25, want_coverage = dense_reference(tokens, question)
        match = index.query(question)
        assert set(match.touched().tolist()) == set(np.flatnonzero(want_bm25).tolist()), question
        every = np.arange(len(laws))
        bm25, coverage = match.at(every)
        assert bm25.dtype == np.float32 and coverage.dtype == np.float32
        assert np.array_equal(bm25, want_bm25), question  # bit for bit, not approximately
        assert np.array_equal(coverage, want_coverage), question
        dense_bm25, dense_coverage = index.score(question)
        assert np.array_equal(dense_bm25, want_bm25) and np.array_equal(dense_coverage,
                                                                        want_coverage)


def test_top_matches_the_dense_ranking(laws: list[str]) -> None:
    index = KeywordIndex(laws)
    rng = np.random.default_rng(3)
    allowed = rng.random(len(laws)) < 0.6
    for question in QUESTIONS:
        bm25, _ = index.score(question)
        for mask in (None, allowed):
            scores = bm25 if mask is None else np.where(mask, bm25, -1.0).astype(np.float32)
            for k in (1, 5, 20, len(laws)):
                top = index.query(question).top(k, mask)
                assert len(top) == k == len(set(top.tolist()))
                # the k best scores (ties may pick either passage, as argpartition did)
                assert np.array_equal(np.sort(scores[top]), np.sort(scores)[-k:]), question
                if (scores > 0).sum() < k:  # filled exactly as the dense ranking did
                    want = np.argpartition(-scores, k - 1)[:k] if k < len(scores) \
                        else np.arange(k)
                    assert np.array_equal(top, want)


def test_question_touches_only_its_postings(laws: list[str]) -> None:
    index = KeywordIndex(laws)
    match = index.query("女职工产假")
    terms = set(tokenize("女职工产假"))
    touched = {i for i, t in enumerate(index.tokens) if terms & set(t)}
    assert set(match.touched().tolist()) == touched
    assert 0 < len(touched) < len(laws) / 4
    assert len(index.query("完全无关的火星探测器").touched()) == 0


def test_empty_index() -> None:
    index = KeywordIndex([])
    match = index.query("工会")
    assert len(match.touched()) == 0 and len(match.at(np.zeros(0, dtype=np.int64))[0]) == 0
    assert index.tokens == []


def test_saved_index_loads_the_same(laws: list[str], tmp_path) -> None:  # noqa: ANN001
    index = KeywordIndex(laws)
    index.save(tmp_path)
    loaded = KeywordIndex.load(tmp_path, len(laws))
    assert loaded is not None and loaded.tokens == index.tokens == [tokenize(t) for t in laws]
    for question in QUESTIONS:
        assert all(np.array_equal(a, b) for a, b in zip(
            loaded.score(question), index.score(question), strict=True))
    assert KeywordIndex.load(tmp_path, len(laws) + 1) is None  # not these passages


def test_search_mode_is_jiebas(laws: list[str]) -> None:
    """Search-mode words come from the one jieba cut tokenize makes: the same as jieba's own."""
    import jieba

    from bot.search.keyword import search_mode

    for text in laws + QUESTIONS:
        assert search_mode(jieba.lcut(text)) == jieba.lcut_for_search(text)


def test_pruned_top_is_exact_on_many_questions(laws: list[str]) -> None:
    """Questions made of pieces of the passages (many shared, some rare terms): the pruned
    top-k holds exactly the k best scores every time."""
    index = KeywordIndex(laws)
    rng = np.random.default_rng(11)
    for _ in range(150):
        picks = rng.choice(len(laws), size=rng.integers(1, 4), replace=False)
        question = "".join(laws[i][: rng.integers(4, 30)] for i in picks)
        bm25, _ = index.score(question)
        for k in (3, 20):
            top = index.query(question).top(k)
            assert np.array_equal(np.sort(bm25[top]), np.sort(bm25)[-k:]), question
