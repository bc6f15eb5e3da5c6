# What the sync/async wrappers show of the callable they wrap, and their warning.
#
# Code writes ``await sync_to_async(f)()`` and so builds a wrapper per call: the
# wrapped callable's metadata is looked up on demand instead of being copied.
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


class WrapsCallable:
    """
    Show the wrapped callable's metadata, as :func:`functools.update_wrapper` would.

    Looked up on demand rather than copied: ``__name__``, ``__qualname__``,
    ``__wrapped__``, ``__self__`` of a bound method, and the callable's own
    attributes. ``__doc__`` and ``__module__`` are set by ``__init__`` (the class has
    its own).
    """

    func: Callable[..., Any]

    if not TYPE_CHECKING:  # keep attribute typos visible to mypy

        def __getattr__(self, name: str) -> Any:
            # Only called when ordinary lookup fails.
            func = self.__dict__.get("func")
            if func is not None:
                if name == "__wrapped__":
                    return func
                if name in _DELEGATED or name in getattr(func, "__dict__", ()):
                    return getattr(func, name)
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}"
            )


_DELEGATED = frozenset(("__name__", "__qualname__", "__self__", "__type_params__"))


def warn_caller(message: str) -> None:
    import warnings

    # Points at the caller of async_to_sync(): warn_caller < __init__ < async_to_sync < caller.
    warnings.warn(message, UserWarning, stacklevel=4)
