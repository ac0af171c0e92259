"""Soak: a steady load on `bot serve` for N minutes; errors and the server's RSS, start and end.

    python bench/soak.py [--minutes 5] [--rate 20]

Sends signed, encrypted questions at a fixed rate (each with its own MsgId) and prints RSS every
minute. Passes when there are no errors and RSS grew less than 10 % from the first minute on.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from common import NO_REFERENCE, ROOT, questions, rss_mb, serve

from tests import wechat_peer as peer

ENV = {"WECHAT_TOKEN": peer.TOKEN, "WECHAT_APPID": peer.APPID, "WECHAT_AES_KEY": peer.AES_KEY}


async def soak(base: str, pid: int, minutes: float, rate: float) -> tuple[int, int, float, float]:
    qs = questions()
    ids = itertools.count(9_000_000_000)
    sent = errors = 0
    rss = [rss_mb(pid)]
    print(f"  0.0 min  RSS {rss[0]:.0f} MB", flush=True)
    inflight: set[asyncio.Task] = set()

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        nonlocal errors
        query, body = peer.envelope(peer.text_xml(qs[i % len(qs)], user=f"oSoak{i % 500:019d}",
                                                  msg_id=next(ids)), "aes")
        try:
            async with session.post(f"{base}/wechat?{urlencode(query)}", data=body) as r:
                if r.status != 200 or "Encrypt" not in await r.text():
                    errors += 1
        except aiohttp.ClientError:
            errors += 1

    started = time.monotonic()
    next_report = started + 60
    async with aiohttp.ClientSession() as session:
        while (now := time.monotonic()) - started < minutes * 60:
            task = asyncio.create_task(one(session, sent))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            sent += 1
            if now >= next_report:
                rss.append(rss_mb(pid))
                print(f"{(now - started) / 60:5.1f} min  sent {sent:6d}  errors {errors}  "
                      f"RSS {rss[-1]:.0f} MB", flush=True)
                next_report += 60
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
        await asyncio.gather(*inflight)
    # The baseline is RSS once warm (after the first minute): caches fill during that minute.
    return sent, errors, rss[1] if len(rss) > 1 else rss[0], rss_mb(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--rate", type=float, default=20, help="requests per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = (f'[knowledge]\ndir = "{ROOT / "knowledge"}"\n[index]\ndir = "{ROOT / "index"}"\n'
                  f'[model]\ncache_dir = "{ROOT / "models"}"\n'
                  f'[querylog]\npath = "{Path(tmp) / "q.sqlite3"}"\n[log]\nlevel = "WARNING"\n'
                  f'{NO_REFERENCE}')
        with serve(config, Path(tmp), ENV) as (base, pid, _):
            sent, errors, first, last = asyncio.run(soak(base, pid, args.minutes, args.rate))
    growth = (last - first) / first * 100
    print(f"sent {sent}, errors {errors}; RSS after the first minute {first:.0f} MB, at the end "
          f"{last:.0f} MB ({growth:+.1f} %)")
    sys.exit(0 if errors == 0 and growth < 10 else 1)


if __name__ == "__main__":
    main()
