"""Trace every bridge hop as a span, OpenTelemetry style, with a hop hook."""

from __future__ import annotations

import itertools
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

import anyio

import asgibridge_any
from asgibridge_any.sync import async_to_sync, sync_to_async


@dataclass
class Span:
    name: str
    span_id: int
    parent_id: int | None
    attributes: dict[str, str] = field(default_factory=dict)
    status: str = "UNSET"
    duration: float | None = None


#: The span the current code runs in: what a tracing library keeps in a ContextVar.
current_span: ContextVar[Span | None] = ContextVar("current_span", default=None)


class Tracer:
    """Opens a span at each hop's start and ends it at the hop's end."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.finished: list[Span] = []
        self.open: dict[int, tuple[Span, Token[Span | None]]] = {}

    def start_span(
        self, name: str, **attributes: str
    ) -> tuple[Span, Token[Span | None]]:
        parent = current_span.get()
        span = Span(name, next(self.ids), parent and parent.span_id, attributes)
        return span, current_span.set(span)

    def end_span(self, span: Span, token: Token[Span | None]) -> None:
        current_span.reset(token)
        self.finished.append(span)

    def on_hop(self, event: asgibridge_any.HopEvent) -> None:
        # The hook runs in the hop's thread and context: the span set here is the
        # current span of the function, and the parent of the hops it makes.
        if event.phase == "start":
            self.open[event.hop_id] = self.start_span(
                f"{event.direction} {event.function.__name__}",
                thread=event.thread.name,
                loop=event.backend,
            )
            return
        span, token = self.open.pop(event.hop_id)
        span.duration = event.duration
        error = type(event.error).__name__
        span.status = "OK" if event.outcome == "ok" else f"ERROR ({error})"
        self.end_span(span, token)


# The application: async code calls blocking code, which calls async code again.
def parse(text: str) -> int:
    return int(text)


async def fetch_rate(text: str) -> int:
    return await sync_to_async(parse)(text)


def load_report(texts: list[str]) -> list[int]:
    rates = []
    for text in texts:
        try:
            rates.append(async_to_sync(fetch_rate)(text))
        except ValueError:
            rates.append(0)
    return rates


async def handle_request(tracer: Tracer) -> None:
    span, token = tracer.start_span("GET /report", route="/report")
    await sync_to_async(load_report)(["7", "x"])
    span.status = "OK"
    tracer.end_span(span, token)


def show(spans: list[Span]) -> None:
    children: dict[int | None, list[Span]] = {}
    for span in sorted(spans, key=lambda span: span.span_id):
        children.setdefault(span.parent_id, []).append(span)

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, []):
            where = ", ".join(
                f"{key}={value}" for key, value in span.attributes.items()
            )
            print(f"{'  ' * depth}{span.name} [{where}] {span.status}")
            walk(span.span_id, depth + 1)

    walk(None, 0)


for backend in ("asyncio", "trio"):
    tracer = Tracer()
    asgibridge_any.add_hop_hook(tracer.on_hop)
    try:
        anyio.run(handle_request, tracer, backend=backend)
    finally:
        asgibridge_any.remove_hop_hook(tracer.on_hop)
    print(f"{backend}:")
    show(tracer.finished)
    assert all(span.duration is not None for span in tracer.finished[:-1])
