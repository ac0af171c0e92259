"""End to end with the real model: questions in everyday Chinese get the right passage."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from bot.config import Config
from bot.search.index import open_or_build
from bot.search.retrieve import Retriever
from tests.conftest import KNOWLEDGE, NO_REFERENCE, ROOT, make_config


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory, model_path: str,
              real_embedder) -> Retriever:  # noqa: ANN001
    """Built once per module: encoding the notices with the real model takes seconds."""
    folder = tmp_path_factory.mktemp("retrieval")
    shutil.copytree(KNOWLEDGE, folder / "knowledge")
    cfg = make_config(folder, folder / "knowledge", model_path)
    index, _ = open_or_build(cfg.knowledge.dir, cfg.index.dir, real_embedder)
    return Retriever(index, real_embedder, cfg.retrieval)


@pytest.mark.parametrize(
    ("question", "section", "phrase"),
    [
        ("我是送外卖的，工会能帮我维权吗？", "二（四）", "新就业形态劳动者"),
        ("职工技术技能大赛叫什么名字", "二（三）", "匠心创造"),
        ("数字工会要怎么建设", "二（五）", "建好用好管好数字"),
        ("学习贯彻要和什么结合起来", "一", "结合起来"),
    ],
)
def test_answers_with_the_right_passage(retriever: Retriever, question: str, section: str,
                                        phrase: str) -> None:
    result = retriever.search(question)
    assert result.answered
    assert result.best is not None
    assert result.best.passage.section == section and phrase in result.best.passage.text


@pytest.mark.parametrize("question", ["文号是多少", "这份通知什么时候印发的", "哪个单位发的"])
def test_metadata_questions(retriever: Retriever, question: str) -> None:
    result = retriever.search(question)
    assert result.answered and result.best is not None
    assert result.best.passage.kind == "meta"


@pytest.mark.parametrize("question", ["明天会下雨吗", "股票怎么买", "你好", "asdfghjkl"])
def test_out_of_scope_is_refused(retriever: Retriever, question: str) -> None:
    assert not retriever.search(question).answered


def test_cli_ask_json(real_config: Config, model_path: str, tmp_path) -> None:  # noqa: ANN001
    config = tmp_path / "config.toml"
    config.write_text(
        f'[knowledge]\ndir = "{real_config.knowledge.dir}"\n[index]\ndir = "index"\n'
        f'[model]\nname = "{model_path}"\n{NO_REFERENCE}',
        encoding="utf-8",
    )
    out = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "ask", "--json"],
        input="文号是多少\n明天会下雨吗\n", capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout.splitlines()
    first, second = (json.loads(line) for line in out)
    assert first["answered"] and "云工通〔2023〕7号" in first["reply"]
    assert set(first["hits"][0]) == {"doc", "doc_no", "section", "section_title", "citation",
                                     "text", "score", "id"}
    assert len(first["hits"][0]["id"]) == 16  # the passage id in the index (links use it)
    assert not second["answered"]
