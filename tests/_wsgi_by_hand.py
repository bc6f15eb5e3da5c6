"""Playing the WSGI server by hand for the AsgiToWsgi tests: environ, start_response, adapter.

The test calls the adapter as a WSGI server would, so it controls exactly when the
response is pulled, when it is closed and what ``wsgi.input`` holds.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from asgibridge_any.wsgi import AsgiToWsgi

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

Message = dict[str, Any]
WAIT = 10.0
CHUNK = 64 * 1024


def environ(**extra: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
    }
    env.update(extra)
    return env


class Server:
    """Plays a WSGI server: calls the app, records start_response."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        self.status = status
        self.headers = headers
        return lambda data: None

    def call(self, app: AsgiToWsgi, env: dict[str, Any]) -> Iterable[bytes]:
        return app(env, self.start_response)

    def get(self, app: AsgiToWsgi, env: dict[str, Any]) -> bytes:
        result = self.call(app, env)
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


@contextmanager
def adapter(app: Any, backend: str, **options: Any) -> Iterator[AsgiToWsgi]:
    wrapped = AsgiToWsgi(app, backend=backend, lifespan="off", **options)  # type: ignore[arg-type]
    try:
        yield wrapped
    finally:
        wrapped.close()


# -- malformed messages --------------------------------------------------------------------
