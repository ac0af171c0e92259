"""Before/after: `bot serve` of this checkout against another one, taking turns, same run.

    python bench/ab_serve.py OTHER_CHECKOUT [--levels 1] [--requests 250] [--rounds 6]

For a change whose effect (a few percent) is smaller than the drift of a shared machine
between two runs: both checkouts serve the same config, model folder (this checkout's
models/) and knowledge/, one after the other, ``--rounds`` times, each driven as in
bench/load.py (signed, encrypted WeChat POSTs). Prints every round and the median of each
checkout's p50 and req/s per level. OTHER_CHECKOUT is e.g. ``git worktree add /tmp/main main``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from pathlib import Path

from common import NO_REFERENCE, ROOT, questions, rss_mb, serve
from load import ENV, drive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (the baseline)")
    parser.add_argument("--levels", default="1")
    parser.add_argument("--requests", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    codes = {"other": args.other.resolve(), "this": ROOT}
    levels = [int(x) for x in args.levels.split(",")]
    qs = questions()
    runs: dict[tuple[str, int], list[dict]] = {}
    for n in range(args.rounds):
        for name, code in codes.items():
            with tempfile.TemporaryDirectory() as tmp:
                config = (f'[knowledge]\ndir = "{ROOT / "knowledge"}"\nwatch = false\n'
                          f'[index]\ndir = "{Path(tmp) / "index"}"\n'
                          f'[model]\ncache_dir = "{ROOT / "models"}"\n'
                          f'[querylog]\npath = "{Path(tmp) / "q.sqlite3"}"\n'
                          '[log]\nlevel = "WARNING"\n'
                          f'{NO_REFERENCE}')  # fmt: skip
                with serve(config, Path(tmp), ENV, code):
                    pass  # the first start builds the index
                with serve(config, Path(tmp), ENV, code) as (base, pid, ready):
                    runs.setdefault((name, 0), []).append({"ready": ready, "rss": rss_mb(pid)})
                    asyncio.run(drive(base, 4, 40, qs))  # warm up
                    for level in levels:
                        run = asyncio.run(drive(base, level, args.requests, qs))
                        run["load"] = os.getloadavg()[0]
                        runs.setdefault((name, level), []).append(run)
                        print(f"round {n + 1} {name:<5} {level:>3} clients: {run['req_s']:6.1f} "
                              f"req/s, p50 {run['p50']:6.1f} ms, p99 {run['p99']:6.1f} ms, "
                              f"errors {run['errors']}, load {run['load']:.2f}", flush=True)
    print(f"\nmedians over {args.rounds} rounds (this = {ROOT}, other = {codes['other']})")
    starts = [runs[name, 0] for name in ("this", "other")]
    ready = [statistics.median(r["ready"] for r in side) for side in starts]
    rss = [statistics.median(r["rss"] for r in side) for side in starts]
    print(f"ready in {ready[0]:.2f} vs {ready[1]:.2f} s, RSS when ready {rss[0]:.0f} vs "
          f"{rss[1]:.0f} MB")
    for level in levels:
        this, other = runs["this", level], runs["other", level]
        p50 = [statistics.median(r["p50"] for r in side) for side in (this, other)]
        rate = [statistics.median(r["req_s"] for r in side) for side in (this, other)]
        print(f"{level:>3} clients: p50 {p50[0]:.1f} vs {p50[1]:.1f} ms ({p50[0] / p50[1]:.2f}x), "
              f"req/s {rate[0]:.1f} vs {rate[1]:.1f} ({rate[0] / rate[1]:.2f}x)")


if __name__ == "__main__":
    main()
