"""``bot serve``: bind first, say what listens and what will be refused, log the stop.

The port is bound before the model loads, so a busy port is a one-line error at once rather
than a traceback after the index is built.
"""

from __future__ import annotations

import logging
import socket

from aiohttp import web

from bot.config import Config, ConfigError

log = logging.getLogger("bot.serve")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a ConfigError naming the address and the reason."""
    sock = None
    try:
        family, kind, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does
        sock.bind(address)
        sock.listen(1024)
        return sock
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                          "(set [server] host and port)") from None


def url(host: str, port: int, path: str) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"


def startup_warnings(cfg: Config) -> list[str]:
    """What an empty secret will make the service refuse, in the operator's words."""
    found = []
    wechat = cfg.wechat
    if not wechat.token:
        found.append("[wechat] token (WECHAT_TOKEN) is empty: every WeChat request will be "
                     "refused (403)")
    if wechat.mode != "plain" and not (wechat.encoding_aes_key and wechat.appid):
        found.append("[wechat] encoding_aes_key (WECHAT_AES_KEY) or appid (WECHAT_APPID) is "
                     "empty: encrypted messages will be refused (400)")
    if not cfg.admin.token:
        found.append("[admin] token (ADMIN_TOKEN) is empty: the admin pages are off (404) and "
                     "/metrics answers only loopback and [metrics] allow")
    return found


def serve(cfg: Config) -> int:
    """Run until SIGTERM/SIGINT; replies in flight get [server] shutdown_timeout to finish."""
    from bot.app import create_app

    sock = bind(cfg.server.host, cfg.server.port)
    port = sock.getsockname()[1]
    app = create_app(cfg)
    for warning in startup_warnings(cfg):
        log.warning("%s", warning)

    async def announce(app: web.Application) -> None:
        log.info("listening on %s (mode %s)", url(cfg.server.host, port, cfg.wechat.path),
                 cfg.wechat.mode)

    async def stopping(app: web.Application) -> None:
        log.info("stopping: finishing replies in flight (up to %.0f s)",
                 cfg.server.shutdown_timeout)

    app.on_startup.append(announce)  # after the model and index are loaded
    app.on_shutdown.append(stopping)
    web.run_app(app, sock=sock, access_log=None, shutdown_timeout=cfg.server.shutdown_timeout,
                print=None)
    log.info("stopped")
    return 0
