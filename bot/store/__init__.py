"""The query log behind one interface: SQLite embedded (default), PostgreSQL for several instances.

All SQL lives in this package. The webhook adds rows and records deliveries; the admin pages
read only through these methods; retention deletes through them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any, Protocol, TypeVar

from bot.config import QueryLogConfig
from bot.store.filters import FilterError, Filters
from bot.store.records import QueryRecord, hash_openid
from bot.store.sqlite import SQLiteStore, StoreUnavailable

T = TypeVar("T")

__all__ = ["FilterError", "Filters", "QueryRecord", "QueryStore", "SQLiteStore",
           "StoreUnavailable", "hash_openid", "open_store"]


class QueryStore(Protocol):
    """Every question and its outcome; failed writes are counted in ``failures``, never raised."""

    failures: int
    writes: int
    openid_salt: str | None  # None: openids stored as received

    async def add(self, record: QueryRecord) -> int | None: ...
    async def set_delivery(self, row_id: int | None, delivery: str, error: str = "") -> None: ...
    async def set_reviewed(self, key: str, reviewed: bool) -> None: ...
    async def delete_before(self, cutoff: datetime) -> int: ...
    async def page(self, filters: Filters, tz: tzinfo,
                   size: int) -> tuple[int, list[dict[str, Any]]]: ...
    async def rows(self, filters: Filters, tz: tzinfo) -> list[dict[str, Any]]: ...
    async def detail(self, row_id: int) -> dict[str, Any] | None: ...
    async def stats_rows(self, filters: Filters, tz: tzinfo) -> list[dict[str, Any]]: ...
    async def unanswered_rows(self, filters: Filters, tz: tzinfo,
                              limit: int) -> list[dict[str, Any]]: ...
    async def reviews(self) -> dict[str, str]: ...
    async def count(self) -> int: ...
    # bot.store.links (links, votes, the review queue): fn(conn, *args), errors raised.
    async def call(self, fn: Callable[..., T], *args: Any) -> T: ...
    async def call_read(self, fn: Callable[..., T], *args: Any) -> T: ...
    async def aclose(self) -> None: ...


async def open_store(cfg: QueryLogConfig) -> QueryStore:
    """PostgreSQL when ``[querylog] url`` is set, else the SQLite file at ``path``."""
    salt = cfg.openid_salt if cfg.hash_openids else None
    if cfg.url:
        from bot.store.postgres import PostgresStore

        return await PostgresStore.open(cfg.url, salt, cfg.pool_size, cfg.max_pending)
    return SQLiteStore(cfg.path, salt, cfg.busy_timeout)
