# AsgiToWsgi: an ASGI application served by a WSGI server.  This module holds the public
# class (options, the per-process loop started on the first request, close()) and the
# WSGI entry point; the loop thread and lifespan live in _asgi_to_wsgi_loop, one request's
# crossing between threads in _asgi_to_wsgi_exchange, environ/message translation in
# _asgi_to_wsgi_scope.
from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, Self

import anyio

from ._asgi_to_wsgi_exchange import (
    END,
    START,
    ClientDisconnected,
    Exchange,
    LoopStopped,
    ResponseBody,
    raise_error,
)
from ._asgi_to_wsgi_loop import AsgiApp, LoopThread
from ._asgi_to_wsgi_scope import BadRequest, body_length, build_scope

if TYPE_CHECKING:
    from types import TracebackType

logger = logging.getLogger("asgibridge_any.wsgi")

#: ``start_response(status, headers, exc_info=None)`` of PEP 3333.
StartResponse = Callable[..., Callable[[bytes], object]]

_DEFAULT_MAX_BUFFER = 1024 * 1024
_DEFAULT_CHUNK_SIZE = 64 * 1024
_BACKENDS = ("asyncio", "trio")
_LIFESPAN_MODES = ("auto", "on", "off")

# Adapters of this process that may own a loop thread: forgotten in a forked child (the
# thread did not survive the fork), closed at interpreter exit (lifespan shutdown).
_adapters: weakref.WeakSet[AsgiToWsgi] = weakref.WeakSet()


def _forget_loops_after_fork() -> None:
    for adapter in list(_adapters):
        adapter._after_fork()


def _close_at_exit() -> None:
    for adapter in list(_adapters):
        adapter.close()


os.register_at_fork(after_in_child=_forget_loops_after_fork)
atexit.register(_close_at_exit)


def _plain(
    start_response: StartResponse, status: str, text: str, exc_info: object = None
) -> Iterable[bytes]:
    body = text.encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]
    if exc_info is None:
        start_response(status, headers)
    else:
        start_response(status, headers, exc_info)
    return [body]


def _check_options(
    application: object,
    backend: object,
    lifespan: object,
    numbers: dict[str, object],
) -> None:
    if not callable(application):
        raise TypeError(
            f"AsgiToWsgi() needs an ASGI application (an async callable taking scope, "
            f"receive and send), got {application!r}"
        )
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be 'asyncio' or 'trio', got {backend!r}")
    if backend == "trio" and importlib.util.find_spec("trio") is None:
        raise RuntimeError(
            "backend='trio' needs trio: install 'asgibridge_any[trio]' or use "
            "backend='asyncio'"
        )
    if lifespan not in _LIFESPAN_MODES:
        raise ValueError(f"lifespan must be 'auto', 'on' or 'off', got {lifespan!r}")
    for name, value in numbers.items():
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not value > 0
        ):
            raise ValueError(f"{name} must be a positive number, got {value!r}")


class AsgiToWsgi:
    """
    Serve an ASGI application from a WSGI server (gunicorn, waitress, mod_wsgi, ...).

    The application runs on one event loop per process — asyncio or trio, as ``backend``
    says — in a thread of its own, which every WSGI worker thread shares: no loop or
    thread is made per request.  The loop starts on the first request, so a pre-fork
    server's workers each start their own after the fork; :meth:`close` stops it.

    Before the first request, the application's ``lifespan`` startup runs; the ``state``
    it fills reaches every request's scope as ``scope["state"]`` (a shallow copy per
    request).  An application without lifespan support is served all the same; one whose
    startup fails (or does not finish within ``startup_timeout``) gets its error logged
    and every request answered ``500``.

    The request body is read from ``wsgi.input`` in chunks, only as the application asks
    for them; the response goes to the WSGI server as the application sends it, at most
    ``max_buffer`` bytes ahead of the server.  When the server closes the response early
    (the client left), ``receive()`` returns ``http.disconnect`` and ``send()`` raises
    :exc:`OSError`.  An application that fails before ``http.response.start`` gets a
    ``500`` (error logged); after it, the response iterator raises, and the WSGI server
    cuts the connection.

    :param asgi_application: the ASGI 3 application
    :param backend: ``"asyncio"`` or ``"trio"``, the event loop the application runs on
    :param backend_options: passed to :func:`anyio.run`, e.g. ``{"use_uvloop": True}``
    :param lifespan: ``"auto"`` runs the lifespan protocol and carries on without it when
        the application raises on it; ``"on"`` treats that as a startup failure;
        ``"off"`` skips lifespan
    :param startup_timeout: seconds lifespan startup may take
    :param shutdown_timeout: seconds :meth:`close` waits for lifespan shutdown
    :param max_buffer: bytes of response body queued ahead of the WSGI server, per request,
        before the application's ``send()`` waits
    :param chunk_size: most bytes of request body read from ``wsgi.input`` at a time
    :raises TypeError: if ``asgi_application`` is not callable
    :raises ValueError: if an option is out of range
    :raises RuntimeError: for ``backend="trio"`` when trio is not installed
    """

    def __init__(
        self,
        asgi_application: Any,
        *,
        backend: Literal["asyncio", "trio"] = "asyncio",
        backend_options: dict[str, Any] | None = None,
        lifespan: Literal["auto", "on", "off"] = "auto",
        startup_timeout: float = 60.0,
        shutdown_timeout: float = 30.0,
        max_buffer: int = _DEFAULT_MAX_BUFFER,
        chunk_size: int = _DEFAULT_CHUNK_SIZE,
    ) -> None:
        _check_options(
            asgi_application,
            backend,
            lifespan,
            {
                "startup_timeout": startup_timeout,
                "shutdown_timeout": shutdown_timeout,
                "max_buffer": max_buffer,
                "chunk_size": chunk_size,
            },
        )
        self.asgi_application: AsgiApp = asgi_application
        self.backend = backend
        self.backend_options = backend_options
        self.lifespan = lifespan
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.max_buffer = int(max_buffer)
        self.chunk_size = int(chunk_size)
        self._lock = threading.Lock()
        self._loop: LoopThread | None = None
        self._pid = os.getpid()
        self._closed = False
        _adapters.add(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """
        Run the application's lifespan shutdown and stop the event loop thread.

        Requests still running are cancelled; later requests are answered ``503``.  Safe
        to call more than once, and from any thread but the loop's own.
        """
        with self._lock:
            self._closed = True
            loop, self._loop = self._loop, None
        _adapters.discard(self)
        if loop is not None and self._pid == os.getpid():
            loop.stop(self.shutdown_timeout)

    def _after_fork(self) -> None:
        # The loop thread stayed in the parent: start afresh on this process's first
        # request.  (The lock is new too, in case a parent thread held it at the fork.)
        self._lock = threading.Lock()
        self._loop = None
        self._pid = os.getpid()

    def _event_loop(self) -> LoopThread:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._closed:
                raise _Closed
            if self._loop is None:
                self._loop = LoopThread(
                    self.asgi_application,
                    self.backend,
                    self.backend_options,
                    self.lifespan,
                    self.startup_timeout,
                )
            return self._loop

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """
        Serve one WSGI request through the ASGI application (PEP 3333).

        :returns: the response body iterable; the WSGI server must call its ``close()``
        """
        try:
            loop = self._event_loop()
        except _Closed:
            logger.warning("AsgiToWsgi got a request after close(); answering 503")
            return _plain(
                start_response, "503 Service Unavailable", "Service Unavailable"
            )
        except Exception:
            logger.exception("AsgiToWsgi could not start its event loop")
            return _internal_error(start_response)
        if loop.failure is not None:
            logger.error(
                "ASGI application not started (%s); answering 500", loop.failure
            )
            return _internal_error(start_response)
        try:
            scope = build_scope(environ, loop.state)
            length = body_length(environ)
        except BadRequest as exc:
            return _plain(start_response, "400 Bad Request", f"Bad Request: {exc}")
        exchange = Exchange(
            loop, environ.get("wsgi.input"), length, self.max_buffer, self.chunk_size
        )
        try:
            loop.start_soon(
                _run_application,
                (self.asgi_application, scope, exchange),
                exchange.finish,
            )
            item = exchange.next_message()
            if item[0] == START:
                start_response(item[1], item[2])
                return ResponseBody(exchange)
            assert item[0] == END
            raise_error(item[1], started=False)
        except Exception:
            exchange.abandon()
            logger.exception("ASGI application failed before it started a response")
            # with exc_info, in case start_response itself failed after taking headers
            return _internal_error(start_response, sys.exc_info())
        raise AssertionError("unreachable")  # pragma: no cover


class _Closed(Exception):
    pass


def _internal_error(
    start_response: StartResponse, exc_info: object = None
) -> Iterable[bytes]:
    return _plain(
        start_response, "500 Internal Server Error", "Internal Server Error", exc_info
    )


async def _run_application(
    app: AsgiApp, scope: dict[str, Any], exchange: Exchange
) -> None:
    # A task of the loop: nothing may escape it but the loop's own cancellation, or it
    # would take down every other request of the task group.
    try:
        await app(scope, exchange.receive, exchange.send)
    except BaseException as exc:
        if not exchange.finish(exc):
            _report_late(exchange, exc)
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            raise
    else:
        exchange.finish(None)


def _report_late(exchange: Exchange, exc: BaseException) -> None:
    if isinstance(exc, (ClientDisconnected, LoopStopped)) or not isinstance(
        exc, Exception
    ):
        return
    if exchange.complete:
        logger.error(
            "ASGI application raised after its response was complete", exc_info=exc
        )
    else:
        logger.error("ASGI application raised after the client left", exc_info=exc)
