"""Index build, persistence and incremental updates (hashing embedder: plumbing only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.config import Config
from bot.ingest.passages import Passage, sentences
from bot.search.embed import HashingEmbedder
from bot.search.index import IndexUnusable, build_index, load_index, open_or_build, save_index


class CountingEmbedder(HashingEmbedder):
    """Counts how many passages were encoded, to prove unchanged ones are not."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded = 0

    def encode_passages(self, texts, progress=False):  # noqa: ANN001, ANN201
        self.encoded += len(texts)
        return super().encode_passages(texts, progress)


def test_build_save_load_roundtrip(hashing_config: Config) -> None:
    emb = HashingEmbedder()
    index, report = build_index(hashing_config.knowledge.dir, emb)
    assert report.documents == 1 and report.passages == len(index.passages) == 16
    assert index.faiss.ntotal == 16
    save_index(index, hashing_config.index.dir)
    loaded = load_index(hashing_config.index.dir, emb.name)
    assert [p.id for p in loaded.passages] == [p.id for p in index.passages]
    assert (loaded.vectors == index.vectors).all()
    assert len(index.sentences) == sum(len(sentences(p)) for p in index.passages) > 0
    assert (loaded.sentences == index.sentences).all()
    assert (loaded.sentence_start == index.sentence_start).all()


def test_best_sentence_cosine(hashing_config: Config) -> None:
    """A passage's sentence score is its best sentence's cosine, its own where it has none."""
    import numpy as np

    emb = HashingEmbedder()
    index, _ = build_index(hashing_config.knowledge.dir, emb)
    many = next(i for i, p in enumerate(index.passages) if len(sentences(p)) > 2)
    one = next(i for i, p in enumerate(index.passages) if not sentences(p))
    text = sentences(index.passages[many])[1]
    vector = emb.encode_queries([text])[0]
    ids = np.array([one, many])
    got = index.sentence_cosine(ids, vector, index.vectors[ids] @ vector)
    rows = index.sentence_vectors(many).astype(np.float32) @ vector
    assert got[1] == pytest.approx(rows.max(), abs=1e-6) and int(rows.argmax()) == 1
    assert got[0] == pytest.approx(float(index.vectors[one] @ vector), abs=1e-6)


def embedded_texts(passages: list[Passage]) -> int:
    """What a build embeds for these passages: each passage and each of its sentences."""
    return len(passages) + sum(len(sentences(p)) for p in passages)


def test_noop_rebuild_embeds_nothing(hashing_config: Config) -> None:
    emb = CountingEmbedder()
    index, _ = open_or_build(hashing_config.knowledge.dir, hashing_config.index.dir, emb)
    assert emb.encoded == embedded_texts(index.passages) > 16
    before = emb.encoded
    _, report = open_or_build(hashing_config.knowledge.dir, hashing_config.index.dir, emb)
    assert emb.encoded == before and report.embedded == 0 and not report.touched


def test_changed_paragraph_reembeds_only_that_passage(hashing_config: Config) -> None:
    emb = CountingEmbedder()
    kdir = hashing_config.knowledge.dir
    first, _ = open_or_build(kdir, hashing_config.index.dir, emb)
    before = emb.encoded
    seed = next(kdir.glob("*.txt"))
    seed.write_text(seed.read_text(encoding="utf-8").replace("时时放心不下", "时刻放心不下"),
                    encoding="utf-8")
    index, report = open_or_build(kdir, hashing_config.index.dir, emb)
    changed = [p for p in index.passages if "时刻放心不下" in p.text]
    assert report.changed == [seed.name] and report.embedded == 1 and len(changed) == 1
    assert emb.encoded == before + embedded_texts(changed)
    # Unchanged passages keep their sentence vectors.
    old = {p.content_hash: first.sentence_vectors(i) for i, p in enumerate(first.passages)}
    for i, p in enumerate(index.passages):
        if p.content_hash in old:
            assert (index.sentence_vectors(i) == old[p.content_hash]).all()


def test_removed_and_failed_files(hashing_config: Config) -> None:
    emb = HashingEmbedder()
    kdir = hashing_config.knowledge.dir
    extra = "关于测试的通知\n一、总则\n（一）这是测试。\n"
    (kdir / "extra.txt").write_text(extra, encoding="utf-8")
    index, report = open_or_build(kdir, hashing_config.index.dir, emb)
    assert "extra.txt" in report.added
    (kdir / "extra.txt").unlink()
    (kdir / "broken.txt").write_bytes(b"\x81\xff\xfe\x00\x01" * 50)
    index, report = open_or_build(kdir, hashing_config.index.dir, emb)
    assert report.removed == ["extra.txt"] and report.failed == ["broken.txt"]
    assert "broken.txt" in index.files[report.failed[0]].error
    assert {p.source for p in index.passages} == {next(kdir.glob("云工通*")).name}


def test_corrupt_or_foreign_index_is_rebuilt(hashing_config: Config) -> None:
    emb = HashingEmbedder()
    idir: Path = hashing_config.index.dir
    open_or_build(hashing_config.knowledge.dir, idir, emb)
    with pytest.raises(IndexUnusable, match="built with model"):
        load_index(idir, "another-model")
    version = idir / (idir / "CURRENT").read_text().strip()
    (version / "vectors.npy").write_bytes(b"garbage")
    with pytest.raises(IndexUnusable, match="corrupt"):
        load_index(idir, emb.name)
    index, report = open_or_build(hashing_config.knowledge.dir, idir, emb)
    assert report.embedded == 16 and len(load_index(idir, emb.name).passages) == 16


def test_several_writers_never_delete_the_version_in_use(hashing_config: Config) -> None:
    """Instances' watchers and `bot index` share one folder: CURRENT always names a whole
    version, loads never fail, and no writer deletes another's version in progress."""
    import threading

    emb = HashingEmbedder()
    index, _ = build_index(hashing_config.knowledge.dir, emb)
    target = hashing_config.index.dir
    save_index(index, target)
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for _ in range(15):
                save_index(index, target)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def read() -> None:
        while not done.is_set():
            try:
                assert len(load_index(target, emb.name).passages) == len(index.passages)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    writers = [threading.Thread(target=write) for _ in range(3)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join()
    assert not errors, errors[:3]
    assert [p.name for p in target.glob("v-*")] == [(target / "CURRENT").read_text()]
    assert not list(target.glob("tmp-*"))


def test_keyword_tokens_are_cached_by_content_hash(hashing_config: Config,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A start or a one-file change does not re-tokenise unchanged passages (jieba is slow)."""
    import bot.search.keyword as keyword

    tokenised: list[str] = []
    original = keyword.jieba.lcut

    def counting(text: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        tokenised.append(text)
        return original(text, *args, **kwargs)

    folder, index_dir, emb = hashing_config.knowledge.dir, hashing_config.index.dir, \
        HashingEmbedder()
    built, _ = open_or_build(folder, index_dir, emb)
    monkeypatch.setattr(keyword.jieba, "lcut", counting)
    loaded = load_index(index_dir, emb.name)
    assert tokenised == []  # loading reuses the saved tokens
    assert loaded.keyword.tokens == built.keyword.tokens
    assert (loaded.keyword.score("工会维权")[0] == built.keyword.score("工会维权")[0]).all()
    tokenised.clear()
    (folder / "新通知.txt").write_text("关于开展职工疗休养活动的通知\n\n一、活动安排\n"
                                       "请各单位认真组织报名。\n", encoding="utf-8")
    changed, report = build_index(folder, emb, loaded)
    assert report.added == ["新通知.txt"]
    new = {p.keyword_text for p in changed.passages if p.source == "新通知.txt"}
    assert tokenised and set(tokenised) <= new  # only the new file's passages were tokenised


def test_index_saved_with_token_lists_loads_without_jieba(hashing_config: Config,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """An index saved before token ids (tokens.jsonl) still loads without re-tokenising; a
    damaged token-id file falls back to it instead of serving wrong keyword scores."""
    import json

    import bot.search.keyword as keyword

    folder, index_dir, emb = hashing_config.knowledge.dir, hashing_config.index.dir, \
        HashingEmbedder()
    built, _ = open_or_build(folder, index_dir, emb)
    version = index_dir / (index_dir / "CURRENT").read_text()
    with open(version / "tokens.jsonl", "w", encoding="utf-8") as f:
        for tokens in built.keyword.tokens:
            f.write(json.dumps(tokens, ensure_ascii=False) + "\n")
    (version / "keyword.npz").write_bytes(b"damaged")

    def refuse(text: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("re-tokenised " + text[:20])

    monkeypatch.setattr(keyword.jieba, "lcut", refuse)
    loaded = load_index(index_dir, emb.name)
    assert loaded.keyword.tokens == built.keyword.tokens
    assert np.array_equal(loaded.keyword.score("工会维权")[0], built.keyword.score("工会维权")[0])


@pytest.mark.parametrize("kind", ["hnsw"])
def test_ann_index_is_saved_and_loaded(hashing_config: Config, kind: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An HNSW graph (or IVF lists) is loaded, not rebuilt: that took 20 s at 100k passages."""
    folder, index_dir, emb = hashing_config.knowledge.dir, hashing_config.index.dir, \
        HashingEmbedder()
    built, _ = open_or_build(folder, index_dir, emb, kind=kind)
    save_index(built, index_dir)
    monkeypatch.setattr("bot.search.index.ann_index", lambda *a: pytest.fail("rebuilt"))
    loaded = load_index(index_dir, emb.name, kind)
    monkeypatch.undo()
    assert loaded.faiss.ntotal == len(built.passages) and loaded.kind == kind
    queries = built.vectors[:3]
    assert np.array_equal(loaded.faiss.search(queries, 5)[1], built.faiss.search(queries, 5)[1])
    flat = load_index(index_dir, emb.name, "flat")  # another type asked for: built afresh
    assert flat.faiss.ntotal == len(built.passages) and type(flat.faiss).__name__ == "IndexFlatIP"


def number_cn(n: int) -> str:
    """1 -> 一, 205 -> 二百零五 (enough for these tests)."""
    digits = "零一二三四五六七八九"
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    out = f"{digits[hundreds]}百" if hundreds else ""
    if tens:
        out += f"{digits[tens]}十"
    elif hundreds and ones:
        out += "零"
    return out + (digits[ones] if ones else "")


def test_identical_passages_of_one_document_are_kept_once(hashing_config: Config) -> None:
    """The 民法典's part files each carry the same metadata: it is one passage in the index."""
    folder = hashing_config.knowledge.dir
    info = "<!-- INFO END -->\n"
    for part, first in (("总则编", 1), ("物权编", 205)):
        article = "\n\n".join(f"第{number_cn(first + i)}条 第{part}的第{i + 1}条规定。"
                              for i in range(3))
        (folder / f"民法典-{part}.md").write_text(
            f"# 中华人民共和国民法典\n\n# {part}\n\n"
            "2020年5月28日 第十三届全国人民代表大会第三次会议通过\n\n2021年1月1日 施行\n\n"
            f"{info}\n## 第一章 一般规定\n\n{article}\n",
            encoding="utf-8")
    index, _ = build_index(folder, HashingEmbedder())
    code = [p for p in index.passages if p.doc_title == "中华人民共和国民法典"]
    assert [p.kind for p in code].count("meta") == 1
    assert sum(p.kind == "section" for p in code) == 6


def test_a_law_the_reference_holds_is_not_embedded_again(hashing_config: Config,
                                                         tmp_path: Path) -> None:
    """Staff copy a labour law into the folder: the reference index (the donor) already has its
    vectors, sentences and tokens by content hash, so only the notice is embedded."""
    from bot.config import SHIPPED_REFERENCE

    law = next(SHIPPED_REFERENCE.glob("职工带薪年休假条例*.md"))
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    (reference_dir / law.name).write_bytes(law.read_bytes())
    emb = CountingEmbedder()
    reference, _ = build_index(reference_dir, emb)
    folder = hashing_config.knowledge.dir
    (folder / law.name).write_bytes(law.read_bytes())
    emb.encoded = 0
    index, report = build_index(folder, emb, donor=reference)
    notice = [p for p in index.passages if p.source != law.name]
    assert emb.encoded == embedded_texts(notice) and report.embedded == len(notice)
    alone, _ = build_index(folder, CountingEmbedder())
    assert [p.content_hash for p in index.passages] == [p.content_hash for p in alone.passages]
    assert (index.vectors == alone.vectors).all()
    assert (index.sentences == alone.sentences).all()
    assert index.keyword.tokens == alone.keyword.tokens
    # A donor built with another model lends nothing.
    other = CountingEmbedder()
    other.name = "another-model"
    _, report = build_index(folder, other, donor=reference)
    assert report.embedded == len(index.passages)


def test_reference_without_sentences_lends_vectors_not_sentences(hashing_config: Config,
                                                                tmp_path: Path) -> None:
    """The reference laws are built without sentence vectors (its own scores read the articles
    alone). A law copied into the folder still takes its article vectors from it, but embeds its
    sentences: the folder's passages score as they would without the reference."""
    from bot.config import SHIPPED_REFERENCE

    law = next(SHIPPED_REFERENCE.glob("职工带薪年休假条例*.md"))
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    (reference_dir / law.name).write_bytes(law.read_bytes())
    emb = CountingEmbedder()
    reference, _ = open_or_build(reference_dir, tmp_path / "ref-index", emb, with_sentences=False)
    articles = reference.passages
    assert not reference.has_sentences and len(reference.sentences) == 0
    assert emb.encoded == len(articles)  # no sentence was embedded
    assert any(sentences(p) for p in articles)
    # Saved and loaded as it was built; opening it as it is embeds nothing.
    assert not load_index(tmp_path / "ref-index", emb.name).has_sentences
    emb.encoded = 0
    again, _ = open_or_build(reference_dir, tmp_path / "ref-index", emb, with_sentences=False)
    assert emb.encoded == 0 and not again.has_sentences
    # An index saved with sentences and opened without drops them, re-embedding nothing.
    with_them, _ = open_or_build(reference_dir, tmp_path / "old-index", emb)
    assert with_them.has_sentences and len(with_them.sentences) > 0
    emb.encoded = 0
    dropped, _ = open_or_build(reference_dir, tmp_path / "old-index", emb, with_sentences=False)
    assert emb.encoded == 0 and not dropped.has_sentences
    assert not load_index(tmp_path / "old-index", emb.name).has_sentences

    folder = hashing_config.knowledge.dir
    (folder / law.name).write_bytes(law.read_bytes())
    emb.encoded = 0
    index, report = build_index(folder, emb, donor=reference)
    notice = [p for p in index.passages if p.source != law.name]
    held = [p for p in index.passages if p.source == law.name]
    assert report.embedded == len(notice)  # the law's article vectors came from the reference
    assert emb.encoded == embedded_texts(notice) + sum(len(sentences(p)) for p in held)
    alone, _ = build_index(folder, CountingEmbedder())
    assert (index.vectors == alone.vectors).all()
    assert (index.sentences == alone.sentences).all()
    assert (index.sentence_start == alone.sentence_start).all()
