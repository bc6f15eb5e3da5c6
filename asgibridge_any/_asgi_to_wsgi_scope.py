# Translating between a PEP 3333 request and the ASGI ``http`` messages of AsgiToWsgi.
#
# Inbound: the environ becomes an ASGI ``http`` scope, and its CONTENT_LENGTH /
# ``wsgi.input_terminated`` say how much body there is to read.  Outbound: the
# ``http.response.start`` fields become a WSGI status line and header list, checked so that
# a malformed message fails in the application's ``send()`` with the field named, not later
# inside the WSGI server.  Pure functions, no threads or loops: easy to test on their own.
from __future__ import annotations

import http
import re
from typing import Any
from urllib.parse import quote, unquote_to_bytes

#: ASGI version and HTTP spec version the adapter speaks (raw_path, root_path, state).
ASGI_VERSION = "3.0"
HTTP_SPEC_VERSION = "2.3"
LIFESPAN_SPEC_VERSION = "2.0"

# A WSGI application must not send hop-by-hop headers (PEP 3333): the server owns them.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")
_STATUS_LINES = {
    status.value: f"{status.value} {status.phrase}" for status in http.HTTPStatus
}
# Characters left as they are when a path is percent-encoded for raw_path (RFC 3986 pchar).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


class BadRequest(ValueError):
    """The environ describes a request that cannot be served; it is answered 400."""


def _wsgi_bytes(value: str) -> bytes:
    # PEP 3333 hands over request bytes as latin-1 strings; a server that put other
    # characters there broke that rule, and UTF-8 is the only sensible guess.
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


def body_length(environ: dict[str, Any]) -> int | None:
    """
    Return how many request body bytes ``wsgi.input`` holds.

    :param environ: the PEP 3333 environ
    :returns: the CONTENT_LENGTH; ``None`` to read until end of input, which only a server
        that sets ``wsgi.input_terminated`` allows; ``0`` when there is no body
    :raises BadRequest: if CONTENT_LENGTH is not a non-negative integer
    """
    raw = environ.get("CONTENT_LENGTH") or ""
    if raw:
        if not (raw.isascii() and raw.isdigit()):
            raise BadRequest(
                f"Content-Length must be a non-negative integer, got {raw!r}"
            )
        return int(raw)
    if environ.get("wsgi.input_terminated"):
        return None
    return 0


def _raw_path(environ: dict[str, Any], path: bytes) -> bytes:
    # The request target as the client sent it, when the server passes it on and it
    # decodes to the same path; otherwise the path percent-encoded again.
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(target, str) and target.startswith("/"):
        raw = _wsgi_bytes(target.partition("?")[0])
        if unquote_to_bytes(raw) == path:
            return raw
    return quote(path, safe=_PATH_SAFE).encode("ascii")


def _http_version(protocol: str) -> str:
    version = protocol.rpartition("/")[2]
    if version in ("2", "2.0"):
        return "2"
    return version if version in ("1.0", "1.1") else "1.1"


def _port(value: object) -> int:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() else 0


def build_scope(
    environ: dict[str, Any], state: dict[str, Any] | None
) -> dict[str, Any]:
    """
    Build the ASGI ``http`` scope of a WSGI request.

    ``path`` and ``root_path`` are the PEP 3333 latin-1 strings turned back into bytes and
    decoded as UTF-8; ``path`` includes ``root_path`` (SCRIPT_NAME), as ASGI wants it.

    :param environ: the PEP 3333 environ
    :param state: the lifespan state; each request gets a shallow copy (``None``: no
        ``state`` key, the application has no lifespan)
    :returns: the scope
    """
    root = _wsgi_bytes(environ.get("SCRIPT_NAME", ""))
    path = root + _wsgi_bytes(environ.get("PATH_INFO", ""))
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            # the server's CONTENT_* keys are the authoritative ones
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if not value:
                continue
            name = key
        else:
            continue
        headers.append(
            (name.lower().replace("_", "-").encode("latin-1"), _wsgi_bytes(value))
        )
    remote = environ.get("REMOTE_ADDR")
    server_port = environ.get("SERVER_PORT")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": ASGI_VERSION, "spec_version": HTTP_SPEC_VERSION},
        "http_version": _http_version(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
        "method": environ.get("REQUEST_METHOD", "GET").upper(),
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": path.decode("utf-8", "replace"),
        "raw_path": _raw_path(environ, path),
        "query_string": _wsgi_bytes(environ.get("QUERY_STRING", "")),
        "root_path": root.decode("utf-8", "replace"),
        "headers": headers,
        "client": (remote, _port(environ.get("REMOTE_PORT"))) if remote else None,
        "server": (environ.get("SERVER_NAME", "localhost"), _port(server_port))
        if server_port
        else None,
        "extensions": {},
    }
    if state is not None:
        scope["state"] = state.copy()
    return scope


def status_line(status: object) -> str:
    """
    Return the WSGI status line of an ``http.response.start`` status.

    :raises ValueError: if the status is not an int from 200 to 999
    """
    if (
        not isinstance(status, int)
        or isinstance(status, bool)
        or not 200 <= status <= 999
    ):
        raise ValueError(
            "ASGI message['status'] of 'http.response.start' must be an int from 200 to "
            f"999 (WSGI cannot send informational responses), got {status!r}"
        )
    return _STATUS_LINES.get(status) or f"{status} Unknown"


def wsgi_headers(headers: object) -> list[tuple[str, str]]:
    """
    Return the WSGI header list of an ``http.response.start`` header list.

    Hop-by-hop headers (``Connection``, ``Transfer-Encoding``, ...) are dropped: the WSGI
    server sets them itself and PEP 3333 forbids applications to send them.

    :raises ValueError: naming the entry, if a header is not a pair of byte strings or
        holds characters HTTP does not allow (which would let a value inject headers)
    """
    if isinstance(headers, (bytes, str)) or not hasattr(headers, "__iter__"):
        raise ValueError(
            "ASGI message['headers'] must be an iterable of [name, value] pairs of "
            f"byte strings, got {headers!r}"
        )
    out = []
    for index, pair in enumerate(headers):
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise ValueError(
                f"ASGI message['headers'][{index}] must be a [name, value] pair, got {pair!r}"
            ) from None
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise ValueError(  # noqa: TRY004 - a malformed message is a ValueError
                f"ASGI message['headers'][{index}] must hold two byte strings, got {pair!r}"
            )
        if _TOKEN.fullmatch(name) is None or _BAD_VALUE.search(value) is not None:
            raise ValueError(
                f"ASGI message['headers'][{index}] holds characters not allowed in an "
                f"HTTP header: {pair!r}"
            )
        if name.lower() in _HOP_BY_HOP:
            continue
        out.append((name.decode("latin-1"), value.decode("latin-1")))
    return out
