# What bounds case 5 (Local set+get vs a bare ContextVar): the fastest pure-Python Local
# designs measured next to ours, asgiref's and the bare ContextVar, round by round. Any
# Local written in Python pays two Python-level dunder calls per set+get, and that alone
# costs more than the two ContextVar operations it wraps. Not part of `make bench`.
#
#   python -m benchmarks.local_bound
from __future__ import annotations

__all__ = ("main",)

import contextvars
import statistics
import time
import weakref
from typing import TYPE_CHECKING, Any

from ._impls import load

if TYPE_CHECKING:
    from collections.abc import Callable

_object_getattribute = object.__getattribute__
_object_setattr = object.__setattr__


class _MinimalLocal:
    """One ContextVar per name, the value stored directly: no safety, the least code."""

    __slots__ = ("__weakref__", "_vars")

    def __init__(self) -> None:
        _object_setattr(self, "_vars", {})

    def __getattribute__(self, name: str) -> Any:
        return _object_getattribute(self, "_vars")[name].get()

    def __setattr__(self, name: str, value: Any) -> None:
        variables = _object_getattribute(self, "_vars")
        try:
            var = variables[name]
        except KeyError:
            var = variables[name] = contextvars.ContextVar(name)
        var.set(value)


class _Cell(weakref.ref[Any]):
    __slots__ = ("value",)
    value: Any


class _MinimalCellLocal(_MinimalLocal):
    """As above, the value held in a weak cell so it dies with the Local (as documented: no cycles)."""

    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        return _object_getattribute(self, "_vars")[name].get().value

    def __setattr__(self, name: str, value: Any) -> None:
        variables = _object_getattribute(self, "_vars")
        try:
            var = variables[name]
        except KeyError:
            var = variables[name] = contextvars.ContextVar(name)
        cell = _Cell(self)
        cell.value = value
        var.set(cell)


def _attr_loop(ns: Any) -> Callable[[int], int]:
    def run(n: int) -> int:
        total = 0
        for i in range(n):
            ns.value = i
            total += ns.value
        return total

    return run


def _contextvar_loop() -> Callable[[int], int]:
    var: contextvars.ContextVar[int] = contextvars.ContextVar("bound")

    def run(n: int) -> int:
        total = 0
        for i in range(n):
            var.set(i)
            total += var.get()
        return total

    return run


def main() -> None:
    """Print ops/s and the ratio to a bare ContextVar for each design, median of 9 rounds."""
    contenders: dict[str, Callable[[int], int]] = {
        "bare ContextVar": _contextvar_loop(),
        "minimal Python Local": _attr_loop(_MinimalLocal()),
        "minimal + weak cell": _attr_loop(_MinimalCellLocal()),
    }
    for label, module in (
        ("ours Local", "asgibridge_any.local"),
        ("asgiref Local", "asgiref.local"),
    ):
        impl = load(module, "Local")
        if impl.na is None:
            contenders[label] = _attr_loop(impl["Local"]())
    ratios: dict[str, list[float]] = {label: [] for label in contenders}
    speeds: dict[str, list[float]] = {label: [] for label in contenders}
    n = 100_000
    for _ in range(9):
        base = 0.0
        for label, run in contenders.items():
            start = time.perf_counter()
            if run(n) != n * (n - 1) // 2:
                raise AssertionError(f"{label} read back wrong values")
            speed = n / (time.perf_counter() - start)
            base = speed if label == "bare ContextVar" else base
            speeds[label].append(speed)
            ratios[label].append(speed / base)
    for label in contenders:
        print(
            f"{label:<22}{statistics.median(speeds[label]):>14,.0f} ops/s"
            f"{statistics.median(ratios[label]):>8.2f}x bare ContextVar"
        )


if __name__ == "__main__":
    main()
