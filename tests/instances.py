"""Several `bot serve` processes sharing PostgreSQL, Redis and one knowledge folder, for the
multi-instance tests and the benchmark: start them, talk WeChat to them, read their log."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tests import wechat_peer as peer
from tests.conftest import NO_REFERENCE
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "admin-token-for-instances"


@dataclass
class Instance:
    """One running `bot serve`."""

    name: str
    proc: asyncio.subprocess.Process
    base: str
    log: Path
    times: list[float] = field(default_factory=list)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def shared_config(folder: Path, knowledge: Path, pg_url: str, redis_url: str, model: str,
                  extra: str = "") -> str:
    """The settings every instance shares (the port is added per instance)."""
    return (f'[knowledge]\ndir = "{knowledge}"\nwatch = false\n'
            f'[index]\ndir = "{folder / "index"}"\n[model]\nname = "{model}"\n'
            f'[querylog]\nurl = "{pg_url}"\n[state]\nredis_url = "{redis_url}"\n'
            f'[admin]\ntoken = "{ADMIN_TOKEN}"\n[log]\nlevel = "INFO"\n'
            # The reference laws take a minute to index; these tests are not about them.
            + ('' if '[retrieval]' in extra else NO_REFERENCE) + extra)


async def start(folder: Path, name: str, config_text: str, timeout: float = 180) -> Instance:
    """Start `bot serve` with ``config_text`` and wait until /healthz says ready."""
    port = free_port()
    config = folder / f"{name}.toml"
    sections = config_text + f"\n[server]\nport = {port}\n"
    config.write_text(sections, encoding="utf-8")
    env = dict(os.environ, WECHAT_TOKEN=peer.TOKEN, WECHAT_APPID=peer.APPID,
               WECHAT_AES_KEY=peer.AES_KEY, PYTHONPATH=str(ROOT))
    log = folder / f"{name}.log"
    with open(log, "w") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(config), "serve",
            cwd=ROOT, env=env, stdout=err, stderr=err)
    instance = Instance(name, proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"{name} exited: {log.read_text()}")
            try:
                async with session.get(instance.base + "/healthz") as resp:
                    if resp.status == 200:
                        return instance
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready: {log.read_text()}")
            await asyncio.sleep(0.2)


async def ask(session: aiohttp.ClientSession, instance: Instance, xml: str,
              envelope: tuple[dict[str, str], str] | None = None) -> tuple[int, dict[str, Any]]:
    """POST one encrypted message; (status, the decrypted reply fields)."""
    query, body = envelope or peer.envelope(xml, "aes")
    async with session.post(f"{instance.base}/wechat?{urlencode(query)}",
                            data=body.encode()) as resp:
        text = await resp.text()
        return resp.status, peer.open_reply(text, query) if resp.status == 200 else {}
