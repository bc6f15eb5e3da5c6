"""
The bridge storm: tens of thousands of bridge crossings in random shapes, per loop.

Each loop (asyncio, trio) runs in a child process of its own (``python -m
tests.stress.storm_bridge --loop asyncio --seed N``), so a hang or a broken loop in
one cannot take the other down, and a watchdog can end a hung child with every
thread's stack. Shapes: ``sync_to_async`` in both modes, ``async_to_sync`` from plain
threads, chains three sync levels deep, calls inside ``ThreadSensitiveContext`` and
``AsyncSingleThreadContext``, tasks outliving their context, late thread-sensitive
calls from a task started inside ``async_to_sync``, coroutines leaving async
generators and tasks behind, calls made while handling an exception, a tenth of the
ops cancelled (every cancellation kind of the loop, at chosen moments), a twentieth
raising, and ``KeyboardInterrupt`` injected into threads waiting in ``async_to_sync``.
Every op has an id and an expected outcome; the storm checks each one, that no
cancellation is lost, that nothing hangs, that the thread count stays bounded, that
only idle pool threads remain afterwards and that nothing was only logged or
reported as unraisable.

The seed fixes the ops and their order (not the timing): ``BRIDGE_STORM_SEED=N``.
"""

from __future__ import annotations

import argparse
import collections
import gc
import logging
import os
import queue
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import sniffio

from ._bridge_ops import (
    CANCEL_KINDS,
    CANCELLABLE,
    CROSSINGS,
    NESTED,
    RAISABLE,
    THREAD_SHAPES,
    Op,
    guarded,
    judge,
    loop_body,
    run_outliving,
)
from ._bridge_threads import run_late_sensitive, run_thread_op
from ._bridge_watch import Watchdog, census, leftover_threads

#: Relative frequency of each shape (ops, not crossings).
WEIGHTS = {
    "s2a_sensitive": 20.0,
    "s2a_pool": 20.0,
    "nested": 12.0,
    "ts_context": 8.0,
    "outliving": 0.5,
    "late_sensitive": 2.0,
    "a2s_thread": 15.0,
    "nested_thread": 10.0,
    "single_context": 8.0,
}
CANCEL_SHARE = 0.10
RAISE_SHARE = 0.05
#: Share of ops that inject a KeyboardInterrupt.
INTERRUPT_SHARE = 0.002
HOPS = 50_000
SHORT_HOPS = 5_000
#: Plain threads driving the thread-side shapes.
DRIVERS = 6
#: Loop-side ops in flight at once; nested ones and context ones are capped further
#: (a nested op can hold three of the limiter's tokens).
IN_FLIGHT = 48
NESTED_IN_FLIGHT = 8
CONTEXTS_IN_FLIGHT = 8
#: anyio's default thread limiter (total_tokens) on the storm's loop.
LIMITER = 40
#: Idle loop threads the package may keep per backend.
IDLE_LOOPS = 4
STALL = 30.0
ROOT = Path(__file__).resolve().parents[2]


def plan(seed: int, backend: str, hops: int) -> list[Op]:
    """The ops of one loop's storm, fixed by ``seed``: shapes, modes, kinds, moments."""
    rng = random.Random(f"{seed}/{backend}")
    total = sum(WEIGHTS.values())
    cancellable = sum(w for s, w in WEIGHTS.items() if s in CANCELLABLE) / total
    raisable = sum(w for s, w in WEIGHTS.items() if s in RAISABLE) / total
    shapes, weights = list(WEIGHTS), list(WEIGHTS.values())
    ops: list[Op] = []
    planned = 0
    while planned < hops:
        if rng.random() < INTERRUPT_SHARE:
            shape = "interrupt"
        else:
            shape = rng.choices(shapes, weights)[0]
        op = Op(len(ops), shape, tuple(rng.random() < 0.5 for _ in range(3)))
        roll = rng.random()
        if shape in CANCELLABLE and roll < CANCEL_SHARE / cancellable:
            op.cancel = rng.choice(CANCEL_KINDS[backend])
            moments = ["early", "in_thread"]
            if shape in NESTED:
                moments += ["in_inner", "absorb", "after_inner"]
            op.moment = rng.choice(moments)
            op.checkpoints = rng.randrange(4)
            op.delay = rng.choice([0.0, rng.uniform(0, 0.002)])
        elif shape in RAISABLE and rng.random() < RAISE_SHARE / raisable:
            op.raises = True
        if shape == "a2s_thread" and not op.cancel and not op.raises:
            op.leaves = rng.random() < 0.2
        if shape in ("s2a_sensitive", "s2a_pool") and not op.cancel:
            op.in_except = rng.random() < 0.1
        if shape == "single_context":
            op.helper_thread = rng.random() < 0.2
            op.force_new = rng.random() < 0.2
        ops.append(op)
        planned += CROSSINGS[shape]
    return ops


def thread_bound(baseline: int) -> tuple[int, str]:
    """The most threads the storm may need at once, and how that number is made."""
    parts = {
        "before the storm": baseline,
        "watchdog": 1,
        "driver threads": DRIVERS,
        "single-context helpers (one per driver)": DRIVERS,
        "sync_to_async(thread_sensitive=False) workers (limiter)": LIMITER,
        "process-wide thread-sensitive thread": 1,
        "context threads (contexts in flight)": CONTEXTS_IN_FLIGHT,
        "per driver: a loop thread + two workers": 3 * DRIVERS,
        "idle loop threads kept": IDLE_LOOPS,
    }
    return sum(parts.values()), " + ".join(f"{n} {what}" for what, n in parts.items())


class _Collect(logging.Handler):
    # asyncio logs what it cannot raise ("Task was destroyed but it is pending!",
    # exceptions never retrieved) from any loop thread: each is a failure.
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        message = " / ".join(record.getMessage().splitlines()[:2])
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{record.exc_info[1]!r} / {message}"
        self.into.append(f"asyncio logged: {message[:300]}")


class Storm:
    """One loop's storm inside its child process."""

    def __init__(self, backend: str, seed: int, short: bool) -> None:
        self.backend = backend
        self.seed = seed
        self.hops = SHORT_HOPS if short else HOPS
        self.ops = plan(seed, backend, self.hops)
        self.started = time.monotonic()
        self.loop_failures: list[str] = []
        baseline = threading.active_count()
        self.bound, self.bound_text = thread_bound(baseline)
        self.watchdog = Watchdog(self.bound, STALL, self.report_stall)

    def out(self, text: str) -> None:
        print(f"[bridge/{self.backend}] {text}", flush=True)

    # -- driving -------------------------------------------------------------------------

    def run(self) -> bool:
        self.out(
            f"seed {self.seed}: {self.hops} hops planned in {len(self.ops)} ops; "
            f"thread bound {self.bound} = {self.bound_text}"
        )
        if self.backend == "trio":
            # Loaded here, once: the first trio call imports it lazily in whichever
            # thread makes it, and an interrupt landing inside that import is a
            # separate, known matter from what this storm checks.
            import trio  # noqa: F401
        # Exceptions nobody could catch (a thread that died, an object finalised
        # with an error, a task destroyed while pending) are failures too.
        sys.unraisablehook = self.unraisable
        threading.excepthook = self.thread_died
        logging.getLogger("asyncio").addHandler(_Collect(self.loop_failures))
        self.watchdog.start()
        baseline = set(threading.enumerate())
        work: queue.SimpleQueue[Op | None] = queue.SimpleQueue()
        for op in self.ops:
            if op.shape in THREAD_SHAPES:
                work.put(op)
        drivers = [
            threading.Thread(target=self.drive, args=(work,), name=f"storm driver {n}")
            for n in range(DRIVERS)
        ]
        for _ in drivers:
            work.put(None)
        self.started = time.monotonic()
        for driver in drivers:
            driver.start()
        loop_ops = [op for op in self.ops if op.shape not in THREAD_SHAPES]
        anyio.run(self.loop_main, loop_ops, backend=self.backend)
        for driver in drivers:
            driver.join()
        elapsed = time.monotonic() - self.started
        busy, idle = leftover_threads(baseline, 10.0)
        self.watchdog.stop()
        return self.report(elapsed, busy, idle)

    def unraisable(self, info: sys.UnraisableHookArgs) -> None:
        self.loop_failures.append(
            f"unraisable {type(info.exc_value).__name__}: {info.exc_value} "
            f"(in {info.object!r})"
        )

    def thread_died(self, args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        self.loop_failures.append(
            f"thread {name!r} died of {args.exc_type.__name__}: {args.exc_value}"
        )

    def finished(self, op: Op) -> None:
        if op.outcome != "skipped":
            judge(op)
        op.state = "ended"
        self.watchdog.progress += 1

    def drive(self, work: queue.SimpleQueue[Op | None]) -> None:
        while (op := work.get()) is not None:
            if self.watchdog.abort.is_set():
                op.outcome = "skipped"
            else:
                op.state = "running"
                try:
                    run_thread_op(op, self.backend)
                except BaseException as exc:  # a KeyboardInterrupt that landed late
                    op.fail(f"driver thread caught {exc!r} outside the bridge call")
            self.finished(op)

    async def loop_main(self, ops: list[Op]) -> None:
        limits = {
            "all": anyio.Semaphore(IN_FLIGHT),
            "nested": anyio.Semaphore(NESTED_IN_FLIGHT),
            "context": anyio.Semaphore(CONTEXTS_IN_FLIGHT),
        }
        async with anyio.create_task_group() as tg:
            for op in ops:
                if self.watchdog.abort.is_set():
                    op.outcome = "skipped"
                    self.finished(op)
                    continue
                held = [limits["all"]]
                if op.shape in NESTED:
                    held.append(limits["nested"])
                elif op.shape in ("ts_context", "outliving", "late_sensitive"):
                    held.append(limits["context"])
                for limit in held:
                    await limit.acquire()
                tg.start_soon(self.one, op, held)
        if sniffio.current_async_library() == "asyncio":
            import asyncio

            others = asyncio.all_tasks() - {asyncio.current_task()}
            if others:
                self.loop_failures.append(
                    f"{len(others)} tasks left on the storm's loop"
                )

    async def one(self, op: Op, held: list[anyio.Semaphore]) -> None:
        op.state = "running"
        try:
            if op.shape == "outliving":
                await run_outliving(op)
            elif op.shape == "late_sensitive":
                await run_late_sensitive(op)
            else:
                await guarded(op, loop_body(op))
        except BaseException as exc:
            op.fail(f"op task ended with {exc!r}")
        finally:
            for limit in held:
                limit.release()
            self.finished(op)

    # -- reporting -----------------------------------------------------------------------

    def figures(self, elapsed: float) -> list[str]:
        done = [
            op for op in self.ops if op.state == "ended" and op.outcome != "skipped"
        ]
        hops = sum(CROSSINGS[op.shape] for op in done)
        shapes = collections.Counter(op.shape for op in done)
        cancels = [op for op in done if op.cancel]
        kinds = collections.Counter(
            op.cancel for op in cancels if op.outcome == "cancelled"
        )
        late = sum(1 for op in cancels if op.outcome == "value")
        raised = sum(1 for op in done if op.outcome == "raised")
        interrupts = [
            op for op in self.ops if op.shape == "interrupt" and op.state != "planned"
        ]
        skipped = sum(1 for op in self.ops if op.outcome == "skipped")
        return [
            (
                f"hops {hops} in {len(done)} ops ({skipped} skipped), "
                f"{elapsed:.1f} s, {hops / max(elapsed, 1e-9):.0f} hops/s"
            ),
            "shapes: " + ", ".join(f"{s} {n}" for s, n in sorted(shapes.items())),
            f"cancelled {sum(kinds.values())} of {len(cancels)} requested "
            f"({late} finished first): "
            + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
            f"raised {raised} (each the very StormError raised)",
            (
                f"interrupts {len(interrupts)} "
                f"({sum(1 for op in interrupts if op.outcome == 'interrupted')} "
                "reached their thread)"
            ),
        ]

    def failure_lines(self) -> list[str]:
        # Grouped by what broke (numbers folded together), then by where it broke.
        groups: dict[str, list[tuple[Op, str]]] = collections.defaultdict(list)
        for op in self.ops:
            for message in op.failures:
                groups[re.sub(r"\d+", "N", message)].append((op, message))
        # Process-wide failures: repeats folded (addresses and numbers aside).
        folded: dict[str, list[str]] = collections.defaultdict(list)
        for message in self.loop_failures:
            folded[re.sub(r"0x[0-9a-f]+|\d+", "N", message)].append(message)
        lines = [
            f"  {m[0]}" if len(m) == 1 else f"  {len(m)} x {m[0]}"
            for m in folded.values()
        ]
        for hits in sorted(groups.values(), key=len, reverse=True):
            wheres = collections.Counter(op.where() for op, _ in hits)
            sample = ", ".join(str(op.id) for op, _ in hits[:5])
            lines.append(f"  {len(hits)} x {hits[0][1]} (ops {sample})")
            cancels = [op for op, _ in hits if op.cancel]
            if cancels:
                for label, key in (("moment", "moment"), ("kind", "cancel")):
                    counts = collections.Counter(getattr(op, key) for op in cancels)
                    lines.append(
                        f"      by {label}: "
                        + ", ".join(f"{k} {n}" for k, n in counts.most_common())
                    )
            lines.extend(f"      {n} x {w}" for w, n in wheres.most_common(8))
            if len(wheres) > 8:
                lines.append(
                    f"      ... {len(wheres) - 8} more shape/kind/moment mixes"
                )
        return lines

    def report(
        self,
        elapsed: float,
        busy: list[threading.Thread],
        idle: list[threading.Thread],
    ) -> bool:
        for line in self.figures(elapsed):
            self.out(line)
        self.out(
            f"threads: peak {self.watchdog.peak} (bound {self.bound}), after "
            f"{threading.active_count()}: {len(idle)} idle pool ({census(idle)}), "
            f"{len(busy)} busy"
        )
        idle_bound = LIMITER + 2 * DRIVERS + IDLE_LOOPS + 1
        if len(idle) > idle_bound:
            self.loop_failures.append(
                f"{len(idle)} idle threads after the storm, more than the {idle_bound} "
                "the pools can need"
            )
        # Once every ThreadSensitiveContext is gone, no thread of one may remain.
        gc.collect()
        orphans = [t for t in idle if "context" in t.name.lower()]
        if orphans:
            self.loop_failures.append(
                f"{len(orphans)} context threads outlived every ThreadSensitiveContext "
                f"({sum(1 for op in self.ops if op.shape == 'outliving')} "
                "tasks outlived theirs)"
            )
        if self.watchdog.over_bound is not None:
            self.loop_failures.append(
                f"thread count above the bound {self.bound}, peak "
                f"{self.watchdog.peak}: {self.watchdog.peak_census}"
            )
        if busy:
            self.loop_failures.append(
                f"{len(busy)} threads still busy 10 s after the storm: {census(busy)}"
            )
        if self.watchdog.abort.is_set():
            self.loop_failures.append("storm stopped early: threads kept piling up")
        lines = self.failure_lines()
        if lines:
            failed = sum(1 for op in self.ops if op.failures)
            self.out(f"FAILED: {failed} ops broke a promise")
            for line in lines:
                self.out(line)
        return not lines

    def report_stall(self) -> None:
        elapsed = time.monotonic() - self.started
        for line in self.figures(elapsed):
            self.out(line)
        running = [op for op in self.ops if op.state == "running"]
        self.out(
            f"threads: peak {self.watchdog.peak} (bound {self.bound}), now "
            f"{threading.active_count()}: {census(threading.enumerate())}"
        )
        self.out(
            f"{len(running)} ops never ended: "
            + "; ".join(
                f"op {op.id} [{op.where()}] outcome so far {op.outcome}"
                + (f", {op.failures[-1]}" if op.failures else "")
                for op in running[:12]
            )
        )
        if self.watchdog.over_bound is not None:
            self.out(
                f"thread count went above the bound {self.bound} (peak "
                f"{self.watchdog.peak}): {self.watchdog.peak_census}"
            )
        waiting = collections.Counter(op.where() for op in running)
        self.out("by shape: " + ", ".join(f"{w} {n}" for w, n in waiting.most_common()))
        for line in self.failure_lines():
            self.out(line)


def run(short: bool) -> bool:
    """Run the storm on each loop, each in a child process; tell whether all held."""
    seed = int(os.environ.get("BRIDGE_STORM_SEED") or random.randrange(1_000_000))
    print(f"[bridge] seed {seed} (reproduce the shapes: BRIDGE_STORM_SEED={seed})")
    ok = True
    for backend in ("asyncio", "trio"):
        command = [
            sys.executable,
            "-m",
            "tests.stress.storm_bridge",
            "--loop",
            backend,
            "--seed",
            str(seed),
        ]
        if short:
            command.append("--short")
        # The child's watchdog ends a hang after STALL s; this only guards the guard.
        limit = STALL * 2 + (60 if short else 240)
        try:
            code = subprocess.run(
                command, cwd=ROOT, timeout=limit, check=False
            ).returncode
        except subprocess.TimeoutExpired:
            print(
                f"[bridge/{backend}] killed after {limit:.0f} s: the watchdog hung too"
            )
            code = -1
        if code != 0:
            print(f"[bridge/{backend}] FAILED (exit status {code})", flush=True)
            ok = False
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stress.storm_bridge")
    parser.add_argument("--loop", choices=["asyncio", "trio"], required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--short", action="store_true")
    args = parser.parse_args(argv)
    return 0 if Storm(args.loop, args.seed, args.short).run() else 1


if __name__ == "__main__":
    sys.exit(main())
