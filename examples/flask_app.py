"""
A Flask application served by any ASGI server through ``asgibridge_any.wsgi.WsgiToAsgi``.

It has a page (``/``), a streamed download (``/stream?lines=N``, sent as it is
generated) and an upload endpoint (``POST /upload``, read as it arrives, answering the
size and SHA-256 of the body).  ``application`` is the ASGI application to serve.

Run it from the repository root with any of:

.. code-block:: sh

    .venv/bin/hypercorn examples/flask_app:application                      # asyncio worker
    .venv/bin/hypercorn --worker-class trio examples/flask_app:application  # trio worker
    .venv/bin/uvicorn --app-dir examples flask_app:application

then try it:

.. code-block:: sh

    curl http://127.0.0.1:8000/
    curl http://127.0.0.1:8000/stream?lines=5
    curl --data-binary @README.md http://127.0.0.1:8000/upload

``python examples/wsgi_demo.py`` (part of ``make demo``) starts it on hypercorn's trio
worker and makes those requests itself.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING

import flask

from asgibridge_any.wsgi import WsgiToAsgi

if TYPE_CHECKING:
    from collections.abc import Iterator

app = flask.Flask(__name__)

PAGE = """<!doctype html>
<title>asgibridge_any + Flask</title>
<h1>Hello from Flask on {thread}</h1>
<p>Served by an ASGI server through WsgiToAsgi.
<ul>
  <li><a href="stream?lines=5">a streamed download</a>
  <li><code>curl --data-binary @file {url}upload</code> to upload a file
</ul>
"""


@app.get("/")
def page() -> str:
    """Show which worker thread runs the WSGI application."""
    return PAGE.format(
        thread=threading.current_thread().name, url=flask.request.url_root
    )


@app.get("/stream")
def stream() -> flask.Response:
    """Send ``lines`` lines, each as its own chunk, as they are generated."""
    lines = min(int(flask.request.args.get("lines", 10)), 100_000)

    def generate() -> Iterator[str]:
        for number in range(1, lines + 1):
            yield f"line {number} of {lines}\n"

    return flask.Response(generate(), mimetype="text/plain")


@app.post("/upload")
def upload() -> dict[str, object]:
    """Hash the request body while it arrives, without holding it in memory."""
    digest = hashlib.sha256()
    size = 0
    while chunk := flask.request.stream.read(64 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


#: The ASGI application to hand to hypercorn or uvicorn.
application = WsgiToAsgi(app)
