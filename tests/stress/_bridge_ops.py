# One storm operation ("op") and everything that runs it: the record each op keeps, the
# cross-loop event its helpers wait on, the cancellation harness (every kind of each loop,
# at a chosen moment) and the bodies of the shapes. Kept apart from storm_bridge.py, which
# plans, drives and reports. Only the public API of the package is used.
from __future__ import annotations

import asyncio
import threading
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import sniffio

from asgibridge_any.sync import (
    ThreadSensitiveContext,
    async_to_sync,
    sync_to_async,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

#: Bridge crossings (one ``sync_to_async`` await or one ``async_to_sync`` call) per shape.
CROSSINGS = {
    "s2a_sensitive": 1,
    "s2a_pool": 1,
    "nested": 5,
    "ts_context": 2,
    "outliving": 3,
    "a2s_thread": 2,
    "nested_thread": 4,
    "single_context": 2,
    "interrupt": 3,
    "late_sensitive": 3,
}
#: Shapes driven from plain threads (the rest run as tasks on the storm's loop).
THREAD_SHAPES = frozenset(
    {"a2s_thread", "nested_thread", "single_context", "interrupt"}
)
CANCELLABLE = frozenset(
    {"s2a_sensitive", "s2a_pool", "nested", "ts_context", "a2s_thread", "nested_thread"}
)
RAISABLE = frozenset(
    {"s2a_sensitive", "s2a_pool", "nested", "a2s_thread", "nested_thread"}
)
#: Shapes with an async level below the first sync one (where "in_inner" can land).
NESTED = frozenset({"nested", "nested_thread"})
CANCEL_KINDS = {
    "asyncio": (
        "task.cancel",
        "asyncio.timeout",
        "anyio.CancelScope",
        "anyio.move_on_after",
        "anyio.fail_after",
    ),
    "trio": (
        "trio.CancelScope",
        "trio.move_on_after",
        "trio.fail_after",
        "nursery.cancel",
    ),
}
#: early: after a few checkpoints or a tiny deadline; in_thread: while the first sync
#: function runs (it waits to be released); in_inner: while the coroutine below it
#: waits; absorb: same, and that coroutine swallows its cancellation and returns;
#: after_inner: while the first sync function runs on after its async_to_sync returned.
MOMENTS = ("early", "in_thread", "in_inner", "absorb", "after_inner")
#: Longest wait of any helper; reaching it means the bridge lost a wake-up.
PATIENCE = 10.0
_ABSORBED = -(10**9)


class StormError(Exception):
    """Raised by a leaf function; must reach the caller as this very object."""

    def __init__(self, op_id: int) -> None:
        super().__init__(f"storm op {op_id}")
        self.op_id = op_id


class _Handled(Exception):
    """The exception a caller is handling while it calls across the bridge."""


def _threadsafe(fn: Callable[[], object]) -> Callable[[], None]:
    # A non-blocking "run fn on the current loop soon", callable from any thread.
    if sniffio.current_async_library() == "asyncio":
        loop = asyncio.get_running_loop()

        def wake_asyncio() -> None:
            try:
                loop.call_soon_threadsafe(fn)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        return wake_asyncio
    import trio

    token = trio.lowlevel.current_trio_token()

    def wake_trio() -> None:
        try:
            token.run_sync_soon(fn)
        except trio.RunFinishedError:
            pass

    return wake_trio


class CrossEvent:
    """An event set from any thread and awaited on any loop (asyncio or trio)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._wakers: list[Callable[[], None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            if self._set:
                return
            self._set = True
            wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()

    async def wait(self) -> None:
        if self._set:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        with self._lock:
            if not self._set:
                self._wakers.append(_threadsafe(event.set))
            else:
                event.set()
        await event.wait()


@dataclass(eq=False)
class Op:
    """One storm operation: its planned shape, and what happened to it."""

    id: int
    shape: str
    sensitive: tuple[bool, ...]
    raises: bool = False
    cancel: str | None = None
    moment: str | None = None
    checkpoints: int = 0
    delay: float = 0.0
    helper_thread: bool = False
    force_new: bool = False
    #: a2s_thread: the coroutine leaves an async generator (and on asyncio a task)
    #: behind; s2a_*: the call is made inside an ``except`` block.
    leaves: bool = False
    in_except: bool = False
    # What happened; ``state`` is planned, running or ended.
    state: str = "planned"
    outcome: str = "pending"
    failures: list[str] = field(default_factory=list)
    value: int | None = None
    exc: StormError | None = None
    must_cancel: bool = False
    func_finished: bool = False
    body_done: bool = False
    cancelling_at_value: int = 0
    inner_cancelled: bool = False
    threads_seen: list[int] = field(default_factory=list)
    gate: CrossEvent = field(default_factory=CrossEvent)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> int:
        return self.id * 31 + 7

    @property
    def expected(self) -> int:
        return self.base + CROSSINGS[self.shape]

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def where(self) -> str:
        parts = [self.shape]
        if self.cancel:
            parts.append(f"{self.cancel}@{self.moment}")
        if self.raises:
            parts.append("raising")
        flags = {
            "second thread": self.helper_thread,
            "force_new_loop": self.force_new,
            "leaves a generator": self.leaves,
            "in except": self.in_except,
        }
        parts.extend(name for name, on in flags.items() if on)
        return "/".join(parts)


def _cancelling() -> int:
    if sniffio.current_async_library() != "asyncio":
        return 0
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


# -- the levels of a shape ---------------------------------------------------------------


def sync_level(op: Op, top: bool, inner: Callable[[], int]) -> int:
    # A sync function reached through sync_to_async. The top one (the first below the
    # cancellation harness) can hold still until released, so a cancellation lands
    # while it runs, and marks when it is done (a cancellation requested before that
    # must not be swallowed).
    try:
        op.threads_seen.append(threading.get_ident())
        if top and op.moment == "in_thread":
            _hold(op)
        value = inner()
        if top and op.moment == "after_inner":
            _hold(op)
        return value + 1
    finally:
        if top:
            op.func_finished = True


def _hold(op: Op) -> None:
    op.gate.set()
    if not op.release.wait(PATIENCE):
        op.fail("first sync function was never released (canceller lost)")


def leaf(op: Op) -> int:
    if op.raises:
        op.exc = StormError(op.id)
        raise op.exc
    return op.base


def chain_sync(op: Op, rest: tuple[bool, ...], top: bool) -> int:
    """Sync level of a nested shape: go down through async_to_sync while levels remain."""

    def inner() -> int:
        if not rest:
            return leaf(op)
        return async_to_sync(chain_async)(op, rest, top)

    return sync_level(op, top, inner)


async def chain_async(op: Op, rest: tuple[bool, ...], below_top: bool) -> int:
    """Async level of a nested shape (the one right below the top sync level can wait)."""
    if below_top and op.moment in ("in_inner", "absorb"):
        op.gate.set()
        try:
            await anyio.sleep(PATIENCE)
        except anyio.get_cancelled_exc_class():
            op.inner_cancelled = True
            if op.moment == "absorb":
                return _ABSORBED
            raise
        op.fail("inner coroutine slept to the end: the cancellation never reached it")
    value = await sync_to_async(chain_sync, thread_sensitive=rest[0])(
        op, rest[1:], False
    )
    return value + 1


# -- the cancellation harness ------------------------------------------------------------


def _cancelled(op: Op, kind: str) -> None:
    # The harness saw the cancellation arrive; a value already recorded means the
    # body returned and the cancellation surfaced only afterwards.
    if op.outcome == "pending":
        op.outcome = "cancelled"
    elif op.outcome == "value" and op.cancelling_at_value == 0:
        op.fail(f"{kind}: body returned a value, then the cancellation surfaced")


async def _attempt(op: Op, body: Callable[[], Awaitable[int]]) -> None:
    # Cancellations propagate; everything else is recorded.
    try:
        value = await body()
    except StormError as exc:
        op.outcome = "raised"
        if exc is not op.exc:
            op.fail("a different StormError object arrived than the one raised")
        if not op.raises:
            op.fail("StormError from an op that did not raise")
        return
    except anyio.get_cancelled_exc_class():
        raise
    except BaseException as exc:
        op.outcome = "error"
        op.fail(f"unexpected {type(exc).__name__}: {exc!r}")
        return
    finally:
        op.body_done = True
        op.gate.set()
    op.cancelling_at_value = _cancelling()
    op.outcome = "value"
    op.value = value


async def _trigger(op: Op) -> bool:
    # Wait for the planned moment; tell whether the body is still running then.
    if op.moment == "early":
        for _ in range(op.checkpoints):
            await anyio.lowlevel.checkpoint()
    else:
        await op.gate.wait()
    return not op.body_done


async def _canceller(op: Op, cancel: Callable[[], object], strict: bool) -> None:
    # ``strict``: the loop guarantees the body sees a cancellation requested while it
    # is suspended (asyncio's task.cancel), so any value afterwards is a lost one.
    if await _trigger(op):
        op.must_cancel = strict or not op.func_finished
        cancel()
    op.release.set()


async def _deadline_watch(op: Op, fired: Callable[[], bool]) -> None:
    # For deadline kinds at a late moment: hold the first sync function until the
    # deadline has certainly fired, so the cancellation lands while it runs.
    if op.moment != "early":
        await op.gate.wait()
        # A deadline firing sets no event anyone could wait on: poll for it.
        with anyio.move_on_after(PATIENCE):
            while not op.body_done and not fired():  # noqa: ASYNC110
                await anyio.sleep(0.0005)
        if not op.body_done and fired():
            op.must_cancel = not op.func_finished
    op.release.set()


async def _run_task_cancel(op: Op, body: Callable[[], Awaitable[int]]) -> None:
    task = asyncio.get_running_loop().create_task(_attempt(op, body))

    def cancel() -> None:
        task.cancel()

    await _canceller(op, cancel, strict=True)
    await asyncio.wait([task])
    if task.cancelled():
        op.outcome = "cancelled"
    elif task.exception() is not None:
        op.fail(f"task ended with {task.exception()!r}")


async def _run_asyncio_timeout(op: Op, body: Callable[[], Awaitable[int]]) -> None:
    async with anyio.create_task_group() as tg:
        try:
            async with asyncio.timeout(op.delay) as cm:
                tg.start_soon(_deadline_watch, op, cm.expired)
                await _attempt(op, body)
        except TimeoutError:
            _cancelled(op, "asyncio.timeout")
        if cm.expired() and op.outcome == "value":
            op.must_cancel = True
        op.release.set()


async def _run_scope(op: Op, body: Callable[[], Awaitable[int]]) -> None:
    kind = op.cancel or ""
    manager: Any
    if kind.startswith("trio."):
        import trio

        if kind == "trio.CancelScope":
            manager = trio.CancelScope()
        elif kind == "trio.move_on_after":
            manager = trio.move_on_after(op.delay)
        else:
            manager = trio.fail_after(op.delay)
        too_slow: tuple[type[BaseException], ...] = (trio.TooSlowError,)
    else:
        if kind == "anyio.CancelScope":
            manager = anyio.CancelScope()
        elif kind == "anyio.move_on_after":
            manager = anyio.move_on_after(op.delay)
        else:
            manager = anyio.fail_after(op.delay)
        too_slow = (TimeoutError,)
    # fail_after hands out its scope only on entry.
    scopes: list[Any] = []
    async with anyio.create_task_group() as tg:
        if kind.endswith("CancelScope"):
            tg.start_soon(_canceller, op, manager.cancel, False)
        else:
            tg.start_soon(
                _deadline_watch, op, lambda: bool(scopes) and scopes[0].cancel_called
            )
        try:
            with manager as scope:
                scopes.append(scope)
                await _attempt(op, body)
        except too_slow:
            _cancelled(op, kind)
        if scopes and scopes[0].cancelled_caught:
            _cancelled(op, kind)
        op.release.set()


async def _run_nursery_cancel(op: Op, body: Callable[[], Awaitable[int]]) -> None:
    import trio

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_attempt, op, body)
        await _canceller(op, nursery.cancel_scope.cancel, False)
    # The nursery's own exit may catch the cancellation after a late value: only an
    # attempt that recorded nothing was cancelled.
    if nursery.cancel_scope.cancelled_caught and op.outcome == "pending":
        op.outcome = "cancelled"


async def guarded(op: Op, body: Callable[[], Awaitable[int]]) -> None:
    """Run ``body`` under the op's cancellation kind and record how it ended."""
    before = _cancelling()
    try:
        if op.cancel is None:
            await _attempt(op, body)
        elif op.cancel == "task.cancel":
            await _run_task_cancel(op, body)
        elif op.cancel == "asyncio.timeout":
            await _run_asyncio_timeout(op, body)
        elif op.cancel == "nursery.cancel":
            await _run_nursery_cancel(op, body)
        else:
            await _run_scope(op, body)
    except BaseException as exc:  # a cancellation that escaped its scope, or worse
        op.fail(f"{type(exc).__name__} escaped the harness: {exc!r}")
    finally:
        op.release.set()
    after = _cancelling()
    if after != before:
        op.fail(f"task.cancelling() is {after} after the call, was {before}")


def judge(op: Op) -> None:
    """Check the outcome against the plan (called once the op ended)."""
    if op.outcome == "pending":
        op.fail("no outcome recorded")
    elif op.outcome == "value":
        if op.cancel is not None and (op.must_cancel or op.cancelling_at_value):
            # The where() of the op names the kind and the moment.
            op.fail(
                "cancellation lost: the call returned a value "
                f"(task.cancelling()={op.cancelling_at_value})"
            )
        elif op.raises:
            op.fail("raising op returned a value")
        elif op.value != op.expected and op.value is not None and op.value >= 0:
            op.fail(f"wrong value {op.value}, expected {op.expected}")
        elif op.value is not None and op.value < 0:
            op.fail("the absorbed inner value reached the outer caller")
    elif op.outcome == "cancelled" and op.cancel is None:
        op.fail("cancelled without any cancellation requested")
    if (
        op.moment in ("in_inner", "absorb")
        and op.outcome == "cancelled"
        and not op.inner_cancelled
        and op.gate.is_set()
        and op.body_done
    ):
        op.fail("outer call cancelled but its inner coroutine never saw it")


# -- shape bodies ------------------------------------------------------------------------


def loop_body(op: Op) -> Callable[[], Awaitable[int]]:
    """The awaited part of a loop-side shape (what the harness guards)."""
    if op.shape in ("s2a_sensitive", "s2a_pool"):

        async def single() -> int:
            call = sync_to_async(sync_level, thread_sensitive=op.sensitive[0])
            if not op.in_except:
                return await call(op, True, lambda: leaf(op))
            try:
                raise _Handled(op.id)
            except _Handled as handled:
                # The caller's exception may be shown to the function, not changed.
                before = handled.__traceback__
                frames = len(traceback.extract_tb(before))
                value = await call(op, True, lambda: leaf(op))
                after = len(traceback.extract_tb(handled.__traceback__))
                if handled.__traceback__ is not before or after != frames:
                    op.fail(
                        f"the caller's exception gained {after - frames} traceback "
                        "frames across the bridge"
                    )
                return value

        return single
    if op.shape == "nested":

        async def nested() -> int:
            return await sync_to_async(chain_sync, thread_sensitive=op.sensitive[0])(
                op, op.sensitive[1:], True
            )

        return nested
    if op.shape == "ts_context":
        return lambda: _ts_context(op)
    raise AssertionError(op.shape)


async def _ts_context(op: Op) -> int:
    values = [0, 0]
    idents = [0, 0]

    def record(slot: int) -> int:
        idents[slot] = threading.get_ident()
        return leaf(op)

    async def call(slot: int) -> None:
        values[slot] = await sync_to_async(sync_level)(
            op, slot == 0, lambda: record(slot)
        )

    async with ThreadSensitiveContext(), anyio.create_task_group() as tg:
        tg.start_soon(call, 0)
        tg.start_soon(call, 1)
    if idents[0] != idents[1]:
        op.fail("two calls in one ThreadSensitiveContext ran on different threads")
    return values[0] + values[1] - op.base


async def run_outliving(op: Op) -> None:
    """A task started inside a ThreadSensitiveContext keeps calling after the block."""
    ended = anyio.Event()
    late: list[int] = []

    async def outlive() -> None:
        await ended.wait()
        late.extend([await sync_to_async(leaf)(op), await sync_to_async(leaf)(op)])

    try:
        async with anyio.create_task_group() as tg:
            async with ThreadSensitiveContext():
                tg.start_soon(outlive)
                first = await sync_to_async(leaf)(op)
            ended.set()
    except BaseException as exc:
        op.outcome = "error"
        op.fail(f"task outliving its ThreadSensitiveContext: {exc!r}")
        return
    op.outcome = "value"
    op.value = first + len(late) + 1 if late == [op.base, op.base] else -1
    if op.value < 0:
        op.fail(f"outliving task's calls returned {late!r}")
