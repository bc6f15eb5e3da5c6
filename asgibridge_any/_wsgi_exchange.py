# The meeting point of one request's WSGI worker thread and its event loop.
#
# The thread blocks on a threading.Condition; the loop side blocks on anyio Events that
# the thread sets through a fire-and-forget waker (see _wsgi_wakeup), so neither side
# ever waits for a round trip on the hot path.  Two loop-side tasks exist only when the
# thread asks for them, which most small requests never do:
#
# * the reader pulls http.request messages into a bounded buffer (at most ``limit`` bytes
#   plus one message ahead of the application) and, once the body is complete, keeps
#   listening for http.disconnect;
# * the sender forwards response messages the thread streams, at most ``limit`` bytes
#   behind the thread, so a slow client makes the thread wait.
#
# Neither task raises into the task group (cancellation aside): failures are recorded in
# ``error`` and turn into an abort, which wakes the thread, and the request coroutine
# raises after the thread is done.  That keeps ExceptionGroups away from callers.
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from ._wsgi_wakeup import run_as_library

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ._wsgi_wakeup import Waker

__all__ = ("ClientDisconnected", "Exchange")

Message = MutableMapping[str, Any]


class ClientDisconnected(OSError):
    """Raised in the WSGI thread when the client went away or the request was cancelled."""


class Exchange:
    """
    Hold one request's body buffer and response queue, shared by its thread and loop.

    Methods whose name starts with ``thread_`` run in the worker thread; the rest run on
    the loop.
    """

    def __init__(
        self,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
        task_group: TaskGroup,
        loop: tuple[str, Waker],
        limit: int,
    ) -> None:
        self._receive = receive
        self._send = send
        self._task_group = task_group
        self._library, self._wake = loop
        self._limit = limit
        self._cond = threading.Condition(threading.Lock())
        self.reader_scope = anyio.CancelScope()
        # One receive() at a time, in order; _seen once the first message arrived.
        self._receive_lock = anyio.Lock()
        self._seen = False
        #: the first failure of a loop-side task that is not the client's fault
        self.error: BaseException | None = None
        # Set under the lock; the thread checks it at every wait.
        self.aborted = False
        self._thread_started = False
        self._thread_done = False
        # Request body: chunks received but not yet taken by the thread.
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._reader_wakeup: anyio.Event | None = None
        # Response: messages handed over by the thread but not yet sent.
        self._outgoing: deque[tuple[Message, int]] = deque()
        self._unsent = 0
        self._finished = False
        self._sender_wakeup: anyio.Event | None = None
        self._done_wakeup: anyio.Event | None = None
        # Only the thread reads or writes these two.
        self.reader_started = False
        self.sender_started = False

    # -- worker thread side -------------------------------------------------------------

    def thread_start_tasks(self, *, reader: bool, sender: bool) -> None:
        """Have the loop start the reader and/or sender if not yet running; do not wait."""
        reader = reader and not self.reader_started
        sender = sender and not self.sender_started
        if reader or sender:
            self.reader_started |= reader
            self.sender_started |= sender
            self._wake(partial(self._start_tasks, reader, sender))

    def thread_take(self) -> bytes:
        """
        Take the next chunk of the request body, waiting for the client if needed.

        :returns: a non-empty chunk, or ``b""`` once the body is complete
        :raises ClientDisconnected: if the client went away or the request was cancelled
        """
        if not self.reader_started:
            self.thread_start_tasks(reader=True, sender=False)
        with self._cond:
            while not self._chunks:
                if self._eof:
                    return b""
                if self.aborted:
                    raise ClientDisconnected(
                        "the client disconnected before sending the body"
                    )
                self._cond.wait()
            chunk = self._chunks.popleft()
            self._buffered -= len(chunk)
            wakeup = self._reader_wakeup
            if wakeup is not None and self._buffered < self._limit:
                self._reader_wakeup = None
                self._wake(wakeup.set)
        return chunk

    def thread_push(self, message: Message, size: int) -> None:
        """
        Queue one response message for the sender, waiting while too much is unsent.

        :raises ClientDisconnected: if the client went away or the request was cancelled
        """
        with self._cond:
            while self._unsent >= self._limit and not self.aborted:
                self._cond.wait()
            if self.aborted:
                raise ClientDisconnected("the client disconnected during the response")
            self._outgoing.append((message, size))
            self._unsent += size
            wakeup = self._sender_wakeup
            self._sender_wakeup = None
        if wakeup is not None:
            self._wake(wakeup.set)

    def thread_begin(self) -> bool:
        """
        Say that the thread starts the request.

        :returns: ``False`` if the request was aborted already: then do not run it
        """
        with self._cond:
            self._thread_started = not self.aborted
            return self._thread_started

    def thread_finish(self) -> None:
        """Tell the loop side that the thread will queue nothing more."""
        with self._cond:
            self._thread_done = True
            self._finished = True
            wakeup = self._sender_wakeup
            self._sender_wakeup = None
            done = self._done_wakeup
        if wakeup is not None:
            self._wake(wakeup.set)
        if done is not None:
            self._wake(done.set)

    # -- event loop side ----------------------------------------------------------------

    def _start_tasks(self, reader: bool, sender: bool) -> None:
        # A loop callback (see thread_start_tasks): it must not raise, so a failure to
        # start becomes an abort that the thread and the request coroutine see.
        def start() -> None:
            if reader:
                self._task_group.start_soon(self._reader)
            if sender:
                self._task_group.start_soon(self._sender)

        try:
            run_as_library(self._library, start)
        except BaseException as exc:
            self.abort(exc)

    async def stop_thread(self) -> None:
        """
        Abort, then wait until the thread has finished, even if cancelled meanwhile.

        For a request coroutine whose wait for the thread was interrupted: asyncio's
        ``Task.cancel()`` gets through anyio's shield around the worker thread.
        """
        self.abort()
        with self._cond:
            if self._thread_done or not self._thread_started:
                # Not started: thread_begin() now refuses to call the application.
                return
            done = self._done_wakeup = anyio.Event()
        with anyio.CancelScope(shield=True):
            await done.wait()

    def abort(self, error: BaseException | None = None) -> None:
        """Stop the exchange: wake the thread, which then raises :class:`ClientDisconnected`."""
        with self._cond:
            if error is not None and self.error is None:
                self.error = error
            self.aborted = True
            self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        # Cancellation is the request being cancelled: abort and let it propagate.
        # An OSError from send() is the client going away: not an error of ours.
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            self.abort()
            raise exc
        self.abort(None if isinstance(exc, OSError) else exc)

    async def _reader(self) -> None:
        try:
            with self.reader_scope:
                await self._read_messages()
        except BaseException as exc:
            with self._cond:
                done = self._thread_done
            if not done:
                self._fail(exc)
            elif isinstance(exc, anyio.get_cancelled_exc_class()):
                raise

    async def _read_messages(self) -> None:
        while True:
            with self._cond:
                if self.aborted:
                    return
                wakeup = None
                if self._buffered >= self._limit:
                    wakeup = self._reader_wakeup = anyio.Event()
            if wakeup is not None:
                await wakeup.wait()
                continue
            async with self._receive_lock:
                if await self._take_message():
                    return

    async def ensure_request_seen(self) -> None:
        """
        Receive the request's first message if nobody has yet.

        Nothing is sent before the server delivered the first ``http.request`` (or an
        ``http.disconnect``, which aborts), as asgiref's adapter behaves; the
        application itself may start earlier, so it still gets the body streamed.
        """
        if self._seen:
            return
        async with self._receive_lock:
            if not self._seen:
                await self._take_message()

    async def _take_message(self) -> bool:
        # Receive one message and file it; True when there is nothing more to read.
        message = await self._receive()
        self._seen = True
        try:
            kind = message["type"]
        except (TypeError, KeyError):
            raise ValueError(
                f"ASGI receive() returned a message without a 'type': {message!r}"
            ) from None
        if kind == "http.request":
            body = message.get("body", b"")
            if not isinstance(body, (bytes, bytearray, memoryview)):
                raise ValueError(
                    "ASGI http.request message['body'] must be bytes, "
                    f"got {type(body).__name__}"
                )
            more = message.get("more_body", False)
            with self._cond:
                if self._eof:
                    # Past the end of the body only http.disconnect is expected; a
                    # server that says otherwise cannot tell us about disconnects.
                    return True
                if body:
                    self._chunks.append(bytes(body))
                    self._buffered += len(body)
                if not more:
                    self._eof = True
                self._cond.notify_all()
            return False
        if kind == "http.disconnect":
            self.abort()
            return True
        raise ValueError(
            f"ASGI http message['type'] must be 'http.request' or "
            f"'http.disconnect', got {kind!r}"
        )

    async def _sender(self) -> None:
        try:
            while True:
                with self._cond:
                    if self.aborted:
                        return
                    if self._outgoing:
                        message, size = self._outgoing.popleft()
                        wakeup = None
                    elif self._finished:
                        return
                    else:
                        wakeup = self._sender_wakeup = anyio.Event()
                if wakeup is not None:
                    await wakeup.wait()
                    continue
                if not self._seen:
                    await self.ensure_request_seen()
                    if self.aborted:
                        return
                await self._send(message)
                with self._cond:
                    self._unsent -= size
                    if self._unsent < self._limit:
                        self._cond.notify_all()
        except BaseException as exc:
            self._fail(exc)
