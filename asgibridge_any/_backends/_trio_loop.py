# The package's own trio loop threads.
#
# Kept apart from _trio.py, which imports trio at the top: trio is imported here in
# the new loop thread, never in the thread that asked for it. A Ctrl-C landing in the
# caller while it waits then cannot interrupt the import half-way, which would leave
# trio broken for the rest of the process.
from __future__ import annotations

from typing import Any

from .._owner import track_generators
from ._base import LoopThread


class TrioLoopThread(LoopThread):
    """A trio run in a thread of its own; see :class:`LoopThread`."""

    backend = "trio"

    def run(self) -> None:
        try:
            import trio

            trio.run(self._main)
        except BaseException as exc:
            if not self._ready.is_set():
                self._failed(exc)
            raise

    async def _main(self) -> None:
        import trio

        from ._trio import running_handle

        handle = running_handle()
        assert handle is not None
        self.handle = handle
        self._stop_event: Any = trio.Event()
        track_generators()
        self._loop_started()
        await self._stop_event.wait()

    def _stop_now(self) -> None:
        self._stop_event.set()

    def stop(self) -> None:
        if self._ready.is_set() and self._failure is None:
            super().stop()
