"""Shared bits of the benchmarks: questions, percentiles, a `bot serve` process, RSS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# As `bot` runs (bot/__main__.py): OpenMP threads (FAISS, torch) sleep instead of spinning,
# which on a shared 2-core machine made in-process timings swing by 10x.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "eval" / "dev_questions.jsonl"
EXTRA = ROOT / "bench" / "extra_questions.jsonl"
# The served benchmarks' config: no reference laws, as their recorded runs (they take minutes
# to index, and serving figures are compared with runs made before they were on by default).
NO_REFERENCE = '[retrieval]\nreference = ""\n'


def questions() -> list[str]:
    """Every question of the dev and extra sets (in and out of scope)."""
    found = []
    for path in (DEV, EXTRA):
        if path.exists():
            found += [json.loads(line)["q"] for line in path.open(encoding="utf-8")
                      if line.strip()]
    return found


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(config_text: str, workdir: Path, env: dict[str, str],
          code: Path = ROOT) -> Iterator[tuple[str, int, float]]:
    """Run `bot serve` of the checkout ``code`` with ``config_text``; yields (base URL, pid,
    seconds until ready)."""
    port = free_port()
    config = workdir / "config.toml"
    config.write_text(config_text + f"\n[server]\nport = {port}\n", encoding="utf-8")
    log = open(workdir / "serve.log", "w")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "serve"],
                            cwd=code, env={**os.environ, **env, "PYTHONPATH": str(code)},
                            stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                raise RuntimeError((workdir / "serve.log").read_text())
            time.sleep(0.05)
        yield base, proc.pid, time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
