# Context-variable plumbing shared by the bridge (sync.py) and Local (local.py).
#
# The bridge moves a contextvars.Context between threads: sync_to_async runs the
# function in a copy of the caller's context on a worker thread, async_to_sync runs
# the coroutine in a copy on a loop thread, and afterwards the changes are copied
# back. This module holds the two pieces both sides must agree on: how changes are
# copied back, and how a context that the bridge moved on purpose is told apart from
# one a new thread merely inherited (Python 3.14's ``thread_inherit_context``).
from __future__ import annotations

import threading
from contextvars import Context, ContextVar, Token

#: True when Local values carry the thread that stored them and the bridge marks the
#: contexts it hands over (adopt). A thread can run a copy of another thread's context
#: without the bridge: Python 3.14's ``-X thread_inherit_context`` (on by default on
#: free-threaded builds), but also ``copy_context().run`` in a new thread on any build.
#: asgiref 3.13 hides the other thread's Local values there on every build (its
#: test_local.py checks it), so this is on everywhere; switching it off trades that for
#: a little speed in Local and the bridge.
TAG_THREADS: bool = True

#: The thread a context was last handed to by the bridge. A thread whose ident differs
#: from this value inherited the context without the bridge's say-so.
home_thread: ContextVar[int] = ContextVar("asgibridge_any.home_thread")

_get_ident = threading.get_ident
_MISSING = object()


def adopt() -> Token[int] | None:
    """Mark the current context as handed to the current thread by the bridge."""
    if not TAG_THREADS:
        return None
    return home_thread.set(_get_ident())


def unadopt(token: Token[int] | None) -> None:
    """Undo :func:`adopt` once the bridge takes the context back."""
    if token is not None:
        home_thread.reset(token)


def copy_back(context: Context) -> None:
    """
    Make every variable ``context`` holds visible in the current context.

    Only values that differ (by identity) are set, so an unchanged copy costs one
    lookup per variable. Variables that were deleted cannot be deleted here:
    contextvars has no way to unset a value without its token.
    """
    for var, value in context.items():
        if var.get(_MISSING) is not value:
            var.set(value)
    if TAG_THREADS:
        home_thread.set(_get_ident())
