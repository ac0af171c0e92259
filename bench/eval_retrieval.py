"""Retrieval quality on a question set: keyword-only, dense-only and fused, in one run.

    python bench/eval_retrieval.py [--config config.toml] [--questions FILE] [--verbose]

Each line of the question file:
    {"q": ..., "expect": [substrings] | null, "section": "二（四）" | null}
A hit is right when its passage contains one of the expected substrings; ``expect: null`` marks
an out-of-scope question the bot must refuse. Prints R@1, R@3, MRR@5, the in-scope answer rate,
out-of-scope refusals and section accuracy of the top hit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_config  # noqa: E402
from bot.embed import load_embedder  # noqa: E402
from bot.index import open_or_build  # noqa: E402
from bot.retrieve import Retriever  # noqa: E402

DEFAULT_QUESTIONS = ROOT.parent / "shared" / "eval" / "dev_questions.jsonl"


def _right(text: str, expect: list[str]) -> bool:
    squeezed = "".join(text.split())
    return any(e in text or "".join(e.split()) in squeezed for e in expect)


def evaluate(retriever: Retriever, questions: list[dict], mode: str, verbose: bool) -> dict:
    in_scope = [q for q in questions if q["expect"]]
    out_scope = [q for q in questions if not q["expect"]]
    r1 = r3 = mrr = answered = section_ok = section_n = refused = 0.0
    for q in in_scope:
        result = retriever.search(q["q"], mode)  # type: ignore[arg-type]
        ranks = [i for i, h in enumerate(result.hits[:5]) if _right(h.passage.text, q["expect"])]
        rank = ranks[0] if ranks else None
        r1 += rank == 0
        r3 += rank is not None and rank < 3
        mrr += 1 / (rank + 1) if rank is not None else 0
        answered += result.answered
        if q.get("section") is not None and result.hits:
            section_n += 1
            section_ok += result.hits[0].passage.section == q["section"]
        if verbose and rank != 0:
            top = result.hits[0] if result.hits else None
            print(f"  [{mode}] miss rank={rank} {q['q']!r} -> "
                  f"{top.passage.section if top else '-'} {top.score if top else 0:.3f}")
    for q in out_scope:
        result = retriever.search(q["q"], mode)  # type: ignore[arg-type]
        refused += not result.answered
        if verbose and result.answered:
            print(f"  [{mode}] answered out-of-scope {q['q']!r} -> "
                  f"{result.hits[0].passage.section} {result.hits[0].score:.3f}")
    n = max(len(in_scope), 1)
    return {
        "R@1": r1 / n, "R@3": r3 / n, "MRR@5": mrr / n, "answered": answered / n,
        "oos_refused": refused / max(len(out_scope), 1),
        "section": section_ok / max(section_n, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config.toml"))
    parser.add_argument("--questions", default=str(DEFAULT_QUESTIONS))
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    cfg = load_config(args.config)
    cfg = dataclasses.replace(cfg, retrieval=dataclasses.replace(cfg.retrieval, top_k=5))
    embedder = load_embedder(cfg.model)
    index, _ = open_or_build(cfg.knowledge.dir, cfg.index.dir, embedder)
    retriever = Retriever(index, embedder, cfg.retrieval)
    with open(args.questions, encoding="utf-8") as f:
        questions = [json.loads(line) for line in f if line.strip()]
    print(f"{len(questions)} questions, {len(index.passages)} passages, model {embedder.name}")
    header = ("mode", "R@1", "R@3", "MRR@5", "answer", "oos-ref", "section")
    print(f"{header[0]:<8} " + " ".join(f"{h:>7}" for h in header[1:]))
    for mode in ("keyword", "dense", "fused"):
        m = evaluate(retriever, questions, mode, args.verbose)
        values = (m["R@1"], m["R@3"], m["MRR@5"], m["answered"], m["oos_refused"], m["section"])
        print(f"{mode:<8} " + " ".join(f"{v:7.3f}" for v in values))


if __name__ == "__main__":
    main()
