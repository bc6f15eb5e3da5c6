# Case 5: Local attribute set+get in a plain thread, ours and asgiref's next to the two
# things a Local is built from or replaces: threading.local and a bare ContextVar (the floor).
from __future__ import annotations

__all__ = ("build",)

import contextvars
import threading
import time
from typing import TYPE_CHECKING, Any

from ._harness import Case, Goal, Row, Sampler, expect
from ._impls import load

if TYPE_CHECKING:
    from collections.abc import Callable

_BATCH = 1000


def _ops_per_second(set_get: Callable[[int], int], budget: float) -> float:
    # set_get(n) does n set+get pairs and returns the sum of what it read back
    def checked(n: int) -> None:
        got = set_get(n)
        expect(got == n * (n - 1) // 2, f"read back {got}, expected {n * (n - 1) // 2}")

    warm_until = time.perf_counter() + budget / 10
    while time.perf_counter() < warm_until:
        checked(_BATCH)
    done = 0
    start = time.perf_counter()
    while True:
        checked(_BATCH)
        done += _BATCH
        now = time.perf_counter()
        if now - start >= budget:
            return done / (now - start)


def _attr_sampler(factory: Callable[[], object] | None) -> Sampler:
    def sample(budget: float) -> float:
        assert factory is not None
        ns: Any = factory()

        def set_get(n: int) -> int:
            total = 0
            for i in range(n):
                ns.value = i
                total += ns.value
            return total

        return _ops_per_second(set_get, budget)

    return sample


def _contextvar_sampler(budget: float) -> float:
    var: contextvars.ContextVar[int] = contextvars.ContextVar("bench_value")

    def set_get(n: int) -> int:
        total = 0
        for i in range(n):
            var.set(i)
            total += var.get()
        return total

    return _ops_per_second(set_get, budget)


def build() -> list[Case]:
    """Return case 5, ready for :func:`run_case`."""
    ours = load("asgibridge_any.local", "Local")
    ref = load("asgiref.local", "Local")
    rows = [
        Row(
            "asgiref Local",
            "thread",
            "peer",
            None if ref.na else _attr_sampler(ref.attrs["Local"]),
            ref.na,
        ),
        Row(
            "ours Local",
            "thread",
            "ours",
            None if ours.na else _attr_sampler(ours.attrs["Local"]),
            ours.na,
        ),
        Row("threading.local", "thread", "peer", _attr_sampler(threading.local)),
        Row("ContextVar", "thread", "floor", _contextvar_sampler),
    ]
    return [
        Case(
            key="5",
            title="Local: set + get of one attribute in a plain thread (one op = set + get)",
            unit="ops/s",
            lower_is_better=False,
            rows=rows,
            refs={
                "asgiref": {"*": ("asgiref Local (thread)",)},
                "floor": {"*": ("ContextVar (thread)",)},
            },
            goals=[
                Goal("ours Local (thread)", "asgiref", ">=", 3.0),
                Goal("ours Local (thread)", "floor", ">=", 0.5),
            ],
        )
    ]
