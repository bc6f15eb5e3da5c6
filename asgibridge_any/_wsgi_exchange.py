# The meeting point of one request's WSGI worker thread and its event loop.
#
# The thread blocks on a threading.Condition; the loop side blocks on anyio Events that
# the thread sets through a fire-and-forget waker (see _backends/_wsgi_loop.py), so neither side
# ever waits for a round trip on the hot path.  Loop-side tasks exist only when needed,
# which most small requests never do:
#
# * the reader receives http.request messages into a BodyBuffer and, once the body is
#   complete, keeps listening for http.disconnect.  It starts when the application first
#   reads, when the response streams, when the request has run for a whole tick of its
#   loop's ticker (0.4 to 0.8 s) without finishing, and before the final response
#   message if the body is still coming (a server may need someone to take the rest,
#   hypercorn does).  While the application reads, a full memory buffer makes the reader
#   wait (back-pressure); when the application has not read for a whole tick while the
#   reader waited, the reader spills to a temporary file,
#   and once that too is full the request is cut: the application sees a disconnect and
#   the client a 413 if no response started.  So a disconnect is always noticed within
#   about a second, whatever the application reads, with bounded memory.
# * the sender forwards response messages the thread streams, at most ``limit`` bytes
#   behind the thread, so a slow client makes the thread wait.
#
# Nothing is received before the response unless the application reads, a tick passes
# or the request has no body by its framing (then the server delivers its one message at
# once, and waiting for it keeps asgiref's ordering that tests rely on).
#
# Neither task raises into the task group (cancellation aside): failures are recorded in
# ``error`` and turn into an abort, which wakes the thread, and the request coroutine
# raises after the thread is done.  That keeps ExceptionGroups away from callers.
from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from ._backends._wsgi_loop import run_as_library
from ._tokens import run_in_worker
from ._wsgi_body import BodyBuffer

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ._backends._wsgi_loop import LoopHooks

__all__ = ("ClientDisconnected", "Disconnected", "Exchange")

Message = MutableMapping[str, Any]
T = TypeVar("T")

logger = logging.getLogger("asgibridge_any.wsgi")

_TOO_LARGE_BODY = b"Request Entity Too Large"


class ClientDisconnected(OSError):
    """Raised in the WSGI thread when the client went away or the request was cancelled."""


class Disconnected:
    """
    Tell a WSGI application whether its client has gone (``environ`` extension).

    :meth:`is_set` and :meth:`wait` behave as those of :class:`threading.Event`: a
    long computation may check it and give up early.
    """

    __slots__ = ("_exchange",)

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def is_set(self) -> bool:
        """Return ``True`` once the client disconnected or the request was cancelled."""
        return self._exchange.aborted

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`is_set` is true or ``timeout`` seconds passed; return it."""
        return self._exchange.thread_wait_aborted(timeout)


def _is_final(message: Message) -> bool:
    return message["type"] == "http.response.body" and not message.get(
        "more_body", False
    )


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
        loop: LoopHooks,
        limit: int,
        spool: int,
        *,
        wait_for_request: bool,
    ) -> None:
        self._receive = receive
        self._send = send
        self._task_group = task_group
        self._library, self._wake, self._ticker = loop
        self._limit = limit
        self._cond = threading.Condition(threading.Lock())
        # Made when needed (anyio objects cost on the hot path): the reader's scope.
        self._reader_scope: anyio.CancelScope | None = None
        self._closed = False
        # One receive() at a time, in order; _seen once the first message arrived.
        self._lock: anyio.Lock | None = None
        self._seen = False
        self._wait_for_request = wait_for_request
        #: the first failure of a loop-side task that is not the client's fault
        self.error: BaseException | None = None
        # Set under the lock; the thread checks it at every wait.
        self.aborted = False
        #: the body went beyond what the adapter keeps for an application not reading it
        self.cut = False
        self._thread_started = False
        self._thread_done = False
        # Request body: received but not yet taken by the thread.
        self._body = BodyBuffer(limit, spool)
        self._eof = False
        self._reader_wakeup: anyio.Event | None = None
        # Takes so far and at the last tick; stalled: no take for a whole tick.
        self._takes = 0
        self._ticked_takes = 0
        self._ticks = 0
        self._stalled = False
        # Response: messages handed over by the thread but not yet sent.
        self._outgoing: deque[tuple[Message, int]] = deque()
        self._unsent = 0
        self._finished = False
        self._sender_wakeup: anyio.Event | None = None
        self._done_wakeup: anyio.Event | None = None
        # Loop side only: the reader runs; a response start went (or goes) out; output
        # tasks (sender, refusal) not finished yet.
        self._reading = False
        self._reader_alive = False
        self._reader_late = False
        self._responding = False
        self._outputs: list[anyio.Event] = []
        self._ticker.add(self)
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
            while True:
                chunk = self._body.take()
                if chunk is not None:
                    break
                if self._eof:
                    return b""
                if self.aborted:
                    raise ClientDisconnected(
                        "the client disconnected before sending the whole body"
                    )
                self._cond.wait()
            self._takes += 1
            self._stalled = False
            wakeup = self._reader_wakeup
            if wakeup is not None:
                self._reader_wakeup = None
                self._wake(wakeup.set)
        return chunk

    def thread_wait_aborted(self, timeout: float | None) -> bool:
        """Wait until the request is aborted, at most ``timeout`` seconds; return whether it is."""
        with self._cond:
            return self._cond.wait_for(lambda: self.aborted, timeout)

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
        """Tell the loop side that the thread will queue and read nothing more."""
        with self._cond:
            self._thread_done = True
            self._finished = True
            wakeups = [self._sender_wakeup, self._done_wakeup, self._reader_wakeup]
            self._sender_wakeup = self._reader_wakeup = None
        for wakeup in wakeups:
            if wakeup is not None:
                self._wake(wakeup.set)

    # -- event loop side: the request's lifetime ----------------------------------------

    async def run_thread(
        self, func: Callable[[], T], limiter: anyio.CapacityLimiter | None
    ) -> T:
        """
        Run ``func`` in a worker thread.

        The bridge's own worker threads serve it, as they serve
        ``sync_to_async(thread_sensitive=False)``: one pool, tokens passed from worker to
        worker under load.  Whatever happens, this does not return while ``func`` runs:
        the bridge holds a cancellation back until the thread is done, so a cancelled
        request hears of it through its reader (see :meth:`tick`).  A request whose client left while it
        waited for a limiter token gets its thread, which returns at once (see
        :meth:`thread_begin`): a cancel scope to stop the wait early would cost every
        request on the hot path.
        """
        try:
            return await run_in_worker(func, limiter, self.abort)
        except BaseException:
            # The thread is done by now (the bridge waited for it); this only marks
            # the exchange stopped.
            await self.stop_thread()
            raise

    async def send_response(self, messages: list[Message]) -> None:
        """Send the messages the thread left (its whole response), unless the client left."""
        try:
            if not await self._may_respond():
                return
            for message in messages[:-1]:
                await self._send(message)
            # The last message is the final one.
            self._listen_to_the_end()
            await self._send(messages[-1])
        except OSError:
            return  # the client went away: nobody left to tell

    async def finish(self) -> None:
        """Wait until the output tasks are done (call :meth:`close` after)."""
        while self._outputs:
            await self._outputs.pop().wait()

    def close(self) -> None:
        """Stop the reader and the ticks (idempotent); the thread must be done."""
        self._closed = True
        self._ticker.discard(self)
        if self._reader_scope is not None:
            self._reader_scope.cancel()

    def release(self) -> None:
        """Free the body buffer; call once the thread and the task group are done."""
        self._body.close()

    async def stop_thread(self) -> None:
        """
        Abort, then wait until the thread has finished, even if cancelled meanwhile.

        For a request coroutine whose wait for the thread was interrupted: asyncio's
        ``Task.cancel()`` gets through anyio's shields, once or as many times as it is
        called, so the wait goes on until the thread is really done.
        """
        self.abort()
        with self._cond:
            if self._thread_done or not self._thread_started:
                # Not started: thread_begin() now refuses to call the application.
                return
            done = self._done_wakeup = anyio.Event()
        while not done.is_set():
            try:
                with anyio.CancelScope(shield=True):
                    await done.wait()
            except anyio.get_cancelled_exc_class():
                # The caller re-raises its own cancellation once the thread is done.
                continue

    def abort(self, error: BaseException | None = None) -> None:
        """Stop the exchange: wake the thread, which then raises :class:`ClientDisconnected`."""
        with self._cond:
            if error is not None and self.error is None:
                self.error = error
            self.aborted = True
            wakeup, self._reader_wakeup = self._reader_wakeup, None
            self._cond.notify_all()
        if wakeup is not None:
            wakeup.set()

    # -- event loop side: starting tasks ------------------------------------------------

    def _start_tasks(self, reader: bool, sender: bool) -> None:
        # A loop callback (see thread_start_tasks): it must not raise, so a failure to
        # start becomes an abort that the thread and the request coroutine see.
        def start() -> None:
            if reader:
                self._start_reader()
            if sender:
                self._start_output(self._sender)

        try:
            run_as_library(self._library, start)
        except BaseException as exc:
            self.abort(exc)

    def tick(self) -> None:
        """
        Check on the request (the loop's ticker calls this a few times a second).

        From the second tick on (a whole tick period later): start listening to the
        client if nobody does, and let a reader waiting on an application that did not
        read for a whole tick spill to the file.  A reader that did not run for a whole
        tick after it was started was cancelled before its first step: the request is
        cancelled, and the application must hear of it.
        """
        try:
            if self._reading and not self._reader_alive:
                # Not run since the last tick: it never will.
                if self._reader_late:
                    self.abort()
                    return
                self._reader_late = True
            with self._cond:
                if self._thread_done:
                    return
                self._ticks += 1
                stalled = self._ticks > 1 and self._takes == self._ticked_takes
                self._ticked_takes = self._takes
                wakeup = None
                if stalled and self._reader_wakeup is not None:
                    self._stalled = True
                    wakeup, self._reader_wakeup = self._reader_wakeup, None
            if wakeup is not None:
                wakeup.set()
            if self._ticks > 1 and not self._reading:
                run_as_library(self._library, self._start_reader)
        except BaseException as exc:
            self.abort(exc)

    def _start_reader(self) -> None:
        if not self._reading and not self._closed:
            self._reading = True
            self._reader_scope = anyio.CancelScope()
            self._task_group.start_soon(self._reader, self._reader_scope)

    def _receive_lock(self) -> anyio.Lock:
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    def _start_output(self, task: Callable[[], Awaitable[None]]) -> None:
        done = anyio.Event()
        self._outputs.append(done)

        async def run() -> None:
            try:
                await task()
            finally:
                done.set()

        self._task_group.start_soon(run)

    def _listen_to_the_end(self) -> None:
        # Before the final response message: a server may wait for someone to take the
        # rest of the body before it can finish the response (hypercorn's bounded queue).
        # Both flags are set on the loop: no lock needed to read them here.
        if not self._eof and not self.aborted:
            self._start_reader()

    async def _may_respond(self) -> bool:
        # Before the response start: claim it, after the request's one message if the
        # request has no body (see the module comment).
        if self._wait_for_request and not self._seen:
            async with self._receive_lock():
                if not self._seen:
                    await self._file(await self._receive_one())
        if self.aborted or self._responding:
            return False
        self._responding = True
        return True

    async def _receive_one(self) -> Message:
        message = await self._receive()
        self._seen = True
        return message

    # -- event loop side: tasks -----------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        # Cancellation is the request being cancelled: abort and let it propagate.
        # An OSError from send() is the client going away: not an error of ours.
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            self.abort()
            raise exc
        self.abort(None if isinstance(exc, OSError) else exc)

    async def _reader(self, scope: anyio.CancelScope) -> None:
        self._reader_alive = True
        if anyio.current_effective_deadline() == -math.inf:
            # Started in a cancelled request (anyio on asyncio does not cancel a task
            # started after its scope was): the application must hear of it.
            self.abort()
            return
        try:
            with scope:
                while True:
                    async with self._receive_lock():
                        message = await self._receive_one()
                    if await self._file(message):
                        return
        except BaseException as exc:
            with self._cond:
                done = self._thread_done
            if not done:
                self._fail(exc)
            elif isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            elif not isinstance(exc, OSError):
                # A malformed message after the application finished: still a server bug.
                self.abort(exc)

    async def _file(self, message: Message) -> bool:
        # File one received message; True when there is nothing more to receive.
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
            return await self._store(bytes(body), bool(message.get("more_body", False)))
        if kind == "http.disconnect":
            self.abort()
            return True
        raise ValueError(
            f"ASGI http message['type'] must be 'http.request' or "
            f"'http.disconnect', got {kind!r}"
        )

    async def _store(self, body: bytes, more: bool) -> bool:
        # Keep ``body`` for the application, waiting for room while it reads; True when
        # there is nothing more to receive.
        while True:
            with self._cond:
                if self._eof:
                    # Past the end of the body only http.disconnect is expected; a
                    # server that says otherwise cannot tell us about disconnects.
                    return True
                wakeup = None
                cut = False
                if not body or self._thread_done or self.cut:
                    pass  # nothing to keep, or nobody left to read it: dropped
                elif self._body.fits_in_memory():
                    self._body.add_to_memory(body)
                elif self._stalled and self._body.fits_in_file(len(body)):
                    self._body.add_to_file(body)
                elif self._stalled or self.aborted:
                    cut = not self.aborted
                else:
                    wakeup = self._reader_wakeup = anyio.Event()
                if wakeup is None and not cut:
                    if not more:
                        self._eof = True
                    self._cond.notify_all()
                    return False
            if cut:
                self._cut()
                continue
            assert wakeup is not None
            await wakeup.wait()

    def _cut(self) -> None:
        # The application does not read and the body exceeds what we keep: end the
        # request for it, answer 413 if nothing was sent, and drop the rest of the body.
        with self._cond:
            self.cut = True
            self.aborted = True
            self._cond.notify_all()
        logger.warning(
            "request body over the adapter's limits while the WSGI application did not "
            "read it: request cut%s",
            "" if self._responding else ", answered 413",
        )
        if not self._responding:
            self._responding = True
            self._start_output(self._refuse)

    async def _refuse(self) -> None:
        try:
            await self._send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", b"text/plain"),
                        (b"content-length", str(len(_TOO_LARGE_BODY)).encode()),
                    ],
                }
            )
            await self._send({"type": "http.response.body", "body": _TOO_LARGE_BODY})
        except OSError:
            return

    async def _sender(self) -> None:
        try:
            started = False
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
                if not started:
                    if not await self._may_respond():
                        return
                    started = True
                if _is_final(message):
                    self._listen_to_the_end()
                await self._send(message)
                with self._cond:
                    self._unsent -= size
                    if self._unsent < self._limit:
                        self._cond.notify_all()
        except BaseException as exc:
            self._fail(exc)
