# Translation of an ASGI ``http`` scope into a PEP 3333 environ, for the WSGI adapter.
#
# It runs on the event loop before any worker thread is involved, so a request with too
# many duplicate headers is answered with a 400 without ever touching a thread, and a
# malformed scope fails fast with a ValueError naming the field.  Every check here is a
# cheap isinstance() because it runs once per request on the hot path.
from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

__all__ = ("TooManyHeaders", "body_is_empty", "build_environ")


class TooManyHeaders(ValueError):
    """Raised when one header is repeated more often than the adapter allows."""


def _field(scope: Mapping[str, Any], name: str, kind: type, default: Any = None) -> Any:
    # Fetch scope[name], check its type, and name the field when it is wrong.
    try:
        value = scope[name]
    except KeyError:
        if default is None:
            raise ValueError(
                f"ASGI http scope is missing the required {name!r} key"
            ) from None
        return default
    if not isinstance(value, kind):
        raise ValueError(  # noqa: TRY004 - a malformed scope is a ValueError, as in asgiref
            f"ASGI http scope[{name!r}] must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def _address(scope: Mapping[str, Any], name: str) -> tuple[str, int | None] | None:
    value = scope.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not isinstance(value[0], str)
        or not (value[1] is None or isinstance(value[1], int))
    ):
        raise ValueError(
            f"ASGI http scope[{name!r}] must be a (host, port) pair or None, got {value!r}"
        )
    return value[0], value[1]


def _path_info(scope: Mapping[str, Any]) -> str:
    # PEP 3333 wants the percent-decoded bytes of the request path, as latin-1.  The
    # scope's ``path`` went through UTF-8 decoding already (lossy for bytes that are not
    # UTF-8, such as %FF), so ``raw_path`` is the source when the server gives it.
    path: str = _field(scope, "path", str)
    raw_path = scope.get("raw_path")
    if raw_path is None:
        return path.encode("utf-8").decode("latin-1")
    if not isinstance(raw_path, bytes):
        raise ValueError(  # noqa: TRY004 - malformed scopes are ValueErrors here
            f"ASGI http scope['raw_path'] must be bytes or None, got {type(raw_path).__name__}"
        )
    # A request target in absolute form ("http://host/path") or a query string that a
    # server left in: keep the path alone.
    if not raw_path.startswith(b"/") and b"://" in raw_path:
        raw_path = b"/" + raw_path.split(b"://", 1)[1].partition(b"/")[2]
    raw_path = raw_path.partition(b"?")[0]
    if b"%" in raw_path:
        raw_path = unquote_to_bytes(raw_path)
    return raw_path.decode("latin-1")


def build_environ(
    scope: Mapping[str, Any],
    body: object,
    duplicate_header_limit: int | None,
    underscores_in_headers: bool = False,
) -> dict[str, Any]:
    """
    Build the PEP 3333 environ of one ASGI ``http`` request.

    Paths are presented as PEP 3333 "bytes as latin-1" strings: the percent-decoded bytes
    of the scope's ``raw_path`` (the UTF-8 bytes of ``path`` when there is none), with
    ``root_path`` going to ``SCRIPT_NAME`` and the rest to ``PATH_INFO``.  Repeated
    headers are joined with ``","`` (``Cookie`` with ``"; "``, as RFC 9113 asks).
    Headers whose name contains ``_`` are dropped unless ``underscores_in_headers``: in
    the environ they would be indistinguishable from, and merged with, their dashed twin.

    :param scope: the ASGI connection scope
    :param body: the object to expose as ``wsgi.input``
    :param duplicate_header_limit: most values one header may have; ``None`` or ``0``: no limit
    :param underscores_in_headers: keep headers whose name contains ``_``
    :returns: the environ, with the scope itself under ``"asgi.scope"``
    :raises TooManyHeaders: if a header has more values than ``duplicate_header_limit``
    :raises ValueError: if a scope field is missing or has the wrong type
    """
    method = _field(scope, "method", str)
    path_info = _path_info(scope)
    query_string = _field(scope, "query_string", bytes, b"")
    root_path = _field(scope, "root_path", str, "")
    http_version = _field(scope, "http_version", str, "1.1")
    scheme = _field(scope, "scheme", str, "http")
    headers = _field(scope, "headers", Iterable, ())

    script_name = root_path.encode("utf-8").decode("latin-1")
    # Servers following ASGI 2.4 put root_path inside path; older ones do not.  Strip it
    # only on a segment boundary so that root "/app" does not eat "/application".
    if script_name and path_info.startswith(script_name):
        rest = path_info[len(script_name) :]
        if not rest or rest[0] == "/":
            path_info = rest

    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": query_string.decode("latin-1"),
        "SERVER_PROTOCOL": "HTTP/" + http_version,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        # The stream ends at the end of the body even without a Content-Length (chunked
        # uploads); Werkzeug reads such bodies only when this flag says so.
        "wsgi.input_terminated": True,
        "asgi.scope": scope,
    }

    server = _address(scope, "server")
    if server is None:
        environ["SERVER_NAME"] = "localhost"
        environ["SERVER_PORT"] = "80"
    else:
        environ["SERVER_NAME"] = server[0]
        # A unix socket has no port.
        environ["SERVER_PORT"] = "0" if server[1] is None else str(server[1])
    client = _address(scope, "client")
    if client is not None:
        environ["REMOTE_ADDR"] = client[0]
        if client[1] is not None:
            environ["REMOTE_PORT"] = str(client[1])

    counts: dict[str, int] = {}
    limit = duplicate_header_limit or 0
    for header in headers:
        try:
            raw_name, raw_value = header
        except (TypeError, ValueError):
            raise ValueError(
                f"ASGI http scope['headers'] items must be (name, value) pairs, got {header!r}"
            ) from None
        if not isinstance(raw_name, bytes) or not isinstance(raw_value, bytes):
            raise ValueError(  # noqa: TRY004 - a malformed scope is a ValueError, as in asgiref
                f"ASGI http scope['headers'] names and values must be bytes, got {header!r}"
            )
        name = raw_name.decode("latin-1")
        if "_" in name and not underscores_in_headers:
            continue
        if name == "content-length":
            key = "CONTENT_LENGTH"
        elif name == "content-type":
            key = "CONTENT_TYPE"
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if key in environ:
            count = counts.get(key, 1) + 1
            if limit and count > limit:
                raise TooManyHeaders(
                    f"header {name!r} is repeated more than {limit} times "
                    "(duplicate_header_limit)"
                )
            counts[key] = count
            separator = "; " if key == "HTTP_COOKIE" else ","
            environ[key] = environ[key] + separator + value
        else:
            environ[key] = value
    return environ


def body_is_empty(environ: Mapping[str, Any]) -> bool:
    """
    Tell whether the HTTP/1 framing of a request says it has no body at all.

    Then ``wsgi.input`` can answer end-of-file without waiting for the server.

    :param environ: an environ made by :func:`build_environ`
    :returns: ``True`` for ``Content-Length: 0``, or an HTTP/1 request with neither a
        ``Content-Length`` nor a ``Transfer-Encoding``
    """
    length = environ.get("CONTENT_LENGTH")
    if length is not None:
        return str(length).strip() == "0"
    if "HTTP_TRANSFER_ENCODING" in environ:
        return False
    return environ["SERVER_PROTOCOL"] in ("HTTP/1.1", "HTTP/1.0")
