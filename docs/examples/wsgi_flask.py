"""
A Flask application served through WsgiToAsgi.

Serve ``app`` with hypercorn or uvicorn; run this file to drive it in-process the way
a server does, under asyncio and under trio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import sniffio
from flask import Flask, Response, request

from asgibridge_any.testing import ApplicationCommunicator
from asgibridge_any.wsgi import WsgiToAsgi

if TYPE_CHECKING:
    from collections.abc import Iterator

flask_app = Flask(__name__)


@flask_app.get("/")
def index() -> str:
    return "Hello from Flask"


@flask_app.get("/report")
def report() -> Response:
    def rows() -> Iterator[str]:  # streamed: each chunk leaves as it is produced
        for number in range(3):
            yield f"row {number}\n"

    return Response(rows(), mimetype="text/plain")


@flask_app.post("/upload")
def upload() -> str:
    size = 0
    while chunk := request.stream.read(4):  # reads the body as it arrives
        size += len(chunk)
    return f"received {size} bytes"


# The ASGI application to give to hypercorn or uvicorn.
app = WsgiToAsgi(flask_app)


async def call(path: str, method: str = "GET", body: list[bytes] | None = None) -> None:
    headers = [(b"host", b"example.org")] * (200 if path == "/dup" else 1)
    if body:
        # HTTP/1.1: without Content-Length (or chunked Transfer-Encoding) there is no body.
        headers.append((b"content-length", str(sum(map(len, body))).encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("example.org", 80),
    }
    async with ApplicationCommunicator(app, scope) as comm:
        parts = body or [b""]
        for number, part in enumerate(parts):
            more = number < len(parts) - 1
            await comm.send_input(
                {"type": "http.request", "body": part, "more_body": more}
            )
        start = await comm.receive_output()
        chunks = []
        while True:
            message = await comm.receive_output()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
    body_text = b"".join(chunks).decode().replace("\n", "|")
    print(
        f"  {method} {path}: {start['status']} {body_text!r} in {len(chunks)} message(s)"
    )


async def main() -> None:
    print("under", sniffio.current_async_library())
    await call("/")
    await call("/report")
    await call("/upload", "POST", [b"hello ", b"world"])
    await call("/dup")  # 200 copies of one header: refused before Flask runs


if __name__ == "__main__":
    anyio.run(main, backend="asyncio")
    anyio.run(main, backend="trio")
