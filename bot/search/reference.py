"""Reference laws: what the bot knows is *elsewhere*, so off-topic questions are refused.

A question about a trademark or a land dispute still finds a labour article that shares a few
words with it. Comparing the best passage of the folder with the best article of laws the
folder does not hold makes "not found" independent of the folder's size: the question is
answered only when the folder is where it belongs. Laws the folder holds are left out.
"""

from __future__ import annotations

import logging

from bot.config import Config
from bot.ingest.knowledge import KnowledgeError
from bot.search.embed import Embedder
from bot.search.index import BuildReport, Index, open_or_build

log = logging.getLogger(__name__)


def open_reference(cfg: Config, embedder: Embedder) -> Index | None:
    """The reference index (built once, cached under the index folder), or None if off."""
    folder = cfg.retrieval.reference
    if folder is None:
        return None
    try:
        # Articles without sentence vectors: about 40% of the first start's embedding saved;
        # reference_margin is chosen for articles scored this way (docs/retrieval.md).
        index, report = open_or_build(folder, cfg.index.dir / "reference", embedder,
                                      with_sentences=False)
    except (KnowledgeError, OSError) as exc:
        log.warning("reference: %s; off-topic questions are judged by score alone", exc)
        return None
    if report.embedded:
        log.info("reference: %s", report.summary())
    return index


def open_indexes(cfg: Config, embedder: Embedder,
                 progress: bool = False) -> tuple[Index, BuildReport, Index | None]:
    """The folder's index and the reference, the reference first: a law the folder holds too
    takes its vectors from it instead of being embedded twice."""
    reference = open_reference(cfg, embedder)
    index, report = open_or_build(cfg.knowledge.dir, cfg.index.dir, embedder, progress,
                                  cfg.index.type, donor=reference)
    return index, report, reference
