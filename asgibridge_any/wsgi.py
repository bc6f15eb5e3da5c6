"""
Serve a PEP 3333 WSGI application (Flask, Django, ...) from any ASGI server.

:class:`WsgiToAsgi` is a drop-in replacement for asgiref's adapter that runs under
asyncio and trio servers alike, streams the request and response bodies both ways with
back-pressure, and runs many requests at once in worker threads.
"""

from __future__ import annotations

__all__ = ("WsgiToAsgi", "WsgiToAsgiInstance")

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread

from . import _stats
from ._wsgi_environ import TooManyHeaders, body_is_empty, build_environ
from ._wsgi_exchange import Exchange
from ._wsgi_input import WsgiInput
from ._wsgi_response import Responder
from ._wsgi_wakeup import current_waker

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
_BAD_REQUEST_BODY = b"Bad Request: Too many duplicate headers"


def _check_options(
    duplicate_header_limit: int | None,
    limiter: anyio.CapacityLimiter | None,
    max_buffer: int,
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


class WsgiToAsgi:
    """
    Wrap a WSGI application into an ASGI application.

    Each ``http`` request runs the WSGI application in a worker thread, at most as many at
    once as ``limiter`` allows.  The application is called before the request body arrives
    and reads it as it comes through ``environ["wsgi.input"]``; its response goes out as it
    is produced, the thread waiting when the client reads slowly.  ``lifespan`` events are
    answered, ``websocket`` connections closed, any other scope type is a :exc:`ValueError`.

    :param wsgi_application: the PEP 3333 application
    :param duplicate_header_limit: answer ``400 Bad Request``, without calling the
        application, to a request repeating one header more often; ``None`` for no limit
    :param limiter: bounds the number of requests running at once (default: anyio's
        default thread limiter)
    :param max_buffer: most bytes of request body read ahead of the application, and of
        response body queued ahead of the client, per request
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
        _check_options(duplicate_header_limit, limiter, max_buffer)
        self.wsgi_application = wsgi_application
        self.duplicate_header_limit = duplicate_header_limit
        self.limiter = limiter
        self.max_buffer = max_buffer
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
    ) -> None:
        _check_options(duplicate_header_limit, limiter, max_buffer)
        self.wsgi_application = wsgi_application
        self.duplicate_header_limit = duplicate_header_limit
        self.limiter = limiter
        self.max_buffer = max_buffer
        self.scope: MutableMapping[str, Any] | None = None

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """
        Serve the connection described by ``scope`` to its end.

        :raises ValueError: for an unknown scope type, or a malformed scope or message
        """
        if not isinstance(scope, Mapping):
            raise ValueError(  # noqa: TRY004 - a malformed scope is a ValueError (SPEC)
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
        return build_environ(scope, body, self.duplicate_header_limit)

    async def _http(
        self, scope: Mapping[str, Any], receive: _Receive, send: _Send
    ) -> None:
        try:
            environ = build_environ(scope, None, self.duplicate_header_limit)
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
        async with anyio.create_task_group() as task_group:
            exchange = Exchange(
                receive, send, task_group, current_waker(), self.max_buffer
            )
            environ["wsgi.input"] = WsgiInput(
                None if body_is_empty(environ) else exchange.thread_take
            )
            responder = Responder(self.wsgi_application, environ, exchange)
            try:
                outcome = await anyio.to_thread.run_sync(
                    responder.run, limiter=self.limiter
                )
            except BaseException:
                # Never return while the application still runs in its thread.
                await exchange.stop_thread()
                raise
            finally:
                # The body reader may still wait for a disconnect: it is no longer needed.
                exchange.reader_scope.cancel()
        if exchange.error is not None:
            raise exchange.error
        if not exchange.aborted and outcome.messages:
            try:
                await exchange.ensure_request_seen()
                if exchange.aborted:
                    return  # the client left before its request arrived
                for message in outcome.messages:
                    await send(message)
            except OSError:
                return  # the client went away: nobody left to tell
        if outcome.error is not None:
            raise outcome.error


def _message_type(message: object) -> object:
    if not isinstance(message, Mapping):
        raise ValueError(  # noqa: TRY004 - a malformed message is a ValueError (SPEC)
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
