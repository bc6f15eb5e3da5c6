# The message queue between a server (or test) and one ASGI application instance.
#
# It lives apart from server.py because testing.py uses it too, and because it is
# loop-neutral machinery: anyio events only, so the same object works on asyncio and trio.
# asyncio.Queue cannot be used (asyncio only) and anyio memory streams cannot either: they
# warn when garbage-collected unclosed, and ASGI code never closes its receive queue.

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

import anyio
import anyio.lowlevel

T = TypeVar("T")


class ApplicationQueueFull(asyncio.QueueFull):
    """
    Raised by :meth:`ApplicationQueue.put_nowait` when the queue holds ``maxsize`` items.

    It subclasses :exc:`asyncio.QueueFull`, so code written against asgiref's unbounded
    ``asyncio.Queue`` that already catches that keeps working.
    """


class NoMoreMessages(Exception):
    """Raised by :meth:`ApplicationQueue.get` once the queue is empty and has ended."""


class ApplicationQueue(Generic[T]):
    """
    Buffer messages for an application instance, with an optional bound.

    The interface is a subset of :class:`asyncio.Queue` (``put_nowait``, ``put``, ``get``,
    ``get_nowait``, ``qsize``, ``empty``, ``full``, ``maxsize``) that works under asyncio
    and trio. When the queue is full, ``await put()`` waits until the application has
    taken a message (back-pressure) and ``put_nowait()`` raises
    :exc:`ApplicationQueueFull`. Once the application instance has finished, the queue
    discards what it is given, so a producer never blocks on an instance that is gone.

    :param maxsize: the most messages held at once; ``0`` means unbounded
    :raises ValueError: if ``maxsize`` is negative
    """

    def __init__(self, maxsize: int = 0) -> None:
        if maxsize < 0:
            raise ValueError(
                f"maxsize must be 0 (unbounded) or positive, got {maxsize!r}"
            )
        self._maxsize = maxsize
        self._items: deque[T] = deque()
        # Waiters are woken one at a time, oldest first; see _wait() for lost wake-ups.
        self._getters: deque[anyio.Event] = deque()
        self._putters: deque[anyio.Event] = deque()
        self._discarding = False
        self._ended = False

    def __repr__(self) -> str:
        state = " discarding" if self._discarding else ""
        return f"<ApplicationQueue {len(self._items)}/{self._maxsize or 'unbounded'}{state}>"

    @property
    def maxsize(self) -> int:
        """The bound given at creation (``0``: unbounded)."""
        return self._maxsize

    def qsize(self) -> int:
        """Return how many messages are waiting."""
        return len(self._items)

    def empty(self) -> bool:
        """Return ``True`` if no message is waiting."""
        return not self._items

    def full(self) -> bool:
        """Return ``True`` if :meth:`put_nowait` would raise."""
        return 0 < self._maxsize <= len(self._items) and not self._discarding

    def put_nowait(self, item: T) -> None:
        """
        Append ``item`` without waiting.

        :param item: the message
        :raises ApplicationQueueFull: if the queue already holds ``maxsize`` messages;
            use ``await put()`` to wait for room instead
        """
        if self._discarding:
            return
        if self.full():
            raise ApplicationQueueFull(
                f"the application's input queue is full ({self._maxsize} messages "
                "waiting): the application reads slower than messages arrive; use "
                "'await queue.put(message)' to wait for room, or raise the bound"
            )
        self._items.append(item)
        self._wake(self._getters)

    async def put(self, item: T) -> None:
        """
        Append ``item``, waiting while the queue is full.

        :param item: the message
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while self.full():
            await self._wait(self._putters)
            waited = True
        self.put_nowait(item)
        if not waited:
            await anyio.lowlevel.cancel_shielded_checkpoint()

    def get_nowait(self) -> T:
        """
        Remove and return the oldest message.

        :raises asyncio.QueueEmpty: if no message is waiting
        """
        if not self._items:
            raise asyncio.QueueEmpty("no message is waiting in the queue")
        item = self._items.popleft()
        self._wake(self._putters)
        return item

    async def get(self) -> T:
        """Remove and return the oldest message, waiting for one if needed."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while not self._items:
            if self._ended:
                raise NoMoreMessages("the producer has finished and the queue is empty")
            await self._wait(self._getters)
            waited = True
        item = self.get_nowait()
        if not waited:
            await anyio.lowlevel.cancel_shielded_checkpoint()
        return item

    async def wait_not_empty(self) -> None:
        """Wait until a message is waiting (or the queue has ended), without taking it."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while not self._items and not self._ended:
            await self._wait(self._getters)
            waited = True
        if waited:
            # This call consumed a wake-up that a get() may be waiting for: pass it on.
            self._wake(self._getters)
        else:
            await anyio.lowlevel.cancel_shielded_checkpoint()

    def discard_from_now_on(self) -> None:
        """Drop waiting messages, wake blocked producers, and ignore further ones."""
        self._discarding = True
        self._items.clear()
        while self._putters:
            self._putters.popleft().set()

    def end(self) -> None:
        """
        Declare that no more messages will come; for queues an application writes to.

        Messages already waiting can still be taken; after them, :meth:`get` raises
        :exc:`NoMoreMessages` instead of waiting forever.
        """
        self._ended = True
        while self._getters:
            self._getters.popleft().set()

    @staticmethod
    def _wake(waiters: deque[anyio.Event]) -> None:
        if waiters:
            waiters.popleft().set()

    async def _wait(self, waiters: deque[anyio.Event]) -> None:
        event = anyio.Event()
        waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                # Woken, then cancelled before acting on it: hand the wake-up on, or
                # another waiter would sleep although it could proceed.
                self._wake(waiters)
            else:
                waiters.remove(event)
            raise
