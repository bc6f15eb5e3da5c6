"""Small helpers shared by the bridge tests."""

from __future__ import annotations

import asyncio

import sniffio


def current_loop() -> object:
    """Identify the running event loop: the asyncio loop or the trio run's token."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_trio_token()
    return asyncio.get_running_loop()
