"""Tests for asgibridge_any.compatibility: telling and converting ASGI 2 / ASGI 3 apps."""

from __future__ import annotations

import asyncio.coroutines
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from asgibridge_any.compatibility import (
    double_to_single_callable,
    guarantee_single_callable,
    is_double_callable,
)
from asgibridge_any.testing import ApplicationCommunicator

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


def double_function(
    scope: dict[str, Any],
) -> Callable[[Receive, Send], Awaitable[None]]:
    async def instance(receive: Receive, send: Send) -> None:
        message = await receive()
        await send({"scope": scope["value"], "message": message["value"]})

    return instance


class DoubleClass:
    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        await send({"class": self.scope["value"]})


class SingleClass:
    async def __call__(
        self, scope: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        await send({"single": scope["value"]})


async def single_function(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await send({"single": scope["value"]})


async def three_args(
    tag: str, scope: dict[str, Any], receive: Receive, send: Send
) -> None:
    await send({"tag": tag})


def test_classes_and_plain_functions_are_double_callable() -> None:
    assert is_double_callable(double_function) is True
    assert is_double_callable(DoubleClass) is True
    assert (
        is_double_callable(SingleClass) is True
    )  # a class is called with the scope first


def test_coroutine_functions_and_async_call_instances_are_single_callable() -> None:
    assert is_double_callable(single_function) is False
    assert is_double_callable(SingleClass()) is False
    assert is_double_callable(functools.partial(three_args, "x")) is False


def test_explicit_markers_win_over_the_signature() -> None:
    def sync_app(scope: object) -> None: ...

    async def async_app(scope: object, receive: object, send: object) -> None: ...

    sync_app._asgi_single_callable = True  # type: ignore[attr-defined]
    async_app._asgi_double_callable = True  # type: ignore[attr-defined]
    assert is_double_callable(sync_app) is False
    assert is_double_callable(async_app) is True


def test_legacy_coroutine_marker_counts_as_single_callable() -> None:
    """Test that a sync callable marked the Python 3.11 way is taken as a coroutine function."""

    def marked(scope: object, receive: object, send: object) -> None: ...

    marked._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
    assert is_double_callable(marked) is False


@pytest.mark.parametrize(
    "function",
    [is_double_callable, double_to_single_callable, guarantee_single_callable],
)
def test_non_callable_application_is_a_type_error(
    function: Callable[[Any], object],
) -> None:
    with pytest.raises(TypeError, match="needs an ASGI application"):
        function({"type": "http"})


def test_double_to_single_callable_makes_a_single_callable() -> None:
    assert is_double_callable(double_to_single_callable(double_function)) is False


def test_guarantee_single_callable_returns_asgi3_apps_unchanged() -> None:
    assert guarantee_single_callable(single_function) is single_function
    instance = SingleClass()
    assert guarantee_single_callable(instance) is instance
    converted: object = guarantee_single_callable(double_function)
    assert converted is not double_function


async def test_converted_double_function_runs() -> None:
    comm = ApplicationCommunicator(
        double_to_single_callable(double_function), {"value": "v"}
    )
    await comm.send_input({"value": 42})
    assert await comm.receive_output() == {"scope": "v", "message": 42}


async def test_guaranteed_double_class_runs() -> None:
    comm = ApplicationCommunicator(
        guarantee_single_callable(DoubleClass), {"value": "c"}
    )
    assert await comm.receive_output() == {"class": "c"}
    await comm.wait()


async def test_double_callable_returning_a_non_callable_is_a_type_error() -> None:
    def broken(scope: object) -> str:
        return "not an application instance"

    comm = ApplicationCommunicator(double_to_single_callable(broken), {"type": "http"})
    with pytest.raises(TypeError, match="must return a coroutine function"):
        await comm.wait()
