"""Workers' one-tap 有用 / 没用 under each answer, attached to that question's row.

WeChat text replies may carry ``<a href="weixin://bizmsgmenu?msgmenucontent=…&msgmenuid=…">``
links: a tap sends a text message whose Content is msgmenucontent and which carries the id as
``bizmsgmenuid``. The id is the vote's digit (1 有用, 2 没用) followed by the question's MsgId,
so the vote finds its row; test accounts and old clients send no id, and a worker may type the
word, so without a usable id the vote goes to the worker's latest answer.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.store import QueryStore, hash_openid
from bot.store import links as linkstore

log = logging.getLogger(__name__)

WORDS = {"有用": "helpful", "没用": "unhelpful"}
DIGITS = {"1": "helpful", "2": "unhelpful"}
RESERVE_BYTES = 260  # room kept in an answer for the tail below (a MsgId has up to 20 digits)
THANKS = {"helpful": "谢谢您的反馈！",
          "unhelpful": "谢谢，已记录这个回答没帮上忙，工作人员会改进。"}


def tail(message: Any) -> str:
    """The line appended to an answer: two tappable links naming the question's MsgId."""
    msg_id = str(message._data.get("MsgId") or "")
    links = [f'<a href="weixin://bizmsgmenu?msgmenucontent={word}&msgmenuid={digit}{msg_id}">'
             f"{word}</a>" for word, digit in (("有用", "1"), ("没用", "2"))]
    return "这个回答：" + "  ".join(links)


def vote_of(message: Any) -> tuple[str, str] | None:
    """(vote, msg_key of the question or "") when the message is a tap or a typed 有用/没用."""
    content = (getattr(message, "content", "") or "").strip()
    menu_id = str(message._data.get("bizmsgmenuid") or "")
    if content not in WORDS:
        return None
    vote = WORDS[content]
    if menu_id[:1] in DIGITS and menu_id[1:].isdigit() and DIGITS[menu_id[0]] == vote:
        return vote, f"msg:{message.source}:{menu_id[1:]}"
    return vote, ""


async def save_vote(querylog: QueryStore, openid: str, vote: str, msg_key: str) -> int | None:
    """Attach the vote to its question's row; a failure is logged, never raised."""
    stored = hash_openid(openid, querylog.openid_salt) if querylog.openid_salt is not None \
        else openid
    try:
        row = await querylog.call(linkstore.record_vote, vote, stored, msg_key)
    except Exception:  # noqa: BLE001 - the worker already got the thanks; admins get the log
        log.exception("feedback: storing a vote failed")
        return None
    if row is None:
        log.info("feedback: a %s vote found no recent answer to attach to", vote)
    return row
