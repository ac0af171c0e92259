"""The long fuzzing run of the webhook: tens of thousands of hostile requests, one process.

    python bench/fuzz_webhook.py [--examples 10000] [--batch 500] [--rss-bound 100] [--seed N]
                                 [--mode safe]

Uses the strategies of tests/test_fuzz.py (garbage, mutated and huge bodies, entity bombs,
broken ciphertext, odd query parameters, correctly signed garbage) against the app on a
loopback port, hashing embedder, in runs of ``--batch`` examples; after each run a valid
question in each mode must still be answered. Prints the status histogram per family, anything
wrong with its input, elapsed seconds and RSS; exits 1 on a 5xx (or any other problem) or RSS
growth over the bound. ``--mode safe`` runs the app in safe mode and adds the forgeries
(stripped encrypt_type, replayed nonces with other bodies): any 200 to one is a problem.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import Phase, given  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.conftest import KNOWLEDGE  # noqa: E402
from tests.test_fuzz import (  # noqa: E402
    ErrorLog,
    Probe,
    Webhook,
    check_alive,
    forgery_probes,
    fuzz_config,
    fuzz_settings,
    probes,
    problems,
    rss_mb,
)


def run(examples: int, batch: int, seed: int | None, workdir: Path,
        mode: str = "compatible") -> dict:
    """Fuzz ``examples`` requests; returns counts, problems and RSS figures."""
    folder = workdir / "knowledge"
    shutil.copytree(KNOWLEDGE, folder)
    hook = Webhook(fuzz_config(workdir, folder, mode))
    chosen = st.one_of(forgery_probes(), probes) if mode == "safe" else probes
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)  # also keeps refusal warnings off stderr
    statuses: Counter[int] = Counter()
    families: dict[str, Counter[int]] = {}
    found: list[str] = []
    rss = {"start": 0.0, "peak": 0.0, "end": 0.0}
    trace: list[float] = []  # RSS after each batch: a plateau, or a leak's slope
    sent = alive_checks = 0
    elapsed = 0.0
    try:
        found += check_alive(hook)
        rss["start"] = rss["peak"] = rss_mb()

        @fuzz_settings(batch, phases=[Phase.generate])
        @given(probe=chosen)
        def one(probe: Probe) -> None:
            nonlocal sent
            if sent >= examples:
                return
            sent += 1
            status, text = hook.send(probe)
            statuses[status] += 1
            families.setdefault(probe.kind.split("/")[0], Counter())[status] += 1
            found.extend(f"{problem}\n    input: {probe.describe()}"
                         for problem in problems(probe, status, text, mode))

        started = time.perf_counter()
        for run_no in range(-(-examples // batch)):
            # A fresh hypothesis run per batch: one long run's bookkeeping grows by ~15 MB per
            # 1000 examples and would hide what the app does with memory.
            (one if seed is None else hypothesis_seed(seed + run_no)(one))()
            alive_checks += 1
            found.extend(check_alive(hook))
            trace.append(rss_mb())
            rss["peak"] = max(rss["peak"], trace[-1])
        elapsed = time.perf_counter() - started
        rss["end"] = rss_mb()
    finally:
        logging.getLogger().removeHandler(errors)
        hook.close()
    if errors.count:
        found += [f"{errors.count} ERROR log records, first: {m}" for m in errors.first]
    return {"sent": sent, "statuses": statuses, "families": families, "problems": found,
            "elapsed": elapsed, "rss": rss, "alive_checks": alive_checks, "late": errors.late,
            "trace": trace}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=500,
                        help="examples per hypothesis run; a valid question is checked after each")
    parser.add_argument("--rss-bound", type=float, default=100.0,
                        help="largest acceptable RSS growth in MB")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--mode", choices=["compatible", "safe"], default="compatible",
                        help="[wechat] mode of the app; safe adds forged and replayed requests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fuzz-webhook-") as tmp:
        result = run(args.examples, args.batch, args.seed, Path(tmp), args.mode)

    rss = result["rss"]
    grown = rss["end"] - rss["start"]
    print(f"examples run: {result['sent']}")
    print("statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(result["statuses"].items())))
    for family, counts in sorted(result["families"].items()):
        print(f"  {family:8} " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    print(f"5xx: {sum(n for s, n in result['statuses'].items() if s >= 500)}")
    print(f"alive checks: {result['alive_checks']} (a valid question in raw/compat/aes after "
          f"each batch of {args.batch})")
    print(f"answers later than the reply budget: {result['late']}")
    print(f"elapsed: {result['elapsed']:.1f} s "
          f"({result['sent'] / max(result['elapsed'], 1e-9):.0f} requests/s)")
    print(f"RSS: start {rss['start']:.1f} MB, peak {rss['peak']:.1f} MB, end {rss['end']:.1f} MB "
          f"(growth {grown:+.1f} MB, bound {args.rss_bound:.0f} MB)")
    print("RSS after each batch (MB): " + " ".join(f"{m:.0f}" for m in result["trace"]))
    for problem in result["problems"][:50]:
        print(f"PROBLEM: {problem}")
    if len(result["problems"]) > 50:
        print(f"... and {len(result['problems']) - 50} more problems")
    failed = bool(result["problems"]) or grown > args.rss_bound
    print("FAIL" if failed else "OK")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
