"""Late answers as customer-service messages, over aiohttp (never a blocking client on the loop).

Used only when an answer misses the reply budget. The access token lives in the shared state,
so every instance uses the current one: fetching a new token invalidates the previous one at
WeChat, so refreshes happen one at a time across instances under a lock, and an instance that
finds a token another one just fetched uses it instead of fetching again. A token is refreshed
shortly before it expires, and once if WeChat says it is invalid. Errors such as 45015
(user silent for 48 h), 45047 (quota) and 48001 (unverified account) are returned, not retried.
"""

from __future__ import annotations

import logging

import aiohttp

from bot.state import SharedState

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
                 state: SharedState, api_base: str = API_BASE) -> None:
        self.session = session
        self.appid = appid
        self.secret = secret
        self.state = state
        self.api_base = api_base.rstrip("/")
        self._key = f"wechat:access_token:{appid}"
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

    async def token(self, stale: str = "") -> str:
        """The current token; ``stale`` is one WeChat refused, to be replaced (once)."""
        current = await self.state.get(self._key)
        if current and current != stale:
            return current
        async with self.state.lock(self._key, timeout=30):
            current = await self.state.get(self._key)  # another instance may have refreshed
            if current and current != stale:
                return current
            data = await self._call(
                "GET", "/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid,
                        "secret": self.secret},
            )
            token = str(data["access_token"])
            # Refresh five minutes early: a token may expire while a message is on its way.
            lifetime = max(int(data.get("expires_in", 7200)) - 300, 60)
            await self.state.set(self._key, token, lifetime)
            return token

    async def send_text(self, openid: str, content: str) -> None:
        """Send ``content`` to ``openid``; raises CustomerServiceError with WeChat's code."""
        payload = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        token = ""
        for attempt in (0, 1):
            token = await self.token(stale=token)
            try:
                await self._call("POST", "/cgi-bin/message/custom/send",
                                 params={"access_token": token}, json=payload)
                return
            except CustomerServiceError as exc:
                if exc.code in TOKEN_ERRORS and attempt == 0:
                    continue
                self.errors[exc.code] = self.errors.get(exc.code, 0) + 1
                raise
