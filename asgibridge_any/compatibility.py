"""
Convert between the two ASGI application styles.

ASGI 2 applications are *double callables* (``app(scope)`` returns a coroutine function
taking ``(receive, send)``); ASGI 3 applications are *single callables*
(``await app(scope, receive, send)``). Servers and test harnesses call
:func:`guarantee_single_callable` once and then speak ASGI 3 only.
"""

from __future__ import annotations

__all__ = (
    "double_to_single_callable",
    "guarantee_single_callable",
    "is_double_callable",
)

import asyncio.coroutines
import inspect
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from .typing import (
        ASGI3Application,
        ASGIApplication,
        ASGIReceiveCallable,
        ASGISendCallable,
        Scope,
    )

# On Python 3.11 ``inspect.markcoroutinefunction`` does not exist yet; code that marks a
# sync-looking callable as a coroutine function there (asgiref's habit, and ours) sets
# this private asyncio sentinel instead, so it is honoured here as well.
_LEGACY_COROUTINE_MARKER = getattr(asyncio.coroutines, "_is_coroutine", None)


def _looks_async(obj: object) -> bool:
    # True for ``async def`` functions, partials of them and objects marked as
    # coroutine functions (by ``inspect.markcoroutinefunction`` or the 3.11 sentinel).
    if inspect.iscoroutinefunction(obj):
        return True
    marker = getattr(obj, "_is_coroutine", None)
    return _LEGACY_COROUTINE_MARKER is not None and marker is _LEGACY_COROUTINE_MARKER


def _require_callable(application: object, caller: str) -> None:
    if not callable(application):
        raise TypeError(
            f"{caller}() needs an ASGI application (a callable), got "
            f"{type(application).__name__} {application!r}; pass the application object "
            "itself, not its result"
        )


def is_double_callable(application: object) -> bool:
    """
    Tell whether ``application`` is an ASGI 2 (double-callable) application.

    An explicit ``_asgi_single_callable`` or ``_asgi_double_callable`` attribute wins. A
    class is double-callable (instantiating it with the scope is the first call). An
    instance whose ``__call__`` is a coroutine function, and a coroutine function, are
    single-callable; every other callable is taken to be double-callable.

    :param application: the ASGI application to inspect
    :returns: ``True`` for an ASGI 2 application, ``False`` for an ASGI 3 one
    :raises TypeError: if ``application`` is not callable
    """
    _require_callable(application, "is_double_callable")
    if getattr(application, "_asgi_single_callable", False):
        return False
    if getattr(application, "_asgi_double_callable", False):
        return True
    if inspect.isclass(application):
        return True
    # An instance is judged by its ``__call__``; a sync ``__call__`` says nothing, since
    # the object may still be marked as a coroutine function itself.
    if _looks_async(getattr(application, "__call__", None)):  # noqa: B004
        return False
    return not _looks_async(application)


def double_to_single_callable(application: Any) -> ASGI3Application:
    """
    Wrap an ASGI 2 (double-callable) application as an ASGI 3 one.

    The returned coroutine function calls ``application(scope)`` for each connection and
    awaits the result with ``(receive, send)``.

    :param application: the ASGI 2 application
    :returns: an ASGI 3 application running ``application``
    :raises TypeError: if ``application`` is not callable (immediately), or if
        ``application(scope)`` returns something that is not callable (when called)
    """
    _require_callable(application, "double_to_single_callable")

    async def single_callable(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        instance = application(scope)
        if not callable(instance):
            raise TypeError(
                f"ASGI 2 application {application!r} returned {instance!r} for a scope; "
                "it must return a coroutine function taking (receive, send)"
            )
        await instance(receive, send)

    single_callable.__name__ = getattr(
        application, "__name__", single_callable.__name__
    )
    single_callable.__qualname__ = getattr(
        application, "__qualname__", single_callable.__qualname__
    )
    return single_callable


def guarantee_single_callable(application: ASGIApplication | Any) -> ASGI3Application:
    """
    Return ``application`` in ASGI 3 (single-callable) style.

    ASGI 3 applications come back unchanged; ASGI 2 ones are wrapped with
    :func:`double_to_single_callable`.

    :param application: an ASGI 2 or ASGI 3 application
    :returns: an ASGI 3 application
    :raises TypeError: if ``application`` is not callable
    """
    _require_callable(application, "guarantee_single_callable")
    if is_double_callable(application):
        return double_to_single_callable(application)
    return cast("ASGI3Application", application)
