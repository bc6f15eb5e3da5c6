# Cases 9, 9a and 9b: ASGI applications served to a WSGI server through AsgiToWsgi, side by side
# with a2wsgi's ASGIMiddleware (asyncio only).  The "server" is the benchmark itself: plain
# threads calling the WSGI callable with a fresh environ per request and draining the
# response iterable, as a threaded WSGI server does, so only the adapter is measured.
# Case 9: hello-world from 10 threads at once.  Cases 9a/9b: 64 MiB down and up in 64 KiB
# pieces, with the peak memory (tracemalloc, every thread) of a transfer.
from __future__ import annotations

__all__ = ("build",)

import io
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any

from ._harness import (
    Case,
    Goal,
    Refs,
    Row,
    Sampler,
    Settings,
    check_peak_memory,
    expect,
)
from ._impls import load
from .cases_wsgi import _PATTERN, PIECE, PIECE_SIZE, TOTAL, MiB, _Verifier

HELLO = b"Hello, World!"
THREADS = 10
_A2WSGI: Refs = {"*": ("a2wsgi (asyncio)",)}

Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def hello_app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(HELLO)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": HELLO})


async def download_app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(TOTAL).encode())],
        }
    )
    for _ in range(TOTAL // PIECE_SIZE - 1):
        body = fresh_piece()
        await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": fresh_piece()})


async def upload_app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    verifier = _Verifier()
    while True:
        message = await receive()
        expect(message["type"] == "http.request", f"got {message['type']}")
        verifier.feed(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = str(verifier.pos).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def fresh_piece() -> bytes:
    """Return PIECE as a new object: every piece an adapter holds on to counts in memory."""
    return memoryview(PIECE).tobytes()


class _PatternInput:
    """A ``wsgi.input`` producing the endless pattern, ``length`` bytes, never stored."""

    def __init__(self, length: int) -> None:
        self.left = length
        self.pos = 0

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        phase = self.pos % 256
        if size == PIECE_SIZE and phase == 0:
            data = fresh_piece()
        else:
            data = (_PATTERN * (size // 256 + 2))[phase : phase + size]
        self.left -= size
        self.pos += size
        return data


def _environ(method: str, body: Any, length: int | None) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": "bench.local",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": body,
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    return environ


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[bytes]]:
    """Call a WSGI app as a server does: start_response, drain the iterable, close it."""
    status: list[str] = []

    def start_response(
        line: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], None]:
        status.append(line)
        return lambda data: None

    result = app(environ, start_response)
    try:
        chunks = list(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return status[0] if status else "", chunks


class _Adapter:
    """One adapter around one app, built on first use and kept for the whole case."""

    def __init__(self, factory: Callable[[Any], Any], asgi_app: Any) -> None:
        self.factory = factory
        self.asgi_app = asgi_app
        self.app: Any = None

    def get(self) -> WsgiApp:
        if self.app is None:
            self.app = self.factory(self.asgi_app)
        return self.app  # type: ignore[no-any-return]

    def close(self) -> None:
        close = getattr(self.app, "close", None)
        if close is not None:
            close()


def _hello_sampler(adapter: _Adapter) -> Sampler:
    def one(app: WsgiApp) -> None:
        body = io.BytesIO()
        status, chunks = _call(app, _environ("GET", body, None))
        expect(status.startswith("200"), f"status {status!r}, expected 200")
        got = b"".join(chunks)
        expect(got == HELLO, f"body {got[:40]!r}, expected {HELLO!r}")

    def sample(budget: float) -> float:
        app = adapter.get()

        def burst(seconds: float) -> int:
            deadline = time.perf_counter() + seconds
            counts = [0] * THREADS
            errors: list[BaseException] = []

            def client(k: int) -> None:
                try:
                    while time.perf_counter() < deadline:
                        one(app)
                        counts[k] += 1
                except BaseException as exc:
                    errors.append(exc)

            threads = [
                threading.Thread(target=client, args=(k,)) for k in range(THREADS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
            return sum(counts)

        burst(budget / 10)
        start = time.perf_counter()
        count = burst(budget)
        return count / (time.perf_counter() - start)

    return sample


class _Transfer:
    """64 MiB through one adapter: timed runs, and traced runs for peak memory."""

    def __init__(self, adapter: _Adapter, upload: bool) -> None:
        self.adapter = adapter
        self.upload = upload
        self.peaks: list[float] = []

    def _once(self, traced: bool) -> float:
        app = self.adapter.get()
        if self.upload:
            environ = _environ("POST", _PatternInput(TOTAL), TOTAL)
        else:
            environ = _environ("GET", io.BytesIO(), None)
        if traced:
            tracemalloc.start()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        status: list[str] = []

        def start_response(line: str, headers: Any, exc_info: object = None) -> Any:
            status.append(line)
            return lambda data: None

        result = app(environ, start_response)
        verifier = _Verifier()
        answer = b""
        try:
            for chunk in result:
                if self.upload:
                    answer += chunk
                else:
                    verifier.feed(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        elapsed = time.perf_counter() - start
        if traced:
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            self.peaks.append(peak / MiB)
        expect(bool(status) and status[0].startswith("200"), f"status {status!r}")
        if self.upload:
            expect(answer == str(TOTAL).encode(), f"app read {answer!r} bytes")
        else:
            expect(verifier.pos == TOTAL, f"got {verifier.pos} bytes, expected {TOTAL}")
        return elapsed

    def sample(self, budget: float) -> float:
        self._once(traced=False)
        times = [self._once(traced=False)]
        while sum(times) < budget or len(times) < 2:
            times.append(self._once(traced=False))
        return sum(times) / len(times)

    def traced(self) -> float:
        return self._once(traced=True)


def _adapters() -> list[tuple[str, str, Callable[[Any], Any] | None, str | None]]:
    ours = load("asgibridge_any.wsgi", "AsgiToWsgi")
    a2 = load("a2wsgi", "ASGIMiddleware")
    out: list[tuple[str, str, Callable[[Any], Any] | None, str | None]] = [
        ("a2wsgi", "asyncio", a2.attrs.get("ASGIMiddleware"), a2.na)
    ]
    for loop in ("asyncio", "trio"):
        factory = None
        if ours.na is None:
            cls = ours["AsgiToWsgi"]

            def factory(app: Any, cls: Any = cls, loop: str = loop) -> Any:
                return cls(app, backend=loop)

        out.append(("ours", loop, factory, ours.na))
    return out


def _closer(adapters: list[_Adapter]) -> Callable[[Case, Settings], None]:
    def after(case: Case, settings: Settings) -> None:
        for adapter in adapters:
            adapter.close()

    return after


def _case9() -> Case:
    rows = []
    adapters = []
    for impl, loop, factory, na in _adapters():
        row = Row(impl, loop, "ours" if impl == "ours" else "peer", na=na)
        if factory is not None and na is None:
            adapter = _Adapter(factory, hello_app)
            adapters.append(adapter)
            row.sampler = _hello_sampler(adapter)
        rows.append(row)
    return Case(
        key="9",
        title=f"ASGI hello-world behind a WSGI adapter, {THREADS} server threads (no sockets)",
        unit="req/s",
        lower_is_better=False,
        rows=rows,
        refs={"a2wsgi": _A2WSGI},
        goals=[
            Goal("ours (asyncio)", "a2wsgi", ">=", 1.2),
            Goal("ours (trio)", "a2wsgi", ">=", 1.2),
        ],
        after=_closer(adapters),
    )


def _memory_and_close(
    transfers: dict[str, _Transfer],
) -> Callable[[Case, Settings], None]:
    def after(case: Case, settings: Settings) -> None:
        for label, transfer in transfers.items():
            check_peak_memory(case, settings, label, transfer)
            transfer.adapter.close()

    return after


def _case9_transfer(upload: bool) -> Case:
    rows = []
    transfers: dict[str, _Transfer] = {}
    for impl, loop, factory, na in _adapters():
        row = Row(impl, loop, "ours" if impl == "ours" else "peer", na=na)
        if factory is not None and na is None:
            adapter = _Adapter(factory, upload_app if upload else download_app)
            transfer = _Transfer(adapter, upload)
            transfers[row.label] = transfer
            row.sampler = transfer.sample
        rows.append(row)
    direction = "request body (up)" if upload else "response body (down)"
    return Case(
        key="9b" if upload else "9a",
        title=f"ASGI app behind a WSGI adapter, 64 MiB {direction} in 64 KiB pieces",
        unit="s",
        lower_is_better=True,
        rows=rows,
        refs={"a2wsgi": _A2WSGI},
        after=_memory_and_close(transfers),
    )


def build() -> list[Case]:
    """Return cases 9, 9a (download) and 9b (upload), ready for :func:`run_case`."""
    return [_case9(), _case9_transfer(upload=False), _case9_transfer(upload=True)]
