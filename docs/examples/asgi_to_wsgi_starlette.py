"""A Starlette application served by a WSGI server, through AsgiToWsgi."""

from __future__ import annotations

import socketserver
import threading
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer, make_server

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from asgibridge_any.wsgi import AsgiToWsgi

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    print("lifespan startup")
    yield {"greeting": "Hello"}  # every request sees it as request.state.greeting
    print("lifespan shutdown")


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{request.state.greeting} from Starlette")


async def countdown(request: Request) -> StreamingResponse:
    async def numbers() -> AsyncIterator[str]:
        for number in (3, 2, 1):
            yield f"{number}\n"  # each line leaves as soon as it is yielded

    return StreamingResponse(numbers(), media_type="text/plain")


app = Starlette(
    routes=[Route("/", hello), Route("/countdown", countdown)], lifespan=lifespan
)

# A PEP 3333 application: hand it to gunicorn, waitress, mod_wsgi, uWSGI...
application = AsgiToWsgi(app, backend="trio")


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """The standard library's WSGI server, one thread per request."""


def main() -> None:
    server = make_server("127.0.0.1", 0, application, server_class=ThreadingWSGIServer)
    url = f"http://127.0.0.1:{server.server_port}"
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    try:
        page = httpx.get(url + "/")
        print(f"GET /          -> {page.status_code} {page.text}")
        with httpx.stream("GET", url + "/countdown") as response:
            lines = [line for line in response.iter_lines() if line]
        print(f"GET /countdown -> {' '.join(lines)}")
    finally:
        server.shutdown()
        serving.join()
        server.server_close()
        application.close()  # runs the lifespan shutdown, stops the loop thread


if __name__ == "__main__":
    main()
