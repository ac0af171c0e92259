"""Where one question's time goes: each stage of the request path, one question at a time.

    python bench/request_path.py [--rounds 3]

In one process, the same questions, the default model and config (reference laws included):
the bare encode, the search after it, ``engine.search`` (both), ``engine.asearch`` (plus the
micro-batcher and admission), ``conversation.respond`` (plus follow-ups and the reply text), and
the whole webhook handler in-process (aiohttp test client: signature, AES, XML, query log).
``bench/load.py`` measures the same through a real socket from another process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from common import ROOT, percentile, questions

from tests import wechat_peer as peer


def timed(fn: Callable[[str], object], qs: list[str]) -> list[float]:
    out = []
    for q in qs:
        started = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def atimed(fn: Callable[[str], Awaitable[object]], qs: list[str]) -> list[float]:
    out = []
    for q in qs:
        started = time.perf_counter()
        await fn(q)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def main_async(rounds: int) -> None:
    import dataclasses

    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import create_app
    from bot.config import load_config
    from bot.engine import Engine
    from bot.search.keyword import question_terms

    tmp = Path(tempfile.mkdtemp())
    cfg = load_config(ROOT / "config.toml")
    cfg = dataclasses.replace(
        cfg, knowledge=dataclasses.replace(cfg.knowledge, watch=False),
        querylog=dataclasses.replace(cfg.querylog, path=tmp / "q.sqlite3"),
        wechat=dataclasses.replace(cfg.wechat, token=peer.TOKEN, appid=peer.APPID,
                                   encoding_aes_key=peer.AES_KEY))
    engine, _ = Engine.open(cfg)
    retriever = engine.retriever
    qs = questions() * rounds
    for q in qs[:10]:
        engine.search(q)  # warm up

    def encode(q: str) -> object:
        return engine.embedder.encode_queries([retriever.query_text(q)])

    vectors = {q: engine.embedder.encode_queries([retriever.query_text(q)])[0] for q in qs}

    def search(q: str) -> object:
        question_terms.cache_clear()  # a new question is tokenised
        return retriever.search_vector(q, vectors[q])

    def bare(q: str) -> object:
        question_terms.cache_clear()
        return engine.search(q)

    app = create_app(cfg, engine)
    ids = itertools.count(9_000_000_000)
    async with TestClient(TestServer(app)) as client:
        from bot.keys import CONVERSATION

        conversation = app[CONVERSATION]

        async def asearch(q: str) -> object:
            question_terms.cache_clear()
            return await engine.asearch(q)

        async def respond(q: str) -> object:
            question_terms.cache_clear()
            return await conversation.respond(peer_message(q, next(ids)))

        # Sealed (the client's work) before the clock starts, in the order they are asked.
        sealed = iter([peer.envelope(peer.text_xml(q, msg_id=next(ids)), "aes") for q in qs])

        async def webhook(q: str) -> object:
            question_terms.cache_clear()
            query, body = next(sealed)
            async with client.post("/wechat", params=query, data=body) as r:
                assert r.status == 200, r.status
                return await r.text()

        stages: dict[str, Callable[[str], object]] = {
            "encode (ONNX, in-process)": encode, "search after the encode": search,
            "engine.search (encode + search)": bare}
        later: dict[str, Callable[[str], Awaitable[object]]] = {
            "engine.asearch (+ batcher, admission)": asearch,
            "conversation.respond (+ follow-ups)": respond,
            "webhook in-process (+ HTTP, AES, log)": webhook}
        times: dict[str, list[float]] = {name: [] for name in [*stages, *later]}
        for q in qs:  # interleaved: drift from other jobs hits every stage alike
            for name, fn in stages.items():
                times[name] += timed(fn, [q])
            for name, afn in later.items():
                times[name] += await atimed(afn, [q])
    encode_ms = times["encode (ONNX, in-process)"]
    base = percentile(encode_ms, 50)
    print(f"{len(qs)} questions, stages interleaved; 'extra' is the median of each question's "
          "time minus its own encode")
    print(f"{'stage':<40} {'p50 ms':>8} {'p99 ms':>8} {'/ encode':>8} {'extra ms':>8}")
    for name, values in times.items():
        extra = percentile([v - e for v, e in zip(values, encode_ms, strict=True)], 50)
        p50 = percentile(values, 50)
        print(f"{name:<40} {p50:>8.2f} {percentile(values, 99):>8.2f} {p50 / base:>8.2f} "
              f"{extra:>8.2f}")
    await engine.aclose()


def peer_message(question: str, msg_id: int):  # noqa: ANN201
    from wechatpy import parse_message

    return parse_message(peer.text_xml(question, msg_id=msg_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main_async(args.rounds))


if __name__ == "__main__":
    main()
