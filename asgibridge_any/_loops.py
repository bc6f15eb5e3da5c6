# Event loops in threads of their own, for async_to_sync called where no loop runs.
#
# Starting an asyncio loop per call costs ~0.1 ms and trio.run ~0.75 ms, so loop
# threads are kept and reused: a call borrows an idle one (or starts one), runs its
# coroutine there, and gives it back. One call at a time per loop thread, so "nothing
# of one call leaks into the next" is enforced by cleaning up after each call:
# asyncio tasks left behind are cancelled and awaited, async generators closed; under
# trio the coroutine runs in a task whose nurseries end with it.
from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from typing import TYPE_CHECKING

from ._threads import _PoolThread

if TYPE_CHECKING:
    from contextvars import Context

    from ._backends import LoopHandle
    from ._backends._base import CoroutineFactory

#: Idle loop threads kept per backend; more than that are stopped when returned.
MAX_IDLE = 4
BACKENDS = ("asyncio", "trio")


class LoopThread(_PoolThread):
    """A thread running one event loop for as long as the thread lives."""

    handle: LoopHandle

    def __init__(self, backend: str) -> None:
        super().__init__(name=f"asgibridge_any {backend} loop", daemon=True)
        self.backend = backend
        self.in_use = True

    def is_idle(self) -> bool:
        return not self.in_use

    def submit(self, factory: CoroutineFactory, context: Context) -> None:
        """Run ``factory()`` on this loop in ``context``; the caller waits on its own."""
        if not self.handle.start_coroutine(factory, context, None):
            raise RuntimeError(f"{self.name} stopped unexpectedly")

    def stop(self) -> None:
        raise NotImplementedError


class AsyncioLoopThread(LoopThread):
    def __init__(self) -> None:
        super().__init__("asyncio")
        from ._backends._asyncio import AsyncioHandle

        self.loop = asyncio.new_event_loop()
        self.handle = AsyncioHandle(self.loop)
        self._running = threading.Event()
        self.start()
        # call_soon_threadsafe works before run_forever, but is_running() is checked
        # by start_coroutine: wait until the loop really runs.
        self._running.wait()

    def run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        loop.call_soon(self._running.set)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


async def cleanup_asyncio() -> None:
    """Cancel and await every other task on this loop; close its async generators."""
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks(loop) if task is not current]
    for task in leftovers:
        task.cancel()
    if leftovers:
        await asyncio.gather(*leftovers, return_exceptions=True)
    # loop.shutdown_asyncgens() would also mark the loop as finished for good;
    # close the generators it tracks instead, so the loop stays reusable.
    generators = getattr(loop, "_asyncgens", None)
    if generators:
        pending = list(generators)
        generators.clear()
        await asyncio.gather(*(gen.aclose() for gen in pending), return_exceptions=True)


class TrioLoopThread(LoopThread):
    def __init__(self) -> None:
        super().__init__("trio")
        self._ready = threading.Event()
        self.start()
        self._ready.wait()

    def run(self) -> None:
        import trio

        trio.run(self._main)

    async def _main(self) -> None:
        import trio

        from ._backends._trio import running_handle

        self._stop_event = trio.Event()
        handle = running_handle()
        assert handle is not None
        self.handle = handle
        self._ready.set()
        await self._stop_event.wait()

    def stop(self) -> None:
        import trio

        try:
            self.handle.token.run_sync_soon(self._stop_event.set)  # type: ignore[attr-defined]
        except trio.RunFinishedError:
            pass


class LoopPool:
    """Idle loop threads per backend, borrowed for one call at a time."""

    def __init__(self) -> None:
        self.idle: dict[str, deque[LoopThread]] = {name: deque() for name in BACKENDS}

    def acquire(self, backend: str) -> LoopThread:
        idle = self.idle[backend]
        while True:
            try:
                thread = idle.pop()
            except IndexError:
                return _new_loop_thread(backend)
            if thread.is_alive():
                thread.in_use = True
                return thread

    def release(self, thread: LoopThread) -> None:
        idle = self.idle[thread.backend]
        if len(idle) >= MAX_IDLE:
            thread.stop()
            return
        thread.in_use = False
        idle.append(thread)


def _new_loop_thread(backend: str) -> LoopThread:
    if backend == "asyncio":
        return AsyncioLoopThread()
    try:
        import trio  # noqa: F401
    except ImportError:
        raise RuntimeError(
            "async_to_sync(backend='trio') needs trio: install asgibridge_any[trio]"
        ) from None
    return TrioLoopThread()


def validate_backend(backend: str | None) -> str:
    if backend is None:
        return "asyncio"
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}; valid backends are "
            + ", ".join(repr(name) for name in BACKENDS)
        )
    return backend


pool = LoopPool()


def _after_fork_in_child() -> None:
    global pool
    pool = LoopPool()


os.register_at_fork(after_in_child=_after_fork_in_child)
