"""The answering engine the server shares: model and index loaded once, searches off the loop.

The current Retriever is swapped whole when the index is rebuilt, so a question in flight
finishes on the index it started with and the next one sees the new one.
"""

from __future__ import annotations

import logging
import time

from bot.config import Config
from bot.ops.admission import Admission
from bot.search.batching import MicroBatcher
from bot.search.embed import Embedder, load_embedder
from bot.search.index import BuildReport, Index, build_index, save_index
from bot.search.links import Link, Links
from bot.search.reference import open_indexes
from bot.search.retrieve import Result, Retriever

log = logging.getLogger(__name__)


class Engine:
    """Answers questions from the current index; ``swap`` installs a rebuilt one atomically."""

    def __init__(self, cfg: Config, embedder: Embedder, index: Index,
                 reference: Index | None = None) -> None:
        self.cfg = cfg
        self.embedder = embedder
        self.reference = reference
        self.links = Links(embedder)
        self.retriever = Retriever(index, embedder, cfg.retrieval, reference)
        workers = embedder.workers  # model calls that can run side by side
        self.batcher: MicroBatcher[str, Result] = MicroBatcher(
            self._search_batch, cfg.model.query_batch, cfg.model.batch_wait_ms / 1000, workers
        )
        # Every worker's batch running, and the next one filling.
        self.admission = Admission((workers + 1) * cfg.model.query_batch,
                                   cfg.server.max_waiting, cfg.server.max_wait,
                                   cfg.wechat.reply_budget)
        self.last_report: BuildReport | None = None
        self.loaded_at = time.time()
        self.reloads = 0
        self.reload_failures = 0

    @classmethod
    def open(cls, cfg: Config) -> tuple[Engine, BuildReport]:
        """Load the model and bring the saved index up to date with the knowledge folder."""
        embedder = load_embedder(cfg.model)
        index, report, reference = open_indexes(cfg, embedder)
        log.info("engine: %s", report.summary())
        return cls(cfg, embedder, index, reference), report

    @property
    def index(self) -> Index:
        return self.retriever.index

    def swap(self, index: Index) -> None:
        retriever = Retriever(index, self.embedder, self.cfg.retrieval, self.reference)
        if self.links.links:
            retriever.links = self.links.index_for(retriever)
        self.retriever = retriever
        self.loaded_at = time.time()

    def set_links(self, links: list[Link]) -> None:
        """Serve ``links`` from the next question on (embeds only new questions; off the loop)."""
        self.links.set(links)
        retriever = self.retriever
        retriever.links = self.links.index_for(retriever)

    def rebuild(self) -> BuildReport:
        """Bring the index up to date with the folder and swap it in (runs off the loop).

        Unchanged files are not re-parsed and unchanged passages not re-embedded. If saving
        fails the new index is still served from memory; if building fails the old one stays.
        """
        try:
            index, report = build_index(self.cfg.knowledge.dir, self.embedder, self.index,
                                        donor=self.reference)
        except Exception:
            self.reload_failures += 1
            log.exception("engine: rebuilding the index failed; still serving the previous one")
            raise
        if report.touched:
            try:
                save_index(index, self.cfg.index.dir)
            except OSError as exc:
                log.error("engine: cannot save the index (%s); serving it from memory", exc)
            self.swap(index)
            self.reloads += 1
            log.info("engine: reloaded: %s", report.summary())
        self.last_report = report
        return report

    def search(self, question: str) -> Result:
        return self.retriever.search(question)

    def _search_batch(self, questions: list[str]) -> list[Result]:
        # self.retriever is read once: a swap during the batch does not affect it.
        return self.retriever.search_many(questions)

    async def asearch(self, question: str) -> Result:
        """Search off the event loop, batched with the questions that arrive with it; raises
        Shed when overloaded (see bot.ops.admission)."""
        return await self.admission.run(lambda: self.batcher.submit(question))

    async def aclose(self) -> None:
        await self.batcher.aclose()
