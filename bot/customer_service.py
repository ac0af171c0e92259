"""Late answers as customer-service messages, over aiohttp (never a blocking client on the loop).

Used only when an answer misses the reply budget. The access token is cached until shortly
before it expires and refreshed once if WeChat says it is invalid. Errors such as 45015
(user silent for 48 h), 45047 (quota) and 48001 (unverified account) are returned, not retried.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

log = logging.getLogger(__name__)
TOKEN_ERRORS = {40001, 40014, 42001}
API_BASE = "https://api.weixin.qq.com"


class CustomerServiceError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code


class CustomerService:
    """Sends text to a user through the customer-service API."""

    def __init__(self, session: aiohttp.ClientSession, appid: str, secret: str,
                 api_base: str = API_BASE) -> None:
        self.session = session
        self.appid = appid
        self.secret = secret
        self.api_base = api_base.rstrip("/")
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.errors: dict[int, int] = {}

    async def _call(self, method: str, path: str, **kw: object) -> dict:
        timeout = aiohttp.ClientTimeout(total=10)
        async with self.session.request(method, self.api_base + path, timeout=timeout,
                                        **kw) as resp:  # type: ignore[arg-type]
            data = await resp.json(content_type=None)
        code = int(data.get("errcode", 0) or 0)
        if code:
            raise CustomerServiceError(code, str(data.get("errmsg", "")))
        return data

    async def token(self, refresh: bool = False) -> str:
        async with self._lock:
            if refresh or not self._token or time.monotonic() >= self._expires:
                data = await self._call(
                    "GET", "/cgi-bin/token",
                    params={"grant_type": "client_credential", "appid": self.appid,
                            "secret": self.secret},
                )
                self._token = str(data["access_token"])
                # Refresh five minutes early: a token may expire while a message is on its way.
                self._expires = time.monotonic() + int(data.get("expires_in", 7200)) - 300
            return self._token

    async def send_text(self, openid: str, content: str) -> None:
        """Send ``content`` to ``openid``; raises CustomerServiceError with WeChat's code."""
        payload = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        for attempt in (0, 1):
            token = await self.token(refresh=attempt == 1)
            try:
                await self._call("POST", "/cgi-bin/message/custom/send",
                                 params={"access_token": token}, json=payload)
                return
            except CustomerServiceError as exc:
                if exc.code in TOKEN_ERRORS and attempt == 0:
                    continue
                self.errors[exc.code] = self.errors.get(exc.code, 0) + 1
                raise
