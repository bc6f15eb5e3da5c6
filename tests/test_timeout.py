"""Tests for asgibridge_any.timeout: the deprecated timeout context manager, on both loops."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from asgibridge_any.timeout import timeout


def make(seconds: float | None) -> timeout:
    with pytest.warns(DeprecationWarning, match=r"asyncio\.timeout"):
        return timeout(seconds)


async def test_block_that_finishes_in_time_is_not_expired() -> None:
    cm = make(10)
    async with cm:
        await anyio.lowlevel.checkpoint()
        remaining = cm.remaining
        assert remaining is not None
        assert 0 < remaining <= 10
    assert cm.expired is False


async def test_block_that_overruns_raises_timeout_error() -> None:
    cm = make(0.01)
    with anyio.fail_after(10), pytest.raises(TimeoutError):
        async with cm:
            await anyio.sleep_forever()
    assert cm.expired is True
    assert cm.remaining == 0.0


async def test_sync_with_form_times_out_too() -> None:
    cm = make(0)
    with anyio.fail_after(10), pytest.raises(TimeoutError), cm:
        await anyio.sleep_forever()
    assert cm.expired is True


async def test_none_never_expires() -> None:
    cm = make(None)
    async with cm:
        await anyio.lowlevel.checkpoint()
    assert cm.remaining is None
    assert cm.expired is False


async def test_other_exceptions_pass_through() -> None:
    cm = make(10)
    with pytest.raises(ZeroDivisionError):
        async with cm:
            1 / 0  # noqa: B018
    assert cm.expired is False


def test_loop_argument_is_deprecated_too() -> None:
    with (
        pytest.warns(DeprecationWarning, match=r"asyncio\.timeout"),
        pytest.warns(DeprecationWarning, match="loop argument"),
    ):
        timeout(1, loop=object())
