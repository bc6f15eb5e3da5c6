"""
A deprecated timeout context manager, kept for code that imports ``asgiref.timeout``.

New code should use ``asyncio.timeout()``, ``anyio.fail_after()`` or ``trio.fail_after()``.
This one works on asyncio and trio alike because it is an anyio cancel scope underneath.
"""

from __future__ import annotations

__all__ = ("timeout",)

import math
import warnings
from typing import TYPE_CHECKING, Any, Self

import anyio

if TYPE_CHECKING:
    from types import TracebackType


class timeout:
    """
    Raise :exc:`TimeoutError` when the block takes longer than ``timeout`` seconds.

    Usable as ``with`` and ``async with`` inside a task. When the time is up, the block is
    cancelled at its next checkpoint and :exc:`TimeoutError` is raised from the ``with``;
    :attr:`expired` then reports ``True``. ``timeout=None`` never expires.

    .. deprecated:: 0.1
       Use ``asyncio.timeout()``, ``anyio.fail_after()`` or ``trio.fail_after()`` instead.

    :param timeout: seconds allowed for the block, or ``None`` for no limit
    :param loop: ignored; passing it is deprecated as well
    """

    def __init__(self, timeout: float | None, *, loop: Any = None) -> None:
        warnings.warn(
            "asgibridge_any.timeout.timeout is deprecated; use asyncio.timeout(), "
            "anyio.fail_after() or trio.fail_after() instead",
            DeprecationWarning,
            stacklevel=2,
        )
        if loop is not None:
            warnings.warn(
                "the loop argument of timeout() is deprecated and ignored; drop it",
                DeprecationWarning,
                stacklevel=2,
            )
        self._timeout = timeout
        self._scope: anyio.CancelScope | None = None
        self._expired = False

    @property
    def expired(self) -> bool:
        """``True`` once the block was cancelled because its time was up."""
        return self._expired

    @property
    def remaining(self) -> float | None:
        """Seconds left before the block is cancelled, ``None`` without a limit."""
        if self._scope is None or self._timeout is None:
            return None
        return max(self._scope.deadline - anyio.current_time(), 0.0)

    def __enter__(self) -> Self:
        deadline = math.inf
        if self._timeout is not None:
            deadline = anyio.current_time() + self._timeout
        self._scope = anyio.CancelScope(deadline=deadline)
        self._scope.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        assert self._scope is not None, "timeout exited without being entered"
        self._scope.__exit__(exc_type, exc_val, exc_tb)
        if self._scope.cancelled_caught:
            self._expired = True
            raise TimeoutError(f"the block took longer than {self._timeout} seconds")

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc_val, exc_tb)
