# The server side of case 8, run as its own process: a Flask hello app behind one WSGI->ASGI
# adapter, served by hypercorn on 127.0.0.1 with an asyncio or trio worker. A separate
# process keeps the load client's CPU use out of the server's interpreter (and its GIL).
#
#   python -m benchmarks._e2e_server --impl ours|asgiref|a2wsgi --worker asyncio|trio --port N
#
# Exits with status 3 after printing "NA <reason>" when the adapter cannot be imported.
from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import sys
from typing import Any

_ADAPTERS = {
    "ours": ("asgibridge_any.wsgi", "WsgiToAsgi"),
    "asgiref": ("asgiref.wsgi", "WsgiToAsgi"),
    "a2wsgi": ("a2wsgi", "WSGIMiddleware"),
}
NA_EXIT = 3


def _adapter(impl: str) -> Any:
    module, name = _ADAPTERS[impl]
    try:
        return getattr(importlib.import_module(module), name)
    except Exception as exc:
        print(f"NA {module}: {type(exc).__name__}: {exc}".splitlines()[0], flush=True)
        sys.exit(NA_EXIT)


def _flask_app() -> Any:
    from flask import Flask

    app = Flask("bench_hello")

    @app.route("/")
    def hello() -> str:
        return "Hello, World!"

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=sorted(_ADAPTERS), required=True)
    parser.add_argument("--worker", choices=("asyncio", "trio"), required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    adapter = _adapter(args.impl)
    asgi_app = adapter(_flask_app())

    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    # the load client keeps its 50 connections for the whole sample
    config.keep_alive_max_requests = 10**9
    config.backlog = 256

    if args.worker == "asyncio":
        from hypercorn.asyncio import serve as serve_asyncio

        asyncio.run(serve_asyncio(asgi_app, config, mode="asgi"))
    else:
        import trio
        from hypercorn.trio import serve as serve_trio

        trio.run(functools.partial(serve_trio, asgi_app, config, mode="asgi"))


if __name__ == "__main__":
    main()
