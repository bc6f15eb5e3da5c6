"""CurrentThreadExecutor: work runs in the creating thread while it waits."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from asgibridge_any.current_thread_executor import CurrentThreadExecutor


def _thread_serving(
    target: CurrentThreadExecutor, server: CurrentThreadExecutor
) -> object:
    """Submit from another thread to ``target`` while ``server`` serves; return the
    thread that ran the work."""
    done: Future[None] = Future()
    results: list[threading.Thread] = []

    def submitter() -> None:
        results.append(target.submit(threading.current_thread).result(10))
        done.set_result(None)

    thread = threading.Thread(target=submitter)
    thread.start()
    server.run_until_future(done)
    thread.join(10)
    return results[0]


def _finished_executor(
    old: CurrentThreadExecutor | None = None,
) -> CurrentThreadExecutor:
    executor = CurrentThreadExecutor(old_executor=old)
    finished: Future[None] = Future()
    finished.set_result(None)
    executor.run_until_future(finished)
    return executor


def test_submitted_work_runs_in_the_creating_thread() -> None:
    executor = CurrentThreadExecutor()
    assert _thread_serving(executor, executor) is threading.current_thread()


def test_submit_from_its_own_thread_is_refused() -> None:
    executor = CurrentThreadExecutor()
    with pytest.raises(RuntimeError, match="own thread"):
        executor.submit(print)


def test_run_until_future_from_another_thread_is_refused() -> None:
    executor = CurrentThreadExecutor()
    errors: list[BaseException] = []
    future: Future[None] = Future()
    future.set_result(None)

    def run() -> None:
        try:
            executor.run_until_future(future)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert len(errors) == 1


def test_finished_executor_forwards_to_its_outer_one() -> None:
    outer = CurrentThreadExecutor()
    inner = _finished_executor(outer)
    assert inner.finished
    assert _thread_serving(inner, outer) is threading.current_thread()


def test_finished_executor_without_outer_one_raises() -> None:
    executor = _finished_executor()
    errors: list[BaseException] = []

    def submitter() -> None:
        try:
            executor.submit(print)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=submitter)
    thread.start()
    thread.join(10)
    assert len(errors) == 1
    assert "already quit" in str(errors[0])
