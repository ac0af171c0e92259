"""Hits -> reply text: the original passage and its citation, within WeChat's size limit.

Nothing here writes new content: the reply is the passage's own wording, cut only at a sentence
end when it is too long, plus where it stands in which notice.
"""

from __future__ import annotations

import re

from bot.ingest.parse import CN_NUM
from bot.ingest.passages import Passage, split_sentences
from bot.search.retrieve import Hit, Result

MAX_BYTES = 2048
ELLIPSIS = "……"
MAX_CANDIDATES = 3
LEAD_CHARS = 40
ARTICLE_LEAD = re.compile(rf"^第[{CN_NUM}\d]+条\s*")
CANDIDATES_HEAD = "您的问题可能与以下几处规定有关，请回复序号查看原文："
NOT_FOUND = (
    "抱歉，在工会已发布的文件中没有找到能回答这个问题的内容。您的问题已记录，"
    "工作人员会据此补充文件。\n\n"
    "我能用工会文件的原文回答问题并注明出处，请尽量用关键词提问，例如：\n"
    "· 新就业形态劳动者权益怎么维护？\n· 职工技术技能大赛叫什么？\n· 这份通知的文号是多少？"
)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def related_hits(result: Result, min_score: float, limit: int = 2) -> list[Hit]:
    """Further hits good enough to offer as related clauses (not the best one)."""
    return [h for h in result.hits[1:] if h.score >= min_score][:limit]


def fit_text(text: str, budget: int) -> str:
    """The longest run of whole sentences within ``budget`` bytes, marked '……' if cut."""
    if _size(text) <= budget:
        return text
    kept = ""
    for sentence in split_sentences(text):
        if _size(kept + sentence + ELLIPSIS) > budget:
            break
        kept += sentence
    if not kept:  # a single sentence longer than the budget: cut at a character boundary
        raw = text.encode("utf-8")[: max(budget - _size(ELLIPSIS), 0)]
        kept = raw.decode("utf-8", errors="ignore")
    return kept.rstrip() + ELLIPSIS


def render_passage(passage: Passage, max_bytes: int = MAX_BYTES, tail: str = "") -> str:
    """Passage text, its citation and an optional tail, cutting the text (never the citation)."""
    footer = f"\n\n——{passage.citation}" + (f"\n\n{tail}" if tail else "")
    return fit_text(passage.text, max_bytes - _size(footer)) + footer


def candidates(result: Result, min_score: float) -> list[Hit]:
    """The hits offered when the best is not clearly ahead (empty when it is)."""
    if not (result.answered and result.unsure):
        return []
    offered = [h for h in result.hits[:MAX_CANDIDATES] if h.score >= min_score]
    return offered if len(offered) > 1 else []


def _lead(text: str, chars: int = LEAD_CHARS) -> str:
    """The first words of a passage, without the article number it is cited by."""
    body = ARTICLE_LEAD.sub("", " ".join(text.split()), count=1)
    return body if len(body) <= chars else body[:chars] + ELLIPSIS


def render_candidates(hits: list[Hit]) -> str:
    """Up to three numbered candidates (citation, section titles, first words) to choose from.

    A notice's item shows the titles above it too (报名方式／填写报名表): siblings share their
    part's title, and the citation's numbers alone do not say what the part is about.
    """
    lines = [CANDIDATES_HEAD]
    for i, hit in enumerate(hits, 1):
        p = hit.passage
        titles = "／".join(t for t in p.section_titles if t) if p.section_title else ""
        title = f"（{titles}）" if titles else ""
        lines.append(f"{i}. {p.citation}{title}\n{_lead(p.text)}")
    numbers = "、".join(str(i) for i in range(1, len(hits) + 1))
    lines.append(f"回复 {numbers} 查看原文。")
    return "\n".join(lines)


def not_found(result: Result, text: str = NOT_FOUND) -> str:
    """The honest "not found", naming the law the question seems to be about if known."""
    if result.elsewhere:
        return f"您的问题可能涉及《{result.elsewhere}》，不在工会收录的文件范围内。\n\n{text}"
    return text


def render_answer(result: Result, related_min_score: float, max_bytes: int = MAX_BYTES,
                  min_score: float = 0.0) -> str:
    """The reply to a question: best passage + citation, and related clauses when they fit;
    the candidates to choose from when the best is not clearly ahead."""
    if not result.answered or result.best is None:
        return not_found(result)
    offered = candidates(result, min_score)
    if offered:
        return fit_text(render_candidates(offered), max_bytes)
    best = result.best.passage
    related = related_hits(result, related_min_score)
    if related:
        lines = [f"{i}. {h.passage.citation}" for i, h in enumerate(related, 1)]
        numbers = "、".join(str(i) for i in range(1, len(related) + 1))
        tail = "相关条款：\n" + "\n".join(lines) + f"\n回复 {numbers} 查看相关条款"
        reply = render_passage(best, max_bytes, tail)
        if reply.startswith(best.text):
            return reply
    return render_passage(best, max_bytes)
