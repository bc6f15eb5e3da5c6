# Coroutine-function detection that also sees objects marked by markcoroutinefunction.
#
# Python 3.12 added inspect.markcoroutinefunction; on 3.11 the marker is asyncio's
# old ``_is_coroutine`` attribute, which asyncio.iscoroutinefunction understands (but
# that function is deprecated from 3.14 on, so it is not used where inspect suffices).
from __future__ import annotations

import inspect
import sys
import types
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

_F = TypeVar("_F", bound="Callable[..., Any]")

if sys.version_info >= (3, 12):
    iscoroutinefunction = inspect.iscoroutinefunction
    markcoroutinefunction = inspect.markcoroutinefunction
else:  # pragma: no cover - Python 3.11
    import asyncio.coroutines

    _MARK = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]

    def iscoroutinefunction(obj: object) -> bool:
        """Tell whether ``obj`` is a coroutine function, or marked as one."""
        return inspect.iscoroutinefunction(obj) or (
            getattr(obj, "_is_coroutine", None) is _MARK
        )

    def markcoroutinefunction(func: _F) -> _F:
        """Mark ``func`` so that :func:`iscoroutinefunction` reports it as async."""
        if hasattr(func, "__func__"):
            func = func.__func__
        func._is_coroutine = _MARK  # type: ignore[attr-defined]
        return func


def _probe() -> None:  # pragma: no cover - never called
    pass


# What markcoroutinefunction stores (its attribute name and value differ between
# Python versions): learnt once from a function marked here.
_MARKS = tuple(markcoroutinefunction(_probe).__dict__.items())


def mark_instance(obj: object) -> None:
    """
    Mark a callable object as a coroutine function, as markcoroutinefunction does.

    Sets the marker directly: markcoroutinefunction first probes ``__func__``, which
    on the bridge's wrappers goes through their attribute delegation (and an
    exception) on every wrapper built.
    """
    for name, value in _MARKS:
        object.__setattr__(obj, name, value)


_FunctionType = types.FunctionType
_CO_COROUTINE = inspect.CO_COROUTINE


def is_async_callable(obj: object) -> bool:
    """
    Tell whether calling ``obj`` gives a coroutine: a coroutine function, a partial of
    one, an object whose ``__call__`` is one, or anything marked as one.

    Plain functions, by far the most common argument, take a fast path: one code-flag
    test (and a full check only if the function carries attributes, where a marker
    could hide).
    """
    if type(obj) is _FunctionType:
        if obj.__code__.co_flags & _CO_COROUTINE:
            return True
        return bool(obj.__dict__) and iscoroutinefunction(obj)
    return iscoroutinefunction(obj) or iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - the method itself is inspected
    )
