"""
Type definitions for ASGI scopes, events and applications.

The names match ``asgiref.typing`` so that annotations keep working after switching the
import. Each event dictionary carries the ``type`` string that the ASGI specification
(https://asgi.readthedocs.io/en/latest/specs/) gives it.
"""

from __future__ import annotations

__all__ = (
    "ASGI2Application",
    "ASGI2Protocol",
    "ASGI3Application",
    "ASGIApplication",
    "ASGIReceiveCallable",
    "ASGIReceiveEvent",
    "ASGISendCallable",
    "ASGISendEvent",
    "ASGIVersions",
    "HTTPDisconnectEvent",
    "HTTPRequestEvent",
    "HTTPResponseBodyEvent",
    "HTTPResponseDebugEvent",
    "HTTPResponsePathsendEvent",
    "HTTPResponseStartEvent",
    "HTTPResponseTrailersEvent",
    "HTTPScope",
    "HTTPServerPushEvent",
    "LifespanScope",
    "LifespanShutdownCompleteEvent",
    "LifespanShutdownEvent",
    "LifespanShutdownFailedEvent",
    "LifespanStartupCompleteEvent",
    "LifespanStartupEvent",
    "LifespanStartupFailedEvent",
    "Scope",
    "WWWScope",
    "WebSocketAcceptEvent",
    "WebSocketCloseEvent",
    "WebSocketConnectEvent",
    "WebSocketDisconnectEvent",
    "WebSocketReceiveEvent",
    "WebSocketResponseBodyEvent",
    "WebSocketResponseStartEvent",
    "WebSocketScope",
    "WebSocketSendEvent",
)

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, Protocol, TypeAlias, TypedDict

# --- scopes -----------------------------------------------------------------------------


class ASGIVersions(TypedDict):
    """The ``asgi`` entry of a scope: the spec version and the ASGI major version."""

    spec_version: str
    version: Literal["2.0", "3.0"]


class _OptionalState(TypedDict, total=False):
    # ``state`` may be missing. It is declared in a non-total base class rather than with
    # NotRequired[...], which Python 3.11 ignores in postponed (string) annotations.
    state: dict[str, Any]


class HTTPScope(_OptionalState):
    """Scope of one HTTP request."""

    type: Literal["http"]
    asgi: ASGIVersions
    http_version: str
    method: str
    scheme: str
    path: str
    raw_path: bytes
    query_string: bytes
    root_path: str
    headers: Iterable[tuple[bytes, bytes]]
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    extensions: dict[str, dict[object, object]] | None


class WebSocketScope(_OptionalState):
    """Scope of one WebSocket connection."""

    type: Literal["websocket"]
    asgi: ASGIVersions
    http_version: str
    scheme: str
    path: str
    raw_path: bytes
    query_string: bytes
    root_path: str
    headers: Iterable[tuple[bytes, bytes]]
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    subprotocols: Iterable[str]
    extensions: dict[str, dict[object, object]] | None


class LifespanScope(_OptionalState):
    """Scope of the lifespan protocol (startup and shutdown of the application)."""

    type: Literal["lifespan"]
    asgi: ASGIVersions


WWWScope: TypeAlias = HTTPScope | WebSocketScope
Scope: TypeAlias = HTTPScope | WebSocketScope | LifespanScope

# --- HTTP events --------------------------------------------------------------------------


class HTTPRequestEvent(TypedDict):
    """A chunk of request body (``more_body`` says whether more follow)."""

    type: Literal["http.request"]
    body: bytes
    more_body: bool


class HTTPResponseDebugEvent(TypedDict):
    """Debug information a test client may receive alongside the response."""

    type: Literal["http.response.debug"]
    info: dict[str, object]


class HTTPResponseStartEvent(TypedDict):
    """Status and headers of the response."""

    type: Literal["http.response.start"]
    status: int
    headers: Iterable[tuple[bytes, bytes]]
    trailers: bool


class HTTPResponseBodyEvent(TypedDict):
    """A chunk of response body (``more_body`` says whether more follow)."""

    type: Literal["http.response.body"]
    body: bytes
    more_body: bool


class HTTPResponseTrailersEvent(TypedDict):
    """Trailing headers sent after the body."""

    type: Literal["http.response.trailers"]
    headers: Iterable[tuple[bytes, bytes]]
    more_trailers: bool


class HTTPResponsePathsendEvent(TypedDict):
    """Ask the server to send a file from the filesystem as the body."""

    type: Literal["http.response.pathsend"]
    path: str


class HTTPServerPushEvent(TypedDict):
    """HTTP/2 server push of another resource."""

    type: Literal["http.response.push"]
    path: str
    headers: Iterable[tuple[bytes, bytes]]


class HTTPDisconnectEvent(TypedDict):
    """The client went away (or the response was completely sent)."""

    type: Literal["http.disconnect"]


# --- WebSocket events -----------------------------------------------------------------------


class WebSocketConnectEvent(TypedDict):
    """The client asks to open the WebSocket."""

    type: Literal["websocket.connect"]


class WebSocketAcceptEvent(TypedDict):
    """The application accepts the WebSocket."""

    type: Literal["websocket.accept"]
    subprotocol: str | None
    headers: Iterable[tuple[bytes, bytes]]


class WebSocketReceiveEvent(TypedDict):
    """A message from the client: ``bytes`` or ``text`` is set."""

    type: Literal["websocket.receive"]
    bytes: bytes | None
    text: str | None


class WebSocketSendEvent(TypedDict):
    """A message to the client: ``bytes`` or ``text`` is set."""

    type: Literal["websocket.send"]
    bytes: bytes | None
    text: str | None


class WebSocketResponseStartEvent(TypedDict):
    """Deny the handshake with an HTTP response: its status and headers."""

    type: Literal["websocket.http.response.start"]
    status: int
    headers: Iterable[tuple[bytes, bytes]]


class WebSocketResponseBodyEvent(TypedDict):
    """Deny the handshake with an HTTP response: a chunk of its body."""

    type: Literal["websocket.http.response.body"]
    body: bytes
    more_body: bool


class WebSocketDisconnectEvent(TypedDict):
    """The WebSocket was closed, by either side."""

    type: Literal["websocket.disconnect"]
    code: int
    reason: str | None


class WebSocketCloseEvent(TypedDict):
    """The application closes the WebSocket (or rejects it before accepting)."""

    type: Literal["websocket.close"]
    code: int
    reason: str | None


# --- lifespan events --------------------------------------------------------------------------


class LifespanStartupEvent(TypedDict):
    """The server is starting up."""

    type: Literal["lifespan.startup"]


class LifespanShutdownEvent(TypedDict):
    """The server is shutting down."""

    type: Literal["lifespan.shutdown"]


class LifespanStartupCompleteEvent(TypedDict):
    """The application finished its startup."""

    type: Literal["lifespan.startup.complete"]


class LifespanStartupFailedEvent(TypedDict):
    """The application failed to start up."""

    type: Literal["lifespan.startup.failed"]
    message: str


class LifespanShutdownCompleteEvent(TypedDict):
    """The application finished its shutdown."""

    type: Literal["lifespan.shutdown.complete"]


class LifespanShutdownFailedEvent(TypedDict):
    """The application failed to shut down cleanly."""

    type: Literal["lifespan.shutdown.failed"]
    message: str


# --- event unions and callables ---------------------------------------------------------------

ASGIReceiveEvent: TypeAlias = (
    HTTPRequestEvent
    | HTTPDisconnectEvent
    | WebSocketConnectEvent
    | WebSocketReceiveEvent
    | WebSocketDisconnectEvent
    | LifespanStartupEvent
    | LifespanShutdownEvent
)

ASGISendEvent: TypeAlias = (
    HTTPResponseStartEvent
    | HTTPResponseBodyEvent
    | HTTPResponseTrailersEvent
    | HTTPServerPushEvent
    | HTTPDisconnectEvent
    | WebSocketAcceptEvent
    | WebSocketSendEvent
    | WebSocketResponseStartEvent
    | WebSocketResponseBodyEvent
    | WebSocketCloseEvent
    | LifespanStartupCompleteEvent
    | LifespanStartupFailedEvent
    | LifespanShutdownCompleteEvent
    | LifespanShutdownFailedEvent
)

ASGIReceiveCallable: TypeAlias = Callable[[], Awaitable[ASGIReceiveEvent]]
ASGISendCallable: TypeAlias = Callable[[ASGISendEvent], Awaitable[None]]


class ASGI2Protocol(Protocol):
    """An ASGI 2 application class: built with the scope, then awaited per connection."""

    def __init__(self, scope: Scope) -> None: ...

    async def __call__(
        self, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None: ...


ASGI2Application: TypeAlias = type[ASGI2Protocol]
ASGI3Application: TypeAlias = Callable[
    [Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]
]
ASGIApplication: TypeAlias = ASGI2Application | ASGI3Application
