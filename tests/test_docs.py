"""
Run the documentation's code so that it cannot rot.

Every Python example the docs show lives in ``docs/examples`` and is pulled into the pages
with ``literalinclude``. Each script runs here in a fresh interpreter and must print
exactly the output the docs show next to it (``<name>.txt``); ``test_*.py`` examples are
pytest modules and must pass. The README's Python example runs as well.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
SCRIPTS = sorted(
    path for path in EXAMPLES.glob("*.py") if not path.name.startswith("test_")
)
PYTEST_EXAMPLES = sorted(EXAMPLES.glob("test_*.py"))
TIMEOUT = 60
SERVE_COMMANDS = [
    line.removeprefix("$ ").split("#")[0].strip()
    for line in (EXAMPLES / "serve_commands.txt").read_text().splitlines()
    if line.startswith("$ ") and not line.startswith("$ cd ")
]
#: What each server prints once it accepts connections (hypercorn; uvicorn's workers).
READY = re.compile(r"\[INFO\] Running on http|Application startup complete")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": "error"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _assert_clean_exit(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    # An exception printed while the interpreter shuts down ("Exception ignored in ...")
    # does not change the exit status, but a user running the example would see it.
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_example_prints_what_the_docs_show(script: Path) -> None:
    result = _run(str(script))
    _assert_clean_exit(result)
    expected = script.with_suffix(".txt").read_text(encoding="utf-8")
    assert result.stdout == expected


@pytest.mark.parametrize("module", PYTEST_EXAMPLES, ids=lambda path: path.stem)
def test_pytest_example_passes(module: Path) -> None:
    result = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(module))
    _assert_clean_exit(result)
    assert re.search(r"\b\d+ passed\b", result.stdout), result.stdout


def test_readme_example_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert blocks, "README.md has no ```python example"
    for block in blocks:
        _assert_clean_exit(_run("-c", block))


def test_every_example_is_shown_in_the_docs() -> None:
    pages = "".join(
        page.read_text(encoding="utf-8") for page in (ROOT / "docs").rglob("*.rst")
    )
    shown = set(re.findall(r"literalinclude:: (?:/|\.\./)*examples/(\S+)", pages))
    for path in [*SCRIPTS, *PYTEST_EXAMPLES]:
        assert path.name in shown, f"{path.name} is not included in any page"
    for script in SCRIPTS:
        assert script.with_suffix(".txt").name in shown, f"{script.stem}.txt not shown"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", SERVE_COMMANDS)
def test_documented_server_command_serves_the_flask_example(command: str) -> None:
    port = _free_port()
    args = shlex.split(command.replace("8000", str(port)))
    args[0] = str(Path(sys.executable).parent / args[0])
    with subprocess.Popen(
        args,
        cwd=EXAMPLES,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its worker processes go with it
    ) as server:
        try:
            output = _wait_until_ready(server)
            response = httpx.get(f"http://127.0.0.1:{port}/", timeout=TIMEOUT)
            assert response.status_code == 200, output
            assert response.text == "Hello from Flask"
        finally:
            _stop(server)


def _wait_until_ready(server: subprocess.Popen[str]) -> str:
    # The server's output is read in a thread, so that a silent server fails the
    # test after TIMEOUT instead of blocking it.
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()

    def read() -> None:
        for line in server.stdout or ():
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    output = ""
    while not READY.search(output):
        output += lines.get(timeout=TIMEOUT)
    return output


def _stop(server: subprocess.Popen[str]) -> None:
    os.killpg(server.pid, signal.SIGINT)
    try:
        server.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(TIMEOUT)


def _public_modules() -> list[str]:
    import asgibridge_any

    return sorted(
        info.name
        for info in pkgutil.iter_modules(asgibridge_any.__path__)
        if not info.name.startswith("_")
    )


@pytest.mark.parametrize("module", _public_modules())
def test_every_public_name_is_in_the_reference(module: str) -> None:
    page = ROOT / "docs" / "api" / f"{module}.rst"
    assert page.exists(), f"add docs/api/{module}.rst and list it in docs/api/index.rst"
    text = page.read_text(encoding="utf-8")
    assert f".. automodule:: asgibridge_any.{module}" in text
    assert re.search(
        rf"^   {module}$", (page.parent / "index.rst").read_text(), re.MULTILINE
    )
    namespace = importlib.import_module(f"asgibridge_any.{module}")
    for name in namespace.__all__:
        obj = getattr(namespace, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            # autodoc shows documented members; a class's own docstring, not type's.
            assert obj.__dict__.get("__doc__") or (
                inspect.isfunction(obj) and obj.__doc__
            ), f"{module}.{name} has no docstring"
        else:
            # Type aliases carry no docstring: the page describes them itself.
            assert f".. py:data:: {name}\n" in text, f"{module}.{name} is not described"
