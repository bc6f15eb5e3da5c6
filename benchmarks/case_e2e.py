# Case 8: end to end. A Flask hello app behind each adapter, served by hypercorn in its own
# process (asyncio worker; ours also on the trio worker), and a keep-alive load client here
# holding 50 connections. All servers start before the first round and stay up, so the
# rounds can interleave them like every other case.
from __future__ import annotations

__all__ = ("build",)

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._harness import Case, Goal, Row, Sampler, Settings, expect

CONNECTIONS = 50
HELLO = b"Hello, World!"
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: asgibridge-bench\r\n\r\n"
_START_TIMEOUT = 30.0
_SERVERS = (
    ("asgiref", "asyncio"),
    ("a2wsgi", "asyncio"),
    # hypercorn's own WSGI support: the one peer that also runs on the trio worker
    ("hypercorn", "asyncio"),
    ("hypercorn", "trio"),
    ("ours", "asyncio"),
    ("ours", "trio"),
)


@dataclass
class _Stats:
    running: bool = True
    ok: int = 0
    errors: int = 0
    last_error: str = ""
    open_connections: int = 0
    all_closed: asyncio.Event = field(default_factory=asyncio.Event)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send a request, check the response, send the next."""

    def __init__(self, stats: _Stats) -> None:
        self.stats = stats
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.stats.open_connections += 1
        transport.write(REQUEST)

    def _fail(self, message: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = message

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._fail("response without content-length")
                length = 0
            else:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop > 0 else len(head)])
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            if not head.startswith(b"http/1.1 200"):
                self._fail(f"status line {head[:40]!r}")
            elif body != HELLO:
                self._fail(f"body {body[:40]!r}")
            else:
                self.stats.ok += 1
            assert self.transport is not None
            if self.stats.running:
                self.transport.write(REQUEST)
            else:
                self.transport.close()
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stats.running:
            self._fail(f"server closed a connection: {exc!r}")
        self.stats.open_connections -= 1
        if self.stats.open_connections == 0:
            self.stats.all_closed.set()


async def _load(port: int, warmup: float, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    stats = _Stats()
    for _ in range(CONNECTIONS):
        await loop.create_connection(lambda: _Connection(stats), "127.0.0.1", port)
    await asyncio.sleep(warmup)
    ok0, t0 = stats.ok, time.perf_counter()
    await asyncio.sleep(seconds)
    ok1, t1 = stats.ok, time.perf_counter()
    stats.running = False
    try:
        await asyncio.wait_for(stats.all_closed.wait(), 15)
    except TimeoutError:
        stats.errors += 1
        stats.last_error = "connections did not finish their last request within 15 s"
    expect(stats.errors == 0, f"{stats.errors} bad responses, last: {stats.last_error}")
    expect(ok1 > ok0, "no response completed during the measurement")
    return (ok1 - ok0) / (t1 - t0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Server:
    impl: str
    worker: str
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Any = None

    def start(self) -> None:
        self.port = _free_port()
        self.log = self.log_path.open("wb")
        root = Path(__file__).resolve().parent.parent
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks._e2e_server",
                "--impl",
                self.impl,
                "--worker",
                self.worker,
                "--port",
                str(self.port),
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_ready(self) -> str | None:
        """Return ``None`` once the server answers, else why it is not available."""
        assert self.process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                out = (
                    self.process.stdout.read() if self.process.stdout else b""
                ).decode()
                if out.startswith("NA "):
                    return "n/a: " + out[3:].strip()
                return f"error: server exited with status {code} (see {self.log_path})"
            try:
                with socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1
                ) as sock:
                    sock.sendall(REQUEST)
                    sock.settimeout(5)
                    if sock.recv(4096).startswith(b"HTTP/1.1 200"):
                        return None
            except OSError:
                time.sleep(0.1)
        return f"error: server did not answer within {_START_TIMEOUT:.0f} s (see {self.log_path})"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.log is not None:
            self.log.close()


def _sampler(server: _Server, settings: Settings) -> Sampler:
    def sample(budget: float) -> float:
        return asyncio.run(
            _load(server.port, settings.e2e_warmup, settings.e2e_seconds)
        )

    return sample


def build(settings: Settings, results_dir: Path) -> Case:
    """Return case 8; its servers start in ``before`` and stop in ``after``."""
    servers = {
        f"{impl} ({worker})": _Server(
            impl, worker, results_dir / f"e2e-server-{impl}-{worker}.log"
        )
        for impl, worker in _SERVERS
    }
    rows = [
        Row(
            impl,
            worker,
            "ours" if impl == "ours" else "peer",
            _sampler(servers[f"{impl} ({worker})"], settings),
        )
        for impl, worker in _SERVERS
    ]

    def before(case: Case, settings: Settings) -> None:
        results_dir.mkdir(parents=True, exist_ok=True)
        for server in servers.values():
            server.start()
        for label, server in servers.items():
            why = server.wait_ready()
            row = case.row(label)
            if why is not None and why.startswith("n/a: "):
                row.na, row.sampler = why[5:], None
            elif why is not None:
                row.error = why

    def after(case: Case, settings: Settings) -> None:
        for server in servers.values():
            server.stop()

    return Case(
        key="8",
        title=f"end to end: Flask hello behind hypercorn, {CONNECTIONS} keep-alive connections",
        unit="req/s",
        lower_is_better=False,
        rows=rows,
        refs={
            "asgiref": {"*": ("asgiref (asyncio)",)},
            "a2wsgi": {"*": ("a2wsgi (asyncio)",)},
            "hypercorn wsgi": {
                "asyncio": ("hypercorn (asyncio)",),
                "trio": ("hypercorn (trio)",),
            },
        },
        goals=[
            Goal("ours (asyncio)", "asgiref", ">=", 1.5),
            Goal("ours (trio)", "asgiref", ">=", 1.5),
        ],
        before=before,
        after=after,
        e2e=True,
    )
