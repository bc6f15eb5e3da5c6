"""
Serve a PEP 3333 WSGI application (Flask, Django, ...) from any ASGI server.

:class:`WsgiToAsgi` is a drop-in replacement for asgiref's adapter that runs under
asyncio and trio servers alike, streams the request and response bodies both ways with
back-pressure, and runs many requests at once in worker threads.
"""

from __future__ import annotations

__all__ = ("AsgiToWsgi", "WsgiToAsgi", "WsgiToAsgiInstance")

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread

from . import _stats
from ._asgi_to_wsgi import AsgiToWsgi
from ._backends._wsgi_loop import current_loop
from ._wsgi_environ import TooManyHeaders, body_is_empty, build_environ
from ._wsgi_exchange import Disconnected, Exchange
from ._wsgi_input import WsgiInput
from ._wsgi_response import Responder

if TYPE_CHECKING:
    from .typing import ASGIReceiveCallable, ASGISendCallable, Scope

_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
#: A PEP 3333 application: ``app(environ, start_response) -> iterable of bytes``.
_WsgiApp = Callable[
    [dict[str, Any], Callable[..., Callable[[bytes], object]]], Iterable[bytes]
]

_DEFAULT_MAX_BUFFER = 1024 * 1024
_DEFAULT_MAX_SPOOL = 64 * 1024 * 1024
#: The environ key of the :class:`~asgibridge_any._wsgi_exchange.Disconnected` flag.
_DISCONNECTED_KEY = "asgibridge_any.disconnected"
_BAD_REQUEST_BODY = b"Bad Request: Too many duplicate headers"


def _check_options(
    duplicate_header_limit: int | None,
    limiter: anyio.CapacityLimiter | None,
    max_buffer: int,
    max_spool: int,
) -> None:
    if duplicate_header_limit is not None and (
        not isinstance(duplicate_header_limit, int) or duplicate_header_limit < 0
    ):
        raise ValueError(
            "duplicate_header_limit must be a non-negative int, or None for no limit; "
            f"got {duplicate_header_limit!r}"
        )
    if limiter is not None and not isinstance(limiter, anyio.CapacityLimiter):
        raise TypeError(
            f"limiter must be an anyio.CapacityLimiter or None, got {type(limiter).__name__}"
        )
    if not isinstance(max_buffer, int) or max_buffer < 1:
        raise ValueError(
            f"max_buffer must be a positive number of bytes, got {max_buffer!r}"
        )
    if not isinstance(max_spool, int) or max_spool < 0:
        raise ValueError(
            f"max_spool must be a number of bytes, 0 or more, got {max_spool!r}"
        )


class WsgiToAsgi:
    """
    Wrap a WSGI application into an ASGI application.

    Each ``http`` request runs the WSGI application in a worker thread, at most as many at
    once as ``limiter`` allows.  The application is called before the request body arrives
    and reads it as it comes through ``environ["wsgi.input"]``; its response goes out as it
    is produced, the thread waiting when the client reads slowly.  The adapter keeps
    listening to the client meanwhile: a client that leaves is noticed within about a
    second, whatever the application reads, and ``environ["asgibridge_any.disconnected"]``
    tells the application (``is_set()``, ``wait(timeout)``).  ``lifespan`` events are
    answered, ``websocket`` connections closed, any other scope type is a
    :exc:`ValueError`.

    :param wsgi_application: the PEP 3333 application
    :param duplicate_header_limit: answer ``400 Bad Request``, without calling the
        application, to a request repeating one header more often; ``None`` for no limit
    :param limiter: bounds the number of requests running at once (default: anyio's
        default thread limiter)
    :param max_buffer: most bytes of request body held in memory ahead of the
        application, and of response body queued ahead of the client, per request
    :param max_spool: most bytes of request body kept in a temporary file, beyond
        ``max_buffer``, for an application that stopped reading (so that the adapter can
        keep listening to the client); past it the request is cut: the application sees
        a disconnect, the client gets ``413`` if no response started.  ``0``: no file
    :param underscores_in_headers: pass request headers whose name contains ``_`` to the
        application; by default they are dropped, since ``X_Forwarded_For`` and
        ``X-Forwarded-For`` would both become ``HTTP_X_FORWARDED_FOR``, letting a client
        slip a value past a proxy that only filters the dashed form
    :raises TypeError: if ``wsgi_application`` is not a sync callable
    :raises ValueError: if an option is out of range
    """

    def __init__(
        self,
        wsgi_application: _WsgiApp,
        duplicate_header_limit: int | None = 100,
        *,
        limiter: anyio.CapacityLimiter | None = None,
        max_buffer: int = _DEFAULT_MAX_BUFFER,
        max_spool: int = _DEFAULT_MAX_SPOOL,
        underscores_in_headers: bool = False,
    ) -> None:
        if not callable(wsgi_application):
            raise TypeError(
                f"WsgiToAsgi() needs a WSGI application callable, got {wsgi_application!r}"
            )
        if inspect.iscoroutinefunction(wsgi_application) or inspect.iscoroutinefunction(
            getattr(wsgi_application, "__call__", None)  # noqa: B004
        ):
            raise TypeError(
                f"WsgiToAsgi() wraps sync WSGI applications, got async {wsgi_application!r}; "
                "an async application is ASGI already: serve it directly"
            )
        _check_options(duplicate_header_limit, limiter, max_buffer, max_spool)
        self.wsgi_application = wsgi_application
        self.duplicate_header_limit = duplicate_header_limit
        self.limiter = limiter
        self.max_buffer = max_buffer
        self.max_spool = max_spool
        self.underscores_in_headers = underscores_in_headers
        _stats.wsgi_adapters.add(self)  # operability: counted by stats()

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """
        Handle one ASGI connection.

        :raises ValueError: for an unknown scope type, or a malformed scope or message
        """
        instance = WsgiToAsgiInstance(
            self.wsgi_application,
            self.duplicate_header_limit,
            limiter=self.limiter,
            max_buffer=self.max_buffer,
            max_spool=self.max_spool,
            underscores_in_headers=self.underscores_in_headers,
        )
        await instance(scope, receive, send)


class WsgiToAsgiInstance:
    """
    Handle a single ASGI connection for a WSGI application (made by :class:`WsgiToAsgi`).

    The parameters are those of :class:`WsgiToAsgi`.
    """

    def __init__(
        self,
        wsgi_application: _WsgiApp,
        duplicate_header_limit: int | None = 100,
        *,
        limiter: anyio.CapacityLimiter | None = None,
        max_buffer: int = _DEFAULT_MAX_BUFFER,
        max_spool: int = _DEFAULT_MAX_SPOOL,
        underscores_in_headers: bool = False,
    ) -> None:
        _check_options(duplicate_header_limit, limiter, max_buffer, max_spool)
        self.wsgi_application = wsgi_application
        self.duplicate_header_limit = duplicate_header_limit
        self.limiter = limiter
        self.max_buffer = max_buffer
        self.max_spool = max_spool
        self.underscores_in_headers = underscores_in_headers
        self.scope: MutableMapping[str, Any] | None = None

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """
        Serve the connection described by ``scope`` to its end.

        :raises ValueError: for an unknown scope type, or a malformed scope or message
        """
        if not isinstance(scope, Mapping):
            raise ValueError(  # noqa: TRY004 - a malformed scope is a ValueError, as in asgiref
                f"ASGI scope must be a mapping, got {type(scope).__name__}"
            )
        # Messages are checked at run time; past this point they are plain mappings.
        loose_scope = cast("MutableMapping[str, Any]", scope)
        loose_receive = cast("_Receive", receive)
        loose_send = cast("_Send", send)
        kind = loose_scope.get("type")
        self.scope = loose_scope
        if kind == "http":
            await self._http(loose_scope, loose_receive, loose_send)
        elif kind == "lifespan":
            await _lifespan(loose_receive, loose_send)
        elif kind == "websocket":
            await _websocket(loose_receive, loose_send)
        else:
            raise ValueError(
                f"WsgiToAsgi serves 'http' scopes (and answers 'lifespan' and 'websocket'), "
                f"got scope['type'] {kind!r}"
            )

    def build_environ(self, scope: Mapping[str, Any], body: object) -> dict[str, Any]:
        """
        Build the PEP 3333 environ of an ``http`` scope.

        :param scope: the ASGI ``http`` scope
        :param body: the object to expose as ``wsgi.input``
        :returns: the environ
        :raises ValueError: if the scope is malformed or repeats a header too often
        """
        return build_environ(
            scope, body, self.duplicate_header_limit, self.underscores_in_headers
        )

    async def _http(
        self, scope: Mapping[str, Any], receive: _Receive, send: _Send
    ) -> None:
        try:
            environ = build_environ(
                scope, None, self.duplicate_header_limit, self.underscores_in_headers
            )
        except TooManyHeaders:
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": _BAD_REQUEST_BODY})
            return
        outcome = None
        exchange: Exchange | None = None
        try:
            async with anyio.create_task_group() as task_group:
                exchange = Exchange(
                    receive,
                    send,
                    task_group,
                    current_loop(),
                    self.max_buffer,
                    self.max_spool,
                    wait_for_request=body_is_empty(environ),
                )
                try:
                    environ["wsgi.input"] = WsgiInput(exchange.thread_take)
                    environ[_DISCONNECTED_KEY] = Disconnected(exchange)
                    responder = Responder(self.wsgi_application, environ, exchange)
                    outcome = await exchange.run_thread(responder.run, self.limiter)
                    if (
                        outcome is not None
                        and outcome.messages
                        and not exchange.aborted
                    ):
                        await exchange.send_response(outcome.messages)
                    await exchange.finish()
                finally:
                    exchange.close()
        finally:
            if exchange is not None:
                exchange.release()
        if exchange is not None and exchange.error is not None:
            raise exchange.error
        if outcome is not None and outcome.error is not None:
            raise outcome.error


def _message_type(message: object) -> object:
    if not isinstance(message, Mapping):
        raise ValueError(  # noqa: TRY004 - a malformed message is a ValueError, as in asgiref
            f"ASGI receive() must return a mapping with a 'type', got {message!r}"
        )
    return message.get("type")


async def _lifespan(receive: _Receive, send: _Send) -> None:
    # A WSGI application has no startup or shutdown hooks: just say it went well.
    while True:
        kind = _message_type(await receive())
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
        else:
            raise ValueError(
                "ASGI lifespan message['type'] must be 'lifespan.startup' or "
                f"'lifespan.shutdown', got {kind!r}"
            )


async def _websocket(receive: _Receive, send: _Send) -> None:
    # WSGI cannot speak WebSocket: refuse the handshake (the server answers 403).
    kind = _message_type(await receive())
    if kind == "websocket.connect":
        await send({"type": "websocket.close", "code": 1000})
    elif kind != "websocket.disconnect":
        raise ValueError(
            "ASGI websocket message['type'] must be 'websocket.connect' first, "
            f"got {kind!r}"
        )
