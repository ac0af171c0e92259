"""Open-loop flood of `bot serve`: arrivals do not wait for replies, as WeChat's users do not.

    python bench/flood.py [--seconds 15] [--multiples 1,2,3] [--capacity REQ_S] [--code DIR]

Starts `bot serve` (default model, shipped knowledge/), measures its capacity closed-loop
(64 clients, as bench/load.py), then for each multiple of that capacity sends signed,
encrypted questions at a fixed rate for ``--seconds`` without waiting for replies. Reports per
flood: replies with an answer, empty replies ("success": shed or late), replies later than
WeChat's 5 s, the query log's rows for the flood by delivery (every question must be there),
a normal question asked 3 s after the flood ends (its latency), and the server's RSS.
``--code DIR`` serves another checkout instead, e.g. the version before shedding as the
baseline (``git archive BASE | tar -x -C DIR``, with ``DIR/models`` linked to ``models``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from common import NO_REFERENCE, ROOT, percentile, questions, rss_mb, serve
from load import ENV, drive

from tests import wechat_peer as peer

_ids = itertools.count(8_000_000_000)


def envelopes(tag: str, count: int, qs: list[str]) -> list[tuple[str, str]]:
    """(query string, body) for ``count`` encrypted questions, prepared before the flood."""
    found = []
    for i in range(count):
        xml = peer.text_xml(qs[i % len(qs)], user=f"o{tag}{i:022d}"[:28], msg_id=next(_ids))
        query, body = peer.envelope(xml, "aes")
        found.append((urlencode(query), body))
    return found


async def one(session: aiohttp.ClientSession, url: str, body: str) -> tuple[int, float, bool]:
    """(status, seconds, answered) of one request; status 0 when the connection failed."""
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, timeout=aiohttp.ClientTimeout(total=30)) as r:
            text = await r.text()
            return r.status, time.perf_counter() - started, "<Encrypt>" in text
    except (aiohttp.ClientError, TimeoutError):
        return 0, time.perf_counter() - started, False


async def flood(base: str, rate: float, seconds: float, tag: str, qs: list[str]) -> dict:
    prepared = envelopes(tag, int(rate * seconds), qs)
    probe_query, probe_body = envelopes("Probe" + tag, 1, ["职工技术技能大赛叫什么名字"])[0]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = []
        start = time.perf_counter()
        for i, (query, body) in enumerate(prepared):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, f"{base}/wechat?{query}", body)))
        ended = time.perf_counter()
        behind = ended - (start + len(prepared) / rate)  # how far the sender itself fell behind
        await asyncio.sleep(max(0.0, ended + 3 - time.perf_counter()))
        probe = await one(session, f"{base}/wechat?{probe_query}", probe_body)
        results = await asyncio.gather(*tasks)
    latencies = [r[1] for r in results]
    return {
        "sent": len(results), "answered": sum(1 for r in results if r[2]),
        "empty": sum(1 for r in results if r[0] == 200 and not r[2]),
        "failed": sum(1 for r in results if r[0] != 200),
        "late": sum(1 for s in latencies if s > 5), "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99), "max": max(latencies),
        "probe_s": probe[1], "probe_answered": probe[2], "behind": behind,
    }


def logged(path: Path, tag: str) -> Counter[str]:
    """The flood's rows in the query log by delivery, once the writes have settled."""
    previous: Counter[str] = Counter()
    for _ in range(60):
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT delivery, count(*) FROM queries WHERE openid LIKE ? "
                                "GROUP BY delivery", (f"o{tag}%",)).fetchall()
        counts = Counter(dict(rows))
        if counts == previous and "pending" not in counts:
            return counts
        previous = counts
        time.sleep(1)
    return previous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--multiples", default="1,2,3")
    parser.add_argument("--capacity", type=float, default=0.0,
                        help="answers per second to multiply (default: measured)")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="checkout whose `bot serve` is flooded (default: this one)")
    args = parser.parse_args()
    qs = questions()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "q.sqlite3"
        config = (f'[knowledge]\ndir = "{ROOT / "knowledge"}"\nwatch = false\n'
                  f'[index]\ndir = "{Path(tmp) / "index"}"\n'
                  f'[model]\ncache_dir = "{ROOT / "models"}"\n'
                  f'[querylog]\npath = "{log}"\n[log]\nlevel = "WARNING"\n'
                  f'{NO_REFERENCE}')
        with serve(config, Path(tmp), ENV, args.code.resolve()) as (base, pid, ready):
            asyncio.run(drive(base, 4, 40, qs))  # warm up
            capacity = args.capacity or asyncio.run(drive(base, 64, 600, qs))["req_s"]
            print(f"bot serve ready in {ready:.1f} s; capacity (64 clients, closed loop): "
                  f"{capacity:.0f} answers/s; RSS {rss_mb(pid):.0f} MB")
            print(f"{'load':>4} {'req/s':>6} {'sent':>5} {'answered':>8} {'empty':>6} "
                  f"{'failed':>6} {'>5 s':>5} {'p50 s':>6} {'p99 s':>6} {'max s':>6} "
                  f"{'logged':>6} {'shed':>5} {'late':>5} {'probe s':>7} {'RSS MB':>7}")
            for n, multiple in enumerate(float(x) for x in args.multiples.split(",")):
                tag = f"Fl{n}x"
                rss_before = rss_mb(pid)
                r = asyncio.run(flood(base, capacity * multiple, args.seconds, tag, qs))
                rows = logged(log, tag)
                late = rows["customer_service"] + rows["failed"]
                print(f"{multiple:>3g}x {capacity * multiple:>6.0f} {r['sent']:>5} "
                      f"{r['answered']:>8} {r['empty']:>6} {r['failed']:>6} {r['late']:>5} "
                      f"{r['p50']:>6.2f} {r['p99']:>6.2f} {r['max']:>6.2f} "
                      f"{sum(rows.values()):>6} {rows['shed']:>5} {late:>5} "
                      f"{r['probe_s']:>6.2f}{'' if r['probe_answered'] else '!'} "
                      f"{rss_before:>3.0f}->{rss_mb(pid):.0f}")
                if r["behind"] > 0.5:
                    print(f"     (the sender fell {r['behind']:.1f} s behind its schedule)")
                time.sleep(5)


if __name__ == "__main__":
    main()
