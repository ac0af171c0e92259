"""Latency and throughput of `bot serve` under load, against bare retrieval in the same run.

    python bench/load.py [--requests 400] [--levels 1,4,16,64] [--backend onnx] [--quantize]
                         [--baseline torch]

Times the bare path in-process (question encode + search, no HTTP), then starts `bot serve`
(default model, shipped knowledge/, index already built) and drives it from this separate
process with signed, encrypted WeChat POSTs, each with its own MsgId, at each concurrency level.
Then the same for the baseline backend (torch), and prints the ratios of the two.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from common import NO_REFERENCE, ROOT, percentile, questions, rss_mb, serve

from tests import wechat_peer as peer

ENV = {"WECHAT_TOKEN": peer.TOKEN, "WECHAT_APPID": peer.APPID, "WECHAT_AES_KEY": peer.AES_KEY}
_ids = itertools.count(7_000_000_000)


async def drive(base: str, clients: int, total: int, qs: list[str]) -> dict:
    """``clients`` concurrent senders, ``total`` requests in all; latencies in ms."""
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while (i := next(counter)) < total:
            xml = peer.text_xml(qs[i % len(qs)], user=f"oLoad{i % clients:019d}",
                                msg_id=next(_ids))
            query, body = peer.envelope(xml, "aes")
            started = time.perf_counter()
            async with session.post(f"{base}/wechat?{urlencode(query)}", data=body) as r:
                text = await r.text()
            latencies.append((time.perf_counter() - started) * 1000)
            if r.status != 200 or "Encrypt" not in text:
                errors += 1

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(sender(session) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {"clients": clients, "req_s": total / elapsed, "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
            "errors": errors}


def bare(qs: list[str], rounds: int, model: dict) -> tuple[list[float], list[float]]:
    """In-process, one question at a time (what one request costs at least): the question
    encode alone, and encode + search (``engine.search``), interleaved."""
    import dataclasses

    from bot.config import load_config
    from bot.engine import Engine
    from bot.search.keyword import question_terms

    cfg = load_config(ROOT / "config.toml")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model))
    engine, _ = Engine.open(cfg)
    for q in qs[:5]:
        engine.search(q)  # warm up
    encode, search = [], []
    for q in qs * rounds:
        started = time.perf_counter()
        engine.embedder.encode_queries([engine.retriever.query_text(q)])
        encode.append((time.perf_counter() - started) * 1000)
        question_terms.cache_clear()  # tokenised afresh, as a new question is
        started = time.perf_counter()
        engine.search(q)
        search.append((time.perf_counter() - started) * 1000)
    return encode, search


def run_server(model: dict, levels: list[int], requests: int, qs: list[str]) -> list[dict]:
    """Start `bot serve` with these [model] settings and drive it at each concurrency level."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = "".join(f"{k} = {json.dumps(v)}\n" for k, v in model.items())
        config = (f'[knowledge]\ndir = "{ROOT / "knowledge"}"\nwatch = false\n'
                  f'[index]\ndir = "{Path(tmp) / "index"}"\n'
                  f'[model]\ncache_dir = "{ROOT / "models"}"\n{settings}'
                  f'[querylog]\npath = "{Path(tmp) / "q.sqlite3"}"\n[log]\nlevel = "WARNING"\n'
                  f'{NO_REFERENCE}')
        # A first start builds the index; the second is the one measured (index on disk).
        with serve(config, Path(tmp), ENV):
            pass
        with serve(config, Path(tmp), ENV) as (base, pid, ready):
            print(f"bot serve ({model}) ready in {ready:.2f} s; RSS {rss_mb(pid):.0f} MB")
            asyncio.run(drive(base, 4, 40, qs))  # warm up
            results = []
            for level in levels:
                client, server = cpu_ms(), cpu_ms(pid)
                results.append(asyncio.run(drive(base, level, requests, qs)))
                results[-1]["load"] = os.getloadavg()[0]  # shared machine: say how busy
                # CPU per request: this client shares the server's two cores
                results[-1]["client_cpu"] = (cpu_ms() - client) / requests
                results[-1]["server_cpu"] = (cpu_ms(pid) - server) / requests
            print(f"RSS after load {rss_mb(pid):.0f} MB")
    for r in results:
        r["ready"] = ready
    return results


def cpu_ms(pid: int | None = None) -> float:
    """CPU time (user + system) of a process so far, in ms (default: this one)."""
    fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def table(results: list[dict], encode_p50: float, bare_p50: float) -> None:
    print(f"{'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6} {'p50/encode':>10} {'p50/bare':>8} {'load':>5} "
          f"{'server CPU':>10} {'client CPU':>10}")
    for r in results:
        print(f"{r['clients']:>7} {r['req_s']:>8.1f} {r['p50']:>8.1f} {r['p95']:>8.1f} "
              f"{r['p99']:>8.1f} {r['errors']:>6} {r['p50'] / encode_p50:>10.2f} "
              f"{r['p50'] / bare_p50:>8.2f} {r['load']:>5.2f} {r['server_cpu']:>10.2f} "
              f"{r['client_cpu']:>10.2f}")


def measure(model: dict, levels: list[int], requests: int, qs: list[str]) -> list[dict]:
    """Bare figures in-process, then the server: one backend's rows."""
    encode_ms, bare_ms = bare(qs, 3, model)
    encode_p50, bare_p50 = percentile(encode_ms, 50), percentile(bare_ms, 50)
    print(f"\n{model}: bare encode p50 {encode_p50:.1f} ms; bare retrieval (encode + search, "
          f"in-process) p50 {bare_p50:.1f} ms, p99 {percentile(bare_ms, 99):.1f} ms over "
          f"{len(bare_ms)} questions; load average {os.getloadavg()[0]:.2f}")
    results = run_server(model, levels, requests, qs)
    table(results, encode_p50, bare_p50)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument("--backend", default="onnx", help="[model] backend of the measured run")
    parser.add_argument("--quantize", action="store_true", help="[model] quantize = true")
    parser.add_argument("--baseline", default="torch",
                        help="[model] backend of a second server measured in the same run "
                             "for the throughput ratio ('' for none)")  # fmt: skip
    args = parser.parse_args()
    qs = questions()
    levels = [int(x) for x in args.levels.split(",")]
    model = {"backend": args.backend, "quantize": args.quantize}
    results = measure(model, levels, args.requests, qs)
    if not args.baseline:
        return
    baseline = measure({"backend": args.baseline, "quantize": False}, levels, args.requests, qs)
    print(f"\n{'clients':>7} {'req/s ratio':>11} {'p50 ratio':>9} {'p99 ratio':>9}   "
          f"({model['backend']} / {args.baseline})")
    for r, b in zip(results, baseline, strict=True):
        print(f"{r['clients']:>7} {r['req_s'] / b['req_s']:>11.2f} {r['p50'] / b['p50']:>9.2f} "
              f"{r['p99'] / b['p99']:>9.2f}")
    print(f"start-up: {results[0]['ready']:.2f} s vs {baseline[0]['ready']:.2f} s")


if __name__ == "__main__":
    main()
