# Storage cells and lookups behind asgibridge_any.local.Local.
#
# A default Local keeps one ContextVar per attribute name. The context does not hold
# the user's value directly: a context keeps its variables and values alive for as
# long as it lives, so a value would outlive the Local that stored it. Instead the
# context holds a Cell, a weak reference *to the Local* that carries the value in a
# slot. When the Local is freed, the weak reference's callback empties the slot of every
# Cell still held by any context, so the values go with the Local, by reference
# counting alone. When a context is freed first, its Cells (and values) go with it.
#
# A thread-critical Local keeps plain dicts per thread (threading.local) and, in a
# thread that runs an event loop, one dict per asyncio or trio task (found through
# _backends, like every loop-specific detail).
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Final

from ._backends import current_task

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._context import ThreadId


class Cell(weakref.ref[Any]):
    """A value stored by a default Local in one context (a weak reference to the Local)."""

    __slots__ = ("owner", "value")

    #: The value; emptied by the weak reference's callback when the Local is freed.
    value: Any
    #: The thread that stored the value (see ``_context.TAG_THREADS``); None for GONE.
    owner: ThreadId | None


#: The weak-reference callback of every Cell: empties its ``value`` slot (C code, no
#: Python frame, no reference back to the Local or its values).
forget: Final[Callable[[Cell], None]] = Cell.__dict__["value"].__delete__

#: The value of a Cell that marks an attribute as deleted in a context.
DELETED: Final = object()

#: The shared Cell that marks a deleted attribute (contextvars cannot unset a value).
GONE: Final = Cell(Cell)
GONE.value = DELETED
GONE.owner = None


def refuse_name(local: object, name: str) -> None:
    """
    Raise :exc:`AttributeError` if ``name`` belongs to the Local object itself.

    :raises AttributeError: for the Local's own slots and the special names of its type
    """
    if hasattr(type(local), name):
        raise AttributeError(
            f"cannot use {name!r} as a Local attribute: the name belongs to the "
            "Local object itself; pick another name"
        )


def missing(local: object, name: str, where: str) -> AttributeError:
    """Build the error for an attribute that is not set where it is looked up."""
    return AttributeError(
        f"'Local' object has no attribute {name!r} (not set in this {where})",
        name=name,
        obj=local,
    )


# --- thread-critical storage ----------------------------------------------------------

#: Key of the per-task map inside a thread's dict (attribute names are always str).
_TASKS: Final = object()


def task_values(thread_dict: dict[Any, Any], create: bool) -> dict[str, Any]:
    """
    Return the dict of the task running in this event-loop thread.

    Outside a task (an asyncio loop callback) the thread's own dict serves. A task's dict is
    keyed weakly by the task, so it is freed together with the task.

    :param thread_dict: this thread's dict of the thread-critical Local
    :param create: make the task's dict if it has none yet (else return an empty one)
    """
    task = current_task()
    if task is None:
        return thread_dict
    tasks: weakref.WeakKeyDictionary[object, dict[str, Any]] | None = thread_dict.get(
        _TASKS
    )
    if tasks is None:
        if not create:
            return {}
        tasks = thread_dict[_TASKS] = weakref.WeakKeyDictionary()
    values = tasks.get(task)
    if values is None:
        values = {}
        if create:
            tasks[task] = values
    return values
