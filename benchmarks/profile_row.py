# Profile one row of one case with cProfile in every thread it touches (the event-loop
# thread, worker threads, loop threads of async_to_sync), so a hot spot on either side of
# a thread hop shows up. Used to find where our time goes; not part of `make bench`.
#
#   python -m benchmarks.profile_row 1a "ours (asyncio)" [--seconds 2] [--sort tottime]
from __future__ import annotations

__all__ = ("main",)

import argparse
import cProfile
import pstats
import sys
import threading
import time
from typing import Any

from . import cases_local, cases_sync, cases_wsgi
from .run import HERE


def main(argv: list[str] | None = None) -> None:
    """Run one row's sampler under cProfile in all threads and print the top functions."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_row")
    parser.add_argument("case", help="case key, e.g. 1a")
    parser.add_argument("row", help='row label, e.g. "ours (trio)"')
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--sort", default="tottime", help="pstats sort key (tottime, cumulative)"
    )
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: each thread's CPU time (blocked threads cost nothing); wall: elapsed time",
    )
    args = parser.parse_args(argv)

    cases = cases_sync.build() + cases_local.build() + cases_wsgi.build()
    case = next((c for c in cases if c.key == args.case), None)
    if case is None:
        sys.exit(f"no case {args.case!r}; cases: {', '.join(c.key for c in cases)}")
    row = case.row(args.row)
    if row.sampler is None:
        sys.exit(f"{row.label} is not available: {row.na}")

    # thread_time: a worker blocked on a lock or a queue shows no time, so the totals say
    # where the CPU went rather than who waited longest
    timer = time.thread_time if args.clock == "cpu" else time.perf_counter
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_in_thread(*_: Any) -> None:
        # first profile event in a new thread: hand the thread over to its own cProfile
        prof = cProfile.Profile(timer)
        with lock:
            profiles.append(prof)
        prof.enable()

    threading.setprofile(start_in_thread)
    main_prof = cProfile.Profile(timer)
    profiles.append(main_prof)
    main_prof.enable()
    try:
        value = row.sampler(args.seconds)
    finally:
        main_prof.disable()
        threading.setprofile(None)
    for prof in profiles:
        prof.disable()  # a no-op for other threads' profiles once they ended
    out = HERE / "results" / f"profile-{case.key}-{row.impl}-{row.loop}.prof"
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        try:
            stats.add(prof)
        except TypeError:  # a thread's profiler that recorded nothing
            continue
    stats.dump_stats(out)
    print(
        f"{row.label} in case {case.key}: {value:,.2f} {case.unit} (under the profiler)"
    )
    print(f"{len(profiles)} thread profiles merged; saved to {out}\n")
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.limit)


if __name__ == "__main__":
    main()
