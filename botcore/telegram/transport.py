"""python-telegram-bot's HTTP requests over aiohttp.

Each Bot API call costs the bot ~2.5 ms of CPU through httpx (pure-Python URL handling, h11 and
httpcore's pool bookkeeping) against ~0.8 ms through aiohttp's C parser, and an image takes five
calls. PTB supports custom transports through BaseRequest; this one keeps HTTPXRequest's timeout
semantics and maps errors the same way (TimedOut, NetworkError), so everything above it is unchanged.
"""

import re

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest
from yarl import URL

# Bot API URLs carry the token (…/bot<token>/method, …/file/bot<token>/path); errors must not.
_TOKEN_IN_URL = re.compile(r"/bot[^/\s]+")


def _total(*timeouts):
    """The sum of these timeouts, or None (wait forever) when one of them is."""
    return None if any(timeout is None for timeout in timeouts) else sum(timeouts)


def redact(text):
    return _TOKEN_IN_URL.sub("/bot<token>", text)


def bot_request(pool_size=256):
    """The transport and timeouts every Bot of ours uses."""
    return AiohttpRequest(
        connection_pool_size=pool_size,
        connect_timeout=10,
        read_timeout=30,
        write_timeout=60,
        media_write_timeout=120,
        pool_timeout=30,  # when Telegram is slow, wait for a free connection rather than fail after 1 s
    )


class AiohttpRequest(BaseRequest):
    __slots__ = ("_session", "_pool_size", "_timeouts", "_media_write_timeout", "_proxies")

    def __init__(
        self,
        connection_pool_size=256,
        read_timeout=5.0,
        write_timeout=5.0,
        connect_timeout=5.0,
        pool_timeout=1.0,
        media_write_timeout=20.0,
    ):
        self._session = None
        self._pool_size = connection_pool_size
        self._timeouts = {
            "read": read_timeout,
            "write": write_timeout,
            "connect": connect_timeout,
            "pool": pool_timeout,
        }
        self._media_write_timeout = media_write_timeout
        self._proxies = {}  # scheme://host -> (proxy, proxy auth) from the environment, or (None, None)

    @property
    def read_timeout(self):
        return self._timeouts["read"]

    async def initialize(self):
        if self._session is None or self._session.closed:
            # HTTPS_PROXY and friends are honoured, as PTB's httpx transport does, but looked up once per
            # host (_proxy_for), not by aiohttp's trust_env on every call (environment, proxy bypass, .netrc).
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self._pool_size))
            self._proxies.clear()

    async def shutdown(self):
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url,
        method,
        request_data=None,
        read_timeout=BaseRequest.DEFAULT_NONE,
        write_timeout=BaseRequest.DEFAULT_NONE,
        connect_timeout=BaseRequest.DEFAULT_NONE,
        pool_timeout=BaseRequest.DEFAULT_NONE,
    ):
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None
        timeouts = {"read": read_timeout, "write": write_timeout, "connect": connect_timeout, "pool": pool_timeout}
        for name, value in timeouts.items():
            if isinstance(value, DefaultValue):
                timeouts[name] = self._media_write_timeout if name == "write" and files else self._timeouts[name]
        timeout = aiohttp.ClientTimeout(
            connect=_total(timeouts["pool"], timeouts["connect"]),
            sock_connect=timeouts["connect"],
            # aiohttp has no write timeout: the read clock also runs while the body is sent.
            sock_read=_total(timeouts["write"], timeouts["read"]),
        )
        proxy, proxy_auth = self._proxy_for(url)
        try:
            async with self._session.request(
                method,
                url,
                data=_multipart(fields, files) if files else fields,
                headers={"User-Agent": self.USER_AGENT},
                timeout=timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's timeouts all derive from it
            raise TimedOut(redact(str(exc)) or None) from None
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {redact(str(exc))}") from None

    def _proxy_for(self, url):
        origin = "/".join(url.split("/", 3)[:3])
        if origin not in self._proxies:
            try:
                self._proxies[origin] = get_env_proxy_for_url(URL(url))
            except LookupError:  # no proxy for this host
                self._proxies[origin] = (None, None)
        return self._proxies[origin]


def _multipart(fields, files):
    form = aiohttp.FormData()
    for name, value in (fields or {}).items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in files.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
