"""
A Flask application that exposes ``asgibridge_any.stats()`` on ``/metrics``.

The numbers are written in the Prometheus text exposition format by hand (no client
library): one gauge per number of the snapshot, named after where it sits in it
(``asgibridge_any_sensitive_queued`` is ``stats().sensitive.queued``), and the
function holding the busiest thread-sensitive thread as a label of
``asgibridge_any_sensitive_holder_info``. Point a Prometheus scrape job at it.

Run it from the repository root with:

.. code-block:: sh

    .venv/bin/hypercorn examples/metrics_app:application
    curl http://127.0.0.1:8000/metrics

``python examples/metrics_demo.py`` (part of ``make demo``) starts it on hypercorn
and fetches ``/metrics`` once.
"""

from __future__ import annotations

import dataclasses
import math

import anyio
import flask

import asgibridge_any
from asgibridge_any.wsgi import WsgiToAsgi

app = flask.Flask(__name__)

#: Numbers whose None means "no limit".
UNBOUNDED_WHEN_NONE = {"context_thread_limit"}
#: Prometheus' content type for the text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def prometheus_text(
    snapshot: asgibridge_any.Stats, prefix: str = "asgibridge_any"
) -> str:
    """Render a stats() snapshot as Prometheus gauges, one per number."""
    lines: list[str] = []
    for section in dataclasses.fields(snapshot):
        part = getattr(snapshot, section.name)
        for field in dataclasses.fields(part):
            value = getattr(part, field.name)
            name = f"{prefix}_{section.name}_{field.name}"
            if isinstance(value, str):
                lines += [
                    f"# HELP {name}_info stats().{section.name}.{field.name} as a label",
                    f"# TYPE {name}_info gauge",
                    f'{name}_info{{function="{_escape(value)}"}} 1',
                ]
                continue
            if value is None:
                if field.name not in UNBOUNDED_WHEN_NONE:
                    continue  # no holder: no info line
                value = math.inf  # no cap set: Prometheus' +Inf
            lines += [
                f"# HELP {name} stats().{section.name}.{field.name}",
                f"# TYPE {name} gauge",
                f"{name} {_number(value)}",
            ]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _escape(label: str) -> str:
    return label.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


@app.get("/")
def page() -> str:
    """A page, so that there is traffic to count."""
    return "Hello from Flask; the bridge's numbers are on /metrics\n"


@app.get("/metrics")
def metrics() -> flask.Response:
    """The current stats() snapshot in the Prometheus text format."""
    return flask.Response(
        prometheus_text(asgibridge_any.stats()), content_type=CONTENT_TYPE
    )


#: The ASGI application to hand to hypercorn or uvicorn. A limiter of its own makes
#: its requests show in stats().wsgi (in flight, queued, capacity).
application = WsgiToAsgi(app, limiter=anyio.CapacityLimiter(20))
