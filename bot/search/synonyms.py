"""Colloquial words -> the official terms of the notices and laws (送外卖 -> 新就业形态劳动者,
辞退 -> 解除劳动合同).

Workers ask in everyday words the documents never use; neither keyword matching nor a small
embedding model reliably bridges 送外卖 and 新就业形态劳动者. The table is plain text so staff can
extend it.
"""

from __future__ import annotations

from pathlib import Path


class Synonyms:
    """Rewrites a question by appending the official term of each colloquial word in it."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        # Longest colloquial words first, so 外卖小哥 wins over 外卖.
        self.pairs = sorted(pairs, key=lambda p: -len(p[0]))

    @classmethod
    def load(cls, path: Path) -> Synonyms:
        """The table at ``path`` (``[retrieval] synonyms``; bot.config.SHIPPED_SYNONYMS by
        default)."""
        pairs = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            official, _, colloquial = line.partition(":")
            for word in colloquial.split(","):
                if word.strip():
                    pairs.append((word.strip().lower(), official.strip()))
        return cls(pairs)

    def expand(self, question: str) -> str:
        """The question plus the official terms it implies (unchanged when none apply)."""
        lowered = question.lower()
        added: list[str] = []
        for word, official in self.pairs:
            if word in lowered and official not in question and official not in added:
                added.append(official)
                lowered = lowered.replace(word, " ")
        return question if not added else f"{question}（{'、'.join(added)}）"
