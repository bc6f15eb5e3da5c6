# The storm's watchdog and thread census: a thread that samples the thread count, keeps
# the peak, and ends the process with every thread's stack when nothing progresses; and
# the end-of-storm check that only idle pool threads remain. Kept apart from the storm
# itself so the part that must never hang stays small.
from __future__ import annotations

import collections
import os
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

#: Thread names of pools that may keep idle threads (anyio's and trio's caches).
_FOREIGN_POOLS = ("AnyIO worker thread", "Trio thread", "trio-", "asyncio_")


def is_idle_pool_thread(thread: threading.Thread) -> bool:
    """Tell whether ``thread`` is a pool thread waiting for work (as the tests do)."""
    if thread.name.startswith(_FOREIGN_POOLS):
        return True
    try:  # the package's own idle test; private, so tolerate its absence
        from asgibridge_any._threads import thread_is_idle
    except ImportError:
        return False
    return bool(thread_is_idle(thread))


def census(threads: list[threading.Thread]) -> str:
    """Thread names with counts, most common first (numbers stripped from names)."""
    names = collections.Counter(
        "".join(c for c in t.name if not c.isdigit()).rstrip(" -_") for t in threads
    )
    return ", ".join(f"{name} x{n}" for name, n in names.most_common())


def dump_stacks(out: Callable[[str], object]) -> None:
    """Print every thread's name and stack."""
    frames = sys._current_frames()
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        out(
            f"--- thread {thread.name!r} (ident {thread.ident}, daemon={thread.daemon})"
        )
        if frame is not None:
            out("".join(traceback.format_stack(frame)).rstrip())


class Watchdog(threading.Thread):
    """
    Sample the thread count and watch progress; on a stall, report and end the process.

    :param bound: the thread count the storm must stay under
    :param stall: seconds without progress that count as a hang
    :param on_stall: prints what the storm knows (figures, outstanding ops)
    """

    def __init__(self, bound: int, stall: float, on_stall: Callable[[], None]) -> None:
        super().__init__(name="storm watchdog", daemon=True)
        self.bound = bound
        self.stall = stall
        self.on_stall = on_stall
        self.progress = 0
        self.peak = threading.active_count()
        self.peak_census = ""
        self.over_bound: str | None = None
        self.abort = threading.Event()
        self._stop = threading.Event()

    def run(self) -> None:
        seen, since = self.progress, time.monotonic()
        while not self._stop.wait(0.02):
            count = threading.active_count()
            if count > self.peak:
                self.peak = count
                if count > self.bound:
                    self.peak_census = census(threading.enumerate())
            if count > self.bound and self.over_bound is None:
                self.over_bound = census(threading.enumerate())
            if count > self.bound + 150:
                # A leak that keeps growing would exhaust the machine: stop launching.
                self.abort.set()
            if self.progress != seen:
                seen, since = self.progress, time.monotonic()
            elif time.monotonic() - since > self.stall:
                self._hang()

    def _hang(self) -> None:
        out = sys.stdout.write
        out(f"\nHANG: no op finished for {self.stall:.0f} s\n")
        try:
            self.on_stall()
            dump_stacks(lambda line: out(line + "\n"))
        finally:
            sys.stdout.flush()
            os._exit(2)

    def stop(self) -> None:
        self._stop.set()


def leftover_threads(
    baseline: set[threading.Thread], wait: float
) -> tuple[list[threading.Thread], list[threading.Thread]]:
    """
    Wait (at most ``wait`` s) for threads the storm started to end or go idle.

    :returns: (threads still busy, idle pool threads)
    """
    deadline = time.monotonic() + wait
    while True:
        extra = [
            t
            for t in threading.enumerate()
            if t not in baseline and t is not threading.current_thread()
        ]
        busy = [t for t in extra if t.is_alive() and not is_idle_pool_thread(t)]
        if not busy or time.monotonic() > deadline:
            return busy, [t for t in extra if t not in busy]
        time.sleep(0.05)
