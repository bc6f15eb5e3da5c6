# The server side of case 8, run as its own process: a Flask hello app behind one WSGI->ASGI
# adapter, served by hypercorn on 127.0.0.1 with an asyncio or trio worker. A separate
# process keeps the load client's CPU use out of the server's interpreter (and its GIL).
#
#   python -m benchmarks._e2e_server --impl ours|asgiref|a2wsgi|hypercorn --worker asyncio|trio --port N
#
# Exits with status 3 after printing "NA <reason>" when the adapter cannot be imported.
from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import os
import sys
from typing import Any

_ADAPTERS = {
    # hypercorn's own WSGI support (mode="wsgi"): the one peer that also runs on trio
    "hypercorn": ("hypercorn", "Config"),
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
    cpus = os.environ.get("ASGIBRIDGE_BENCH_CPUS")
    if cpus:
        # the benchmark process pinned itself (--pin); the server gets every CPU back
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})

    adapter = _adapter(args.impl)

    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    # the load client keeps its 50 connections for the whole sample
    config.keep_alive_max_requests = 10**9
    config.backlog = 256

    if args.impl == "hypercorn":
        app = _hypercorn_wsgi(_flask_app(), config.wsgi_max_body_size)
    else:
        from hypercorn.app_wrappers import ASGIWrapper

        app = ASGIWrapper(adapter(_flask_app()))

    if args.worker == "asyncio":
        from hypercorn.asyncio.run import worker_serve as serve_asyncio

        asyncio.run(serve_asyncio(app, config))
    else:
        import trio
        from hypercorn.trio.run import worker_serve as serve_trio

        trio.run(functools.partial(serve_trio, app, config))


def _hypercorn_wsgi(flask_app: Any, max_body_size: int) -> Any:
    # hypercorn's own WSGI wrapper returns at once on the lifespan scope, and its trio
    # worker (0.18) then fails at startup with ClosedResourceError; answering the two
    # lifespan events makes it start on both workers without changing how HTTP is served.
    from hypercorn.app_wrappers import WSGIWrapper

    class Wrapper(WSGIWrapper):
        async def __call__(
            self, scope: Any, receive: Any, send: Any, sync_spawn: Any, call_soon: Any
        ) -> None:
            if scope["type"] != "lifespan":
                return await super().__call__(
                    scope, receive, send, sync_spawn, call_soon
                )
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    return Wrapper(flask_app, max_body_size)


if __name__ == "__main__":
    main()
