# thread_sensitive=False calls under load: limiter tokens passed from thread to thread.
#
# Each such call needs one token of its limiter (anyio's default thread limiter unless
# the caller gave one) while it runs. Taking and returning a token happens on the
# event loop (anyio's limiters are not thread-safe), so a naive scheme makes every
# call go round the loop before the next can start, and every worker park and wake
# in between. Here a token is held by a *run* (one worker's stretch of work) rather
# than by a call: a worker that finishes a call takes the next queued call itself,
# with the token it already holds, and gives the token back (through the loop, in the
# same batch as its wake-ups) only when the queue is empty. The bound stays exact:
# every running call is inside a run, and every run holds a token.
#
# Growth: a call starts a new run at once when nothing of this queue runs or an idle
# worker is waiting; otherwise it queues, and a pump task adds runs, one, two, four
# ... at a time, each after GROW_DELAY seconds in which the queue did not empty. A
# burst of short calls is then finished by a few threads instead of starting one per
# token, and calls that wait for each other still get threads of their own.
from __future__ import annotations

import weakref
from collections import deque
from contextvars import copy_context
from typing import TYPE_CHECKING, TypeVar

import anyio

from . import _threads
from ._backends import current_handle
from ._calls import ThreadCall, run_in_thread

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._backends import LoopHandle

_T = TypeVar("_T")

#: Seconds the queued calls wait for the running workers before a run is added.
GROW_DELAY = 0.0005

#: The token queue of every limiter in use (stats() reads them).
queues: weakref.WeakKeyDictionary[anyio.CapacityLimiter, TokenQueue] = (
    weakref.WeakKeyDictionary()
)


async def run_in_worker(
    func: Callable[[], _T],
    limiter: anyio.CapacityLimiter | None = None,
    on_cancel: Callable[[], object] | None = None,
) -> _T:
    """
    Run ``func()`` in a worker thread, within ``limiter`` (the loop's default one).

    For the package's own thread work (the WSGI adapter's requests): the pool and the
    rules of ``sync_to_async(thread_sensitive=False)``, in a copy of the caller's
    context, nothing copied back. A cancellation is held back until ``func`` is done;
    ``on_cancel()`` (on the loop) tells ``func`` to stop early.
    """
    handle = current_handle()
    if limiter is None:
        limiter = handle.default_limiter()
    call = ThreadCall(handle, func, (), {}, copy_context(), None, None)
    call.on_cancel = on_cancel
    await run_in_thread(handle, call, queue_for(limiter, handle).submit)
    if call.ok:
        return call.value  # type: ignore[no-any-return]
    raise call.value


def queue_for(limiter: anyio.CapacityLimiter, handle: LoopHandle) -> TokenQueue:
    """The token queue of ``limiter`` (made on first use, on the limiter's loop)."""
    try:
        return queues[limiter]
    except KeyError:
        queue = queues[limiter] = TokenQueue(limiter, handle)
        return queue


class _Run:
    """One worker's stretch of calls under one token (the limiter's borrower)."""

    __slots__ = ("call", "queue")

    def __init__(self, queue: TokenQueue, call: ThreadCall) -> None:
        self.queue = queue
        self.call: ThreadCall | None = call

    def run(self) -> None:
        call = self.call
        assert call is not None
        self.call = None
        queue = self.queue
        pending = queue.pending
        while True:
            call.execute()
            following = None
            if pending:  # checked first: a raised IndexError costs more than a call
                try:
                    following = pending.popleft()
                except IndexError:  # another run took the last one
                    pass
            if following is None:
                # The token goes back before the last caller resumes, so a caller
                # never sees its own call's token still taken.
                queue.handle.call_soon_batched(self._release)
                call.handle.wake(call)
                return
            call.handle.wake(call)
            call = following

    def _release(self) -> None:
        self.queue.run_ended(self)

    def abandon(self, exc: BaseException) -> None:
        # The work-item protocol; the worker pool itself never abandons work.
        if self.call is not None:
            self.call.abandon(exc)
        self.queue.handle.call_soon_batched(self._release)


class _Placeholder:
    """A borrower that holds a token only for the instant it is passed on."""

    __slots__ = ()


class TokenQueue:
    """The ``thread_sensitive=False`` calls of one limiter, and the runs serving them."""

    __slots__ = ("__weakref__", "handle", "limiter", "pending", "pumping", "runs")

    def __init__(self, limiter: anyio.CapacityLimiter, handle: LoopHandle) -> None:
        self.limiter = limiter
        self.handle = handle
        #: Calls waiting for a run; workers pop them (deque ops are atomic).
        self.pending: deque[ThreadCall] = deque()
        #: Runs holding a token (changed on the loop only).
        self.runs = 0
        self.pumping = False

    def submit(self, call: ThreadCall) -> None:
        """On the loop: run ``call`` in a worker thread, within the limiter's bound."""
        if not self.pending and (not self.runs or _threads.worker_pool.idle):
            run = _Run(self, call)
            try:
                self.limiter.acquire_on_behalf_of_nowait(run)
            except anyio.WouldBlock:
                pass
            else:
                self.runs += 1
                _threads.worker_pool.submit(run)
                return
        call.unqueue = self._unqueue
        self.pending.append(call)
        if not self.pumping:
            self.pumping = True
            self.handle.spawn_system_task(self._pump)

    def _unqueue(self, call: ThreadCall) -> bool:
        # A cancelled call that no worker took yet is simply dropped.
        try:
            self.pending.remove(call)
        except ValueError:
            return False
        return True

    def run_ended(self, run: _Run) -> None:
        """On the loop: a run found the queue empty; its token goes back."""
        self.limiter.release_on_behalf_of(run)
        self.runs -= 1
        if self.pending and not self.runs:
            # Calls queued while the token was on its way back: serve them.
            self._start_run()

    def _start_run(self) -> bool:
        # On the loop. A run always starts with a call of its own (taken off the
        # queue here), so every run ends by handing its token back before it wakes
        # its last caller: once every caller resumed, every token is back.
        try:
            call = self.pending.popleft()
        except IndexError:
            return False
        run = _Run(self, call)
        try:
            self.limiter.acquire_on_behalf_of_nowait(run)
        except anyio.WouldBlock:
            self.pending.appendleft(call)
            return False
        call.unqueue = None
        self.runs += 1
        _threads.worker_pool.submit(run)
        return True

    async def _pump(self) -> None:
        try:
            batch = 1
            while self.pending:
                await anyio.sleep(GROW_DELAY)
                for _ in range(batch):
                    if not self.pending:
                        return
                    if not self._start_run():
                        # No token free: wait for one the anyio way, then start a
                        # run with it (or give it back if the queue emptied).
                        placeholder = _Placeholder()
                        await self.limiter.acquire_on_behalf_of(placeholder)
                        self.limiter.release_on_behalf_of(placeholder)
                        self._start_run()
                batch *= 2
        finally:
            self.pumping = False
