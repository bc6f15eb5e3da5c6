# The opt-in warning about thread-sensitive calls that hold their thread too long.
#
# One watcher thread, alive only while the warning is on, looks at every sensitive
# thread a few times per threshold: each records which call it runs and since when
# (_threads._LaneThread), so a look costs the watcher a thread walk and the bridge
# nothing. A call over the threshold is reported once, with the stack its thread
# is in right then (sys._current_frames), which names the line it blocks on.
from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback

from . import _threads
from ._stats import function_name

logger = logging.getLogger("asgibridge_any")

_lock = threading.Lock()
_watcher: _Watcher | None = None


class _Watcher(threading.Thread):
    def __init__(self, threshold: float) -> None:
        super().__init__(name="asgibridge_any slow-call watcher", daemon=True)
        self.threshold = threshold
        self.stopping = threading.Event()

    def run(self) -> None:
        # A call is reported at most a quarter of the threshold (or a second) late.
        interval = min(max(self.threshold / 4, 0.005), 1.0)
        reported: set[tuple[int, float]] = set()
        while not self.stopping.wait(interval):
            reported = self._look(reported)

    def _look(self, reported: set[tuple[int, float]]) -> set[tuple[int, float]]:
        now = time.monotonic()
        still: set[tuple[int, float]] = set()
        for thread in threading.enumerate():
            if not isinstance(thread, _threads._LaneThread):
                continue
            current, since = thread.current, thread.since
            if current is None or thread.current is not current:
                continue
            key = (id(thread), since)
            held = now - since
            if held < self.threshold:
                continue
            still.add(key)
            if key in reported:
                continue
            frame = sys._current_frames().get(thread.ident or 0)
            stack = "".join(traceback.format_stack(frame)) if frame else ""
            logger.warning(
                "thread-sensitive call %s has held %r for %.3f s (threshold %.3f s); "
                "every thread-sensitive call for that thread waits behind it. It is "
                "at:\n%s",
                function_name(current),
                thread.name,
                held,
                self.threshold,
                stack,
            )
        return still


def warn_slow_sensitive_calls(threshold: float | None) -> None:
    """
    Log a warning when a thread-sensitive call holds its thread too long.

    While on, a watcher thread looks at the process-wide sensitive thread and every
    ``ThreadSensitiveContext`` thread a few times per ``threshold``. A call that has
    run for longer than ``threshold`` seconds is reported once, as a warning on the
    ``"asgibridge_any"`` logger naming its function and showing the stack its
    thread is in (where it blocks), at most a quarter of ``threshold`` (or one
    second) late. Calls run on a sync thread waiting in ``async_to_sync`` are not
    watched. Off by default; the bridge pays nothing for it either way.

    Calling it again replaces the threshold; ``None`` turns the warning off and
    waits for the watcher thread to exit.

    :param threshold: seconds a call may hold its sensitive thread, or ``None``
    :raises ValueError: if ``threshold`` is not a positive number or None
    """
    global _watcher
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not threshold > 0
    ):
        raise ValueError(
            "warn_slow_sensitive_calls() takes a positive number of seconds, or None "
            f"to turn the warning off; got {threshold!r}"
        )
    with _lock:
        old, _watcher = _watcher, None
        if old is not None:
            old.stopping.set()
        if threshold is not None:
            _watcher = _Watcher(float(threshold))
            _watcher.start()
    if old is not None and old is not threading.current_thread():
        old.join()


def _after_fork_in_child() -> None:
    # The watcher thread does not survive fork(): the child starts with it off.
    global _watcher, _lock
    _watcher = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
