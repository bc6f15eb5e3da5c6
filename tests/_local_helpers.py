"""Helpers shared by the Local tests."""

from __future__ import annotations

import contextvars
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


def in_new_thread(func: Callable[[], Any], inherit: bool = False) -> Any:
    """
    Run ``func`` in a new thread and return its result (or raise its exception).

    :param inherit: start the thread in a copy of this thread's context, as Python
        3.14 does with ``thread_inherit_context``
    """
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, func()))
        except BaseException as exc:
            outcome.append((False, exc))

    target = contextvars.copy_context().run if inherit else None
    thread = (
        threading.Thread(target=target, args=(run,))
        if target
        else threading.Thread(target=run)
    )
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value
