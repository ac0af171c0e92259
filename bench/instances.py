"""Throughput of one vs two `bot serve` instances sharing PostgreSQL and Redis, in one run.

    python bench/instances.py [--requests 400] [--clients 16] [--model hashing]

Starts a throwaway PostgreSQL cluster and redis-server (as the tests do), then drives, from
this separate process, signed encrypted WeChat POSTs (each its own MsgId) at: one instance on
the embedded defaults (SQLite, memory state: the baseline), one instance on PostgreSQL+Redis,
and two instances on PostgreSQL+Redis with requests alternating between them (what an nginx
upstream does). Default model, shipped knowledge/. Prints req/s, latency and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import tempfile
import time
from pathlib import Path

import aiohttp
from common import ROOT, percentile, questions

from bot.search.model_convert import DEFAULT_MODEL, resolve_model
from tests import wechat_peer as peer
from tests.instances import Instance, ask, shared_config, start
from tests.servers import Postgres, Redis

_ids = itertools.count(9_000_000_000)


async def drive(instances: list[Instance], clients: int, total: int, qs: list[str]) -> dict:
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while (i := next(counter)) < total:
            xml = peer.text_xml(qs[i % len(qs)], user=f"oBench{i % clients:018d}",
                                msg_id=next(_ids))
            started = time.perf_counter()
            status, reply = await ask(session, instances[i % len(instances)], xml)
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200 or not reply.get("Content"):
                errors += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        for i in range(2 * len(instances)):  # warm up every instance
            await ask(session, instances[i % len(instances)], peer.text_xml(qs[i]))
        started = time.perf_counter()
        await asyncio.gather(*(sender(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {"req_s": total / elapsed, "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95), "errors": errors}


async def run(args: argparse.Namespace) -> None:
    qs = questions() or ["工会怎么维护新就业形态劳动者的权益？", "职工技术技能大赛叫什么名字？"]
    work = Path(tempfile.mkdtemp(prefix="bench-instances-"))
    shutil.copytree(ROOT / "knowledge", work / "knowledge")
    pg, redis = Postgres(), Redis()
    model = args.model or resolve_model(DEFAULT_MODEL, ROOT / "models")
    shared = shared_config(work, work / "knowledge", pg.database(), redis.url, model)
    embedded = (f'[knowledge]\ndir = "{work / "knowledge"}"\nwatch = false\n'
                f'[index]\ndir = "{work / "index"}"\n[model]\nname = "{model}"\n'
                f'[querylog]\npath = "{work / "q.sqlite3"}"\n')
    rows = []
    try:
        for label, texts in [("1 instance, SQLite + memory (default)", [embedded]),
                             ("1 instance, PostgreSQL + Redis", [shared]),
                             ("2 instances, PostgreSQL + Redis", [shared, shared])]:
            instances = [await start(work, f"i{n}", text) for n, text in enumerate(texts)]
            try:
                result = await drive(instances, args.clients, args.requests, qs)
            finally:
                await asyncio.gather(*(i.stop() for i in instances))
            rows.append((label, result))
            print(f"{label:40s} {result['req_s']:7.1f} req/s  p50 {result['p50']:6.1f} ms  "
                  f"p95 {result['p95']:6.1f} ms  errors {result['errors']}", flush=True)
    finally:
        pg.close()
        redis.close()
        shutil.rmtree(work, ignore_errors=True)
    base = rows[0][1]["req_s"]
    one = rows[1][1]["req_s"]
    print(f"\nratios: PostgreSQL+Redis / embedded = {one / base:.2f}; "
          f"two instances / one (PostgreSQL+Redis) = {rows[2][1]['req_s'] / one:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--model", default="", help="model name or path (default: the e5 model)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
