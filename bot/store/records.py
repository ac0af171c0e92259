"""What the query log stores: one QueryRecord per question, times in UTC ISO text."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def now_iso() -> str:
    """Stored time format: fixed-width UTC ISO, so text order is time order in both databases."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass
class QueryRecord:
    """One question and its outcome, as stored."""

    openid: str
    msg_type: str
    question: str
    time: str = field(default_factory=now_iso)
    answered: bool = False
    reply: str = ""
    hits: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float | None = None
    delivery: str = "pending"  # passive | customer_service | failed | pending
    error: str = ""
    msg_key: str = ""

    def row(self, openid_salt: str | None = None) -> dict[str, Any]:
        """Column values; ``openid_salt`` stores a salted hash instead of the openid."""
        top = self.hits[0] if self.hits else {}
        openid = self.openid if openid_salt is None else hash_openid(self.openid, openid_salt)
        return {
            "time": self.time, "openid": openid, "msg_type": self.msg_type,
            "question": self.question, "answered": int(self.answered), "reply": self.reply,
            "hits": json.dumps(self.hits, ensure_ascii=False),
            "top_citation": top.get("citation", ""), "top_score": top.get("score"),
            "latency_ms": self.latency_ms, "delivery": self.delivery, "error": self.error,
            "msg_key": self.msg_key,
        }


def hash_openid(openid: str, salt: str) -> str:
    """A stable pseudonym: the same worker stays one user in the stats, the openid is not kept."""
    return "h:" + hashlib.sha256((salt + openid).encode()).hexdigest()[:24]
