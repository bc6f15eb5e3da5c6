# The command line: pick the settings (full or --quick), run every case in one process,
# print each table as soon as its case is done, keep the JSON up to date after every case
# (a crash late in the run keeps the earlier numbers) and draw the chart at the end.
from __future__ import annotations

__all__ = ("FULL", "QUICK", "main")

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import case_e2e, cases_asgi_wsgi, cases_local, cases_sync, cases_wsgi
from ._harness import Case, Settings, hung_threads, run_case
from ._impls import versions
from ._report import case_json, chart, goals_summary, markdown, table

HERE = Path(__file__).resolve().parent

FULL = Settings(
    name="full",
    rounds=11,
    budget=0.15,
    e2e_rounds=5,
    e2e_seconds=1.5,
    e2e_warmup=0.3,
    memory_runs=2,
)
QUICK = Settings(
    name="quick",
    rounds=3,
    budget=0.15,
    e2e_rounds=2,
    e2e_seconds=0.6,
    e2e_warmup=0.2,
    memory_runs=1,
)


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, {model}"


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "asgibridge_any"],
            check=False,
            cwd=HERE.parent,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + (" (package has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def _select(cases: list[Case], wanted: str | None) -> list[Case]:
    if not wanted:
        return cases
    keys = [w.strip() for w in wanted.split(",") if w.strip()]
    return [c for c in cases if any(c.key == k or c.key.startswith(k) for k in keys)]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmarks; exit with status 1 if any implementation gave a wrong answer."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer rounds, shorter samples (< 1 min)"
    )
    parser.add_argument(
        "--cases", help="comma-separated case keys to run, e.g. 1,5,7a (default: all)"
    )
    parser.add_argument(
        "--out", type=Path, default=HERE / "results", help="results directory"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin this process (all its threads) to one CPU: hop latencies without "
        "cross-CPU wake-ups; the case-8 servers keep every CPU",
    )
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument(
        "--budget", type=float, help="override the seconds each sample measures"
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="also copy the JSON to benchmarks/last_run.json and the chart to benchmarks/ratios.svg",
    )
    parser.add_argument(
        "--chart-only",
        type=Path,
        metavar="JSON",
        help="only redraw the chart from a JSON file",
    )
    args = parser.parse_args(argv)

    if args.chart_only:
        saved = json.loads(args.chart_only.read_text())
        target = args.out / "ratios.svg"
        chart(saved, target)
        (args.out / "summary.md").write_text(markdown(saved))
        print(f"chart: {target}\nmarkdown: {args.out / 'summary.md'}")
        return

    pinned = None
    if args.pin:
        # before any thread exists, so that every thread inherits the affinity
        pinned = min(os.sched_getaffinity(0))
        os.environ["ASGIBRIDGE_BENCH_CPUS"] = ",".join(
            map(str, sorted(os.sched_getaffinity(0)))
        )
        os.sched_setaffinity(0, {pinned})
    settings = QUICK if args.quick else FULL
    if args.rounds is not None:
        settings = dataclasses.replace(
            settings, rounds=args.rounds, e2e_rounds=args.rounds
        )
    if args.budget is not None:
        settings = dataclasses.replace(settings, budget=args.budget)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    tag = settings.name + ("-pinned" if pinned is not None else "")
    json_path = out / f"{tag}-{stamp}.json"
    started = time.perf_counter()
    meta: dict[str, Any] = {
        "mode": tag,
        "pinned_cpu": pinned,
        "settings": vars(settings),
        "started": _now(),
        "finished": None,
        "wall_seconds": None,
        "machine": _machine(),
        "python": sys.version.split()[0],
        "versions": versions(),
        "commit": _git_commit(),
        "loadavg_before": list(os.getloadavg()),
        "loadavg_after": None,
    }
    data: dict[str, Any] = {"meta": meta, "cases": []}
    print(f"asgibridge_any benchmarks, {tag} run - {meta['machine']}")
    print(
        f"python {meta['python']}; "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    )
    print(
        f"commit {meta['commit']}; load average {meta['loadavg_before'][0]:.2f}\n",
        flush=True,
    )

    cases = (
        cases_sync.build()
        + cases_local.build()
        + cases_wsgi.build()
        + cases_asgi_wsgi.build()
        + [case_e2e.build(settings, out)]
    )
    cases = _select(cases, args.cases)
    for case in cases:
        run_case(case, settings)
        rounds = settings.e2e_rounds if case.e2e else settings.rounds
        print(table(case, rounds) + "\n", flush=True)
        data["cases"].append(case_json(case))
        _write_json(json_path, data)

    meta["finished"] = _now()
    meta["wall_seconds"] = round(time.perf_counter() - started, 1)
    meta["loadavg_after"] = list(os.getloadavg())
    _write_json(json_path, data)
    shutil.copyfile(json_path, out / f"latest-{tag}.json")
    (out / f"summary-{tag}.md").write_text(markdown(data))
    print(goals_summary(cases))
    print(
        f"\nwall time {meta['wall_seconds']} s; load average now {meta['loadavg_after'][0]:.2f}"
    )
    print(f"JSON: {json_path}", flush=True)
    chart_path: Path | None = out / f"ratios-{tag}.svg"
    try:
        chart(data, out / f"ratios-{tag}.svg")
    except Exception as exc:
        # the numbers are safe in the JSON; a chart can be drawn from it later
        print(f"chart not written ({type(exc).__name__}: {str(exc).strip()[:200]});")
        print(f"  redraw it with: python -m benchmarks --chart-only {json_path}")
        chart_path = None
    else:
        print(f"chart: {chart_path}")
    if args.publish:
        shutil.copyfile(json_path, HERE / "last_run.json")
        if chart_path is not None:
            shutil.copyfile(chart_path, HERE / "ratios.svg")
        print(f"published to {HERE}")

    errors = [
        f"[{c.key}] {r.label}: {r.error}" for c in cases for r in c.rows if r.error
    ]
    if errors:
        print(
            "\nERRORS (wrong answers or failures, not measured):\n  "
            + "\n  ".join(errors)
        )
    sys.stdout.flush()
    status = 1 if errors or chart_path is None else 0
    if hung_threads.is_set():
        # a hung sample left threads that would block the interpreter's exit
        os._exit(status)
    sys.exit(status)
