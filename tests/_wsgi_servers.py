"""Real WSGI servers on 127.0.0.1 for the AsgiToWsgi tests: wsgiref (threaded) and waitress.

Each runs in a thread of the test process and is stopped, its worker threads joined,
when the ``serve()`` block ends.  gunicorn needs worker processes; its tests start it
with :mod:`subprocess` themselves.
"""

from __future__ import annotations

import socketserver
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import waitress  # type: ignore[import-untyped]
from waitress import wasyncore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: the in-process servers every server test runs on
SERVERS = ("wsgiref", "waitress")


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server with a thread per request, joined by ``server_close()``."""

    daemon_threads = False
    block_on_close = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _wsgiref(app: WsgiApp) -> Iterator[str]:
    httpd = make_server(
        "127.0.0.1",
        0,
        app,
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=httpd.serve_forever, name="wsgiref-serve")
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()  # joins the request threads
        thread.join(10)


@contextmanager
def _waitress(app: WsgiApp) -> Iterator[str]:
    server: Any = waitress.create_server(
        app, host="127.0.0.1", port=0, threads=12, clear_untrusted_proxy_headers=True
    )
    stop = threading.Event()

    def run() -> None:
        # waitress's own run() returns only once every socket is closed, which must
        # happen in this thread; this loop also stops when asked, then closes them here.
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)
        wasyncore.close_all(server._map, ignore_all=True)

    thread = threading.Thread(target=run, name="waitress-serve")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # the worker threads finish their responses first: that needs the loop
        server.task_dispatcher.shutdown(timeout=10)
        stop.set()
        thread.join(10)


@contextmanager
def serve(server: str, app: WsgiApp) -> Iterator[str]:
    """
    Serve ``app`` with ``server`` on a free port of 127.0.0.1 and yield its base URL.
    """
    runner = _wsgiref if server == "wsgiref" else _waitress
    with runner(app) as url:
        yield url
