"""What the bot says to a message: answers, help, welcome, menu clicks and follow-ups.

Protocol-free: takes a parsed wechatpy message and returns the reply text (None means no
reply) plus the QueryRecord to log when the message was a question.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from bot.config import WechatConfig
from bot.engine import Engine
from bot.ingest.passages import Passage
from bot.ops.admission import Shed
from bot.search.answer import MAX_BYTES, candidates, related_hits, render_answer, render_passage
from bot.search.retrieve import Result
from bot.state import BoundedKeys, SharedState
from bot.store.records import QueryRecord
from bot.wechat import feedback

log = logging.getLogger(__name__)

HELP = (
    "我可以用工会文件的原文回答您的问题，并注明出自哪份文件的哪一部分。\n"
    "请直接输入问题，例如：\n· 工会怎么维护新就业形态劳动者的权益？\n"
    "· 职工技术技能大赛叫什么名字？\n· 这份通知的文号是多少？\n"
    "回答后回复 1、2 可查看相关条款。"
)
NOT_TEXT = (
    "抱歉，我目前只能回答文字提问（也可以发送语音）。请直接输入您的问题，回复“帮助”查看示例。"
)
VOICE_UNRECOGNISED = (
    "抱歉，没能识别这条语音。请直接输入文字提问，例如：新就业形态劳动者权益怎么维护？"
)
SEARCH_FAILED = "抱歉，系统暂时无法查询，请稍后再试。您的问题已记录。"
NO_FOLLOWUP = "目前没有可查看的相关条款，请直接输入您的问题。"
HELP_WORDS = {"帮助", "help", "?", "？", "菜单", "使用说明"}
# Small talk is not a question: a greeting gets the help text, thanks a short reply, instead of
# "not found" (or a law named because 知道 occurs in one). Compared without punctuation or emoji.
GREETINGS = {"你好", "您好", "你好呀", "你好啊", "您好呀", "在吗", "在么", "在不在", "有人吗",
             "hi", "hello", "嗨", "哈喽", "早上好", "中午好", "下午好", "晚上好"}
THANKS_WORDS = {"谢谢", "谢谢你", "谢谢您", "谢谢了", "多谢", "感谢", "好的", "好的谢谢", "好",
                "嗯", "嗯嗯", "哦", "知道了", "明白了", "收到", "ok", "okay", "行"}
THANKS = "不客气。还有问题可以直接输入，回复“帮助”查看示例。"
NOT_WORDS = re.compile(r"[\W_]+")
FOLLOWUP_WORDS = {"1": 0, "2": 1, "3": 2, "１": 0, "２": 1, "３": 2}
MORE_WORDS = {"更多", "more"}
SILENT = None
SHED = "shed"  # the delivery of a question dropped under overload


@dataclass
class Outcome:
    """The reply to send (None: reply 'success', i.e. nothing) and what to log."""

    reply: str | None
    record: QueryRecord | None = None
    vote: tuple[str, str] | None = None  # a worker's 有用/没用: (vote, msg_key of the question)


def hit_json(passage: Passage, score: float) -> dict[str, Any]:
    return {"id": passage.id, "doc": passage.doc_title, "doc_no": passage.doc_no,
            "section": passage.section,
            "section_title": passage.section_title, "citation": passage.citation,
            "source": passage.source, "score": round(score, 4)}


class FollowUps:
    """Per-user related clauses offered after an answer, in the shared state (a "1" may reach
    another instance): short-lived (TTL) and, per instance, bounded (LRU of users written)."""

    def __init__(self, state: SharedState, ttl: float, max_users: int) -> None:
        self.state = state
        self.ttl = ttl
        self._users = BoundedKeys(state, max_users)

    async def remember(self, openid: str, passages: list[Passage], asked: str = "") -> None:
        """Offer ``passages`` to the user; ``asked`` is the question when they are candidates
        to choose from (the choice is then logged against it)."""
        key = "followup:" + openid
        if not passages:
            await self.state.delete(key)
            return
        data = {"passages": [p.to_json() for p in passages], "shown": [], "asked": asked}
        await self.state.set(key, json.dumps(data, ensure_ascii=False), self.ttl)
        await self._users.touch(key)

    async def take(self, openid: str, position: int | None) -> Passage | None:
        """The related clause at ``position`` (None: the first one not yet shown)."""
        key = "followup:" + openid
        found = await self.state.get(key)
        if found is None:
            return None
        data = json.loads(found)
        passages, shown = data["passages"], set(data["shown"])
        if position is None:
            position = next((i for i in range(len(passages)) if i not in shown), len(passages))
        if position >= len(passages):
            return None
        data["shown"] = sorted(shown | {position})
        await self.state.set(key, json.dumps(data, ensure_ascii=False), self.ttl)
        return Passage.from_json(passages[position])

    async def asked(self, openid: str) -> str:
        """The question whose candidates the user is choosing from ("" if none)."""
        found = await self.state.get("followup:" + openid)
        return str(json.loads(found).get("asked", "")) if found else ""


class Conversation:
    """Turns one incoming message into an Outcome."""

    def __init__(self, cfg: WechatConfig, engine: Engine, state: SharedState) -> None:
        self.cfg = cfg
        self.engine = engine
        self.followups = FollowUps(state, cfg.followup_ttl, cfg.followup_users)

    async def respond(self, message: Any) -> Outcome:
        """The outcome of ``message``; answers end with the 有用 / 没用 links (feedback.py)."""
        vote = feedback.vote_of(message) if message.type == "text" else None
        if vote is not None:  # a tap on an answer: not a question, no new answer
            return Outcome(feedback.THANKS[vote[0]], None, vote)
        outcome = await self._respond(message)
        record = outcome.record
        offered_candidates = bool(await self.followups.asked(message.source))  # not an answer
        if outcome.reply and record is not None and record.answered \
                and record.msg_type in ("text", "voice", "click") and not offered_candidates:
            outcome.reply = record.reply = outcome.reply + "\n\n" + feedback.tail(message)
        return outcome

    async def _respond(self, message: Any) -> Outcome:
        kind = message.type
        openid = message.source
        if kind == "text":
            return await self._text(openid, (message.content or "").strip())
        if kind == "voice":
            recognition = (getattr(message, "recognition", None) or "").strip()
            if recognition:
                return await self.answer(openid, "voice", recognition)
            record = QueryRecord(openid, "voice", "（语音未识别）", reply=VOICE_UNRECOGNISED)
            return Outcome(VOICE_UNRECOGNISED, record)
        if kind == "event":
            return await self._event(openid, message)
        if kind == "unknown" and str(message._data.get("MsgType", "")).lower() == "event":
            return Outcome(SILENT)  # an event wechatpy does not know: nobody is talking
        return Outcome(NOT_TEXT)  # image, video, location, link, file...

    async def _text(self, openid: str, text: str) -> Outcome:
        words = NOT_WORDS.sub("", text).lower()
        if not text or text.lower() in HELP_WORDS or words in GREETINGS:
            return Outcome(HELP)
        if text in FOLLOWUP_WORDS or text.lower() in MORE_WORDS:
            return await self._followup(openid, text)
        if words in THANKS_WORDS:
            return Outcome(THANKS)
        return await self.answer(openid, "text", text)

    async def _followup(self, openid: str, text: str) -> Outcome:
        asked = await self.followups.asked(openid)
        passage = await self.followups.take(openid, FOLLOWUP_WORDS.get(text))
        # A choice among candidates is logged against the question: a label for staff.
        record = (QueryRecord(openid, "choice", asked) if asked and passage
                  else QueryRecord(openid, "followup", text))
        if passage is None:
            record.reply = NO_FOLLOWUP
            return Outcome(NO_FOLLOWUP, record)
        reply = render_passage(passage, MAX_BYTES)
        record.answered, record.reply = True, reply
        record.hits = [hit_json(passage, 1.0)]
        if asked:
            record.hits[0]["chosen"] = FOLLOWUP_WORDS.get(text, 0) + 1
        return Outcome(reply, record)

    async def _event(self, openid: str, message: Any) -> Outcome:
        event = (message.event or "").lower()
        if event in ("subscribe", "subscribe_scan"):
            return Outcome(self.cfg.welcome)
        if event == "click":
            value = self.cfg.menu.get(message.key or "")
            if value is None:
                log.warning("conversation: menu key %r has no [wechat.menu] entry", message.key)
                return Outcome(HELP)
            if value.startswith("="):
                return Outcome(value[1:])
            return await self.answer(openid, "click", value)
        return Outcome(SILENT)  # unsubscribe, LOCATION reports, VIEW, job-finished events...

    async def answer(self, openid: str, msg_type: str, question: str) -> Outcome:
        """Search and render; a failure still yields a reply and a record with the error."""
        record = QueryRecord(openid, msg_type, question)
        started = time.perf_counter()
        try:
            result: Result = await self.engine.asearch(question)
            cfg = self.engine.cfg.retrieval
            reply = render_answer(result, cfg.related_min_score,
                                  MAX_BYTES - feedback.RESERVE_BYTES, cfg.min_score)
            record.answered = result.answered
            record.hits = [hit_json(h.passage, h.score) for h in result.hits]
            offered = candidates(result, cfg.min_score)
            if offered:
                await self.followups.remember(openid, [h.passage for h in offered], question)
            else:
                related = related_hits(result, cfg.related_min_score)
                await self.followups.remember(
                    openid, [h.passage for h in related] if result.answered else []
                )
        except Shed as exc:  # overloaded: no reply, but the question is logged as shed
            record.delivery, record.error = SHED, f"shed: {exc}"
            return Outcome(SILENT, record)
        except Exception as exc:  # noqa: BLE001 - the worker still gets a reply, admins the error
            log.exception("conversation: search failed for %r", question)
            reply, record.error = SEARCH_FAILED, f"search failed: {exc!r}"
        record.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        record.reply = reply
        return Outcome(reply, record)
