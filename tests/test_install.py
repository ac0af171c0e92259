"""The README's install commands: torch's CPU build, no hanging on an unreachable index."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "torch_cpu.sh"


def test_torch_comes_from_the_cpu_index_and_an_unreachable_one_costs_seconds(
        tmp_path: Path) -> None:
    """An index that accepts connections and never answers (the worst kind of unreachable):
    pip gives up on it after TORCH_INDEX_TIMEOUT without retries and uses the local CPU wheel."""
    accepted: list[socket.socket] = []
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen()
        port = blackhole.getsockname()[1]

        def swallow() -> None:
            try:
                while True:
                    accepted.append(blackhole.accept()[0])
            except OSError:
                return

        threading.Thread(target=swallow, daemon=True).start()
        env = dict(os.environ, TORCH_INDEX_URL=f"http://127.0.0.1:{port}/whl/cpu",
                   TORCH_INDEX_TIMEOUT="2")
        done = subprocess.run(["bash", str(SCRIPT), "download", "--no-deps", "-d", str(tmp_path)],
                              env=env, capture_output=True, text=True, timeout=300)
    for conn in accepted:
        conn.close()
    assert done.returncode == 0, done.stderr
    assert accepted, "pip never asked the configured CPU index"
    [wheel] = [p.name for p in tmp_path.glob("torch-*.whl")]
    assert wheel.startswith("torch-2.13.0+cpu-"), wheel


def test_install_and_readme_use_the_cpu_build_and_say_what_is_downloaded() -> None:
    install = (ROOT / "scripts" / "install.sh").read_text(encoding="utf-8")
    script = SCRIPT.read_text(encoding="utf-8")
    assert "bash scripts/torch_cpu.sh install" in install and '"torch==2.13.0"' not in install
    assert "https://download.pytorch.org/whl/cpu" in script and "TORCH_INDEX_URL" in script
    assert "--retries 0" in script
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "TORCH_INDEX_URL" in readme and "190 MB" in readme and "465 MB" in readme
