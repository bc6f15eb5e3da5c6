# stats(): a snapshot of the bridge's threads, calls and queues, taken on demand.
#
# Nothing here runs unless someone calls stats(): it walks the live threads
# (threading.enumerate) and reads what the pools keep anyway (idle lists, queue
# sizes, each loop thread's call count, limiter statistics). The one thing the hot
# path records for it is the start time of each thread-sensitive call, on its thread
# (_threads._LaneThread). Numbers are read without locks while calls come and go: each
# is exact when the bridge is still, and off by the calls that moved meanwhile otherwise.
from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from . import _limits, _threads, _tokens
from ._backends._base import LoopThread


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """
    The worker threads of ``sync_to_async(thread_sensitive=False)``.

    :ivar threads: Worker threads alive.
    :ivar idle: Of those, waiting for work.
    :ivar in_flight: Calls running on a worker thread.
    :ivar queued: ``thread_sensitive=False`` calls waiting for a worker (their
        limiter's tokens all taken, or the running workers about to take them).
    """

    threads: int
    idle: int
    in_flight: int
    queued: int


@dataclass(frozen=True, slots=True)
class SensitiveStats:
    """
    The threads of thread-sensitive calls: the process-wide one and the contexts'.

    :ivar threads: Sensitive threads alive: the process-wide one (once used) and context
        threads.
    :ivar context_threads: Of those, threads made for ``ThreadSensitiveContext`` blocks.
    :ivar context_thread_limit: The cap set by ``set_context_thread_limit`` (None: no
        cap).
    :ivar contexts_waiting: Contexts waiting for a thread because the cap is reached.
    :ivar longest_context_wait: Seconds the oldest of those contexts has waited (0.0
        when none waits).
    :ivar in_flight: Calls running on a sensitive thread.
    :ivar queued: Calls queued for a sensitive thread, or for a context thread to start.
    :ivar longest_hold: Seconds the longest-running current call has held its sensitive
        thread (0.0 when all are idle): how long the calls queued behind it have been
        stuck.
    :ivar holder: The function of that call, as ``module.qualname`` (None when all are
        idle).
    """

    threads: int
    context_threads: int
    context_thread_limit: int | None
    contexts_waiting: int
    longest_context_wait: float
    in_flight: int
    queued: int
    longest_hold: float
    holder: str | None


@dataclass(frozen=True, slots=True)
class LoopThreadStats:
    """
    The event-loop threads that run ``async_to_sync`` calls from plain threads.

    :ivar threads: Loop threads alive (asyncio and trio).
    :ivar idle: Of those, kept idle for the next call.
    :ivar in_flight: Calls running on them.
    """

    threads: int
    idle: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class WsgiStats:
    """
    Requests of the ``WsgiToAsgi`` adapters that have a ``limiter`` of their own.

    :ivar adapters: ``WsgiToAsgi`` adapters alive.
    :ivar default_limiter: Of those, adapters sharing the loop's default thread limiter
        (their requests show in ``stats().workers.queued``, not here).
    :ivar in_flight: Requests running a WSGI application in a thread.
    :ivar queued: Requests waiting for a thread (a limiter token).
    :ivar capacity: Requests the adapters' own limiters allow at once, summed.
    """

    adapters: int
    default_limiter: int
    in_flight: int
    queued: int
    capacity: float


@dataclass(frozen=True, slots=True)
class Stats:
    """
    A snapshot of the bridge's threads and calls; see :func:`stats`.

    :ivar workers: Worker threads for ``thread_sensitive=False`` calls.
    :ivar sensitive: Threads for thread-sensitive calls.
    :ivar loops: Event-loop threads of ``async_to_sync``.
    :ivar wsgi: ``WsgiToAsgi`` requests.
    """

    workers: WorkerStats
    sensitive: SensitiveStats
    loops: LoopThreadStats
    wsgi: WsgiStats


#: Every WsgiToAsgi adapter alive; wsgi.py adds each one it makes.
wsgi_adapters: weakref.WeakSet[Any] = weakref.WeakSet()


def stats() -> Stats:
    """
    Take a snapshot of the bridge's threads, calls in flight and queues.

    Safe to call from any thread, at any time; it costs a walk over the live
    threads and takes no lock that a call waits on. Each number is exact while
    the bridge is still; under load, calls that start or end during the walk may be
    counted on either side. Calls run on a sync thread waiting in ``async_to_sync``
    (they never queue for a pool) are not counted.

    :returns: the numbers, as plain ints, floats and strings
    """
    now = time.monotonic()
    pool = _threads.worker_pool
    workers = worker_idle = 0
    lanes: list[_threads._LaneThread] = []
    loop_threads = loop_idle = loop_calls = 0
    for thread in threading.enumerate():
        if isinstance(thread, _threads._Worker):
            workers += thread._pool is pool
        elif isinstance(thread, _threads._LaneThread):
            if not thread.lane.exited:  # else it is on its way out, its slot given back
                lanes.append(thread)
        elif isinstance(thread, LoopThread):
            loop_threads += 1
            loop_idle += not thread.in_use
            loop_calls += thread._calls
    worker_idle = min(len(pool.idle), workers)
    return Stats(
        workers=WorkerStats(
            threads=workers,
            idle=worker_idle,
            in_flight=workers - worker_idle,
            queued=sum(len(queue.pending) for queue in list(_tokens.queues.values())),
        ),
        sensitive=_sensitive(lanes, now),
        loops=LoopThreadStats(
            threads=loop_threads, idle=loop_idle, in_flight=loop_calls
        ),
        wsgi=_wsgi(),
    )


def _sensitive(lanes: list[_threads._LaneThread], now: float) -> SensitiveStats:
    in_flight = queued = 0
    longest = 0.0
    holder = None
    for thread in lanes:
        queued += thread.lane._queue.qsize()
        current, since = thread.current, thread.since
        if current is None or thread.current is not current:
            continue  # idle, or moved on to the next call while we looked
        in_flight += 1
        if holder is None or now - since > longest:
            longest = max(now - since, 0.0)
            holder = function_name(current)
    with _limits._lock:
        pending = list(_limits.waiting.values())
    queued += sum(len(item.waiters) + len(item.items) for item in pending)
    return SensitiveStats(
        threads=len(lanes),
        context_threads=sum(
            thread.lane is not _threads.default_lane for thread in lanes
        ),
        context_thread_limit=_limits.limit,
        contexts_waiting=len(pending),
        longest_context_wait=max((now - item.since for item in pending), default=0.0),
        in_flight=in_flight,
        queued=queued,
        longest_hold=longest,
        holder=holder,
    )


def _wsgi() -> WsgiStats:
    adapters = list(wsgi_adapters)
    in_flight = queued = 0
    capacity = 0.0
    shared = 0
    for adapter in adapters:
        limiter = adapter.limiter
        if limiter is None:
            shared += 1
            continue
        in_flight += limiter.borrowed_tokens
        queue = _tokens.queues.get(limiter)
        queued += 0 if queue is None else len(queue.pending)
        capacity += limiter.total_tokens
    return WsgiStats(
        adapters=len(adapters),
        default_limiter=shared,
        in_flight=in_flight,
        queued=queued,
        capacity=capacity,
    )


def function_name(item: object) -> str:
    """``module.qualname`` of the function a work item runs."""
    func = getattr(item, "func", None) or getattr(item, "fn", None) or item
    func = getattr(func, "func", func)  # functools.partial, SyncToAsync
    module = getattr(func, "__module__", None)
    name = getattr(func, "__qualname__", None) or repr(func)
    return f"{module}.{name}" if module else name
