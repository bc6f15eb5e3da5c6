"""AsgiToWsgi's translation between WSGI and ASGI: the scope, and the checks on messages.

The adapter is called directly as a WSGI application (tests/_wsgi_by_hand.py), on both
event loops: the scope built from PEP 3333 environs, malformed messages failing with a
:exc:`ValueError` that names the field, hop-by-hop headers dropped, bad options and a bad
Content-Length refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from asgibridge_any.wsgi import AsgiToWsgi

from ._wsgi_by_hand import Message, Server, adapter, environ


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


BAD_MESSAGES = [
    ({"type": "http.response.start", "status": "200"}, r"message\['status'\]"),
    ({"type": "http.response.start", "status": 101}, r"message\['status'\]"),
    (
        {"type": "http.response.start", "status": 200, "headers": [b"x"]},
        r"message\['headers'\]\[0\]",
    ),
    (
        {"type": "http.response.start", "status": 200, "headers": [(b"x", "text")]},
        r"message\['headers'\]\[0\]",
    ),
    (
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"x", b"a\r\nSet-Cookie: 1")],
        },
        r"message\['headers'\]\[0\]",
    ),
    (
        {"type": "http.response.start", "status": 200, "headers": "nope"},
        r"message\['headers'\]",
    ),
    ({"type": "http.response.body", "body": b"early"}, r"message\['type'\]"),
    ({"type": "http.response.strat", "status": 200}, r"message\['type'\]"),
    ("not a mapping", "mapping"),
]


@pytest.mark.parametrize(("message", "field"), BAD_MESSAGES)
def test_malformed_start_message_raises_value_error_naming_the_field(
    backend: str, message: Any, field: str
) -> None:
    caught: list[BaseException] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        try:
            await send(message)
        except ValueError as exc:
            caught.append(exc)
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    with adapter(app, backend) as wrapped:
        server = Server()
        server.get(wrapped, environ())
    assert server.status == "204 No Content"
    assert len(caught) == 1
    with pytest.raises(ValueError, match=field):
        raise caught[0]


BAD_BODIES = [
    ({"type": "http.response.body", "body": "text"}, r"message\['body'\]"),
    (
        {"type": "http.response.body", "body": b"", "more_body": "yes"},
        r"message\['more_body'\]",
    ),
    ({"type": "http.response.start", "status": 200}, r"message\['type'\]"),
]


@pytest.mark.parametrize(("message", "field"), BAD_BODIES)
def test_malformed_body_message_raises_value_error_naming_the_field(
    backend: str, message: Any, field: str
) -> None:
    caught: list[BaseException] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        try:
            await send(message)
        except ValueError as exc:
            caught.append(exc)
        await send({"type": "http.response.body", "body": b"fine"})

    with adapter(app, backend) as wrapped:
        assert Server().get(wrapped, environ()) == b"fine"
    with pytest.raises(ValueError, match=field):
        raise caught[0]


def test_hop_by_hop_headers_from_the_app_are_dropped(backend: str) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        headers = [
            (b"connection", b"close"),
            (b"x-kept", b"1"),
            (b"Transfer-Encoding", b"chunked"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body"})

    with adapter(app, backend) as wrapped:
        server = Server()
        server.get(wrapped, environ())
    assert server.headers == [("x-kept", "1")]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"backend": "curio"}, ValueError),
        ({"lifespan": "maybe"}, ValueError),
        ({"max_buffer": 0}, ValueError),
        ({"startup_timeout": -1}, ValueError),
    ],
)
def test_bad_options_are_refused(
    options: dict[str, Any], error: type[Exception]
) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    with pytest.raises(error, match=next(iter(options))):
        AsgiToWsgi(app, **options)


def test_non_callable_app_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="ASGI application"):
        AsgiToWsgi("app")


def test_bad_content_length_is_400_without_calling_the_app(backend: str) -> None:
    called: list[bool] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        called.append(True)

    with adapter(app, backend) as wrapped:
        server = Server()
        body = server.get(wrapped, environ(REQUEST_METHOD="POST", CONTENT_LENGTH="-5"))
    assert server.status == "400 Bad Request"
    assert b"Content-Length" in body
    assert called == []


# -- scope ---------------------------------------------------------------------------------


def test_scope_follows_pep_3333(backend: str) -> None:
    seen: list[Message] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    env = environ(
        REQUEST_METHOD="POST",
        SCRIPT_NAME="/m\xc3\xbcnchen",  # UTF-8 bytes, as PEP 3333 passes them
        PATH_INFO="/caf\xc3\xa9 x",
        QUERY_STRING="a=%20b",
        SERVER_PROTOCOL="HTTP/1.0",
        REMOTE_ADDR="10.1.2.3",
        REMOTE_PORT="5555",
        CONTENT_TYPE="text/plain",
        CONTENT_LENGTH="0",
        HTTP_X_FORWARDED_FOR="1.1.1.1",
        HTTP_CONTENT_TYPE="ignored duplicate",
        **{"wsgi.url_scheme": "https"},
    )
    with adapter(app, backend) as wrapped:
        Server().get(wrapped, env)
    scope = seen[0]
    assert scope["type"] == "http"
    assert scope["method"] == "POST"
    assert scope["scheme"] == "https"
    assert scope["http_version"] == "1.0"
    assert scope["root_path"] == "/münchen"
    assert scope["path"] == "/münchen/café x"
    assert scope["raw_path"] == b"/m%C3%BCnchen/caf%C3%A9%20x"
    assert scope["query_string"] == b"a=%20b"
    assert scope["headers"] == [
        (b"content-type", b"text/plain"),
        (b"content-length", b"0"),
        (b"x-forwarded-for", b"1.1.1.1"),
    ]
    assert scope["client"] == ("10.1.2.3", 5555)
    assert scope["server"] == ("testserver", 80)
    assert "state" not in scope  # no lifespan ran


def test_raw_path_keeps_the_request_target_the_server_passes_on(backend: str) -> None:
    seen: list[Message] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    env = environ(PATH_INFO="/a/b", RAW_URI="/a%2Fb?x=1")
    with adapter(app, backend) as wrapped:
        Server().get(wrapped, env)
    assert seen[0]["raw_path"] == b"/a%2Fb"
    assert seen[0]["path"] == "/a/b"


# -- request body on demand ----------------------------------------------------------------
