"""WeChat's side of the protocol for tests: real XML, signed and encrypted with wechatpy."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from typing import Any

import xmltodict
from wechatpy.crypto import WeChatCrypto

TOKEN = "union-test-token"
APPID = "wx1234567890abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SERVICE = "gh_union_account"
_ids = itertools.count(6054768590064713728)


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def text_xml(content: str, user: str = "oUser1234567890abcdefXYZ", msg_id: int | None = None,
             created: int | None = None) -> str:
    """A text message as WeChat sends it (documentation sample layout)."""
    return (
        f"<xml><ToUserName><![CDATA[{SERVICE}]]></ToUserName>"
        f"<FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id or next(_ids)}</MsgId></xml>"
    )


def message_xml(msg_type: str, fields: dict[str, str], user: str = "oUser1234567890abcdefXYZ",
                created: int | None = None, msg_id: bool = True) -> str:
    """Any message or event: the common header plus ``fields``."""
    body = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    mid = f"<MsgId>{next(_ids)}</MsgId>" if msg_id else ""
    return (
        f"<xml><ToUserName><![CDATA[{SERVICE}]]></ToUserName>"
        f"<FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>{body}{mid}</xml>"
    )


def fresh_nonce() -> str:
    """Digits, as WeChat's nonces are; a new one per request (the bot refuses reuse)."""
    return str(secrets.randbelow(10**10)).zfill(10)


def signed_query(timestamp: int | None = None, nonce: str | None = None,
                 token: str = TOKEN) -> dict[str, str]:
    stamp = str(timestamp or int(time.time()))
    nonce = nonce or fresh_nonce()
    return {"signature": sign(token, stamp, nonce), "timestamp": stamp, "nonce": nonce,
            "openid": "oUser1234567890abcdefXYZ"}


def envelope(xml: str, mode: str, **query_kw: Any) -> tuple[dict[str, str], str]:
    """(query, body) for plaintext ('raw'), compatible ('compat') or safe ('aes') mode."""
    query = signed_query(**query_kw)
    if mode == "raw":
        return query, xml
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    wrapped = crypto.encrypt_message(xml, query["nonce"], query["timestamp"])
    encrypt = xmltodict.parse(wrapped)["xml"]["Encrypt"]
    query.update(encrypt_type="aes", msg_signature=sign(TOKEN, query["timestamp"],
                                                        query["nonce"], encrypt))
    if mode == "aes":
        body = f"<xml><ToUserName><![CDATA[{SERVICE}]]></ToUserName>" \
               f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    else:  # compatible mode: plaintext fields and the ciphertext side by side
        body = xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    return query, body


def open_reply(body: str, query: dict[str, str]) -> dict[str, Any]:
    """The reply XML as a dict, decrypting (and checking its signature) when encrypted."""
    if body == "success" or not body:
        return {}
    data = xmltodict.parse(body)["xml"]
    if "Encrypt" in data:
        crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
        plain = crypto.decrypt_message(body, data["MsgSignature"], data["TimeStamp"],
                                       data["Nonce"])
        data = xmltodict.parse(plain)["xml"]
        data["_encrypted"] = True
    return data
