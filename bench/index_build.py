"""Index build speed vs bare model.encode, a no-op rebuild, and save-to-answerable time.

    python bench/index_build.py [--copies 8]

Builds an index from scratch over the shipped notices (``--copies`` altered copies of each,
so there is enough distinct text to time), against `model.encode` on exactly the same passage
texts in the same run; then rebuilds with nothing changed (must embed 0); then runs `bot serve`
with the watcher, saves a changed notice and times until the new wording is answered.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from common import NO_REFERENCE, ROOT, serve

from tests import wechat_peer as peer


def build_vs_bare(folder: Path, index_dir: Path) -> None:
    from bot.config import load_config
    from bot.search.embed import load_embedder
    from bot.search.index import build_index, open_or_build

    cfg = load_config(ROOT / "config.toml")
    embedder = load_embedder(cfg.model)
    embedder.encode_passages(["预热"])
    started = time.perf_counter()
    index, report = build_index(folder, embedder)
    build = time.perf_counter() - started
    texts = [p.search_text for p in index.passages]
    started = time.perf_counter()
    embedder.encode_passages(texts)  # the configured backend's own encode, nothing else
    bare = time.perf_counter() - started
    n = len(texts)
    print(f"build from scratch: {report.documents} documents, {n} passages in {build:.1f} s "
          f"= {n / build:.1f} passages/s")
    print(f"bare encode_passages of the same passages: {bare:.1f} s = {n / bare:.1f} passages/s; "
          f"build/bare {(n / build) / (n / bare):.2f}x")
    open_or_build(folder, index_dir, embedder)
    _, again = open_or_build(folder, index_dir, embedder)
    print(f"no-op rebuild: embedded {again.embedded} passages in {again.seconds:.2f} s")


def save_to_answerable(folder: Path, tmp: Path) -> None:
    env = {"WECHAT_TOKEN": peer.TOKEN, "WECHAT_APPID": peer.APPID, "WECHAT_AES_KEY": peer.AES_KEY}
    config = (f'[knowledge]\ndir = "{folder}"\n[index]\ndir = "{tmp / "index2"}"\n'
              f'[model]\ncache_dir = "{ROOT / "models"}"\n[querylog]\npath = "{tmp / "q.db"}"\n'
              f'[log]\nlevel = "WARNING"\n'
              f'{NO_REFERENCE}')
    with serve(config, tmp, env) as (base, _, ready):
        print(f"bot serve ready in {ready:.1f} s (index built on start)")
        seed = next(folder.glob("云工通*.txt"))
        seed.write_text(seed.read_text(encoding="utf-8").replace("滇中引水工程", "滇西供水工程"),
                        encoding="utf-8")
        saved = time.perf_counter()
        while True:
            query, body = peer.envelope(peer.text_xml("滇西供水工程竞赛"), "raw")
            with urlopen(Request(f"{base}/wechat?{urlencode(query)}", body.encode())) as r:
                if "滇西供水工程" in peer.open_reply(r.read().decode(), query)["Content"]:
                    break
            time.sleep(0.05)
        print(f"saved a changed notice -> answered with the new wording: "
              f"{time.perf_counter() - saved:.1f} s (settle_seconds 1.0 included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        folder = tmp / "knowledge"
        folder.mkdir()
        for path in (ROOT / "knowledge").iterdir():
            for i in range(args.copies):
                # Each copy differs in every sentence, so no passage is a duplicate of another.
                text = path.read_text(encoding="utf-8").replace("。", f"（{i}）。")
                (folder / f"{i}-{path.name}").write_text(text, encoding="utf-8")
        build_vs_bare(folder, tmp / "index")
        single = tmp / "single"
        shutil.copytree(ROOT / "knowledge", single)
        save_to_answerable(single, tmp)


if __name__ == "__main__":
    main()
