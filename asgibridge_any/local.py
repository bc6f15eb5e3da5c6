"""A namespace whose attributes are local to the current task or thread."""

from __future__ import annotations

__all__ = ("Local",)

import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NoReturn, SupportsIndex, final

from ._backends import loop_runs_here
from ._context import sees as _sees
from ._context import this_thread as _this_thread
from ._context import thread_id as _thread_id
from ._local_storage import (
    DELETED,
    GONE,
    Cell,
    forget,
    missing,
    refuse_name,
    task_values,
)

if TYPE_CHECKING:
    from collections.abc import Callable

_object_getattribute = object.__getattribute__
_object_setattr = object.__setattr__


@final
class Local:
    """
    Hold attributes that are local to the current task or thread.

    A namespace like :class:`threading.local` that also follows async code.

    By default the attributes live in context variables. In async code a value set in a
    task is seen by the code it awaits, by the tasks it spawns (asyncio ``create_task``
    and ``gather``, trio nurseries, anyio task groups) and by sync code it calls through
    :func:`~asgibridge_any.sync.sync_to_async`, but not by sibling or parent tasks. In
    a sync thread the attributes are per thread, like :class:`threading.local`, and are
    shared both ways with async code the thread runs through
    :func:`~asgibridge_any.sync.async_to_sync`. A new thread never sees another
    thread's values, also when Python 3.14 starts threads in a copy of their parent's
    context. Only the bridge carries values to another thread: ``asyncio.to_thread``
    and ``anyio.to_thread.run_sync`` copy the context too, but there the values stay
    hidden, as with asgiref 3.13. Deleting an attribute in one context leaves it set
    in every other.

    With ``thread_critical=True`` the attributes are strictly per thread, and per task in
    a thread that runs an asyncio or trio event loop; they never pass through the
    bridge. Use it for objects bound to one thread, such as database connections.

    Both kinds are safe to use from many threads at once and create no reference
    cycles: a stored value is freed by reference counting alone once the Local goes
    away, and goes together with the task or thread that stored it.

    :param thread_critical: keep attributes strictly per thread (and per task)
    :raises AttributeError: reading or deleting an attribute that is not set here, or
        setting a name that belongs to the Local object itself (such as ``_data``)
    :raises TypeError: on an attempt to subclass ``Local``
    """

    # _data: for the default kind, a dict of attribute name -> ContextVar[Cell]; for the
    # thread-critical kind, a threading.local whose per-thread dict holds the values.
    __slots__ = ("__weakref__", "_data")

    def __new__(cls, thread_critical: bool = False) -> Local:
        if cls is not Local:
            raise TypeError(
                "asgibridge_any.local.Local cannot be subclassed; "
                "keep a Local as an attribute of your class instead"
            )
        return _object_new(_ThreadCriticalLocal if thread_critical else _DefaultLocal)

    def __init__(self, thread_critical: bool = False) -> None:
        pass  # the concrete kinds below set up their storage

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(
            "a Local cannot be copied or pickled: its values belong to the tasks and "
            "threads that stored them; create a new Local instead"
        )

    if TYPE_CHECKING:  # at run time only the concrete kinds define attribute access

        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...
        def __delattr__(self, name: str) -> None: ...


_object_new = object.__new__
_data_of: Callable[[Local], Any] = Local.__dict__["_data"].__get__

_IN_CONTEXT = "context"
_IN_THREAD = "thread or task"


def _counts_here(cell: Cell) -> bool:
    # The slow path of a lookup, for a cell stored by another thread (or the deleted
    # marker, whose owner is no thread): visible only where the bridge handed the
    # context over from a thread that saw it (see _context.home_thread).
    return cell.value is not DELETED and _sees(cell.owner)


def _not_set(local: Local, name: str, where: str) -> Any:
    # A name the Local does not hold may still be one of the object's own (__class__).
    try:
        return _object_getattribute(local, name)
    except AttributeError:
        raise missing(local, name, where) from None


class _DefaultLocal(Local):  # type: ignore[misc]  # the kind Local() returns by default
    """A Local whose attributes live in context variables, one per attribute name."""

    __slots__ = ()

    def __init__(self, thread_critical: bool = False) -> None:
        _object_setattr(self, "_data", {})

    # The three methods below are the hot path: one dict lookup and one ContextVar call
    # each; the rare cases (deleted, stored by another thread) are kept out of line.

    def __getattribute__(self, name: str) -> Any:
        try:
            cell = _data_of(self)[name].get()
        except LookupError:  # no variable for this name, or no value in this context
            return _not_set(self, name, _IN_CONTEXT)
        try:
            if cell.owner is _this_thread.id:
                return cell.value
        except AttributeError:  # this thread has no ThreadId: it stored nothing yet
            pass
        if _counts_here(cell):
            return cell.value
        return _not_set(self, name, _IN_CONTEXT)

    def __setattr__(self, name: str, value: Any) -> None:
        cell = Cell(self, forget)
        cell.value = value
        try:
            cell.owner = _this_thread.id
        except AttributeError:  # the thread's first value
            cell.owner = _thread_id()
        try:
            var = _data_of(self)[name]
        except KeyError:
            var = _new_variable(self, name)
        var.set(cell)

    def __delattr__(self, name: str) -> None:
        try:
            var = _data_of(self)[name]
            cell = var.get()
        except LookupError:
            refuse_name(self, name)
            raise missing(self, name, _IN_CONTEXT) from None
        if not _counts_here(cell):
            raise missing(self, name, _IN_CONTEXT)
        # A marker rather than an unset: it travels back through the bridge's copy-back.
        var.set(GONE)


def _new_variable(local: _DefaultLocal, name: str) -> ContextVar[Cell]:
    refuse_name(local, name)
    # setdefault: two threads adding the same name at once end up with one variable.
    variables: dict[str, ContextVar[Cell]] = _data_of(local)
    return variables.setdefault(name, ContextVar(f"asgibridge_any.local:{name}"))


class _ThreadCriticalLocal(Local):  # type: ignore[misc]  # Local(thread_critical=True)
    """A Local whose attributes are per thread, and per task in an event-loop thread."""

    __slots__ = ()

    def __init__(self, thread_critical: bool = True) -> None:
        # The threading.local comes with the first value: an empty one costs ~700 bytes.
        _object_setattr(self, "_data", None)

    # In a sync thread the values are the threading.local's own per-thread dict; only
    # a thread running an asyncio or trio loop pays for the per-task lookup.

    def __getattribute__(self, name: str) -> Any:
        storage = _data_of(self)
        if storage is not None:
            values: dict[str, Any] = storage.__dict__
            if loop_runs_here():
                values = task_values(values, create=False)
            try:
                return values[name]
            except KeyError:
                pass
        return _not_set(self, name, _IN_THREAD)

    def __setattr__(self, name: str, value: Any) -> None:
        storage = _data_of(self)
        if storage is None:
            storage = _new_thread_storage(self)
        values: dict[str, Any] = storage.__dict__
        if loop_runs_here():
            values = task_values(values, create=True)
        if name not in values:
            refuse_name(self, name)
        values[name] = value

    def __delattr__(self, name: str) -> None:
        storage = _data_of(self)
        if storage is not None:
            values: dict[str, Any] = storage.__dict__
            if loop_runs_here():
                values = task_values(values, create=False)
            if name in values:
                del values[name]
                return
        refuse_name(self, name)
        raise missing(self, name, _IN_THREAD)


_storage_lock = threading.Lock()


def _new_thread_storage(local: _ThreadCriticalLocal) -> threading.local:
    # Under a lock: two threads storing their first values at once share one storage.
    with _storage_lock:
        storage: threading.local | None = _data_of(local)
        if storage is None:
            storage = threading.local()
            _object_setattr(local, "_data", storage)
        return storage
