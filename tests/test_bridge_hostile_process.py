"""
The bridge under hostile use, in a child process: Ctrl-C while a thread waits in
``async_to_sync``, and ``AsyncSingleThreadContext`` shared in ways that used to hang.

These scenarios can leave a process unusable when they go wrong, so each runs in a
fresh interpreter that reports what happened as JSON; a watchdog in the child turns a
hang into a report, and the parent's timeout kills a child that hangs anyway.
"""

from __future__ import annotations

import pytest

from ._bridge_helpers import run_in_subprocess

# Shared by every child: ``report`` collects results, ``finish()`` prints it, and
# ``watch(stage)`` returns an event to set once ``stage`` is over; if it is not set
# within 10 s, the child reports the hang and exits.
_PRELUDE = """
import json, os, sys, threading

report = {}


def finish():
    print(json.dumps(report), flush=True)


def watch(stage):
    done = threading.Event()

    def watchdog():
        if not done.wait(10):
            report["hung"] = stage
            finish()
            os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    return done
"""


def _backends() -> pytest.MarkDecorator:
    """Run a sync test calling ``async_to_sync(..., backend=backend)`` per loop."""
    return pytest.mark.parametrize("backend", ["asyncio", "trio"])


_CTRL_C = (
    _PRELUDE
    + """
import signal

import anyio

from asgibridge_any.sync import async_to_sync

backend = sys.argv[1]
started = threading.Event()
unwound = []


async def interrupted():
    started.set()
    try:
        await anyio.sleep(30)
    finally:
        unwound.append(True)


def press_ctrl_c():
    # A real SIGINT to the main thread, while it waits in async_to_sync.
    if started.wait(10):
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


async def answer():
    return 42


threading.Thread(target=press_ctrl_c, daemon=True).start()
done = watch("the interrupted call")
try:
    async_to_sync(interrupted, backend=backend)()
    report["first"] = "returned"
except KeyboardInterrupt:
    report["first"] = "KeyboardInterrupt"
    report["unwound_before_propagating"] = bool(unwound)
done.set()
report["next"] = []
for n in range(3):
    done = watch(f"call {n + 1} after the interrupt")
    report["next"].append(async_to_sync(answer, backend=backend)())
    done.set()
finish()
"""
)


@_backends()
def test_ctrl_c_in_waiting_thread_unwinds_coroutine_and_next_calls_work(
    backend: str,
) -> None:
    """
    Test that Ctrl-C in the main thread while it waits in ``async_to_sync`` cancels
    and awaits the coroutine before the ``KeyboardInterrupt`` propagates, and that the
    next calls work.
    """
    report = run_in_subprocess(_CTRL_C, backend)
    assert report == {
        "first": "KeyboardInterrupt",
        "unwound_before_propagating": True,
        "next": [42, 42, 42],
    }


_TWO_THREADS = (
    _PRELUDE
    + """
import contextvars

import anyio

from asgibridge_any.sync import AsyncSingleThreadContext, async_to_sync

backend = sys.argv[1]
both_inside = threading.Barrier(2)
outcomes = {}


async def meet():
    # Both calls are on the loop at once before either returns.
    await anyio.to_thread.run_sync(both_inside.wait, 10)
    return threading.get_ident()


async def ident():
    return threading.get_ident()


def call(name):
    try:
        outcomes[name] = async_to_sync(meet, backend=backend)()
    except BaseException as exc:
        outcomes[name] = repr(exc)


done = watch("two threads in one AsyncSingleThreadContext")
with AsyncSingleThreadContext():
    # A first call settles which loop thread the context uses.
    report["first"] = async_to_sync(ident, backend=backend)()
    other = threading.Thread(
        target=contextvars.copy_context().run, args=(call, "other"), daemon=True
    )
    other.start()
    call("main")
    other.join(15)
done.set()
report["outcomes"] = outcomes
report["one_loop_thread"] = (
    outcomes.get("main") == outcomes.get("other") == report["first"]
)
finish()
"""
)


@_backends()
def test_two_threads_in_one_async_single_thread_context_both_complete(
    backend: str,
) -> None:
    """
    Test that a thread started with ``copy_context().run`` inside
    ``AsyncSingleThreadContext`` and the thread that started it can both be in
    ``async_to_sync`` at once: both complete, on the context's one loop thread.
    """
    report = run_in_subprocess(_TWO_THREADS, backend)
    assert "hung" not in report
    assert sorted(report["outcomes"]) == ["main", "other"]
    assert all(isinstance(value, int) for value in report["outcomes"].values())
    assert report["one_loop_thread"]


_FORCE_NEW_LOOP = (
    _PRELUDE
    + """
from asgibridge_any.sync import AsyncSingleThreadContext, async_to_sync, sync_to_async

backend = sys.argv[1]


async def inner():
    return "inner"


def middle():
    return async_to_sync(inner, force_new_loop=True, backend=backend)()


async def outer():
    return await sync_to_async(middle)()


done = watch("force_new_loop inside AsyncSingleThreadContext")
with AsyncSingleThreadContext():
    try:
        report["result"] = async_to_sync(outer, backend=backend)()
    except BaseException as exc:
        report["result"] = repr(exc)
done.set()
finish()
"""
)


@_backends()
def test_force_new_loop_inside_async_single_thread_context_completes(
    backend: str,
) -> None:
    """
    Test that ``async_to_sync(..., force_new_loop=True)`` called below another
    ``async_to_sync`` call inside ``AsyncSingleThreadContext`` completes.
    """
    assert run_in_subprocess(_FORCE_NEW_LOOP, backend) == {"result": "inner"}


_CTRL_C_IN_IMPORT = (
    _PRELUDE
    + """
import _thread
import importlib.abc

from asgibridge_any.sync import async_to_sync

where = sys.argv[1]


class CtrlCDuringImport(importlib.abc.MetaPathFinder):
    # Ctrl-C lands in the main thread just as it imports ``where``.
    fired = False

    def find_spec(self, name, path, target=None):
        if (
            name == where
            and not self.fired
            and threading.current_thread() is threading.main_thread()
        ):
            self.fired = True
            _thread.interrupt_main()
        return None


async def answer():
    return 42


# If importing the package already imported trio, no call can be interrupted in
# that import: the scenario does not arise.
report["trio_imported_before_first_call"] = "trio" in sys.modules
sys.meta_path.insert(0, CtrlCDuringImport())
done = watch("the first trio call")
try:
    report["first"] = async_to_sync(answer, backend="trio")()
except KeyboardInterrupt:
    report["first"] = "KeyboardInterrupt"
done.set()
report["next"] = []
for n in range(3):
    done = watch(f"trio call {n + 1} after the interrupt")
    try:
        report["next"].append(async_to_sync(answer, backend="trio")())
    except Exception as exc:
        report["next"].append(repr(exc))
    done.set()
finish()
"""
)


@pytest.mark.parametrize("where", ["trio._core._run", "trio._core._local"])
def test_ctrl_c_during_first_trio_call_leaves_trio_usable(where: str) -> None:
    """
    Test that Ctrl-C landing while the first ``backend="trio"`` call imports trio
    (here: as it imports ``where``) leaves trio usable for the next calls.

    trio only: asyncio is imported with the package, so no first call imports it.
    """
    report = run_in_subprocess(_CTRL_C_IN_IMPORT, where)
    assert "hung" not in report
    assert report["first"] in (42, "KeyboardInterrupt")
    assert report["next"] == [42, 42, 42]
