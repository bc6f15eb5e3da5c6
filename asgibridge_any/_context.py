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
import weakref
from contextvars import Context, ContextVar, Token

#: True when Local values carry the thread that stored them and the bridge marks the
#: contexts it hands over (adopt). A thread can run a copy of another thread's context
#: without the bridge: Python 3.14's ``-X thread_inherit_context`` (on by default on
#: free-threaded builds), but also ``copy_context().run`` in a new thread on any build.
#: asgiref 3.13 hides the other thread's Local values there on every build (its
#: test_local.py checks it), so this is on everywhere; switching it off trades that for
#: a little speed in Local and the bridge.
TAG_THREADS: bool = True


class ThreadId:
    """
    Name a thread for Local values and hand-over marks.

    Unlike :func:`threading.get_ident`, whose numbers are reused as soon as a thread
    exits, a ThreadId stays unique for as long as anything refers to it, so a value
    stored by a finished thread never becomes visible to a new one.
    """

    __slots__ = ("_alive", "ident")

    ident: int
    _alive: weakref.ref[_Alive]

    def __repr__(self) -> str:
        state = "alive" if self._alive() is not None else "finished"
        return f"<ThreadId of thread {self.ident} ({state})>"


class _Alive:
    # Held only by the thread's own threading.local dict: freed when the thread exits.
    __slots__ = ("__weakref__",)


#: Per thread: ``id``, the thread's ThreadId, and ``alive``, its _Alive marker.
this_thread = threading.local()

# ThreadId by ident, for the threads still running (see adopt's int sources).
_by_ident: dict[int, ThreadId] = {}
_get_ident = threading.get_ident
_MISSING = object()


def thread_id() -> ThreadId:
    """Return the current thread's :class:`ThreadId`."""
    try:
        me: ThreadId = this_thread.id
    except AttributeError:
        return _new_thread_id()
    return me


def _new_thread_id() -> ThreadId:
    me = ThreadId()
    me.ident = ident = _get_ident()
    alive = this_thread.alive = _Alive()
    # The callback refers to the registry itself (module globals may be gone when the
    # main thread's dict is cleared at shutdown) and to the ident only: a reference to
    # ``me`` would make a cycle.
    registry = _by_ident

    def finished(marker: weakref.ref[_Alive]) -> None:
        current = registry.get(ident)
        if current is not None and current._alive is marker:
            del registry[ident]

    me._alive = weakref.ref(alive, finished)
    this_thread.id = _by_ident[ident] = me
    return me


#: Where the bridge handed the current context, as ``(thread, trusted)``: in ``thread``
#: the context shows, besides that thread's own Local values, the values stored by the
#: threads in ``trusted`` (``None``: by every thread). Any other thread running the
#: context sees only its own values. The bridge gives each hand-over the values its
#: caller could see (adopt), and gives the caller back what the callee could see
#: (copy_back), so a thread that merely inherited a context never opens it up by
#: passing it through the bridge.
home_thread: ContextVar[tuple[ThreadId, frozenset[ThreadId] | None]] = ContextVar(
    "asgibridge_any.home_thread"
)


def sees(owner: ThreadId | None) -> bool:
    """Tell whether this thread may see a Local value stored by thread ``owner``."""
    if not TAG_THREADS:
        return True
    me = thread_id()
    if owner is me:
        return True
    home = home_thread.get(None)
    return home is not None and home[0] is me and (home[1] is None or owner in home[1])


def _trusted_by(thread: ThreadId) -> frozenset[ThreadId] | None:
    # The threads (besides itself) whose values ``thread`` sees in the current context.
    home = home_thread.get(None)
    if home is None or home[0] is not thread:
        return frozenset((thread,))
    if home[1] is None:
        return None
    return home[1] | {thread}


def adopt(
    source: ThreadId | int | None = None,
) -> Token[tuple[ThreadId, frozenset[ThreadId] | None]] | None:
    """
    Mark the current context as handed to the current thread by the bridge.

    Call it in the callee thread, in the context the bridge handed over.

    :param source: the caller's thread (its :func:`thread_id`, or its
        :func:`threading.get_ident` while it runs); the callee then sees exactly the
        Local values the caller saw. Without it the callee sees every value in the
        context, also those the caller was not meant to see.
    :returns: a token for :func:`unadopt`, or None when values carry no thread
    """
    if not TAG_THREADS:
        return None
    if source is None:
        trusted = None
    else:
        if not isinstance(source, ThreadId):
            source = _by_ident.get(source)
        # A caller without a ThreadId has stored no value and was handed nothing.
        trusted = frozenset() if source is None else _trusted_by(source)
    return home_thread.set((thread_id(), trusted))


def unadopt(token: Token[tuple[ThreadId, frozenset[ThreadId] | None]] | None) -> None:
    """
    Accept the end of a hand-over; the mark stays in the context on purpose.

    :func:`copy_back` reads the mark to learn which values the callee could see, and a
    context marked for a thread shows nothing extra in any other thread.
    """


def copy_back(context: Context) -> None:
    """
    Make every variable ``context`` holds visible in the current context.

    Only values that differ (by identity) are set, so an unchanged copy costs one
    lookup per variable. Variables that were deleted cannot be deleted here:
    contextvars has no way to unset a value without its token. The current thread
    then sees the Local values the callee saw (see :data:`home_thread`).
    """
    for var, value in context.items():
        if var.get(_MISSING) is not value:
            var.set(value)
    if TAG_THREADS:
        callee = context.get(home_thread)
        if callee is None or callee[1] is None:
            trusted = None
        else:
            trusted = callee[1] | {callee[0]}
        home_thread.set((thread_id(), trusted))
