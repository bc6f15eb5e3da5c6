# One request of AsgiToWsgi, between the WSGI worker thread that serves it and the task
# that runs the ASGI application on the adapter's event loop.
#
# Loop -> thread: every message goes into a SimpleQueue that the WSGI thread drains (a put
# never blocks the loop).  The response body is bounded: when more than ``max_buffer``
# bytes wait in the queue, the application's send() waits until the thread has passed half
# of them on to the server.  Thread -> loop: the thread wakes the loop with call_soon (fire
# and forget) to say that buffer space, a body chunk or a disconnect is there.
#
# The request body is read in the WSGI thread, the only thread a WSGI server promises its
# wsgi.input works in, and only when the application asks: receive() queues a read request
# that the thread serves while it waits for response messages.  So nothing is read ahead,
# and wsgi.input is never touched once the thread has left the request.
#
# Counters shared by the two sides are each written by one side only (``_sent`` by the
# loop, ``_taken`` by the thread), so no lock is needed on the hot path.
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Final

import anyio

from ._asgi_to_wsgi_scope import status_line, wsgi_headers

if TYPE_CHECKING:
    from ._asgi_to_wsgi_loop import LoopThread

logger = logging.getLogger("asgibridge_any.wsgi")

_Message = MutableMapping[str, Any]

# What the loop puts into a request's queue, first item of each tuple.
START: Final = 0  # (START, status line, header list)
BODY: Final = 1  # (BODY, bytes, more_body)
END: Final = 2  # (END, exception or None): the application returned or raised
_READ: Final = 3  # (_READ,): the application waits for the next body chunk
_READ_ITEM: Final = (_READ,)
# How often a waiting WSGI thread checks that the loop still runs (seconds).
_POLL = 1.0


class ClientDisconnected(OSError):
    """
    Raised by ``send()`` once the WSGI server has closed the response (the client left).

    The ASGI spec asks servers to raise an :exc:`OSError` subclass there.
    """


class LoopStopped(RuntimeError):
    """Raised in a WSGI thread whose request can no longer run: the event loop stopped."""


class Exchange:
    """
    The shared state of one request, with the loop side (``receive``, ``send``, ``finish``)
    and the thread side (``next_message``, ``abandon``).
    """

    def __init__(
        self,
        loop: LoopThread,
        wsgi_input: Any,
        length: int | None,
        max_buffer: int,
        chunk_size: int,
    ) -> None:
        self._loop = loop
        self.inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._max_buffer = max_buffer
        self._low_water = max_buffer // 2
        self._sent = 0  # body bytes queued (loop writes)
        self._taken = 0  # body bytes passed to the server (thread writes)
        self._space_wanted = False
        #: the WSGI server closed the response early (thread writes once)
        self.closed = False
        #: the application's outcome was handed over, or there was nobody to take it
        self._ended = False
        self._end_lock = threading.Lock()
        # request body: thread side
        self._input = wsgi_input
        self._remaining = length
        self._chunk_size = chunk_size
        self._chunk: tuple[bytes, bool] | None = None
        self._input_broken = False
        # loop side
        self._no_body = length == 0
        self._request_done = False
        self._read_pending = False
        self._started = False
        #: the final body message was sent
        self.complete = False
        self._waiters: list[anyio.Event] = []

    # -- loop side ---------------------------------------------------------------------------

    def _notify(self) -> None:
        # Runs on the loop thread: wake whoever waits for news from the WSGI thread.
        waiters, self._waiters = self._waiters, []
        for event in waiters:
            event.set()

    async def _sleep(self) -> None:
        event = anyio.Event()
        self._waiters.append(event)
        await event.wait()

    async def receive(self) -> _Message:
        """Return the next ``http.request`` chunk, or ``http.disconnect``."""
        while True:
            chunk = self._chunk
            if chunk is not None:
                self._chunk = None
                self._read_pending = False
                if not chunk[1]:
                    self._request_done = True
                return {"type": "http.request", "body": chunk[0], "more_body": chunk[1]}
            if self.closed or self.complete or self._input_broken:
                return {"type": "http.disconnect"}
            if not self._request_done:
                if self._no_body:
                    self._request_done = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                if not self._read_pending:
                    self._read_pending = True
                    self.inbox.put(_READ_ITEM)
            await self._sleep()

    async def send(self, message: _Message) -> None:
        """
        Pass a response message on to the WSGI thread, waiting while its buffer is full.

        :raises ValueError: naming the field, for a malformed or out-of-order message
        :raises ClientDisconnected: once the WSGI server closed the response
        """
        if not isinstance(message, Mapping):
            raise ValueError(  # noqa: TRY004 - a malformed message is a ValueError
                f"ASGI send() takes a mapping with a 'type', got {message!r}"
            )
        kind = message.get("type")
        if self.closed:
            raise ClientDisconnected("the WSGI server closed the response: client left")
        if kind == "http.response.body" and self._started:
            if self.complete:
                raise ValueError(
                    "ASGI message['type'] 'http.response.body' sent after the response "
                    "was complete (the last body message had more_body False)"
                )
            body = message.get("body", b"")
            if type(body) is not bytes:
                if not isinstance(body, (bytearray, memoryview)):
                    raise ValueError(
                        f"ASGI message['body'] must be bytes, got {type(body).__name__}"
                    )
                body = bytes(body)
            more = message.get("more_body", False)
            if not isinstance(more, bool):
                raise ValueError(
                    f"ASGI message['more_body'] must be a bool, got {more!r}"
                )
            if not more:
                self.complete = True
                self._notify()  # a receive() waiting for the disconnect
            elif not body:
                return
            self._sent += len(body)
            self.inbox.put((BODY, body, more))
            if self._sent - self._taken > self._max_buffer:
                await self._wait_for_space()
        elif kind == "http.response.start" and not self._started:
            status = status_line(message.get("status"))
            headers = wsgi_headers(message.get("headers", ()))
            if message.get("trailers"):
                raise ValueError(
                    "ASGI message['trailers'] cannot be True: a WSGI server cannot send "
                    "trailers"
                )
            self._started = True
            self.inbox.put((START, status, headers))
        else:
            expected = (
                "'http.response.body'" if self._started else "'http.response.start'"
            )
            raise ValueError(
                f"ASGI message['type'] must be {expected} here, got {kind!r}"
            )

    async def _wait_for_space(self) -> None:
        while self._sent - self._taken > self._max_buffer and not self.closed:
            self._space_wanted = True
            # the thread checks _space_wanted after it counts what it took: either it
            # sees the flag and wakes us, or this check sees its count
            if self._sent - self._taken <= self._max_buffer:
                break
            await self._sleep()
        self._space_wanted = False
        if self.closed:
            raise ClientDisconnected("the WSGI server closed the response: client left")

    def finish(self, error: BaseException | None) -> bool:
        """
        Hand the application's outcome to the WSGI thread (on the loop, when it ended).

        :returns: whether the thread will see it; ``False`` when the response was already
            complete or abandoned, so an error has to be reported some other way
        """
        with self._end_lock:
            self._ended = True
            if self.closed or self.complete:
                return False
            self.inbox.put((END, error))
            return True

    # -- thread side -------------------------------------------------------------------------

    def next_message(self) -> tuple[Any, ...]:
        """
        Return the next START, BODY or END item, serving body reads on the way.

        :raises LoopStopped: if the event loop stopped without ending the request
        """
        get = self.inbox.get
        while True:
            try:
                item = get(timeout=_POLL)
            except queue.Empty:
                if not self._loop.alive():
                    raise LoopStopped(
                        "the AsgiToWsgi event loop stopped while a request ran"
                    ) from None
                continue
            kind = item[0]
            if kind == BODY:
                self._taken += len(item[1])
                if self._space_wanted and self._sent - self._taken <= self._low_water:
                    self._space_wanted = False
                    self._wake()
                return item
            if kind == _READ:
                self._read_body()
                continue
            return item

    def _read_body(self) -> None:
        remaining = self._remaining
        size = (
            self._chunk_size if remaining is None else min(self._chunk_size, remaining)
        )
        try:
            data = self._input.read(size)
        except Exception as exc:
            logger.debug("reading the request body failed: %r", exc)
            data = None
        if not isinstance(data, bytes) or (not data and remaining is not None):
            # a short body: the client went away (or the server broke its promise)
            self._input_broken = True
        elif remaining is None:
            self._chunk = (data, bool(data))
        else:
            remaining -= len(data)
            self._remaining = remaining
            self._chunk = (data, remaining > 0)
        self._wake()

    def _wake(self) -> None:
        try:
            self._loop.call_soon(self._notify)
        except Exception as exc:
            # the loop is gone; next_message() notices and ends the request
            logger.debug("cannot wake the AsgiToWsgi event loop: %r", exc)

    def abandon(self) -> None:
        """Tell the application that the WSGI server left the response (the client left)."""
        with self._end_lock:
            self.closed = True
            ended = self._ended
        if not ended:
            self._wake()


class ResponseBody:
    """The WSGI response iterable: yields body chunks as the application sends them."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        self._done = False

    def __iter__(self) -> ResponseBody:
        return self

    def __next__(self) -> bytes:
        while not self._done:
            item = self._exchange.next_message()
            if item[0] == BODY:
                if not item[2]:
                    self._done = True
                if item[1]:
                    return item[1]  # type: ignore[no-any-return]
            else:  # END before the response was complete
                self._done = True
                raise_error(item[1], started=True)
        raise StopIteration

    def close(self) -> None:
        """Called by the WSGI server when it stops iterating; early means the client left."""
        if not self._done:
            self._done = True
            self._exchange.abandon()


def raise_error(error: BaseException | None, *, started: bool) -> None:
    """
    Raise, in the WSGI thread, why the application ended before its response was complete.
    """
    if error is None:
        raise RuntimeError(
            "the ASGI application returned before it "
            + ("sent the whole response body" if started else "started a response")
        )
    if not isinstance(error, Exception):
        # a cancellation belongs to the loop, not to the WSGI server's thread
        raise LoopStopped(
            "the ASGI application was cancelled: the AsgiToWsgi event loop stopped"
        ) from error
    raise error
