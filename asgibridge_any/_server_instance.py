# The handle of one running application instance, stored as details["future"].
#
# asgiref keeps an asyncio Future there and its users call .cancel(), .done() and
# .exception() on it; this class offers that part of the Future interface on top of an
# anyio cancel scope, so it works the same for instances running on asyncio or trio.

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator


class ApplicationInstanceTask:
    """
    Track and control one application instance running in a server's task group.

    Create it inside the event loop, then run the instance with :meth:`run` in a task.
    """

    def __init__(self) -> None:
        self._cancel_scope = anyio.CancelScope()
        self._finished = anyio.Event()
        self._cancelled = False
        self._exception: Exception | None = None

    def __repr__(self) -> str:
        if not self._finished.is_set():
            state = "running"
        elif self._cancelled:
            state = "cancelled"
        elif self._exception is not None:
            state = f"raised {self._exception!r}"
        else:
            state = "returned"
        return f"<ApplicationInstanceTask {state}>"

    async def run(self, application_call: Callable[[], Awaitable[None]]) -> None:
        """
        Call and await ``application_call`` in this handle's cancel scope; record the outcome.

        The call happens inside the scope, so an instance cancelled before it started never
        runs (and leaves no un-awaited coroutine behind).

        An :exc:`Exception` from the application is kept for :meth:`exception`, not
        raised; a cancellation from outside (the server shutting down) propagates.
        """
        try:
            with self._cancel_scope:
                # Cancelled before it got here (evicted at once, say): never start it.
                await anyio.lowlevel.checkpoint_if_cancelled()
                await application_call()
            if self._cancel_scope.cancelled_caught:
                self._cancelled = True
        except anyio.get_cancelled_exc_class():
            self._cancelled = True
            raise
        except Exception as exc:
            self._exception = exc
        finally:
            self._finished.set()

    def cancel(self) -> bool:
        """
        Ask the instance to stop; it is cancelled at its next checkpoint.

        :returns: ``False`` if it had already finished, else ``True``
        """
        if self._finished.is_set():
            return False
        self._cancel_scope.cancel()
        return True

    def done(self) -> bool:
        """Return ``True`` once the instance has finished, however it ended."""
        return self._finished.is_set()

    def cancelled(self) -> bool:
        """Return ``True`` if the instance ended by being cancelled."""
        return self._cancelled

    def exception(self) -> Exception | None:
        """
        Return the exception the instance raised, or ``None``.

        ``None`` also while it is running and when it was cancelled.
        """
        return self._exception

    def result(self) -> None:
        """
        Return ``None``, or raise the exception the instance raised.

        :raises RuntimeError: if the instance is still running
        """
        if not self._finished.is_set():
            raise RuntimeError("the application instance is still running")
        if self._exception is not None:
            raise self._exception

    async def wait(self) -> None:
        """Wait until the instance has finished."""
        await self._finished.wait()

    def __await__(self) -> Generator[Any, None, None]:
        # ``await handle`` works as ``await future`` does: wait, then return or raise.
        return self._wait_for_result().__await__()

    async def _wait_for_result(self) -> None:
        await self._finished.wait()
        self.result()
