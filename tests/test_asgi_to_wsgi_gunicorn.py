"""AsgiToWsgi behind gunicorn with 2 worker processes (sync workers), on asyncio and trio.

gunicorn runs as a subprocess on a socket this test bound and listens on (``fd://``), so
requests can be sent at once.  With ``--preload`` the adapter has already served a
request in the master when gunicorn forks: each worker must start its own event loop and
lifespan.  The app reports to the test over a second socket (tests/_gunicorn_app.py).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20.0
CHUNK = 64 * 1024


@dataclass
class Gunicorn:
    """A running gunicorn and the socket its app reports to."""

    url: str
    process: subprocess.Popen[bytes]
    probe: socket.socket
    log: Path

    def accept(self) -> tuple[socket.socket, str]:
        """Wait for the app's next report; return its connection and line."""
        conn, _ = self.probe.accept()
        conn.settimeout(WAIT)
        line = b""
        while not line.endswith(b"\n"):
            data = conn.recv(100)
            assert data, "the app hung up before its report"
            line += data
        return conn, line.decode().strip()

    def answer(self) -> str:
        """Accept one report and answer it at once."""
        conn, line = self.accept()
        with conn:
            conn.sendall(b"k")
        return line

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(WAIT)


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(WAIT)
    return sock


@pytest.fixture
def start_gunicorn(tmp_path: Path) -> Iterator[Callable[..., Gunicorn]]:
    started: list[Gunicorn] = []

    def start(backend: str, *, report_shutdown: bool = False) -> Gunicorn:
        listen = _listener()
        listen.set_inheritable(True)
        probe = _listener()
        log = tmp_path / f"gunicorn-{len(started)}.log"
        env = {
            **os.environ,
            "ASGI_TO_WSGI_BACKEND": backend,
            "ASGI_TO_WSGI_PROBE_PORT": str(probe.getsockname()[1]),
            "ASGI_TO_WSGI_WARM_UP": "1",
        }
        if report_shutdown:
            env["ASGI_TO_WSGI_REPORT_SHUTDOWN"] = "1"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--bind",
                    f"fd://{listen.fileno()}",
                    "--workers",
                    "2",
                    "--preload",
                    "--graceful-timeout",
                    "15",
                    "--chdir",
                    str(ROOT),
                    "tests._gunicorn_app:application",
                ],
                pass_fds=(listen.fileno(),),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )
        server = Gunicorn(
            f"http://127.0.0.1:{listen.getsockname()[1]}", process, probe, log
        )
        listen.close()  # gunicorn holds its own copy
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        server.probe.close()


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_each_worker_starts_its_own_loop_and_lifespan_after_the_fork(
    start_gunicorn: Any, backend: str
) -> None:
    server = start_gunicorn(backend, report_shutdown=True)
    master = server.process.pid
    # Two requests held open at once: a sync worker serves one at a time, so the
    # second one is in the other worker.
    with ThreadPoolExecutor(2) as pool:
        replies = [
            pool.submit(httpx.get, f"{server.url}/hold", timeout=WAIT) for _ in range(2)
        ]
        held = [server.accept() for _ in range(2)]
        for conn, _ in held:
            conn.sendall(b"k")
            conn.close()
        reports = [reply.result().json() for reply in replies]
    pids = {report["pid"] for report in reports}
    assert len(pids) == 2, server.output()
    assert master not in pids
    # lifespan startup ran in the worker itself, not in the master before the fork
    assert all(report["startup_pid"] == report["pid"] for report in reports)
    assert sorted(line for _, line in held) == sorted(f"hold {pid}" for pid in pids)
    # a worker leaving runs lifespan shutdown (the adapter closes at interpreter exit)
    server.process.send_signal(signal.SIGTERM)
    shutdowns = {server.answer() for _ in range(3)}  # both workers, and the master
    assert shutdowns == {f"shutdown {pid}" for pid in {*pids, master}}
    assert server.process.wait(WAIT) == 0


def test_gunicorn_streams_both_ways_and_reports_errors(
    start_gunicorn: Any, backend: str
) -> None:
    server = start_gunicorn(backend)
    # 8 MiB download
    digest = hashlib.sha256()
    with httpx.stream("GET", f"{server.url}/download", timeout=WAIT) as response:
        for data in response.iter_raw():
            digest.update(data)
    expected = hashlib.sha256(
        b"".join(index.to_bytes(4, "big") * (CHUNK // 4) for index in range(128))
    )
    assert digest.hexdigest() == expected.hexdigest()
    # chunked upload, echoed: gunicorn sets wsgi.input_terminated
    pieces = [bytes([i]) * (5000 + i) for i in range(40)]
    echoed = httpx.post(f"{server.url}/echo", content=iter(pieces), timeout=WAIT)
    assert echoed.content == b"".join(pieces)
    # an app error before the response is a 500
    assert httpx.get(f"{server.url}/boom", timeout=WAIT).status_code == 500
    assert "boom in a gunicorn worker" in server.output()


def test_gunicorn_passes_events_on_one_by_one(
    start_gunicorn: Any, backend: str
) -> None:
    server = start_gunicorn(backend)
    with httpx.stream("GET", f"{server.url}/events", timeout=WAIT) as response:
        chunks = response.iter_raw()
        conn, line = server.accept()  # the app sent event 1 and waits
        first = b""
        while not first.endswith(b"\n\n"):
            first += next(chunks)
        with conn:
            conn.sendall(b"k")  # now it may send event 2
        rest = b"".join(chunks)
    assert line == "sent event 1"
    assert (first, rest) == (b"data: 1\n\n", b"data: 2\n\n")


def test_client_leaving_gunicorn_mid_stream_is_a_disconnect(
    start_gunicorn: Any, backend: str
) -> None:
    server = start_gunicorn(backend)
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: test\r\n\r\n")
        assert sock.recv(CHUNK)
    assert server.answer() == "disconnected"
