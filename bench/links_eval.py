"""Linked questions, measured without a server: the engine `bot serve` runs, over
tests/data/links_folder with the real model, the 10 links of tests/data/links_eval.json.

    PYTHONPATH=. python bench/links_eval.py [--index DIR]

Prints, for the in-sample set ("in", links_eval.json: the 20 paraphrases and 40 unrelated
questions the constants of bot/search/links.py were chosen on) and two held-out sets ("out",
links_heldout.json: 30 paraphrases and 40 unrelated questions, used to compare methods, never
to set a constant; "test", links_test.json: 20 and 20, looked at once; "test2",
links_test2.json: 30 and 40, written before the 2026-11-27 method comparison and used only to
confirm; "test3", links_test3.json: 30 and 40, written after "test2" had been looked at and
before any further method was tried), how many paraphrases get
the linked passage first and how many unrelated questions keep their first reply.
tests/test_links_acceptance.py checks "in" and "out" through a running `bot serve`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_config  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.search.answer import render_answer  # noqa: E402
from bot.search.links import Link, link_to  # noqa: E402
from bot.search.retrieve import Result  # noqa: E402

DATA = ROOT / "tests" / "data"


def first_words(result: Result, engine: Engine) -> str:
    """What the worker sees first: the reply's opening, as the acceptance test compares."""
    if not result.answered:
        return "NOT FOUND " + result.elsewhere
    cfg = engine.cfg.retrieval
    return render_answer(result, cfg.related_min_score, min_score=cfg.min_score)[:40]


def open_engine(index_dir: Path) -> Engine:
    cfg = load_config(ROOT / "config.toml")
    model = ROOT / "models" / "multilingual-e5-small"
    cfg = dataclasses.replace(
        cfg, knowledge=dataclasses.replace(cfg.knowledge, dir=DATA / "links_folder"),
        index=dataclasses.replace(cfg.index, dir=index_dir),
        model=dataclasses.replace(cfg.model, name=str(model) if model.exists()
                                  else cfg.model.name))
    engine, _ = Engine.open(cfg)
    return engine


def evaluate(engine: Engine, verbose: bool = False) -> dict[str, tuple[int, int]]:
    """(hits, total) per set: originals, paraphrases and unrelated kept, in and out of sample."""
    data = json.loads((DATA / "links_eval.json").read_text(encoding="utf-8"))
    held = json.loads((DATA / "links_heldout.json").read_text(encoding="utf-8"))
    test = json.loads((DATA / "links_test.json").read_text(encoding="utf-8"))
    test2 = json.loads((DATA / "links_test2.json").read_text(encoding="utf-8"))
    test3 = json.loads((DATA / "links_test3.json").read_text(encoding="utf-8"))
    passages = engine.index.passages

    def target(entry: dict) -> str:
        return next(p.id for p in passages if p.source.startswith(entry["source"])
                    and p.path and p.path[-1] == entry["section"])

    targets = [target(e) for e in data["links"]]
    unrelated = {"in": data["unrelated"], "out": held["unrelated"], "test": test["unrelated"],
                 "test2": test2["unrelated"], "test3": test3["unrelated"]}
    engine.set_links([])
    before = {q: first_words(engine.search(q), engine) for qs in unrelated.values() for q in qs}
    links: list[Link] = []
    for n, (entry, pid) in enumerate(zip(data["links"], targets, strict=True)):
        passage = next(p for p in passages if p.id == pid)
        links.append(dataclasses.replace(link_to(entry["question"], passage), id=n + 1))
    engine.set_links(links)

    def linked(question: str, pid: str) -> bool:
        result = engine.search(question)
        ok = result.answered and not result.unsure and result.hits[0].passage.id == pid
        if verbose and not ok:
            print(f"  missed {question} -> {first_words(result, engine)}")
        return ok

    out = {"originals": (sum(linked(e["question"], t) for e, t in
                             zip(data["links"], targets, strict=True)), len(targets))}
    paraphrases = {"in": [(q, t) for e, t in zip(data["links"], targets, strict=True)
                          for q in e["paraphrases"]],
                   "out": [(q, t) for qs, t in zip(held["paraphrases"], targets, strict=True)
                           for q in qs],
                   **{name: [(q, t) for qs, t in zip(held_set["paraphrases"], targets, strict=True)
                             for q in qs] for name, held_set in (("test", test), ("test2", test2),
                                                     ("test3", test3))}}
    for name, pairs in paraphrases.items():
        out[f"paraphrases {name}"] = (sum(linked(q, t) for q, t in pairs), len(pairs))
    for name, questions in unrelated.items():
        kept = 0
        for q in questions:
            now = first_words(engine.search(q), engine)
            kept += now == before[q]
            if verbose and now != before[q]:
                print(f"  moved {q}: {before[q]!r} -> {now!r}")
        out[f"unrelated kept {name}"] = (kept, len(questions))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="index folder to build or reuse")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    index_dir = args.index or Path(tempfile.mkdtemp(prefix="links-eval-"))
    engine = open_engine(index_dir)
    for name, (hit, total) in evaluate(engine, args.verbose).items():
        print(f"{name:24s} {hit}/{total} ({100 * hit / total:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
