"""Tests for the PEP 3333 environ that WsgiToAsgi builds from an ASGI http scope."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from asgibridge_any.wsgi import WsgiToAsgi, WsgiToAsgiInstance
from tests.test_wsgi import (
    Environ,
    StartResponse,
    call,
    hello,
    http_scope,
)

if TYPE_CHECKING:
    from collections.abc import Iterable


def environ_of(scope: dict[str, Any], limit: int | None = 100) -> Environ:
    return WsgiToAsgiInstance(hello, limit).build_environ(scope, None)


def test_environ_has_every_pep_3333_key() -> None:
    scope = http_scope(
        method="POST",
        path="/app/items",
        root_path="/app",
        query_string=b"a=1&b=%20",
        http_version="2",
        scheme="https",
        server=("example.org", 8443),
        client=("10.0.0.7", 40123),
        headers=[
            (b"content-type", b"text/plain"),
            (b"content-length", b"5"),
            (b"x-forwarded-for", b"1.2.3.4"),
            (b"accept", b"text/html"),
            (b"accept", b"*/*"),
        ],
    )
    environ = environ_of(scope)
    assert {k: v for k, v in environ.items() if k.isupper()} == {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/app",
        "PATH_INFO": "/items",
        "QUERY_STRING": "a=1&b=%20",
        "SERVER_PROTOCOL": "HTTP/2",
        "SERVER_NAME": "example.org",
        "SERVER_PORT": "8443",
        "REMOTE_ADDR": "10.0.0.7",
        "REMOTE_PORT": "40123",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "5",
        "HTTP_X_FORWARDED_FOR": "1.2.3.4",
        "HTTP_ACCEPT": "text/html,*/*",
    }
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["wsgi.errors"] is sys.stderr
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is True
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.input_terminated"] is True
    assert environ["asgi.scope"] is scope


def test_utf8_path_is_presented_as_latin1() -> None:
    environ = environ_of(http_scope(path="/中国/中文", root_path="/中国"))
    assert environ["SCRIPT_NAME"] == "/中国".encode().decode("latin-1")
    assert environ["PATH_INFO"] == "/中文".encode().decode("latin-1")


def test_root_path_is_stripped_only_on_a_segment_boundary() -> None:
    assert environ_of(http_scope(path="/application", root_path="/app"))[
        "PATH_INFO"
    ] == ("/application")
    assert environ_of(http_scope(path="/app", root_path="/app"))["PATH_INFO"] == ""


def test_path_without_root_path_is_kept_whole() -> None:
    environ = environ_of(http_scope(path="/items", root_path="/app"))
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/app", "/items")


def test_missing_server_means_localhost_80() -> None:
    scope = http_scope(server=None, client=None)
    environ = environ_of(scope)
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("localhost", "80")
    assert "REMOTE_ADDR" not in environ


def test_unix_socket_server_has_port_0() -> None:
    environ = environ_of(http_scope(server=("/tmp/app.sock", None)))
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("/tmp/app.sock", "0")


def test_optional_scope_keys_have_defaults() -> None:
    scope = {"type": "http", "method": "GET", "path": "/"}
    environ = environ_of(scope)
    assert environ["QUERY_STRING"] == ""
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["SCRIPT_NAME"] == ""


def test_repeated_cookie_headers_are_joined_with_semicolons() -> None:
    environ = environ_of(http_scope(headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2")]))
    assert environ["HTTP_COOKIE"] == "a=1; b=2"


def test_header_values_are_decoded_as_latin1() -> None:
    environ = environ_of(http_scope(headers=[(b"x-name", "café".encode("latin-1"))]))
    assert environ["HTTP_X_NAME"] == "café"


def test_build_environ_raises_value_error_for_too_many_duplicates() -> None:
    with pytest.raises(ValueError, match="'x-dup' is repeated more than 2 times"):
        environ_of(http_scope(headers=[(b"x-dup", b"1")] * 3), limit=2)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"method": None}, "'method'"),
        ({"method": b"GET"}, "'method'"),
        ({"path": 7}, "'path'"),
        ({"query_string": "a=1"}, "'query_string'"),
        ({"root_path": b"/"}, "'root_path'"),
        ({"http_version": 1.1}, "'http_version'"),
        ({"headers": [(b"a", "b")]}, "'headers'"),
        ({"headers": [(b"a",)]}, "'headers'"),
        ({"headers": 3}, "'headers'"),
        ({"server": "localhost"}, "'server'"),
        ({"client": ("1.2.3.4", "80")}, "'client'"),
    ],
)
def test_malformed_scope_field_is_a_value_error_naming_it(
    fields: dict[str, Any], field: str
) -> None:
    scope = http_scope(**fields)
    if fields.get("method", "") is None:
        del scope["method"]
    with pytest.raises(ValueError, match=field):
        environ_of(scope)


async def test_malformed_scope_makes_the_asgi_app_raise() -> None:
    with pytest.raises(ValueError, match="'path'"):
        await call(WsgiToAsgi(hello), http_scope(path=b"/"))


async def test_app_sees_the_environ_of_its_request() -> None:
    seen: list[Environ] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ)
        return hello(environ, start_response)

    scope = http_scope(path="/x", query_string=b"q=1", headers=[(b"x-a", b"b")])
    await call(WsgiToAsgi(app), scope)
    assert seen[0]["PATH_INFO"] == "/x"
    assert seen[0]["QUERY_STRING"] == "q=1"
    assert seen[0]["HTTP_X_A"] == "b"
    assert seen[0]["asgi.scope"] is scope


@pytest.mark.parametrize(
    ("fields", "path_info"),
    [
        ({"path": "/env/\ufffd", "raw_path": b"/env/%FF"}, "/env/\xff"),
        ({"path": "/a b", "raw_path": b"/a%20b?not=query"}, "/a b"),
        ({"path": "/caf\xe9", "raw_path": None}, "/caf\xc3\xa9"),
        ({"path": "/x", "raw_path": b"http://host:80/x%2Fy"}, "/x/y"),
        ({"path": "/app/%FF", "raw_path": b"/app/%FF", "root_path": "/app"}, "/\xff"),
    ],
    ids=["non-utf8-byte", "query-left-in", "no-raw-path", "absolute-form", "root-path"],
)
def test_path_info_is_the_percent_decoded_raw_path_as_latin1(
    fields: dict[str, Any], path_info: str
) -> None:
    assert environ_of(http_scope(**fields))["PATH_INFO"] == path_info


def test_raw_path_that_is_not_bytes_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'raw_path'"):
        environ_of(http_scope(raw_path="/"))


def test_header_names_with_underscores_are_left_out_by_default() -> None:
    scope = http_scope(headers=[(b"x_a", b"1"), (b"x-b", b"2")])
    environ = environ_of(scope)
    assert "HTTP_X_A" not in environ
    assert environ["HTTP_X_B"] == "2"
