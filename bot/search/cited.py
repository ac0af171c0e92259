"""Questions that cite an article by number (劳动合同法第四十条是什么): that article comes first.

Neither signal can do this: 第四十条 is cited in other articles' text (第十四条 refers to "本法
第三十九条和第四十条"), and the embedding does not read numbers. A worker who names an article
wants that article, so the lookup is exact: the number, and the law when one is named.
"""

from __future__ import annotations

import re

from bot.ingest.parse import CN_NUM, article_number
from bot.ingest.passages import Passage, short_title

CITED = re.compile(rf"第([{CN_NUM}两\d]+)条")
# What ends a law's name just before 第X条: the question names a law, so only that law counts.
NAMED = re.compile(r"(?:法|条例|规定|办法|解释|细则|决定|》)\s*$")
# A short question naming an article asks for it; a longer text may cite one in passing (a
# notice's "根据《工会法》第十一条…" pasted into the admin search must still find itself).
MAX_CITING = 50


def abbreviates(before: str, title: str) -> bool:
    """Whether ``before`` ends with a short form of ``title``: 3+ of its characters in order,
    from its first to its last (工伤条例 for 工伤保险条例, 社保法 for 社会保险法)."""
    for length in range(3, len(title)):
        name = before[-length:]
        if len(name) < length or name[0] != title[0] or name[-1] != title[-1]:
            continue
        rest = iter(title)
        if all(ch in rest for ch in name):
            return True
    return False


def misheard(before: str, title: str) -> bool:
    """Whether ``before`` ends with ``title`` but for one character, as voice recognition
    writes it (劳动和同法 for 劳动合同法); four characters at least, so 公司法 is not 工会法."""
    name = before[-len(title):]
    return len(title) >= 4 and len(name) == len(title) and sum(
        a != b for a, b in zip(name, title, strict=True)) == 1


class Articles:
    """The folder's law articles by number, to answer a question that cites one."""

    def __init__(self, passages: list[Passage]) -> None:
        self.by_number: dict[int, list[int]] = {}
        self.titles: set[str] = set()
        self.passages = passages
        for i, p in enumerate(passages):
            if p.kind != "section" or not p.is_article:
                continue
            number = article_number(p.path[-1][1:-1])
            if number is not None:
                self.by_number.setdefault(number, []).append(i)
                self.titles.add(short_title(p.doc_title))

    def cited(self, question: str) -> list[int]:
        """Passages of the first article the question cites (every piece of it): of the law it
        names, or of every law with that number when it names none. A law named that the
        folder does not hold gives nothing (公司法第四十条 is not 劳动合同法第四十条)."""
        if not self.by_number or len(question) > MAX_CITING:
            return []
        match = CITED.search(question)
        number = article_number(match.group(1)) if match else None
        if match is None or number is None or number not in self.by_number:
            return []
        before = question[: match.start()].rstrip("《》 ")
        names_a_law = NAMED.search(before) is not None
        named = [t for t in self.titles if t in before]
        if not named and names_a_law:
            named = [t for t in self.titles if abbreviates(before, t) or misheard(before, t)]
        if not named:
            return [] if names_a_law else list(self.by_number[number])
        # The name nearest the number, the longest there (劳动合同法实施条例 over 劳动合同法).
        law = max(named, key=lambda t: (before.rfind(t) + len(t), len(t)))
        return [i for i in self.by_number[number]
                if short_title(self.passages[i].doc_title) == law]
