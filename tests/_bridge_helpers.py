"""Small helpers shared by the bridge tests."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
import sniffio


def current_loop() -> object:
    """Identify the running event loop: the asyncio loop or the trio run's token."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_trio_token()
    return asyncio.get_running_loop()


def run_in_subprocess(source: str, *args: str, timeout: float = 60) -> dict[str, Any]:
    """
    Run ``source`` in a fresh interpreter and return the JSON object it prints last.

    For scenarios that may leave a process unusable (Ctrl-C, hangs): a child that
    hangs is killed after ``timeout`` seconds and the test fails instead of hanging.
    The script gets ``args`` as ``sys.argv[1:]``.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", source, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the child process hung for {timeout} s; output: {exc.stdout!r}")
    lines = done.stdout.strip().splitlines()
    assert lines, f"no report from the child (exit {done.returncode}): {done.stderr}"
    report: dict[str, Any] = json.loads(lines[-1])
    return report
