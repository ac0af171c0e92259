"""Train the question adapter (bot/data/adapter-*.npz) from real question -> article pairs.

    python bench/train_adapter.py [--config config.toml] [--out FILE]

Data in the repository: bench/data/stard_questions.jsonl (real layperson questions from STARD,
MIT licence, none about labour law) and the articles of the 28 reference laws at the top of
bot/data/reference/ (the shipped adapter was trained against those; the laws added later under
more/ are left out so that the same command gives the same map). The model stays frozen: a
384x384 linear map of question vectors is trained with a contrastive loss against every article
(the right ones as positives), kept near the identity by a penalty so it cannot forget what the
model knew. Deterministic (seeded, full
batch); a few minutes on 2 cores, most of it embedding the articles once.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import SHIPPED_ADAPTER, SHIPPED_REFERENCE, load_config  # noqa: E402
from bot.search.adapter import QueryAdapter  # noqa: E402
from bot.search.embed import load_embedder  # noqa: E402
from bot.search.index import open_or_build  # noqa: E402

DATA = ROOT / "bench" / "data" / "stard_questions.jsonl"
CACHE = ROOT / "bench" / ".cache" / "index-adapter"
EPOCHS, TEMPERATURE, PENALTY, RATE = 50, 0.05, 0.03, 1e-3


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config.toml"), help="settings file")
    parser.add_argument("--out", default=str(SHIPPED_ADAPTER), help="where to write the adapter")
    args = parser.parse_args()
    cfg = load_config(args.config)
    embedder = load_embedder(cfg.model)
    with tempfile.TemporaryDirectory() as tmp:
        for law in SHIPPED_REFERENCE.glob("*.md"):  # the top level only, as when trained
            (Path(tmp) / law.name).symlink_to(law)
        index, _ = open_or_build(Path(tmp), CACHE, embedder, progress=True)
    where = {(p.doc_title, p.path[-1]): i for i, p in reversed(list(enumerate(index.passages)))
             if p.path}
    questions, targets = [], []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        found = [i for (title, article), i in where.items()
                 for a in item["articles"] if title.endswith(a["law"]) and article == a["article"]]
        if found:
            questions.append(item["q"])
            targets.append(found)
    print(f"{len(questions)} questions, {len(index.passages)} articles")
    torch.manual_seed(0)
    x = torch.tensor(embedder.encode_queries(questions))
    p = torch.tensor(index.vectors)
    eye = torch.eye(x.shape[1])
    positive = torch.zeros(len(questions), len(index.passages), dtype=torch.bool)
    for row, found in enumerate(targets):
        positive[row, found] = True
    w = torch.nn.Parameter(eye.clone())
    opt = torch.optim.Adam([w], lr=RATE)
    for epoch in range(EPOCHS):
        z = torch.nn.functional.normalize(x @ w, dim=1)
        logp = torch.log_softmax(z @ p.T / TEMPERATURE, dim=1)
        loss = -logp.masked_fill(~positive, float("-inf")).logsumexp(1).mean()
        loss = loss + PENALTY * ((w - eye) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if epoch % 10 == 0 or epoch == EPOCHS - 1:
            print(f"epoch {epoch}: loss {loss.item():.4f}")
    model = Path(cfg.model.name).name.split(":")[-1]
    QueryAdapter(w.detach().numpy(), model).save(Path(args.out))
    print(f"wrote {args.out} for {model}")


if __name__ == "__main__":
    main()
