# Cases 6 and 7: WSGI adapters called directly as ASGI applications, with an in-process
# fake server (no sockets) so that only the adapter is measured. Case 6: hello-world with 50
# concurrent clients. Case 7: 64 MiB down and up in 64 KiB pieces, with peak memory
# (tracemalloc) and the body bytes the adapter consumed before it called the app.
from __future__ import annotations

__all__ = ("build",)

import time
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any

import anyio

from ._harness import (
    Case,
    Check,
    Goal,
    Refs,
    Role,
    Row,
    Sampler,
    Settings,
    check_peak_memory,
    expect,
)
from ._impls import load
from ._loops import run_on

MiB = 1024 * 1024
PIECE_SIZE = 64 * 1024
TOTAL = 64 * MiB
_PATTERN = bytes(range(256))
PIECE = _PATTERN * (PIECE_SIZE // 256)
# any window of at most PIECE_SIZE bytes of the endless pattern, at any phase
_WINDOW = _PATTERN * (PIECE_SIZE // 256 + 1)
HELLO = b"Hello, World!"
CLIENTS = 50

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Adapter = Callable[[WsgiApp], Any]

_ASGIREF: Refs = {"*": ("asgiref (asyncio)",)}
_A2WSGI: Refs = {"*": ("a2wsgi (asyncio)",)}
_FASTER_PEER: Refs = {"*": ("asgiref (asyncio)", "a2wsgi (asyncio)")}


class _Verifier:
    """Check that a byte stream is the endless pattern, piece by piece, without storing it."""

    def __init__(self) -> None:
        self.pos = 0

    def feed(self, data: bytes) -> None:
        if data is PIECE and self.pos % 256 == 0:
            self.pos += len(data)
            return
        view = bytes(data)
        for off in range(0, len(view), PIECE_SIZE):
            part = view[off : off + PIECE_SIZE]
            phase = (self.pos + off) % 256
            if part != _WINDOW[phase : phase + len(part)]:
                raise AssertionError(
                    f"body differs from the pattern near byte {self.pos + off}"
                )
        self.pos += len(view)


def _scope(
    method: str, path: str, headers: list[tuple[bytes, bytes]], port: int
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench.local"), *headers],
        "client": ("127.0.0.1", port),
        "server": ("127.0.0.1", 8000),
    }


class _Exchange:
    """
    One request/response through an ASGI app, as a server would drive it.

    ``receive`` hands out the request body pieces, then waits until the response is
    complete and reports ``http.disconnect`` (what a real server does for a finished
    request); ``send`` checks the response as it arrives.
    """

    def __init__(self, body_pieces: int = 0, verify_body: bool = False) -> None:
        self.pieces_left = body_pieces
        self.request_sent = False
        self.bytes_given = 0
        self.done = anyio.Event()
        self.status: int | None = None
        self.chunks: list[bytes] = []
        self.verifier = _Verifier() if verify_body else None

    async def receive(self) -> dict[str, Any]:
        if not self.request_sent:
            if self.pieces_left > 0:
                self.pieces_left -= 1
                self.bytes_given += PIECE_SIZE
                self.request_sent = self.pieces_left == 0
                return {
                    "type": "http.request",
                    "body": PIECE,
                    "more_body": not self.request_sent,
                }
            self.request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            expect(self.status is None, "response started twice")
            self.status = message["status"]
        elif kind == "http.response.body":
            body = message.get("body", b"")
            if self.verifier is not None:
                self.verifier.feed(body)
            else:
                self.chunks.append(body)
            if not message.get("more_body", False):
                self.done.set()


# -- the WSGI apps ---------------------------------------------------------------------------


def hello_app(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))]
    )
    return [HELLO]


def download_app(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(TOTAL))],
    )
    for _ in range(TOTAL // PIECE_SIZE):
        yield PIECE


class _UploadProbe:
    """Which exchange the upload app belongs to (one transfer runs at a time)."""

    current: _Exchange | None = None
    consumed_before_app: int = -1


def upload_app(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    exchange = _UploadProbe.current
    _UploadProbe.consumed_before_app = (
        exchange.bytes_given if exchange is not None else -1
    )
    stream = environ["wsgi.input"]
    verifier = _Verifier()
    while True:
        data = stream.read(PIECE_SIZE)
        if not data:
            break
        verifier.feed(data)
    body = str(verifier.pos).encode()
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


# -- case 6 ----------------------------------------------------------------------------------


async def _hello_once(app: Any, port: int) -> None:
    ex = _Exchange()
    await app(_scope("GET", "/", [], port), ex.receive, ex.send)
    ex.done.set()
    expect(ex.status == 200, f"status {ex.status}, expected 200")
    got = b"".join(ex.chunks)
    expect(got == HELLO, f"body {got[:40]!r}, expected {HELLO!r}")


def _hello_sampler(loop: str, app: Any) -> Sampler:
    def sample(budget: float) -> float:
        async def main() -> float:
            count = [0]

            async def clients(seconds: float) -> None:
                deadline = time.perf_counter() + seconds

                async def client(k: int) -> None:
                    while time.perf_counter() < deadline:
                        await _hello_once(app, 40000 + k)
                        count[0] += 1

                async with anyio.create_task_group() as tg:
                    for k in range(CLIENTS):
                        tg.start_soon(client, k)

            await clients(budget / 10)
            count[0] = 0
            start = time.perf_counter()
            await clients(budget)
            return count[0] / (time.perf_counter() - start)

        return run_on(loop, main)

    return sample


def _adapters() -> list[tuple[str, str, Adapter | None, str | None]]:
    ours = load("asgibridge_any.wsgi", "WsgiToAsgi")
    ref = load("asgiref.wsgi", "WsgiToAsgi")
    a2 = load("a2wsgi", "WSGIMiddleware")
    return [
        ("asgiref", "asyncio", ref.attrs.get("WsgiToAsgi"), ref.na),
        ("a2wsgi", "asyncio", a2.attrs.get("WSGIMiddleware"), a2.na),
        ("ours", "asyncio", ours.attrs.get("WsgiToAsgi"), ours.na),
        ("ours", "trio", ours.attrs.get("WsgiToAsgi"), ours.na),
    ]


def _wrap(adapter: Adapter | None, app: WsgiApp) -> tuple[Any, str | None]:
    if adapter is None:
        return None, "not available"
    try:
        return adapter(app), None
    except Exception as exc:
        return None, f"constructor raised {type(exc).__name__}: {exc}"


def _role(impl: str) -> Role:
    return "ours" if impl == "ours" else "peer"


def _case6() -> Case:
    rows = []
    for impl, loop, adapter, na in _adapters():
        app, why = (None, na) if na else _wrap(adapter, hello_app)
        rows.append(
            Row(
                impl, loop, _role(impl), None if why else _hello_sampler(loop, app), why
            )
        )
    return Case(
        key="6",
        title=f"WSGI hello-world as an ASGI app, {CLIENTS} concurrent clients (no server)",
        unit="req/s",
        lower_is_better=False,
        rows=rows,
        refs={"asgiref": _ASGIREF, "a2wsgi": _A2WSGI},
        goals=[
            Goal("ours (asyncio)", "asgiref", ">=", 2.0),
            Goal("ours (asyncio)", "a2wsgi", ">=", 1.2),
            Goal("ours (trio)", "asgiref", ">=", 2.0),
            Goal("ours (trio)", "a2wsgi", ">=", 1.2),
        ],
    )


# -- case 7 ----------------------------------------------------------------------------------


class _Transfer:
    """64 MiB through one adapter on one loop: timed runs, and traced runs for memory."""

    def __init__(self, loop: str, app: Any, upload: bool) -> None:
        self.loop = loop
        self.app = app
        self.upload = upload
        self.peaks: list[float] = []
        self.before_app: list[int] = []

    async def _once(self, traced: bool) -> float:
        pieces = TOTAL // PIECE_SIZE if self.upload else 0
        ex = _Exchange(body_pieces=pieces, verify_body=not self.upload)
        headers = [(b"content-length", str(TOTAL).encode())] if self.upload else []
        scope = _scope("POST" if self.upload else "GET", "/big", headers, 41000)
        _UploadProbe.current = ex
        _UploadProbe.consumed_before_app = -1
        if traced:
            tracemalloc.start()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        await self.app(scope, ex.receive, ex.send)
        elapsed = time.perf_counter() - start
        if traced:
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            self.peaks.append(peak / MiB)
        ex.done.set()
        _UploadProbe.current = None
        expect(ex.status == 200, f"status {ex.status}, expected 200")
        if self.upload:
            got = b"".join(ex.chunks)
            expect(
                got == str(TOTAL).encode(), f"app read {got!r} bytes, expected {TOTAL}"
            )
            expect(_UploadProbe.consumed_before_app >= 0, "the app was never called")
            self.before_app.append(_UploadProbe.consumed_before_app)
        else:
            assert ex.verifier is not None
            expect(
                ex.verifier.pos == TOTAL,
                f"got {ex.verifier.pos} bytes, expected {TOTAL}",
            )
        return elapsed

    def sample(self, budget: float) -> float:
        async def main() -> float:
            # whole transfers until the budget is spent (at least two); seconds per transfer
            await self._once(traced=False)
            times = [await self._once(traced=False)]
            while sum(times) < budget or len(times) < 2:
                times.append(await self._once(traced=False))
            return sum(times) / len(times)

        return run_on(self.loop, main)

    def traced(self) -> float:
        return run_on(self.loop, lambda: self._once(traced=True))


def _memory_checks(transfers: dict[str, _Transfer]) -> Callable[[Case, Settings], None]:
    def after(case: Case, settings: Settings) -> None:
        for label, transfer in transfers.items():
            row = check_peak_memory(case, settings, label, transfer)
            ours = row.role == "ours"
            if transfer.upload:
                early = max(transfer.before_app) if transfer.before_app else None
                case.checks.append(
                    Check(
                        label,
                        "body bytes consumed before the app ran",
                        early,
                        "bytes",
                        "== 0" if ours else "",
                        (early == 0) if ours and early is not None else None,
                    )
                )

    return after


def _case7(upload: bool) -> Case:
    rows = []
    transfers: dict[str, _Transfer] = {}
    for impl, loop, adapter, na in _adapters():
        app, why = (
            (None, na) if na else _wrap(adapter, upload_app if upload else download_app)
        )
        row = Row(impl, loop, _role(impl), None, why)
        if why is None:
            transfer = _Transfer(loop, app, upload)
            transfers[row.label] = transfer
            row.sampler = transfer.sample
        rows.append(row)
    direction = "request body (up)" if upload else "response body (down)"
    return Case(
        key="7b" if upload else "7a",
        title=f"WSGI 64 MiB {direction} in 64 KiB pieces, one request",
        unit="s",
        lower_is_better=True,
        rows=rows,
        refs={"asgiref": _ASGIREF, "a2wsgi": _A2WSGI, "faster peer": _FASTER_PEER},
        goals=[
            Goal("ours (asyncio)", "faster peer", "<=", 1.0),
            Goal("ours (trio)", "faster peer", "<=", 1.0),
        ],
        after=_memory_checks(transfers),
    )


def build() -> list[Case]:
    """Return cases 6, 7a (download) and 7b (upload), ready for :func:`run_case`."""
    return [_case6(), _case7(upload=False), _case7(upload=True)]
