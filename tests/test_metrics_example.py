"""examples/metrics_app.py and metrics_demo.py: stats() as Prometheus text behind hypercorn."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

from asgibridge_any import (
    LoopThreadStats,
    SensitiveStats,
    Stats,
    WorkerStats,
    WsgiStats,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _metrics_app() -> Any:
    spec = importlib.util.spec_from_file_location(
        "metrics_app", EXAMPLES / "metrics_app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_serves_metrics_from_hypercorn_and_stops() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "metrics_demo.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    assert "GET /        -> 200" in lines
    assert "GET /metrics -> 200 text/plain; version=0.0.4; charset=utf-8" in lines
    # The /metrics request itself is the one WSGI request in flight.
    assert "asgibridge_any_wsgi_in_flight 1" in lines
    assert "asgibridge_any_wsgi_capacity 20.0" in lines
    assert "asgibridge_any_sensitive_context_thread_limit +Inf" in lines
    assert lines[-1] == "server stopped"


def test_prometheus_text_has_a_gauge_per_number_and_the_holder_as_a_label() -> None:
    snapshot = Stats(
        workers=WorkerStats(threads=3, idle=1, in_flight=2, queued=0),
        sensitive=SensitiveStats(
            threads=2,
            context_threads=1,
            context_thread_limit=8,
            contexts_waiting=0,
            longest_context_wait=0.0,
            in_flight=1,
            queued=4,
            longest_hold=2.5,
            holder='views."report"',
        ),
        loops=LoopThreadStats(threads=1, idle=1, in_flight=0),
        wsgi=WsgiStats(
            adapters=1, default_limiter=0, in_flight=2, queued=1, capacity=20.0
        ),
    )
    text = _metrics_app().prometheus_text(snapshot)
    lines = text.splitlines()
    assert "# TYPE asgibridge_any_workers_in_flight gauge" in lines
    assert "asgibridge_any_workers_in_flight 2" in lines
    assert "asgibridge_any_sensitive_context_thread_limit 8" in lines
    assert "asgibridge_any_sensitive_longest_hold 2.5" in lines
    assert (
        'asgibridge_any_sensitive_holder_info{function="views.\\"report\\""} 1' in lines
    )
    samples = [line for line in lines if not line.startswith("#")]
    assert len(samples) == 4 + 9 + 3 + 5
    assert text.endswith("\n")
