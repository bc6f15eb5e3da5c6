"""
HTTP storm: a plain WSGI application behind WsgiToAsgi, served by hypercorn (asyncio and
trio workers) and uvicorn in this process, under randomised traffic from raw HTTP/1.1
clients (h11) on the same event loop.

The mix per request: 10 % clients that leave (mid-upload, mid-download, before the
response), 2 % uploads of a large body that the application never reads, 1 % header
floods (answered 400), the rest ordinary pages, downloads and uploads on keep-alive
connections.  Promises checked per server: every completed response is byte-correct;
5 s after the run no request is left in the WSGI layer (application calls not closed,
adapter calls not returned, limiter tokens borrowed); RSS growth is printed (goal
<= 20 MiB).  A watchdog ends the process if a server run hangs.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import anyio
import h11
from anyio.abc import SocketAttribute

from asgibridge_any.wsgi import WsgiToAsgi
from tests.test_e2e_servers import serving

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from anyio.abc import SocketStream

SERVERS = ("hypercorn-asyncio", "hypercorn-trio", "uvicorn")
KIB = 1024
MIB = 1024 * KIB
PIECE = 16 * KIB
FLOOD_BODY = b"Bad Request: Too many duplicate headers"
RSS_GOAL_MIB = 20.0


@dataclass(frozen=True)
class Plan:
    requests: int  # per server
    concurrency: int
    time_cap: float  # seconds of traffic per server at most


FULL = Plan(requests=20_000, concurrency=50, time_cap=55.0)
SHORT = Plan(requests=1_200, concurrency=20, time_cap=5.0)


def pieces(seed: int, size: int) -> Iterator[bytes]:
    """Deterministic bytes that both sides can produce: ``size`` bytes for ``seed``, in
    pieces of at most PIECE bytes (large bodies are never held whole, so that RSS
    measures the adapter and not the allocator's handling of multi-MiB objects)."""
    block = hashlib.sha256(struct.pack("<Q", seed)).digest() * (PIECE // 32)
    whole, rest = divmod(size, PIECE)
    for _ in range(whole):
        yield block
    if rest:
        yield block[:rest]


def pattern(seed: int, size: int) -> bytes:
    """:func:`pieces` joined (for small sizes)."""
    return b"".join(pieces(seed, size))


def digest_of(seed: int, size: int) -> str:
    digest = hashlib.sha256()
    for piece in pieces(seed, size):
        digest.update(piece)
    return digest.hexdigest()


# -- the application ------------------------------------------------------------------------


class Live:
    """Requests inside the WSGI application: called and not yet closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def enter(self) -> None:
        with self._lock:
            self.count += 1

    def leave(self) -> None:
        with self._lock:
            self.count -= 1


class Closing:
    """Wrap a response iterable so that its ``close()`` marks the request as done."""

    def __init__(self, iterable: Iterable[bytes], live: Live) -> None:
        self._iterable = iterable
        self._live = live

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._iterable)

    def close(self) -> None:
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            self._live.leave()


def make_app(live: Live) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        live.enter()
        try:
            body = respond(environ, start_response)
        except BaseException:
            live.leave()
            raise
        return Closing(body, live)

    def respond(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ["PATH_INFO"]
        query = parse_qs(environ["QUERY_STRING"])
        if path == "/hello":
            start_response("200 OK", [("Content-Length", "12")])
            return [b"Hello, world"]
        if path == "/download":
            seed, size = int(query["seed"][0]), int(query["size"][0])
            headers = [("Content-Type", "application/octet-stream")]
            if seed % 2:
                headers.append(("Content-Length", str(size)))
            start_response("200 OK", headers)
            return pieces(seed, size)
        if path == "/upload":
            digest = hashlib.sha256()
            size = 0
            stream_in = environ["wsgi.input"]
            while chunk := stream_in.read(64 * KIB):
                digest.update(chunk)
                size += len(chunk)
            answer = f"{size} {digest.hexdigest()}".encode()
            start_response("200 OK", [("Content-Length", str(len(answer)))])
            return [answer]
        if path == "/ignore":
            # Never reads its (large) body; streams an answer.
            seed, size = int(query["seed"][0]), int(query["size"][0])
            start_response("200 OK", [])
            return pieces(seed, size)
        if path == "/slow":
            time.sleep(0.02)  # the application's own work
            start_response("200 OK", [("Content-Length", "4")])
            return [b"slow"]
        start_response("404 Not Found", [("Content-Length", "0")])
        return []

    return app


class Tracker:
    """Count the adapter's ``http`` calls that have not returned."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.running = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.running += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1


# -- the clients ----------------------------------------------------------------------------


@dataclass
class Tally:
    kinds: Counter[str] = field(default_factory=Counter)
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: unread uploads whose connection the server reset after it answered
    server_resets: int = 0

    def bad(self, what: str) -> None:
        if len(self.mismatches) < 20:
            self.mismatches.append(what)
        else:
            self.mismatches.append("...")


class ConnectionLost(Exception):
    """The server closed the connection before a complete response."""


class Client:
    """One h11 connection to the server."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)
        self.used = False

    @classmethod
    async def open(cls, host: str, port: int) -> Client:
        return cls(await anyio.connect_tcp(host, port))

    async def send(self, *events: Any) -> None:
        await self.stream.send(
            b"".join(self.conn.send(event) or b"" for event in events)
        )

    async def response(self, limit: int | None = None) -> tuple[int, bytes]:
        """Read a response (its first ``limit`` body bytes if given)."""
        status = 0
        body = bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    data = b""
                if not data:
                    raise ConnectionLost
                self.conn.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
                if limit is not None and len(body) >= limit:
                    return status, bytes(body)
            elif isinstance(event, h11.EndOfMessage):
                return status, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionLost

    def reusable(self) -> bool:
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
            self.used = True
            return True
        return False

    async def abort(self) -> None:
        # Leave with a reset, as a client that crashed or gave up does (no TIME_WAIT).
        sock = self.stream.extra(SocketAttribute.raw_socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self.stream.aclose()

    async def aclose(self) -> None:
        await self.stream.aclose()


def request(target: str, method: str = "GET", *headers: tuple[str, str]) -> h11.Request:
    return h11.Request(
        method=method, target=target, headers=[("Host", "storm"), *headers]
    )


class Storm:
    def __init__(self, host: str, port: int, plan: Plan, seed: int) -> None:
        self.host, self.port, self.plan = host, port, plan
        self.tally = Tally()
        self.random = random.Random(seed)
        self.next_seed = 0

    def seed(self) -> int:
        self.next_seed += 1
        return self.next_seed

    async def worker(self, jobs: Iterator[str], deadline: float) -> None:
        client: Client | None = None
        for kind in jobs:
            if time.monotonic() > deadline:
                break
            self.tally.kinds[kind] += 1
            try:
                if kind in ("hello", "download", "upload"):
                    client = await self.ordinary(kind, client)
                else:
                    await getattr(self, kind)()
            except ConnectionLost:
                self.tally.errors.append(f"{kind}: connection lost")
            except Exception as exc:  # a storm counts failures, it never stops
                self.tally.errors.append(f"{kind}: {exc!r}")
        if client is not None:
            await client.aclose()

    async def ordinary(self, kind: str, client: Client | None) -> Client | None:
        for attempt in range(2):
            if client is None:
                client = await Client.open(self.host, self.port)
            fresh = not client.used
            try:
                await self._ordinary(kind, client)
            except (ConnectionLost, OSError, anyio.BrokenResourceError):
                await client.aclose()
                client = None
                # A kept-alive connection the server closed meanwhile: try a new one.
                if fresh or attempt:
                    raise
                continue
            if client.reusable():
                return client
            await client.aclose()
            return None
        return client

    async def _ordinary(self, kind: str, client: Client) -> None:
        seed = self.seed()
        if kind == "hello":
            await client.send(request("/hello"), h11.EndOfMessage())
            expected = (200, b"Hello, world")
        elif kind == "download":
            size = self.random.choice((1, 20 * KIB, 100 * KIB, 300 * KIB))
            await client.send(
                request(f"/download?seed={seed}&size={size}"), h11.EndOfMessage()
            )
            expected = (200, pattern(seed, size))
        else:
            size = self.random.choice((0, 5 * KIB, 70 * KIB, 400 * KIB))
            await client.send(request("/upload", "POST", ("Content-Length", str(size))))
            for piece in pieces(seed, size):
                await client.send(h11.Data(data=piece))
            await client.send(h11.EndOfMessage())
            answer = f"{size} {digest_of(seed, size)}".encode()
            expected = (200, answer)
        got = await client.response()
        self.check(kind, got, expected)

    def check(
        self, kind: str, got: tuple[int, bytes], expected: tuple[int, bytes]
    ) -> None:
        self.tally.checked += 1
        if got != expected:
            self.tally.bad(
                f"{kind}: got status {got[0]} and {len(got[1])} bytes, expected "
                f"{expected[0]} and {len(expected[1])} bytes"
            )

    async def leave_mid_upload(self) -> None:
        client = await Client.open(self.host, self.port)
        size = 1 * MIB
        await client.send(request("/upload", "POST", ("Content-Length", str(size))))
        for piece in pieces(self.seed(), self.random.randrange(1, 200 * KIB)):
            await client.stream.send(piece)
        await client.abort()

    async def leave_mid_download(self) -> None:
        client = await Client.open(self.host, self.port)
        await client.send(
            request(f"/download?seed={self.seed()}&size={4 * MIB}"), h11.EndOfMessage()
        )
        await client.response(limit=self.random.randrange(1, 256 * KIB))
        await client.abort()

    async def leave_before_response(self) -> None:
        client = await Client.open(self.host, self.port)
        await client.send(request("/slow"), h11.EndOfMessage())
        await client.abort()

    async def unread_large_body(self) -> None:
        client = await Client.open(self.host, self.port)
        seed = self.seed()
        size = self.random.choice((2 * MIB, 3 * MIB))
        answer = 64 * KIB
        await client.send(
            request(
                f"/ignore?seed={seed}&size={answer}",
                "POST",
                ("Content-Length", str(size)),
            )
        )

        async def upload() -> None:
            try:
                for piece in pieces(seed, size):
                    await client.stream.send(piece)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass  # the server may close once it answered

        got: tuple[int, bytes] | None = None
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(upload)
            try:
                got = await client.response()
            except ConnectionLost:
                # The server answered without waiting for the rest of the upload, then
                # closed the connection with the upload unread: the kernel resets it,
                # and the client may lose the answer (hypercorn closes so, without the
                # "lingering close" of RFC 9112 section 9.6).  Counted apart.
                self.tally.server_resets += 1
            task_group.cancel_scope.cancel()
        await client.aclose()
        if got is not None:
            self.check("unread_large_body", got, (200, pattern(seed, answer)))

    async def header_flood(self) -> None:
        client = await Client.open(self.host, self.port)
        flood = [("X-Flood", str(index)) for index in range(101)]
        await client.send(request("/hello", "GET", *flood), h11.EndOfMessage())
        got = await client.response()
        self.check("header_flood", got, (400, FLOOD_BODY))
        await client.aclose()


def jobs(rng: random.Random, count: int) -> list[str]:
    weights = {
        "hello": 40.0,
        "download": 25.0,
        "upload": 22.0,
        "leave_mid_upload": 10 / 3,
        "leave_mid_download": 10 / 3,
        "leave_before_response": 10 / 3,
        "unread_large_body": 2.0,
        "header_flood": 1.0,
    }
    kinds = list(weights)
    return rng.choices(kinds, weights=[weights[k] for k in kinds], k=count)


# -- one server -----------------------------------------------------------------------------


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Result:
    server: str
    tally: Tally
    seconds: float
    left_after: tuple[int, int, int]
    rss_growth: float

    def ok(self) -> bool:
        # RSS growth is a goal, printed, not a promise: a busy machine's allocator
        # makes it noisy.
        return (
            not self.tally.mismatches
            and not self.tally.errors
            and self.left_after == (0, 0, 0)
        )


async def storm_one(kind: str, plan: Plan, seed: int) -> Result:
    live = Live()
    limiter = anyio.CapacityLimiter(40)
    tracker = Tracker(WsgiToAsgi(make_app(live), limiter=limiter))
    async with serving(kind, tracker) as url:
        host, port = url.removeprefix("http://").split(":")
        storm = Storm(host, int(port), plan, seed)
        queue = jobs(storm.random, plan.requests)
        # The first tenth warms up (imports, thread pool, allocator arenas); RSS growth
        # is measured over the rest.
        warm_up = len(queue) // 10
        started = time.monotonic()
        deadline = started + plan.time_cap
        rss_before = 0.0
        with anyio.fail_after(plan.time_cap + 60):
            for part in (queue[:warm_up], queue[warm_up:]):
                work = iter(part)
                async with anyio.create_task_group() as task_group:
                    for _ in range(plan.concurrency):
                        task_group.start_soon(storm.worker, work, deadline)
                if not rss_before:
                    gc.collect()
                    rss_before = rss_mib()
        seconds = time.monotonic() - started
        # Give requests whose client left 5 s to end, then look.  A monitor's poll: the
        # counters have no event to wait on, and an early end only saves time.
        settle = time.monotonic() + 5
        while time.monotonic() < settle and (  # noqa: ASYNC110
            live.count or tracker.running or limiter.borrowed_tokens
        ):
            await anyio.sleep(0.05)
        left = (live.count, tracker.running, limiter.borrowed_tokens)
        gc.collect()
        growth = rss_mib() - rss_before
    return Result(kind, storm.tally, seconds, left, growth)


def report(result: Result) -> None:
    tally = result.tally
    total = sum(tally.kinds.values())
    left_early = sum(v for k, v in tally.kinds.items() if k.startswith("leave"))
    print(
        f"[http] {result.server}: {total} requests in {result.seconds:.1f} s "
        f"({total / max(result.seconds, 1e-9):.0f}/s); {tally.checked} responses checked, "
        f"{len(tally.mismatches)} mismatches, {len(tally.errors)} failed requests"
    )
    print(
        f"[http]   clients leaving: {left_early} ({left_early / max(total, 1):.1%}); "
        f"unread large bodies: {tally.kinds['unread_large_body']} "
        f"({tally.server_resets} reset by the server's close mid-upload); "
        f"header floods: {tally.kinds['header_flood']}"
    )
    app_calls, adapter_calls, tokens = result.left_after
    print(
        f"[http]   5 s later: {app_calls} WSGI calls open, {adapter_calls} adapter calls "
        f"running, {tokens} limiter tokens borrowed; RSS growth after warm-up "
        f"{result.rss_growth:+.1f} MiB (goal <= {RSS_GOAL_MIB:.0f})"
    )
    for line in tally.mismatches[:5] + tally.errors[:5]:
        print(f"[http]   ! {line}")


def _watchdog(seconds: float) -> threading.Timer:
    def expire() -> None:
        print(f"[http] watchdog: no end after {seconds:.0f} s, giving up", flush=True)
        os._exit(3)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


def run(short: bool) -> bool:
    """Run the storm on every server; print the figures; ``True`` if every promise held."""
    plan = SHORT if short else FULL
    print(
        f"[http] up to {plan.requests} requests per server, {plan.concurrency} clients, "
        f"at most {plan.time_cap:.0f} s of traffic each"
    )
    seed = int(os.environ.get("STORM_SEED", "0")) or random.randrange(1, 2**31)
    # asyncio warns about every write to a socket whose client reset it; expected here.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    print(f"[http] seed {seed} (STORM_SEED={seed} repeats the traffic)")
    watchdog = _watchdog(len(SERVERS) * (plan.time_cap + 90))
    ok = True
    try:
        for server in SERVERS:
            backend = "trio" if server == "hypercorn-trio" else "asyncio"
            result = anyio.run(storm_one, server, plan, seed, backend=backend)
            report(result)
            ok = ok and result.ok()
    finally:
        watchdog.cancel()
    sys.stdout.flush()
    return ok
