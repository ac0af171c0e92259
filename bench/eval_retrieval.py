"""Retrieval quality on every question set, for each signal alone, fused and a plain BM25 baseline.

    python bench/eval_retrieval.py [--config config.toml] [--set NAME ...] [--verbose]

Sets (each indexes its folder; indexes are cached under bench/.cache by folder, so the sets over
one folder share one index, and by content hash within it):
- ``seed``: ../shared/eval/dev_questions.jsonl over knowledge/.
- ``extra``: bench/extra_questions.jsonl over knowledge/.
- ``notices``: bench/notices_questions.jsonl over the seed and the two sample notices in
  bench/notices/ (overlapping topics).
- ``notices2``: bench/notices2_questions.jsonl over the same three notices: 40 questions and 6
  off-topic ones written later by a helper that had read only the three notices (not our other
  sets or tables), so nothing in the bot was chosen on it.
- ``real``: ../shared/eval/real/stard_dev.jsonl (real layperson questions, STARD) over
  ../shared/eval/real/laws/ plus knowledge/; any listed article counts as right.
- ``offtopic``: the same real questions over a labour-law folder (../shared/eval/real/labour-laws/
  plus the notices): none of them is about these laws, so all must be refused.
- ``labour``: bench/labour_questions.jsonl, 30 questions we wrote ourselves (not STARD's), over
  the labour-law folder: a sanity check that labour questions are answered there.
- ``workers``: bench/worker_questions.jsonl, 60 everyday questions about work (dismissal, wages,
  overtime, injury, maternity, leave, arbitration …) with the articles that answer them, over the
  labour-law folder. Written later by a helper that saw only the law files (not STARD, not the
  bot's tables or other sets), so nothing in the bot was chosen on it.
- ``mixed``: the notices' questions over that same folder (17 labour laws beside the three
  notices): the laws must not pull a notice's questions away from it. Its off-topic lines
  are not counted: beside the laws they are in scope (产假, 加班费).

Question lines: ``{"q", "expect": [substrings] | null, "section"}`` (a hit is right when its passage
contains one of the substrings; null = out of scope) or STARD's ``{"q", "articles": [{"law",
"article"}] | null}``. Prints top-1, top-3, MRR@5, in-scope answered, off-topic refused, section
accuracy and "shown": the share of in-scope questions whose reply shows the right passage (the
answer when the bot is sure, one of the candidates when it asks).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import Config, load_config  # noqa: E402
from bot.ingest.passages import Passage  # noqa: E402
from bot.search.answer import candidates  # noqa: E402
from bot.search.embed import Embedder, load_embedder  # noqa: E402
from bot.search.index import Index, open_or_build  # noqa: E402
from bot.search.keyword import KeywordIndex, words  # noqa: E402
from bot.search.reference import open_reference  # noqa: E402
from bot.search.retrieve import Hit, Result, Retriever  # noqa: E402

SHARED = ROOT.parent / "shared" / "eval"
REAL = SHARED / "real"
CACHE = ROOT / "bench" / ".cache"
NOTICES = ROOT / "bench" / "notices"
# The three overlapping notices, and the 17 labour laws beside them (the acceptance's folder).
NOTICE_FOLDER = [SHARED.parent / "seeds", NOTICES]
LABOUR_FOLDER = [REAL / "labour-laws", *NOTICE_FOLDER]
SETS: dict[str, tuple[Path, list[Path]]] = {
    "seed": (SHARED / "dev_questions.jsonl", [ROOT / "knowledge"]),
    "extra": (ROOT / "bench" / "extra_questions.jsonl", [ROOT / "knowledge"]),
    "notices": (ROOT / "bench" / "notices_questions.jsonl", NOTICE_FOLDER),
    "notices2": (ROOT / "bench" / "notices2_questions.jsonl", NOTICE_FOLDER),
    "real": (REAL / "stard_dev.jsonl", [REAL / "laws", ROOT / "knowledge"]),
    "offtopic": (REAL / "stard_dev.jsonl", LABOUR_FOLDER),
    "labour": (ROOT / "bench" / "labour_questions.jsonl", LABOUR_FOLDER),
    "workers": (ROOT / "bench" / "worker_questions.jsonl", LABOUR_FOLDER),
    "mixed": (ROOT / "bench" / "notices_questions.jsonl", LABOUR_FOLDER),
}
MODES = ("bm25", "keyword", "dense", "fused")


def folder_name(sources: list[Path]) -> str:
    """The cache name of the folder made of ``sources`` (labour-laws+seeds+notices): sets over
    the same files share one index."""
    return "+".join(source.name for source in sources)


def link_folder(name: str, sources: list[Path]) -> Path:
    """One knowledge folder made of links to the files of ``sources`` (rebuilt each run)."""
    folder = CACHE / f"knowledge-{name}"
    if folder.exists():
        for old in folder.rglob("*"):
            if old.is_symlink() or old.is_file():
                old.unlink()
    for source in sources:
        for path in sorted(source.rglob("*")) if source.is_dir() else [source]:
            if path.is_file() and path.suffix.lower() in (".txt", ".md", ".docx", ".pdf"):
                target = folder / source.name / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(path.resolve())
    return folder


def is_right(passage: Passage, question: dict) -> bool:
    if question.get("articles"):
        article = passage.path[-1] if passage.path else ""
        return any(passage.doc_title.endswith(a["law"]) and article == a["article"]
                   for a in question["articles"])
    expect = question.get("expect") or []
    squeezed = "".join(passage.text.split())
    return any(e in passage.text or "".join(e.split()) in squeezed for e in expect)


def in_scope(question: dict, set_name: str) -> bool:
    if set_name == "offtopic":
        return False
    return bool(question.get("expect") or question.get("articles"))


class PlainBM25:
    """The baseline: BM25 over jieba words of the passage text alone, no fields, no gate."""

    def __init__(self, passages: list[Passage]) -> None:
        self.passages = passages
        self.index = KeywordIndex([p.text for p in passages], tokenizer=words)

    def search(self, question: str, top_k: int) -> Result:
        bm25, _ = self.index.score(question)
        order = np.argsort(-bm25, kind="stable")[:top_k]
        hits = [Hit(self.passages[i], float(bm25[i]), 0.0, 0.0) for i in order]
        return Result(question, hits, bool(hits))


def shown(result: Result, question: dict, min_score: float) -> bool:
    """Whether the reply shows the right passage: the answer, or one of the candidates."""
    if not result.answered or result.best is None:
        return False
    offered = candidates(result, min_score) or [result.best]
    return any(is_right(h.passage, question) for h in offered)


def evaluate(search: Callable[[str], Result], questions: list[dict], set_name: str,
             label: str, verbose: bool, min_score: float = 0.0) -> dict[str, float]:
    inside = [q for q in questions if in_scope(q, set_name)]
    # Beside the labour laws the notices' off-topic questions (产假, 加班费) are in scope.
    outside = [] if set_name == "mixed" else [q for q in questions if not in_scope(q, set_name)]
    top1 = top3 = mrr = answered = section_ok = section_n = refused = seen = 0.0
    for q in inside:
        result = search(q["q"])
        ranks = [i for i, h in enumerate(result.hits[:5]) if is_right(h.passage, q)]
        rank = ranks[0] if ranks else None
        top1 += rank == 0
        top3 += rank is not None and rank < 3
        mrr += 1 / (rank + 1) if rank is not None else 0
        answered += result.answered
        seen += shown(result, q, min_score)
        if q.get("section") is not None and result.hits:
            section_n += 1
            section_ok += result.hits[0].passage.section == q["section"]
        if verbose and rank != 0:
            top = result.hits[0].passage.citation if result.hits else "-"
            print(f"  [{label}] miss rank={rank} {q['q']!r} -> {top}")
    for q in outside:
        result = search(q["q"])
        refused += not result.answered
        if verbose and result.answered:
            print(f"  [{label}] answered off-topic {q['q']!r} -> {result.hits[0].passage.citation}"
                  f" {result.hits[0].score:.3f}")
    n = max(len(inside), 1)
    return {"n": len(inside), "oos": len(outside), "top1": top1 / n, "top3": top3 / n,
            "mrr": mrr / n, "answered": answered / n, "shown": seen / n,
            "refused": refused / max(len(outside), 1) if outside else float("nan"),
            "section": section_ok / section_n if section_n else float("nan")}


def run_set(name: str, cfg: Config, embedder: Embedder, reference: Index | None,
            verbose: bool, modes: tuple[str, ...] = MODES) -> dict[str, dict[str, float]]:
    path, sources = SETS[name]
    if not path.exists() or not all(s.exists() for s in sources):
        print(f"{name}: skipped (missing {path if not path.exists() else sources})")
        return {}
    shared = folder_name(sources)
    index, _ = open_or_build(link_folder(shared, sources), CACHE / f"index-{shared}", embedder)
    retriever = Retriever(index, embedder, cfg.retrieval, reference)
    with open(path, encoding="utf-8") as f:
        questions = [json.loads(line) for line in f if line.strip()]
    top_k = cfg.retrieval.top_k
    figures: dict[str, dict[str, float]] = {}
    baseline = PlainBM25(index.passages)
    for mode in modes:
        def search(q: str, mode: str = mode) -> Result:
            if mode == "bm25":
                return baseline.search(q, top_k)
            return retriever.search(q, mode)  # type: ignore[arg-type]
        figures[mode] = evaluate(search, questions, name, mode, verbose, cfg.retrieval.min_score)
    n = next(iter(figures.values()))
    print(f"\n{name}: {n['n']} in scope, {n['oos']} out of scope; "
          f"{len(index.passages)} passages; model {embedder.name}")
    header = ("mode", "top-1", "top-3", "MRR@5", "answer", "refused", "section", "shown")
    print(f"{header[0]:<8} " + " ".join(f"{h:>7}" for h in header[1:]))
    for mode, m in figures.items():
        values = (m["top1"], m["top3"], m["mrr"], m["answered"], m["refused"], m["section"],
                  m["shown"])
        print(f"{mode:<8} " + " ".join(f"{v:7.3f}" for v in values))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config.toml"), help="settings file")
    parser.add_argument("--set", action="append", choices=sorted(SETS),
                        help="only these sets (repeatable; default: all)")
    parser.add_argument("--verbose", action="store_true", help="print every miss")
    args = parser.parse_args()
    cfg = load_config(args.config)
    cfg = dataclasses.replace(cfg, retrieval=dataclasses.replace(cfg.retrieval, top_k=5))
    embedder = load_embedder(cfg.model)
    # Opened as `bot serve` opens it (bot.search.reference), cached in CACHE / "reference".
    reference = open_reference(
        dataclasses.replace(cfg, index=dataclasses.replace(cfg.index, dir=CACHE)), embedder)
    for name in args.set or list(SETS):
        run_set(name, cfg, embedder, reference, args.verbose)


if __name__ == "__main__":
    main()
