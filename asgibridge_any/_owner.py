# Which async_to_sync call owns the code running on one of the package's loop threads.
#
# A loop thread may serve several calls at once (two threads in one
# AsyncSingleThreadContext), so when a call ends, only what *it* started may be
# cancelled or closed. The owner context variable is set in the call's task; tasks
# and async generators started below it inherit it. Async generators are recorded by
# wrapping the loop's own generator hooks (sys.set_asyncgen_hooks is per thread), so
# no private loop attribute is read, and it works the same on asyncio and trio.
from __future__ import annotations

import contextlib
import sys
import weakref
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from ._calls import CoroutineCall

#: The async_to_sync call the current code runs for, on a loop thread of the package.
owner: ContextVar[CoroutineCall | None] = ContextVar(
    "asgibridge_any.owner", default=None
)

#: The async generators each call started and may have left open.
owned_generators: dict[CoroutineCall, weakref.WeakSet[AsyncGenerator[Any, Any]]] = {}
#: The generators a call dropped unfinished (garbage-collected during the call):
#: kept here, instead of being finalized by the loop later, to be closed before the
#: call returns.
dropped_generators: dict[CoroutineCall, list[AsyncGenerator[Any, Any]]] = {}


def track_generators() -> None:
    """
    Record, per owning call, the async generators first iterated in this thread.

    Call it on a loop thread once the loop has installed its own hooks. Generators
    that belong to no call keep the loop's handling.
    """
    hooks = sys.get_asyncgen_hooks()
    loop_firstiter = hooks.firstiter
    loop_finalizer = hooks.finalizer

    def firstiter(agen: AsyncGenerator[Any, Any]) -> None:
        call = owner.get()
        if call is not None:
            generators = owned_generators.get(call)
            if generators is None:
                generators = owned_generators[call] = weakref.WeakSet()
            generators.add(agen)
        if loop_firstiter is not None:
            loop_firstiter(agen)

    def finalizer(agen: AsyncGenerator[Any, Any]) -> None:
        # Called where the last reference went, so owner names the call that
        # dropped it (its weak entry above is already gone).
        call = owner.get()
        if call is not None and call in owned_generators:
            dropped_generators.setdefault(call, []).append(agen)
        elif loop_finalizer is not None:
            loop_finalizer(agen)

    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)


async def close_generators(call: CoroutineCall) -> None:
    """Close the generators ``call`` left open (suspended at a ``yield``)."""
    generators = owned_generators.pop(call, None)
    while True:
        dropped = dropped_generators.pop(call, None)
        pending: list[Any] = list(generators or ()) + (dropped or [])
        generators = None
        if not pending:
            return
        for agen in pending:
            if agen.ag_frame is not None and not agen.ag_running:
                # The generator's own error on closing is not the call's outcome.
                with contextlib.suppress(BaseException):
                    await agen.aclose()
