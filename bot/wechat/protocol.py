"""The WeChat Official Account protocol: signatures, decryption, parsing, reply XML. Nothing else.

Built on wechatpy's functions. Signatures are compared here with ``hmac.compare_digest``
(wechatpy compares with ``!=``) before wechatpy is asked to decrypt, and anything a request can
get wrong becomes a ``ProtocolError`` carrying the HTTP status to answer with.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.messages import BaseMessage
from wechatpy.replies import create_reply


class ProtocolError(Exception):
    """A request that must be refused: ``status`` is the HTTP status, the message the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Incoming:
    """A verified, decrypted and parsed message, and how the reply must be sent back."""

    message: BaseMessage
    encrypted: bool
    nonce: str
    timestamp: str


def signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the sorted parts concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def _check(expected: str, given: str, what: str) -> None:
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise ProtocolError(403, f"bad {what}")


def verify_request(
    token: str, query: dict[str, str], window: int, now: float | None = None
) -> None:
    """Check ``signature`` and the timestamp window of any request from WeChat."""
    if not token:
        raise ProtocolError(403, "no [wechat] token configured")
    stamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    _check(signature(token, stamp, nonce), query.get("signature", ""), "signature")
    if not (stamp.isascii() and stamp.isdigit()):  # int() would take " 1", "+1", "1_0", "１"
        raise ProtocolError(403, "timestamp is not a number")
    age = abs((now or time.time()) - float(stamp))  # 400 digits: inf, not an OverflowError
    if age > window:
        raise ProtocolError(403, f"timestamp {age:.0f} s away from now (window {window} s)")
    if not (nonce.isascii() and nonce.isalnum() and len(nonce) <= 64):
        # The nonce is echoed into the encrypted reply; WeChat's are digits.
        raise ProtocolError(400, "nonce must be letters and digits")


def make_crypto(token: str, aes_key: str, appid: str) -> WeChatCrypto | None:
    """The AES helper for safe/compatible mode, or None when not configured."""
    if not (aes_key and appid):
        return None
    try:
        return WeChatCrypto(token, aes_key, appid)
    except (AssertionError, ValueError) as exc:
        raise ValueError(
            "[wechat] encoding_aes_key must be the 43-character EncodingAESKey"
        ) from exc


_TEXT_FIELDS = ("ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Content",
                "Recognition", "Event", "EventKey")


def _encrypted_field(body: str) -> str:
    import xmltodict

    try:
        data = xmltodict.parse(body, disable_entities=True)["xml"]
        value = data["Encrypt"]
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad request
        raise ProtocolError(400, f"malformed encrypted XML: {type(exc).__name__}") from exc
    if not isinstance(value, str) or not value:
        raise ProtocolError(400, "encrypted XML without an <Encrypt> value")
    return value


def _refuse_doctype(text: str) -> None:
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise ProtocolError(400, "XML with a DOCTYPE or entities is not WeChat's")


def read_message(
    body: bytes, query: dict[str, str], token: str, crypto: WeChatCrypto | None,
    mode: str = "compatible",
) -> Incoming:
    """Decrypt (safe and compatible mode) and parse a POSTed message body.

    ``mode`` is the account's: safe refuses plaintext (else anyone could drop ``encrypt_type``
    and post a body no signature covers), plain refuses ciphertext, compatible takes both.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(400, "body is not UTF-8") from None
    _refuse_doctype(text)
    encrypted = query.get("encrypt_type", "raw").lower() == "aes"
    if mode == "safe" and not encrypted:
        raise ProtocolError(403, "unencrypted message refused: [wechat] mode is safe")
    if mode == "plain" and encrypted:
        raise ProtocolError(403, "encrypted message refused: [wechat] mode is plain")
    if encrypted:
        if crypto is None:
            raise ProtocolError(400, "encrypted message but no encoding_aes_key/appid configured")
        encrypt = _encrypted_field(text)
        stamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        _check(signature(token, stamp, nonce, encrypt), query.get("msg_signature", ""),
               "msg_signature")
        try:
            text = crypto.decrypt_message(
                {"Encrypt": encrypt}, query["msg_signature"], stamp, nonce
            )
        except Exception as exc:  # noqa: BLE001 - wrong key, bad padding, wrong appid...
            raise ProtocolError(400, f"cannot decrypt message: {type(exc).__name__}") from exc
        _refuse_doctype(text)  # the decrypted plaintext is parsed too
    try:
        message = parse_message(text)
    except Exception as exc:  # noqa: BLE001 - xmltodict/expat errors, missing MsgType...
        raise ProtocolError(400, f"malformed message XML: {type(exc).__name__}") from exc
    if message is None or not getattr(message, "source", None):
        raise ProtocolError(400, "message without FromUserName")
    # A repeated or nested element parses to a list or dict: refuse it where we read text.
    if any(not isinstance(message._data.get(name), str | None) for name in _TEXT_FIELDS):
        raise ProtocolError(400, "message field is not a single text value")
    return Incoming(message, encrypted, query.get("nonce", ""), query.get("timestamp", ""))


def render_reply(
    incoming: Incoming, content: str | None, crypto: WeChatCrypto | None, created: int
) -> str:
    """Reply XML for a text answer (encrypted when the message was); '' → 'success'."""
    if not content:
        return "success"
    reply: Any = create_reply(content, incoming.message)
    reply.time = created
    xml = reply.render()
    if incoming.encrypted and crypto is not None:
        return crypto.encrypt_message(xml, incoming.nonce, incoming.timestamp)
    return xml
