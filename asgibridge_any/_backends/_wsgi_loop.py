# Per-loop helpers for the WSGI adapter: "run this callback on the event loop soon", and
# one ticker per loop that checks on every running request a few times a second.
#
# A WSGI worker thread wakes the loop side of its request many times (a chunk is ready to
# send, buffer space freed up).  anyio.from_thread.run_sync would make each wake-up a full
# round trip: the thread would wait for the loop to run the callback.  The native
# fire-and-forget primitives of each loop (asyncio's call_soon_threadsafe, trio's
# TrioToken.run_sync_soon) let the thread carry on at once.
#
# The ticker costs a small request one dict insert and one delete: a timer per request
# (or a task sleeping in a cancel scope) would cost a heap push and a cancellation on the
# hot path.  asyncio's call_later rearms it while requests run; on trio one system task
# per run sleeps between ticks.  Everything loop-specific is picked once per request, on
# the loop thread, so every other WSGI module stays loop-neutral.
from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

import sniffio

if TYPE_CHECKING:
    import trio

#: Schedule a no-argument callback to run on the captured event loop; callable from any thread.
Waker = Callable[[Callable[[], object]], object]


class Ticking(Protocol):
    """Something the ticker calls, on the loop, every tick while it is registered."""

    def tick(self) -> None:
        """Check on the request; must not raise (on trio it would crash the run)."""


class Ticker:
    """
    Call :meth:`Ticking.tick` of every registered object every ``period`` seconds.

    :meth:`add` and :meth:`discard` run on the loop thread.  An object added just
    before a tick gets its first tick at once: count two ticks for a full period.
    """

    def __init__(self, period: float, arm: Callable[[Ticker], None]) -> None:
        self.period = period
        self._live: dict[Ticking, None] = {}
        self._arm = arm
        self._armed = False

    def add(self, item: Ticking) -> None:
        """Start ticking ``item``."""
        self._live[item] = None
        if not self._armed:
            self._armed = True
            self._arm(self)

    def discard(self, item: Ticking) -> None:
        """Stop ticking ``item`` (no error if it is not registered)."""
        self._live.pop(item, None)

    def fire(self) -> bool:
        """Tick every registered object; return whether to tick again."""
        for item in list(self._live):
            item.tick()
        self._armed = bool(self._live)
        return self._armed


class LoopHooks(NamedTuple):
    """What the WSGI adapter needs from the running event loop."""

    #: ``"asyncio"`` or ``"trio"``
    library: str
    wake: Waker
    ticker: Ticker


#: Seconds between two ticks.
TICK = 0.4
# The ticker of each loop (asyncio loop, trio run token), made on first use: a lookup
# here is cheaper than anyio's RunVar on the hot path.  Weak keys, and nothing in a
# ticker refers to its loop while it is idle: a closed loop takes its entry along.
_tickers: weakref.WeakKeyDictionary[object, Ticker] = weakref.WeakKeyDictionary()


def current_loop() -> LoopHooks:
    """
    Return the running async library, a thread-safe waker and the ticker of its loop.

    Call it on the loop thread.  The callbacks must not raise: on trio an exception in
    one would crash the run.

    :raises RuntimeError: if the running async library is neither asyncio nor trio
    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        import asyncio

        loop = asyncio.get_running_loop()
        ticker = _tickers.get(loop)
        if ticker is None:
            ticker = _tickers[loop] = Ticker(TICK, _asyncio_arm)
        return LoopHooks(library, loop.call_soon_threadsafe, ticker)
    if library == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()
        ticker = _tickers.get(token)
        if ticker is None:
            ticker = _tickers[token] = Ticker(TICK, _TrioArm())
        return LoopHooks(library, token.run_sync_soon, ticker)
    raise RuntimeError(
        f"WsgiToAsgi runs under asyncio or trio, not {library!r}; "
        "serve the application from an asyncio or trio server"
    )


def _asyncio_arm(ticker: Ticker) -> None:
    import asyncio

    loop = asyncio.get_running_loop()

    def fire() -> None:
        if ticker.fire():
            loop.call_later(ticker.period, fire)

    loop.call_later(ticker.period, fire)


class _TrioArm:
    # One system task per run, started on first use, sleeps between ticks while requests
    # run and waits for the next request otherwise.

    def __init__(self) -> None:
        self._wakeup: trio.Event | None = None

    def __call__(self, ticker: Ticker) -> None:
        import trio

        if self._wakeup is None:
            self._wakeup = trio.Event()
            trio.lowlevel.spawn_system_task(
                self._serve, ticker, name="asgibridge_any WSGI ticker"
            )
        self._wakeup.set()

    async def _serve(self, ticker: Ticker) -> None:
        import trio

        while True:
            assert self._wakeup is not None
            await self._wakeup.wait()
            await trio.sleep(ticker.period)
            if not ticker.fire():
                self._wakeup = trio.Event()


def run_as_library(library: str, callback: Callable[[], object]) -> None:
    """
    Run ``callback`` in a loop callback as if it ran in a task of ``library``.

    A callback scheduled by a :data:`Waker` runs outside any task, where sniffio (and so
    anyio) cannot tell which library runs the loop; sniffio's context variable says it.

    :param library: what :func:`current_loop` returned
    :param callback: the function to run, typically one that starts anyio tasks
    """
    token = sniffio.current_async_library_cvar.set(library)
    try:
        callback()
    finally:
        sniffio.current_async_library_cvar.reset(token)
