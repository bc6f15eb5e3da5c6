# The measuring machinery every case shares: rows (one implementation on one loop), rounds
# that interleave the rows, same-round ratios and their medians, and goal checks. It lives
# apart from the cases so that each case module only says *what* to run and check, and the
# statistics are computed one way for all of them.
from __future__ import annotations

__all__ = (
    "Case",
    "Check",
    "Goal",
    "Hung",
    "Refs",
    "Role",
    "Row",
    "Settings",
    "WrongAnswer",
    "expect",
    "hung_threads",
    "run_bounded",
    "run_case",
)

import functools
import gc
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, cast

#: A sampler takes the time budget in seconds and returns one measured value.
Sampler = Callable[[float], float]
T = TypeVar("T")
#: per loop of the compared row (or "*"), the labels of the reference rows
Refs = dict[str, tuple[str, ...]]
#: ours, a peer library, or a floor / reference made of raw primitives
Role = Literal["ours", "peer", "floor"]


#: set when a sample hung; the runner then leaves with os._exit (stuck threads block exit)
hung_threads = threading.Event()


class WrongAnswer(AssertionError):
    """Raised by a sampler whose implementation returned a wrong result."""


def expect(condition: bool, message: str) -> None:
    """
    Raise :class:`WrongAnswer` unless ``condition`` holds.

    :param condition: what a correct implementation makes true
    :param message: what went wrong, shown in the table instead of a number
    :raises WrongAnswer: when ``condition`` is false
    """
    if not condition:
        raise WrongAnswer(message)


@dataclass(frozen=True)
class Settings:
    """How long a run takes: number of rounds and seconds each sample measures."""

    name: str
    rounds: int
    budget: float
    e2e_rounds: int
    e2e_seconds: float
    e2e_warmup: float
    memory_runs: int
    #: a sample that gives no answer within this many seconds is reported as hung
    hang_timeout: float = 60.0


@dataclass
class Row:
    """One implementation on one event loop (or in a plain thread) within a case."""

    impl: str
    loop: str
    role: Role
    sampler: Sampler | None = None
    na: str | None = None
    values: list[float | None] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.impl} ({self.loop})"

    def median(self) -> float | None:
        good = [v for v in self.values if v is not None]
        return statistics.median(good) if good else None


@dataclass(frozen=True)
class Goal:
    """``ratio(row, against) op threshold`` — one line of the issue's goals table."""

    row: str
    against: str
    op: Literal["<=", ">="]
    threshold: float

    def text(self) -> str:
        return f"{self.op}{self.threshold:g}x {self.against}"


@dataclass
class Check:
    """An absolute figure measured beside the main value (peak memory, bytes read early)."""

    row: str
    metric: str
    value: float | None
    unit: str
    goal: str = ""
    met: bool | None = None


@dataclass
class Case:
    """
    One benchmark case: its rows, the reference columns ratios are taken against, goals.

    ``refs`` maps a column name ("asgiref", "a2wsgi", "floor", "faster peer") to, per loop
    of the row being compared (or ``"*"`` for every loop), the labels of the reference
    rows; with several labels the best of them in each round is the reference.
    """

    key: str
    title: str
    unit: str
    lower_is_better: bool
    rows: list[Row]
    refs: dict[str, Refs] = field(default_factory=dict)
    goals: list[Goal] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    before: Callable[[Case, Settings], None] | None = None
    after: Callable[[Case, Settings], None] | None = None
    #: end-to-end case: uses the e2e round count
    e2e: bool = False
    seconds: float = 0.0

    def row(self, label: str) -> Row:
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(label)

    def ref_labels(self, row: Row, column: str) -> tuple[str, ...]:
        per_loop = self.refs.get(column, {})
        return per_loop.get(row.loop, per_loop.get("*", ()))

    def ratios(self, row: Row, column: str) -> list[float]:
        """Return the same-round ratios ``row / reference`` for one column."""
        labels = [lb for lb in self.ref_labels(row, column) if lb != row.label]
        if not labels:
            return []
        refs = [self.row(lb) for lb in labels]
        best = min if self.lower_is_better else max
        out = []
        for rnd, value in enumerate(row.values):
            ref_values = [
                r.values[rnd]
                for r in refs
                if rnd < len(r.values) and r.values[rnd] is not None
            ]
            if value is None or len(ref_values) != len(refs):
                continue
            ref = best(v for v in ref_values if v is not None)
            if ref > 0:
                out.append(value / ref)
        return out

    def ratio(self, row: Row, column: str) -> float | None:
        values = self.ratios(row, column)
        return statistics.median(values) if values else None

    def goal_met(self, goal: Goal) -> tuple[float | None, bool | None]:
        ratio = self.ratio(self.row(goal.row), goal.against)
        if ratio is None:
            return None, None
        met = ratio <= goal.threshold if goal.op == "<=" else ratio >= goal.threshold
        return ratio, met


class Hung(Exception):
    """Raised when a sample gives no answer in time (its thread is left behind)."""


def run_bounded(fn: Callable[[], T], timeout: float) -> T:
    """
    Call ``fn`` in a fresh plain daemon thread and return its result.

    The "plain thread" cases need such a thread anyway, and a call that deadlocks can then
    be abandoned instead of hanging the whole run.

    :raises Hung: when ``fn`` gives no answer within ``timeout`` seconds
    """
    box: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:  # re-raised in the caller, never swallowed
            box.append((False, exc))

    thread = threading.Thread(target=target, name="bench-sample", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        hung_threads.set()
        raise Hung(f"hung: no answer within {timeout:g} s")
    ok, value = box[0]
    if not ok:
        raise value
    return cast("T", value)


def run_case(case: Case, settings: Settings) -> None:
    """
    Measure every available row of ``case`` round by round, rotating the order each round.

    A row whose sampler raises is marked with the error and skipped in later rounds; its
    values stay ``None`` so that no ratio uses it.
    """
    started = time.perf_counter()
    try:
        if case.before is not None:
            case.before(case, settings)
        _rounds(case, settings, settings.e2e_rounds if case.e2e else settings.rounds)
    finally:
        if case.after is not None:
            case.after(case, settings)
        case.seconds = time.perf_counter() - started


def _rounds(case: Case, settings: Settings, n_rounds: int) -> None:
    active = [row for row in case.rows if row.sampler is not None and row.na is None]
    for rnd in range(n_rounds):
        # rotate the order so that no implementation always runs first (or last)
        shift = rnd % len(active) if active else 0
        for row in active[shift:] + active[:shift]:
            value: float | None = None
            if row.error is None and row.sampler is not None:
                gc.collect()  # start every sample from the same heap state, off the clock
                try:
                    call = functools.partial(row.sampler, settings.budget)
                    value = run_bounded(call, settings.hang_timeout)
                except Hung as exc:
                    row.error = str(exc)
                except Exception as exc:
                    row.error = f"{type(exc).__name__}: {exc}"[:300]
            row.values.append(value)


class TracedTransfer(Protocol):
    """A transfer case's sampler that can also run once under tracemalloc."""

    #: Peak traced memory (MiB) of each traced run.
    peaks: list[float]

    def traced(self) -> float: ...


def check_peak_memory(
    case: Case, settings: Settings, label: str, transfer: TracedTransfer
) -> Row:
    """
    Run ``transfer`` traced ``settings.memory_runs`` times; add its peak-memory check.

    A failing traced run marks the row's error. The goal (<= 4 MiB) applies to our rows.

    :returns: the row, for further checks
    """
    row = case.row(label)
    if row.error is None:
        for _ in range(settings.memory_runs):
            try:
                run_bounded(transfer.traced, settings.hang_timeout)
            except Exception as exc:
                row.error = f"traced run: {type(exc).__name__}: {exc}"[:300]
                break
    ours = row.role == "ours"
    peak = max(transfer.peaks) if transfer.peaks and row.error is None else None
    case.checks.append(
        Check(
            label,
            "peak traced memory",
            peak,
            "MiB",
            "<= 4 MiB" if ours else "",
            (peak <= 4.0) if ours and peak is not None else None,
        )
    )
    return row
