# Per-loop "run this callback on the event loop soon" helpers for the WSGI adapter.
#
# A WSGI worker thread wakes the loop side of its request many times (a chunk is ready to
# send, buffer space freed up).  anyio.from_thread.run_sync would make each wake-up a full
# round trip: the thread would wait for the loop to run the callback.  The native
# fire-and-forget primitives of each loop (asyncio's call_soon_threadsafe, trio's
# TrioToken.run_sync_soon) let the thread carry on at once.  They are picked once per
# request, on the loop thread, so every other WSGI module stays loop-neutral.
from __future__ import annotations

from collections.abc import Callable

import sniffio

#: Schedule a no-argument callback to run on the captured event loop; callable from any thread.
Waker = Callable[[Callable[[], object]], object]


def current_waker() -> tuple[str, Waker]:
    """
    Return the running async library and a thread-safe way to run callbacks on its loop.

    Call it on the loop thread; the returned function may then be called from any thread.
    The callbacks must not raise: on trio an exception in one would crash the run.

    :returns: ``"asyncio"`` or ``"trio"``, and a function taking one no-argument callback
    :raises RuntimeError: if the running async library is neither asyncio nor trio
    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        import asyncio

        return library, asyncio.get_running_loop().call_soon_threadsafe
    if library == "trio":
        import trio

        return library, trio.lowlevel.current_trio_token().run_sync_soon
    raise RuntimeError(
        f"WsgiToAsgi runs under asyncio or trio, not {library!r}; "
        "serve the application from an asyncio or trio server"
    )


def run_as_library(library: str, callback: Callable[[], object]) -> None:
    """
    Run ``callback`` in a loop callback as if it ran in a task of ``library``.

    A callback scheduled by a :data:`Waker` runs outside any task, where sniffio (and so
    anyio) cannot tell which library runs the loop; sniffio's context variable says it.

    :param library: what :func:`current_waker` returned
    :param callback: the function to run, typically one that starts anyio tasks
    """
    token = sniffio.current_async_library_cvar.set(library)
    try:
        callback()
    finally:
        sniffio.current_async_library_cvar.reset(token)
