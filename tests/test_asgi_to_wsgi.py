"""AsgiToWsgi behind real WSGI servers on 127.0.0.1: wsgiref's threaded server and waitress.

Every test runs on both servers and both event loops (``backend="asyncio"`` and
``"trio"``).  The test app (tests/_asgi_apps.py) and the test synchronise through
threading events; no test sleeps.  gunicorn, with worker processes, is in
test_asgi_to_wsgi_gunicorn.py.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from asgibridge_any.wsgi import AsgiToWsgi

from ._asgi_apps import CHUNK, DOWNLOAD_CHUNKS, WAIT, Probe, make_app, pattern
from ._wsgi_servers import SERVERS, serve

if TYPE_CHECKING:
    from collections.abc import Iterator

LOOP_THREAD = "AsgiToWsgi event loop"


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def served(
    server: str, backend: str, probe: Probe, **options: Any
) -> Iterator[tuple[str, AsgiToWsgi]]:
    """Serve the test app through a fresh adapter; close both afterwards."""
    adapter = AsgiToWsgi(make_app(probe), backend=backend, **options)  # type: ignore[arg-type]
    try:
        with serve(server, adapter) as url:
            yield url, adapter
    finally:
        adapter.close()


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(LOOP_THREAD)]


# -- lifespan ------------------------------------------------------------------------------


def test_lifespan_startup_runs_before_the_first_request_and_its_state_reaches_it(
    server: str, backend: str
) -> None:
    probe = Probe()
    with served(server, backend, probe) as (url, _):
        assert probe.lifespan == []  # nothing starts before a request comes
        first = httpx.get(f"{url}/state", timeout=WAIT)
        assert probe.lifespan == ["startup"]
        second = httpx.get(f"{url}/state", timeout=WAIT)
    assert first.json() == {"state": {"greeting": "hello from startup"}}
    # each request got its own copy: the first one's change did not leak
    assert second.json() == first.json()


def test_close_runs_lifespan_shutdown_and_stops_the_loop_thread(
    server: str, backend: str
) -> None:
    probe = Probe()
    with served(server, backend, probe) as (url, adapter):
        assert httpx.get(f"{url}/state", timeout=WAIT).status_code == 200
        assert len(loop_threads()) == 1
        adapter.close()
        assert probe.lifespan == ["startup", "shutdown"]
        assert loop_threads() == []
        # a closed adapter answers, it does not start again
        assert httpx.get(f"{url}/state", timeout=WAIT).status_code == 503


def test_app_without_lifespan_support_is_served_without_state(
    server: str, backend: str
) -> None:
    probe = Probe(lifespan_support=False)
    with served(server, backend, probe) as (url, _):
        response = httpx.get(f"{url}/state", timeout=WAIT)
    assert response.status_code == 200
    assert response.json() == {"state": None}


def test_failed_startup_is_logged_and_answers_500(
    server: str, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe(fail_startup=True)
    with (
        caplog.at_level(logging.ERROR, logger="asgibridge_any.wsgi"),
        served(server, backend, probe) as (url, _),
    ):
        responses = [httpx.get(f"{url}/state", timeout=WAIT) for _ in range(2)]
    assert [r.status_code for r in responses] == [500, 500]
    assert "no database" in caplog.text


def test_startup_that_never_finishes_answers_500_instead_of_hanging(
    server: str, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe(hang_startup=True)
    with (
        caplog.at_level(logging.ERROR, logger="asgibridge_any.wsgi"),
        served(server, backend, probe, startup_timeout=0.2) as (url, _),
    ):
        response = httpx.get(f"{url}/state", timeout=WAIT)
    assert response.status_code == 500
    assert "did not finish within 0.2 s" in caplog.text


# -- scope ---------------------------------------------------------------------------------


def test_scope_is_built_from_the_request(server: str, backend: str) -> None:
    with served(server, backend, Probe()) as (url, _):
        response = httpx.get(
            f"{url}/scope/caf%C3%A9%2Fx?q=1&r=%C3%A9",
            headers={"X-Custom": "yes", "Accept": "text/plain"},
            timeout=WAIT,
        )
    scope = response.json()
    port = urlsplit(url).port
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["http_version"] in ("1.0", "1.1")
    # PEP 3333 hands the path over as latin-1; the scope has it as UTF-8 text
    assert scope["path"] == "/scope/café/x"
    assert scope["root_path"] == ""
    assert scope["raw_path"] in ("/scope/caf%C3%A9%2Fx", "/scope/caf%C3%A9/x")
    assert scope["query_string"] == "q=1&r=%C3%A9"
    assert ["x-custom", "yes"] in scope["headers"]
    assert ["accept", "text/plain"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"][1] == port


# -- bodies --------------------------------------------------------------------------------


def test_8_mib_download_streams_through(server: str, backend: str) -> None:
    expected = hashlib.sha256()
    for index in range(DOWNLOAD_CHUNKS):
        expected.update(pattern(index))
    received = hashlib.sha256()
    size = 0
    with (
        served(server, backend, Probe()) as (url, _),
        httpx.stream("GET", f"{url}/download", timeout=WAIT) as response,
    ):
        for data in response.iter_raw():
            received.update(data)
            size += len(data)
    assert size == DOWNLOAD_CHUNKS * CHUNK
    assert received.hexdigest() == expected.hexdigest()


def test_upload_is_echoed_as_it_streams(server: str, backend: str) -> None:
    body = b"".join(pattern(i) for i in range(40))  # 2.5 MiB
    with served(server, backend, Probe(), chunk_size=16 * 1024) as (url, _):
        response = httpx.post(f"{url}/echo", content=body, timeout=WAIT)
    assert response.status_code == 200
    assert response.content == body


def test_chunked_upload_is_read_to_its_end_when_input_is_terminated(
    backend: str,
) -> None:
    # waitress de-chunks the body and sets wsgi.input_terminated (wsgiref cannot take
    # chunked requests at all); gunicorn's variant is in its own module
    pieces = [pattern(i)[: 1000 + i] for i in range(30)]
    with served("waitress", backend, Probe()) as (url, _):
        response = httpx.post(f"{url}/echo", content=iter(pieces), timeout=WAIT)
    assert response.content == b"".join(pieces)


# -- concurrency ---------------------------------------------------------------------------


def test_40_requests_from_10_threads_share_one_loop_thread(
    server: str, backend: str
) -> None:
    probe = Probe()
    with served(server, backend, probe) as (url, _):

        def fetch(index: int) -> tuple[int, bytes]:
            response = httpx.get(f"{url}/scope/{index}", timeout=WAIT)
            return response.status_code, response.json()["path"].encode()

        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(fetch, range(40)))
    assert results == [(200, f"/scope/{i}".encode()) for i in range(40)]
    assert len(probe.loop_threads) == 1


# -- errors --------------------------------------------------------------------------------


def test_app_error_before_the_response_is_a_logged_500(
    server: str, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="asgibridge_any.wsgi"),
        served(server, backend, Probe()) as (url, _),
    ):
        response = httpx.get(f"{url}/boom", timeout=WAIT)
        # the loop survives: the next request is served
        after = httpx.get(f"{url}/state", timeout=WAIT)
    assert response.status_code == 500
    assert "boom before the response" in caplog.text
    assert after.status_code == 200


def test_app_error_after_the_response_started_cuts_the_connection(
    server: str, backend: str
) -> None:
    with (
        served(server, backend, Probe()) as (url, _),
        pytest.raises(httpx.RemoteProtocolError),
    ):
        httpx.get(f"{url}/boom-late", timeout=WAIT)


# -- streaming -----------------------------------------------------------------------------


def test_server_sent_events_reach_the_client_one_by_one(
    server: str, backend: str
) -> None:
    probe = Probe()
    with (
        served(server, backend, probe) as (url, _),
        httpx.stream("GET", f"{url}/events", timeout=WAIT) as response,
    ):
        chunks = response.iter_raw()
        first = b""
        while not first.endswith(b"\n\n"):
            first += next(chunks)
        # the app sends event 2 only after this: event 1 was not held back
        probe.client_has_first.set()
        rest = b"".join(chunks)
    assert first == b"data: 1\n\n"
    assert rest == b"data: 2\n\n"


def test_client_leaving_mid_stream_makes_the_app_see_a_disconnect(
    server: str, backend: str
) -> None:
    probe = Probe()
    with served(server, backend, probe) as (url, _):
        parts = urlsplit(url)
        with socket.create_connection(
            (parts.hostname, parts.port), timeout=WAIT
        ) as sock:
            sock.sendall(b"GET /endless HTTP/1.1\r\nHost: test\r\n\r\n")
            assert sock.recv(CHUNK)  # the response has begun
            assert probe.streaming.wait(WAIT)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        assert probe.disconnected.wait(WAIT), "the app never saw http.disconnect"
