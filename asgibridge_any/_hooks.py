# Hop hooks: observers called at the start and end of every bridge hop.
#
# The bridge calls into this module only when ``hooks`` is a non-empty tuple (one
# truthiness check per hop otherwise), so tracing costs nothing until someone asks
# for it. Hooks run in the thread of the hop's callee, inside the call's context
# variables: a span a hook opens at "start" is the current span for the function.
from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._calls import CoroutineCall, ThreadCall

logger = logging.getLogger("asgibridge_any")

#: The hooks in the order they were added; replaced, never mutated, so the bridge
#: reads a consistent tuple without a lock.
hooks: tuple[Callable[[HopEvent], object], ...] = ()
_lock = threading.Lock()
_ids = itertools.count(1)
_monotonic = time.monotonic


# Not frozen: a frozen dataclass takes four times as long to build, and every hop
# builds two. Hooks share each event and treat it as read-only.
@dataclass(slots=True)
class HopEvent:
    """
    One side of a bridge hop, as a hop hook sees it (shared by all hooks: read-only).

    A hop is one ``sync_to_async`` call (``direction="sync_to_async"``: the function
    runs in a thread) or one ``async_to_sync`` call (``"async_to_sync"``: the
    coroutine runs as a task on an event loop). Each hop gives its hooks two events
    with the same ``hop_id``: ``phase="start"`` just before the function or
    coroutine runs, and ``phase="end"`` just after, with ``duration`` and
    ``outcome`` set. Hops made inside another hop start after it and end before
    it.

    :ivar phase: ``"start"`` or ``"end"``.
    :ivar direction: ``"sync_to_async"`` (loop to thread) or ``"async_to_sync"`` (thread
        to loop).
    :ivar function: The sync function or async callable the hop runs.
    :ivar thread: The thread running it: a worker or sensitive thread, or the loop's
        thread.
    :ivar backend: The event loop on the async side of the hop: ``"asyncio"`` or
        ``"trio"``.
    :ivar hop_id: Numbers the hops of the process; the start and end events of a hop
        share it.
    :ivar duration: Seconds the function or coroutine ran (``None`` at ``"start"``).
    :ivar outcome: ``"ok"``, ``"error"`` (it raised) or ``"cancelled"`` (its task was
        cancelled); ``None`` at ``"start"``.
    :ivar error: The exception it raised, for ``"error"`` and ``"cancelled"``.
    """

    phase: Literal["start", "end"]
    direction: Literal["sync_to_async", "async_to_sync"]
    function: Callable[..., Any]
    thread: threading.Thread
    backend: str
    hop_id: int
    duration: float | None = None
    outcome: Literal["ok", "error", "cancelled"] | None = None
    error: BaseException | None = None


def add_hop_hook(hook: Callable[[HopEvent], object]) -> None:
    """
    Call ``hook(event)`` at the start and at the end of every bridge hop.

    ``event`` is a :class:`HopEvent`. The hook runs in the hop's callee thread (the
    thread running the sync function, or the event loop's thread for a coroutine),
    inside the call's context variables, so it must be quick and thread-safe. An
    exception it raises is logged on the ``"asgibridge_any"`` logger and otherwise
    ignored: a hook never breaks a call. Adding a hook twice calls it twice.

    :param hook: a callable taking one :class:`HopEvent`
    :raises TypeError: if ``hook`` is not callable
    """
    global hooks
    if not callable(hook):
        raise TypeError(
            f"add_hop_hook() needs a callable taking a HopEvent, got {hook!r}"
        )
    with _lock:
        hooks = (*hooks, hook)


def remove_hop_hook(hook: Callable[[HopEvent], object]) -> None:
    """
    Stop calling ``hook`` (added with :func:`add_hop_hook`; once per time added).

    Hops already running may still call it once more.

    :raises ValueError: if ``hook`` is not registered
    """
    global hooks
    with _lock:
        current = list(hooks)
        try:
            current.remove(hook)
        except ValueError:
            raise ValueError(
                f"remove_hop_hook(): {hook!r} is not a registered hop hook"
            ) from None
        hooks = tuple(current)


def _emit(event: HopEvent) -> None:
    for hook in hooks:
        try:
            hook(event)
        except Exception:
            logger.exception("hop hook %r failed on %s", hook, event)


def run_sync_hop(call: ThreadCall) -> Any:
    """In the call's thread and context: run its function between two events."""
    start = HopEvent(
        "start",
        "sync_to_async",
        call.func,
        threading.current_thread(),
        call.handle.name,
        next(_ids),
    )
    _emit(start)
    began = _monotonic()
    try:
        result = call.func(*call.args, **call.kwargs)
    except BaseException as error:
        _end(start, began, "error", error)
        raise
    _end(start, began, "ok", None)
    return result


async def run_async_hop(
    call: CoroutineCall, function: Callable[..., Any], args: Any, kwargs: Any
) -> Any:
    """In the task on the loop: await the coroutine between two events."""
    handle = call.handle
    start = HopEvent(
        "start",
        "async_to_sync",
        function,
        threading.current_thread(),
        handle.name if handle is not None else "asyncio",
        next(_ids),
    )
    _emit(start)
    began = _monotonic()
    try:
        result = await function(*args, **kwargs)
    except BaseException as error:
        import anyio

        cancelled = isinstance(error, anyio.get_cancelled_exc_class())
        _end(start, began, "cancelled" if cancelled else "error", error)
        raise
    _end(start, began, "ok", None)
    return result


def _end(
    start: HopEvent,
    began: float,
    outcome: Literal["ok", "error", "cancelled"],
    error: BaseException | None,
) -> None:
    _emit(
        HopEvent(
            "end",
            start.direction,
            start.function,
            start.thread,
            start.backend,
            start.hop_id,
            _monotonic() - began,
            outcome,
            error,
        )
    )
