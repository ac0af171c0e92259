"""Property-based fuzzing of the webhook: whatever arrives, the answer is 200/400/403/413.

Garbage XML, invalid UTF-8, huge fields, deep nesting, entity bombs, broken ciphertext, odd
timestamps and query parameters, and the interesting ones: requests signed correctly (so they
get past the signature check) whose body or decrypted plaintext is garbage. After the run a
valid message in each mode must still get its answer, and memory must not have grown much.
The strategies are shared with ``bench/fuzz_webhook.py``, the long run; ``FUZZ_EXAMPLES`` sets
how many examples the CI run tries.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xmltodict
from aiohttp import ClientError, ClientSession
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wechatpy.crypto.base import WeChatCipher
from wechatpy.crypto.pkcs7 import PKCS7Encoder

from bot.app import create_app
from bot.config import Config
from tests import wechat_peer as peer
from tests.conftest import make_config

ALLOWED = frozenset({200, 400, 403, 413})
LIMIT = 65536  # [wechat] max_body_bytes in config.toml
KEY = base64.b64decode(peer.AES_KEY + "=")
QUESTIONS = ["文号是多少", "工会要怎么加强党建", "新就业形态劳动者权益怎么维护", "1", "2", "更多",
             "帮助", "职工技术技能大赛叫什么名字"]
USERS = ["oUser1234567890abcdefXYZ", "oAlice000000000000000000", "oBob00000000000000000000"]
FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Content", "Event",
          "EventKey", "Recognition", "MediaId", "Format", "PicUrl", "Encrypt", "Location_X"]
MSG_TYPES = ["text", "voice", "image", "video", "shortvideo", "location", "link", "file",
             "event", "device_text", "device_event", "TEXT", ""]
EVENTS = ["subscribe", "unsubscribe", "CLICK", "VIEW", "LOCATION", "SCAN", "scancode_push",
          "pic_sysphoto", "location_select", "MASSSENDJOBFINISH", "TEMPLATESENDJOBFINISH",
          "SOMETHING_NEW", ""]
BOMB_ENTITIES = "".join(
    f'<!ENTITY e{i} "{("&e" + str(i - 1) + ";") * 10 if i else "lol" * 10}">' for i in range(10)
)
ENTITY_ATTACKS = [
    f'<?xml version="1.0"?><!DOCTYPE xml [{BOMB_ENTITIES}]>{{xml}}',  # billion laughs
    '<!DOCTYPE xml [<!ENTITY big "' + "A" * 20000 + '">]>{xml}',  # quadratic blow-up
    '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>{xml}',
    '<!DOCTYPE xml [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>{xml}',
    '<!DOCTYPE xml [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>{xml}',
    '<!DOCTYPE xml SYSTEM "file:///etc/passwd">{xml}',
    '<!doctype xml [<!entity x "y">]>{xml}',
    '\ufeff<!DOCTYPE xml [<!ENTITY x "y">]>{xml}',
    '<?xml version="1.0" encoding="UTF-16"?>{xml}',
    '<?xml version="1.0" encoding="ebcdic-cp-us"?>{xml}',
    '<?xml-stylesheet href="file:///etc/passwd"?>{xml}',
]
ENTITY_REFS = ["&e9;", "&big;&big;&big;&big;&big;&big;&big;&big;", "&x;", "%p;", "&lt;", "&#0;",
               "&#x110000;", "&amp;", "&undefined;"]

Query = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Probe:
    """One request: its family, query pairs, body, and how to send it.

    ``chunk`` > 0 sends the body in pieces of that size (chunked transfer), as a slow peer
    would; ``expect`` is the status a well-formed request must get (None: any allowed one).
    """

    kind: str
    query: Query
    body: bytes
    method: str = "POST"
    chunk: int = 0
    expect: int | None = None
    prime: bytes | None = None  # sent first with the same query, as the genuine request
    forgery: bool = False  # any 200 means a forged or replayed request was accepted

    @property
    def params(self) -> dict[str, str]:
        """The query as the server reads it: of repeated names, the first value counts."""
        params: dict[str, str] = {}
        for name, value in self.query:
            params.setdefault(name, value)
        return params

    def describe(self, limit: int = 600) -> str:
        body = repr(self.body[:limit]) + (f"... ({len(self.body)} bytes)"
                                          if len(self.body) > limit else "")
        query = [(k[:80], v[:200]) for k, v in self.query]
        return (f"{self.kind}: {self.method} query={query} chunk={self.chunk} "
                f"expect={self.expect} body={body}")


# -- building blocks: signing and sealing as WeChat does, or almost --------------------------

def now_stamp() -> str:
    return str(int(time.time()))


def signed_query(stamp: str | None = None, nonce: str | None = None, **extra: str) -> Query:
    stamp = now_stamp() if stamp is None else stamp
    nonce = nonce or peer.fresh_nonce()
    return (("signature", peer.sign(peer.TOKEN, stamp, nonce)), ("timestamp", stamp),
            ("nonce", nonce), ("openid", USERS[0]), *extra.items())


def seal(payload: bytes, appid: bytes = peer.APPID.encode(), length: int | None = None,
         padding: bytes | None = None, prefix: bytes = b"0123456789abcdef") -> str:
    """WeChat's AES envelope around any bytes; ``length``/``padding`` may lie."""
    size = len(payload) if length is None else length
    text = prefix + struct.pack(">I", size % 2**32) + payload + appid
    if padding is None:
        text = PKCS7Encoder.encode(text)
    else:
        text += padding
        text += b"\0" * (-len(text) % 32)
    return base64.b64encode(WeChatCipher(KEY).encrypt(text)).decode()


def encrypt_value(body: bytes) -> str | None:
    """The <Encrypt> text the server will read from ``body`` (None if it cannot)."""
    try:
        value = xmltodict.parse(body, disable_entities=True)["xml"]["Encrypt"]
    except Exception:  # noqa: BLE001 - garbage bodies have no such value
        return None
    return value if isinstance(value, str) else None


def aes_query(body: bytes, stamp: str | None = None, nonce: str | None = None,
              encrypt: str | None = None) -> Query:
    """A query that signs ``body``'s <Encrypt> correctly (msg_signature and signature)."""
    stamp = now_stamp() if stamp is None else stamp
    nonce = nonce or peer.fresh_nonce()
    value = encrypt if encrypt is not None else encrypt_value(body) or ""
    return signed_query(stamp, nonce, encrypt_type="aes",
                        msg_signature=peer.sign(peer.TOKEN, stamp, nonce, value))


def safe_body(encrypt: str) -> bytes:
    return (f"<xml><ToUserName><![CDATA[{peer.SERVICE}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>").encode()


def wrap(plain: bytes, mode: str, nonce: str | None = None) -> tuple[Query, bytes]:
    """(query, body) for ``plain`` in plaintext ('raw'), compatible or safe ('aes') mode."""
    if mode == "raw":
        return signed_query(nonce=nonce), plain
    encrypt = seal(plain)
    if mode == "aes":
        body = safe_body(encrypt)
    elif b"</xml>" in plain:
        body = plain.replace(b"</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode())
    else:
        body = plain + f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>".encode()
    return aes_query(body, nonce=nonce, encrypt=encrypt), body


# -- strategies ------------------------------------------------------------------------------

xml_chars = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn"))
texts = st.one_of(st.sampled_from(QUESTIONS), st.text(xml_chars, max_size=40),
                  st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20))
numbers = st.one_of(st.integers(-(2**70), 2**70).map(str), st.floats().map(str),
                    st.sampled_from(["", " ", "1e9", "0x10", "１２３", "1_000", "9" * 5000,
                                     "1" + "0" * 400, "nan", "-0"]))
modes = st.sampled_from(["raw", "compat", "aes"])
nonces = st.one_of(st.just("1234567890"), st.from_regex(r"[0-9]{1,12}", fullmatch=True),
                   st.text(xml_chars, min_size=1, max_size=12))
tag_names = st.one_of(st.sampled_from(FIELDS + ["xml", "a"]),
                      st.from_regex(r"[A-Za-z_][A-Za-z0-9_.:-]{0,12}", fullmatch=True),
                      st.text(xml_chars, min_size=1, max_size=8))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def element(name: str, value: str, how: str) -> str:
    """``<name>value</name>`` written one of the ways a sender (or a broken one) might."""
    return {
        "cdata": f"<{name}><![CDATA[{value}]]></{name}>",
        "escaped": f"<{name}>{_escape(value)}</{name}>",
        "raw": f"<{name}>{value}</{name}>",
        "empty": f"<{name}/>",
        "nested": f"<{name}><{name}>{_escape(value)}</{name}></{name}>",
        "repeated": f"<{name}>{_escape(value)}</{name}>" * 2,
        "attribute": f'<{name} a="{_escape(value)}">{_escape(value)}</{name}>',
        "unclosed": f"<{name}>{_escape(value)}",
    }[how]


odd_forms = st.sampled_from(["escaped", "raw", "empty", "nested", "repeated", "attribute",
                             "unclosed"])


@st.composite
def message_xml(draw: st.DrawFn) -> str:
    """Message-shaped XML: WeChat's fields, a few of them odd (value, form, missing, extra)."""
    msg_type = draw(st.sampled_from(MSG_TYPES))
    fields: dict[str, str] = {
        "ToUserName": peer.SERVICE, "FromUserName": draw(st.sampled_from(USERS)),
        "CreateTime": now_stamp(), "MsgType": msg_type, "Content": draw(st.sampled_from(QUESTIONS)),
        "MsgId": str(draw(st.integers(1, 2**63))),
    }
    if msg_type.lower() in ("event", "device_event"):
        fields["Event"] = draw(st.sampled_from(EVENTS))
        fields["EventKey"] = draw(st.sampled_from(["", "ABOUT", "qrscene_1", "scanbarcode|x"]))
    if msg_type == "voice":
        fields["Recognition"] = draw(st.sampled_from(QUESTIONS))
    names = list(fields)
    for name in draw(st.sets(st.sampled_from(names), max_size=3)):
        fields[name] = draw(texts | numbers)
    forms = draw(st.dictionaries(st.sampled_from(names), odd_forms, max_size=2))
    dropped = draw(st.sets(st.sampled_from(names), max_size=2))
    for name, value in draw(st.lists(st.tuples(tag_names, texts), max_size=2)):
        fields.setdefault(name, value)
    order = draw(st.permutations(list(fields))) if draw(st.booleans()) else list(fields)
    return "<xml>" + "".join(element(n, fields[n], forms.get(n, "cdata"))
                             for n in order if n not in dropped) + "</xml>"


xml_trees = st.recursive(
    st.one_of(st.text(xml_chars, max_size=20).map(_escape),
              st.text(xml_chars, max_size=20).map(lambda t: f"<![CDATA[{t}]]>")),
    lambda kids: st.builds(lambda n, k: f"<{n}>{''.join(k)}</{n}>", tag_names,
                           st.lists(kids, max_size=4)),
    max_leaves=20,
).map(lambda inner: f"<xml>{inner}</xml>")


@st.composite
def valid_probes(draw: st.DrawFn) -> Probe:
    """A well-formed message as WeChat sends it, maybe arriving in pieces: must get 200."""
    mode = draw(modes)
    user = draw(st.sampled_from(USERS) | st.from_regex(r"o[A-Za-z0-9_-]{27}", fullmatch=True))
    content = draw(st.sampled_from(QUESTIONS) | st.text(xml_chars, max_size=60))
    xml = peer.text_xml(content.replace("]]>", "]] >"), user=user)
    if draw(st.booleans()):
        xml = peer.message_xml("event", {"Event": draw(st.sampled_from(EVENTS[:6])),
                                         "EventKey": "ABOUT"}, user=user, msg_id=False)
    query, body = wrap(xml.encode(), mode)
    chunk = draw(st.sampled_from([0, 0, 1, 7, 100, 1000]))
    return Probe(f"valid/{mode}", query, body, chunk=chunk, expect=200)


@st.composite
def garbage_body_probes(draw: st.DrawFn) -> Probe:
    """Random bytes, random XML, message-shaped XML: correctly signed, in any mode."""
    source = draw(st.sampled_from(["bytes", "text", "tree", "message"]))
    plain = {
        "bytes": lambda: draw(st.binary(max_size=512)),
        "text": lambda: draw(st.text(max_size=200)).encode("utf-8", "surrogatepass"),
        "tree": lambda: draw(xml_trees).encode(),
        "message": lambda: draw(message_xml()).encode(),
    }[source]()
    mode = draw(modes)
    query, body = wrap(plain, mode, nonce=draw(nonces))
    return Probe(f"garbage/{source}/{mode}", query, body, chunk=draw(st.sampled_from([0, 0, 64])))


@st.composite
def mutated_probes(draw: st.DrawFn) -> Probe:
    """A valid message, then bytes cut, inserted, flipped or duplicated (maybe re-signed)."""
    mode = draw(modes)
    query, body = wrap(peer.text_xml(draw(st.sampled_from(QUESTIONS))).encode(), mode)
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["cut", "delete", "insert", "flip", "dup", "badutf8"]))
        if op == "cut":
            del data[at:]
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 40))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "dup":
            data[at:at] = data[at:at + draw(st.integers(1, 200))]
        elif op == "badutf8":
            data[at:at] = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe4\xb8",
                                                b"\xc0\xaf", b"\x00"]))
    body = bytes(data)
    if mode != "raw" and draw(st.booleans()):
        query = aes_query(body)  # re-signed: past the signature, into decryption
    return Probe(f"mutated/{mode}", query, body)


@st.composite
def huge_probes(draw: st.DrawFn) -> Probe:
    """Fields near and over the body limit, deep nesting, many siblings or attributes."""
    kind = draw(st.sampled_from(["content", "nesting", "siblings", "attributes", "tag",
                                 "bare-nesting"]))
    size = draw(st.integers(1, 70000))
    if kind == "content":
        xml = peer.text_xml(draw(st.sampled_from(["a", "工", "会 ", "<", "&amp;"])) * (size // 3))
    elif kind == "nesting":
        depth = size // 8
        xml = peer.text_xml("x").replace("</xml>", "<a>" * depth + "</a>" * depth + "</xml>")
    elif kind == "bare-nesting":
        xml = "<xml>" + "<a>" * (size // 3)  # never closed
    elif kind == "siblings":
        xml = peer.text_xml("x").replace("</xml>", "<a/>" * (size // 4) + "</xml>")
    elif kind == "attributes":
        attrs = "".join(f' a{i}="{i}"' for i in range(size // 10))
        xml = peer.text_xml("x").replace("<Content>", f"<Content{attrs}>")
    else:
        xml = peer.text_xml("x").replace("Content", "C" * (size // 2))
    mode = draw(modes)
    query, body = wrap(xml.encode(), mode)
    return Probe(f"huge/{kind}/{mode}", query, body, chunk=draw(st.sampled_from([0, 0, 4096])))


@st.composite
def entity_probes(draw: st.DrawFn) -> Probe:
    """Entity expansion and external entities, in plaintext and inside valid encryption."""
    template = draw(st.sampled_from(ENTITY_ATTACKS))
    inner = peer.text_xml("X").replace("<![CDATA[X]]>", draw(st.sampled_from(ENTITY_REFS)))
    mode = draw(modes)
    query, body = wrap(template.replace("{xml}", inner).encode(), mode)
    return Probe(f"entity/{mode}", query, body)


@st.composite
def cipher_probes(draw: st.DrawFn) -> Probe:
    """Safe mode with a correct msg_signature over broken ciphertext or garbage plaintext."""
    good = seal(peer.text_xml("文号是多少").encode())
    kind = draw(st.sampled_from(["b64", "text", "truncated", "flipped", "plain", "length",
                                 "appid", "padding", "unpadded", "entity"]))
    if kind == "b64":
        encrypt = base64.b64encode(draw(st.binary(min_size=1, max_size=300))).decode()
    elif kind == "text":
        encrypt = draw(st.text(xml_chars, min_size=1, max_size=100)).replace("]]>", "")
    elif kind == "truncated":
        encrypt = good[:draw(st.integers(1, len(good) - 1))]
    elif kind == "flipped":
        raw = bytearray(base64.b64decode(good))
        raw[draw(st.integers(0, len(raw) - 1))] ^= 1 << draw(st.integers(0, 7))
        encrypt = base64.b64encode(bytes(raw)).decode()
    elif kind == "plain":
        encrypt = seal(draw(st.binary(max_size=300) | message_xml().map(str.encode)
                            | xml_trees.map(str.encode)))
    elif kind == "length":
        encrypt = seal(peer.text_xml("x").encode(), length=draw(st.integers(0, 2**32 - 1)))
    elif kind == "appid":
        encrypt = seal(peer.text_xml("x").encode(), appid=draw(st.binary(max_size=30)))
    elif kind == "padding":
        encrypt = seal(peer.text_xml("x").encode(), padding=draw(st.binary(max_size=40)))
    elif kind == "unpadded":
        encrypt = seal(b"", appid=b"", prefix=draw(st.binary(max_size=64)), padding=b"")
    else:
        template = draw(st.sampled_from(ENTITY_ATTACKS))
        encrypt = seal(template.replace("{xml}", peer.text_xml("X").replace(
            "<![CDATA[X]]>", draw(st.sampled_from(ENTITY_REFS)))).encode())
    body = safe_body(encrypt)
    return Probe(f"cipher/{kind}", aes_query(body, nonce=draw(nonces)), body)


@st.composite
def query_probes(draw: st.DrawFn) -> Probe:
    """Odd timestamps (signed correctly), wrong or missing signatures, odd encrypt_type."""
    mode = draw(modes)
    nonce = draw(nonces)
    stamp = draw(st.one_of(st.just(now_stamp()), numbers, st.text(xml_chars, max_size=12),
                           st.sampled_from([str(-int(time.time())), "1" + "0" * 400,
                                            f" {now_stamp()} ", f"+{now_stamp()}",
                                            f"{now_stamp()}.5", now_stamp().translate(
                                                {c: c + 0xFEE0 for c in range(48, 58)})])))
    _, body = wrap(peer.text_xml("文号是多少").encode(), mode)
    pairs = dict(aes_query(body, stamp, nonce) if mode != "raw" else signed_query(stamp, nonce))
    sig = draw(st.sampled_from(["right"] * 5 + ["wrong", "missing", "upper", "short", "spaced"]))
    if sig != "right":
        pairs["signature"] = {"wrong": "0" * 40, "missing": "", "upper": pairs["signature"].upper(),
                              "short": pairs["signature"][:20],
                              "spaced": f" {pairs['signature']}"}[sig]
    for name in draw(st.sets(st.sampled_from(["signature", "timestamp", "nonce", "msg_signature",
                                              "encrypt_type"]), max_size=2)):
        pairs.pop(name, None)
    if draw(st.booleans()):
        pairs["encrypt_type"] = draw(st.sampled_from(["aes", "AES", "raw", "", "aes ", "rsa",
                                                      "none"]) | st.text(max_size=8))
    if draw(st.booleans()):
        pairs["msg_signature"] = draw(st.sampled_from(["", "0" * 40,
                                                       pairs.get("signature", "")]))
    query = tuple(pairs.items()) + tuple(draw(st.lists(st.tuples(
        st.sampled_from(["signature", "timestamp", "nonce", "encrypt_type", "echostr", "x"]),
        st.text(xml_chars, max_size=10)), max_size=2)))
    method = draw(st.sampled_from(["POST", "POST", "GET"]))
    if method == "GET":
        query += (("echostr", draw(st.text(xml_chars, max_size=30))),)
    return Probe(f"query/{sig}/{method}", query, body if method == "POST" else b"", method=method)


@st.composite
def forgery_probes(draw: st.DrawFn) -> Probe:
    """Safe mode's attacks: encrypt_type stripped to post a plaintext body no signature covers,
    and a captured (genuine, answered) query replayed with another body."""
    user = draw(st.sampled_from(USERS))
    content = draw(st.sampled_from(QUESTIONS) | st.text(xml_chars, max_size=40))
    forged = peer.text_xml(content.replace("]]>", "]] >"), user=user).encode()
    kind = draw(st.sampled_from(["stripped", "replayed", "replayed-aes"]))
    if kind == "stripped":
        pairs = dict(signed_query())
        if draw(st.booleans()):
            pairs["encrypt_type"] = draw(st.sampled_from(["", "raw", "none", "rsa", "aes256"]))
        if draw(st.booleans()):
            pairs["msg_signature"] = pairs["signature"]
        return Probe("forgery/stripped", tuple(pairs.items()), forged, forgery=True)
    query, genuine = wrap(peer.text_xml(draw(st.sampled_from(QUESTIONS))).encode(), "aes")
    nonce = dict(query)["nonce"]
    body = forged if kind == "replayed" else wrap(forged, "aes", nonce=nonce)[1]
    return Probe(f"forgery/{kind}", query, body, prime=genuine, forgery=True)


probes = st.one_of(valid_probes(), garbage_body_probes(), mutated_probes(), huge_probes(),
                   entity_probes(), cipher_probes(), query_probes())


# -- the app under test, driven synchronously ------------------------------------------------

def fuzz_config(tmp_path: Path, knowledge_dir: Path, mode: str = "compatible") -> Config:
    return make_config(tmp_path, knowledge_dir, "hashing",
                       wechat={"token": peer.TOKEN, "appid": peer.APPID,
                               "encoding_aes_key": peer.AES_KEY, "mode": mode},
                       knowledge={"watch": False})


def rss_mb() -> float:
    """Resident memory of this process in MB (VmRSS; peak RSS where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ErrorLog(logging.Handler):
    """Counts ERROR records (a 200 can hide a failure the app only logged); keeps a few.

    Answers that missed the reply budget are counted apart in ``late``: a timing matter (a huge
    question can take seconds), not a failure of the request.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.late = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.name == "bot.wechat.views" and " too late" in message:
            self.late += 1
            return
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"{record.name}: {message[:300]}")


class Webhook:
    """The app on a loopback port in a private event loop, driven from sync code.

    Hypothesis cannot run async test functions, so each request runs the loop until done.
    A plain ClientSession, not aiohttp's TestClient: that one keeps every response until it
    closes, which over thousands of requests looks like a leak in the app.
    """

    def __init__(self, cfg: Config) -> None:
        self.mode = cfg.wechat.mode
        self.loop = asyncio.new_event_loop()
        self.server, self.session = self.loop.run_until_complete(self._start(cfg))
        self.url = self.server.make_url(cfg.wechat.path)

    @staticmethod
    async def _start(cfg: Config) -> tuple[TestServer, ClientSession]:
        server = TestServer(create_app(cfg))
        await server.start_server()
        return server, ClientSession()

    def send(self, probe: Probe) -> tuple[int, str]:
        """(status, text); a connection the server cut shows as status 0. A probe with a
        ``prime`` first sends that genuine body with the same query (it must get 200)."""
        if probe.prime is not None:
            status, text = self.loop.run_until_complete(
                self._send(Probe("genuine", probe.query, probe.prime)))
            if status != 200:
                return -status, f"the genuine request before the replay got {status}: {text}"
        return self.loop.run_until_complete(self._send(probe))

    async def _send(self, probe: Probe) -> tuple[int, str]:
        data: bytes | AsyncIterator[bytes] | None = probe.body if probe.method == "POST" else None
        if probe.chunk and probe.method == "POST":
            data = _pieces(probe.body, probe.chunk)
        try:
            async with self.session.request(probe.method, self.url, params=list(probe.query),
                                            data=data) as resp:
                return resp.status, await resp.text(errors="replace")
        except ClientError as exc:
            return 0, f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.session.close())
            self.loop.run_until_complete(self.server.close())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()


async def _pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]
        await asyncio.sleep(0)  # let the server read what has arrived so far


def problems(probe: Probe, status: int, text: str, mode: str = "compatible") -> list[str]:
    """What is wrong with the answer to ``probe`` (empty when nothing) in a ``mode`` app."""
    found = []
    if status not in ALLOWED:
        found.append(f"status {status}: {text[:200]}")
    if status == 413 and len(probe.body) <= LIMIT:
        found.append(f"413 for {len(probe.body)} bytes")
    expect = probe.expect
    if mode == "safe" and probe.kind == "valid/raw":
        expect = 403  # plaintext: refused in safe mode
    if expect is not None and status != expect:
        found.append(f"expected {expect}, got {status}: {text[:200]}")
    if probe.forgery and status == 200:
        found.append(f"accepted forgery: {text[:200]}")
    nonce = probe.params.get("nonce", "")
    if status == 200 and probe.method == "POST" and text != "success":
        if nonce != nonce.strip() or "]]>" in nonce:
            return found  # echoed in the reply's CDATA: XML trims or ends it (WeChat's are digits)
        try:
            reply = peer.open_reply(text, probe.params)
        except Exception as exc:  # noqa: BLE001 - a reply WeChat could not read
            found.append(f"unreadable reply ({type(exc).__name__}): {text[:200]}")
        else:
            encrypted = probe.params.get("encrypt_type", "raw").lower() == "aes"
            if reply.get("_encrypted", False) != encrypted:
                found.append(f"reply encrypted={reply.get('_encrypted', False)} "
                             f"for encrypt_type={probe.params.get('encrypt_type')!r}")
    return found


def check_alive(hook: Webhook) -> list[str]:
    """A valid question in each mode the app accepts still gets its answer."""
    found = []
    for mode in ("raw", "compat", "aes")[1 if hook.mode == "safe" else 0:]:
        query, body = wrap(peer.text_xml("文号是多少").encode(), mode)
        status, text = hook.send(Probe("alive", query, body))
        if status != 200:
            found.append(f"alive/{mode}: status {status}: {text[:200]}")
            continue
        reply = peer.open_reply(text, dict(query))
        if "云工通" not in reply.get("Content", "") or reply.get("ToUserName") != USERS[0]:
            found.append(f"alive/{mode}: wrong answer {reply!r:.300}")
    return found


def fuzz_settings(examples: int, **kw: Any) -> Callable[[Any], Any]:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), **kw)


# -- the CI run ------------------------------------------------------------------------------

def test_webhook_survives_fuzzing(tmp_path: Path, knowledge_dir: Path) -> None:
    hook = Webhook(fuzz_config(tmp_path, knowledge_dir))
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    sent = 0
    try:
        assert check_alive(hook) == []
        before = rss_mb()

        @fuzz_settings(int(os.environ.get("FUZZ_EXAMPLES", "200")))
        @given(probe=probes)
        def one(probe: Probe) -> None:
            nonlocal sent
            sent += 1
            status, text = hook.send(probe)
            assert problems(probe, status, text) == [], probe.describe()

        one()
        grown = rss_mb() - before
        assert check_alive(hook) == []
        assert errors.count == 0, errors.first
        assert grown < 300, f"RSS grew {grown:.0f} MB over {sent} requests"
    finally:
        logging.getLogger().removeHandler(errors)
        hook.close()


def test_safe_mode_accepts_no_forgery(tmp_path: Path, knowledge_dir: Path) -> None:
    """Safe mode: stripped encrypt_type and replayed nonces among everything else; a genuine
    encrypted question is still answered, plaintext never."""
    hook = Webhook(fuzz_config(tmp_path, knowledge_dir, mode="safe"))
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    kinds: set[str] = set()
    try:
        @fuzz_settings(int(os.environ.get("FUZZ_EXAMPLES", "200")))
        @given(probe=st.one_of(forgery_probes(), forgery_probes(), probes))
        def one(probe: Probe) -> None:
            kinds.add(probe.kind)
            status, text = hook.send(probe)
            assert problems(probe, status, text, "safe") == [], probe.describe()

        one()
        assert {"forgery/stripped", "forgery/replayed", "forgery/replayed-aes"} <= kinds
        assert check_alive(hook) == []
        assert errors.count == 0, errors.first
    finally:
        logging.getLogger().removeHandler(errors)
        hook.close()


def test_body_arriving_in_pieces_is_read_whole(tmp_path: Path, knowledge_dir: Path) -> None:
    """A slow peer's body comes in several reads; the first one is not the whole message."""
    hook = Webhook(fuzz_config(tmp_path, knowledge_dir))
    try:
        for mode in ("raw", "aes"):
            query, body = wrap(peer.text_xml("文号是多少").encode(), mode)
            status, text = hook.send(Probe("pieces", query, body, chunk=50))
            assert status == 200 and "云工通" in peer.open_reply(text, dict(query))["Content"]
        big = Probe("pieces", signed_query(), b"<xml>" + b"a" * LIMIT + b"</xml>", chunk=4096)
        assert hook.send(big)[0] == 413
    finally:
        hook.close()


def test_entity_bombs_are_refused_fast(tmp_path: Path, knowledge_dir: Path) -> None:
    """Billion laughs and external entities: refused before any parsing (so no expansion),
    plaintext or inside encryption."""
    hook = Webhook(fuzz_config(tmp_path, knowledge_dir))
    try:
        inner = peer.text_xml("X").replace("<![CDATA[X]]>", "&e9;&x;")
        for template in ENTITY_ATTACKS[:6]:
            for mode in ("raw", "compat", "aes"):
                status, text = hook.send(Probe("bomb", *wrap(
                    template.replace("{xml}", inner).encode(), mode)))
                assert (status, text) == (400, "XML with a DOCTYPE or entities is not WeChat's")
    finally:
        hook.close()


def test_odd_fields_and_timestamps_are_refused(tmp_path: Path, knowledge_dir: Path) -> None:
    """Found by fuzzing: 500s (repeated/nested fields, a 400-digit timestamp), and timestamps
    int() accepts but WeChat never sends (echoed in a reply, they break its signature)."""
    hook = Webhook(fuzz_config(tmp_path, knowledge_dir))
    try:
        text = peer.text_xml("文号是多少")
        for broken in (text.replace("</xml>", "<Content>b</Content></xml>"),
                       text.replace("<![CDATA[文号是多少]]>", "<x>1</x>"),
                       text.replace("</xml>", "<FromUserName>b</FromUserName></xml>"),
                       peer.message_xml("event", {"Event": "CLICK"}).replace(
                           "</xml>", "<EventKey><a>1</a></EventKey></xml>")):
            for mode in ("raw", "aes"):
                assert hook.send(Probe("odd", *wrap(broken.encode(), mode)))[0] == 400
        now = now_stamp()
        fullwidth = now.translate({c: c + 0xFEE0 for c in range(48, 58)})
        for stamp in ("1" + "0" * 400, f" {now} ", f"+{now}", f"{now[:2]}_{now[2:]}", fullwidth):
            for method in ("GET", "POST"):
                probe = Probe("stamp", signed_query(stamp), text.encode(), method=method)
                assert hook.send(probe)[0] == 403, stamp
    finally:
        hook.close()
