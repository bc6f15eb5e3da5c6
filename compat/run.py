"""
Run asgiref's own test suite against asgibridge_any (``make compat``).

Steps: fetch asgiref's sdist once into .compat/ (with pip, from the package index), copy its
tests/ into .compat/run-<pid>/tests with every ``asgiref`` renamed to ``asgibridge_any``, and run
them with pytest and pytest-asyncio configured as asgiref's setup.cfg configures them (strict
asyncio mode, default warning filters), one pytest process per test file, each test limited
to PER_TEST_TIMEOUT seconds. The tests listed in compat/skipped.txt are deselected by id. The
last line sums up passed/failed/errors/skipped/listed. Arguments: test files to run instead
of all (``tests/test_server.py``) and extra pytest options (after ``--``).

Then, unless test files were named, compat/channels_check/ runs: Django Channels 4.3's test
communicators and consumers (installed by the compat dependency group) on this package,
with every ``import asgiref`` in the process answered by asgibridge_any.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from xml.etree import ElementTree

ASGIREF_VERSION = "3.13.0"
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".compat"
DIST = CACHE / "dist"
# Each run gets its own copy of the suite, so that runs at the same time do not collide.
SUITE = CACHE / f"run-{os.getpid()}"
SKIP_LIST = Path(__file__).resolve().parent / "skipped.txt"

# asgiref's [tool:pytest] section (setup.cfg): no filterwarnings, strict asyncio mode.
PYTEST_INI = """\
[pytest]
testpaths = tests
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""
# A hang in one test must not hang CI; asgiref's tests all finish in seconds.
PER_TEST_TIMEOUT = "60"
CHANNELS_CHECK = Path(__file__).resolve().parent / "channels_check"


def sdist() -> Path:
    """Return the cached sdist, downloading it with pip on first use."""
    name = f"asgiref-{ASGIREF_VERSION}.tar.gz"
    path = DIST / name
    if not path.exists():
        DIST.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                f"asgiref=={ASGIREF_VERSION}",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                str(DIST),
                "--quiet",
            ],
            check=True,
        )
    if not path.exists():
        raise SystemExit(f"pip download did not produce {path}")
    return path


def extract_tests(archive: Path) -> None:
    """(Re)create SUITE/tests from the sdist, with asgiref renamed to asgibridge_any."""
    shutil.rmtree(SUITE, ignore_errors=True)
    tests = SUITE / "tests"
    tests.mkdir(parents=True)
    prefix = f"asgiref-{ASGIREF_VERSION}/tests/"
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(prefix):
                continue
            relative = member.name[len(prefix) :]
            source = tar.extractfile(member)
            assert source is not None
            data = source.read()
            if relative.endswith(".py"):
                data = re.sub(rb"\basgiref\b", b"asgibridge_any", data)
            target = tests / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    (SUITE / "pytest.ini").write_text(PYTEST_INI)


def skipped() -> list[tuple[str, str]]:
    """Parse compat/skipped.txt: ``<test id> | <reason>`` lines, ``#`` comments."""
    entries = []
    for number, raw in enumerate(SKIP_LIST.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        test_id, sep, reason = (part.strip() for part in line.partition("|"))
        if not sep or not reason:
            raise SystemExit(f"{SKIP_LIST}:{number}: expected '<test id> | <reason>'")
        file_part, _, name = test_id.partition("::")
        source = SUITE / file_part
        function = name.split("::")[-1].split("[")[0]
        if not source.exists() or f"def {function}(" not in source.read_text():
            raise SystemExit(
                f"{SKIP_LIST}:{number}: no test {test_id} in asgiref's suite"
            )
        entries.append((test_id, reason))
    return entries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "pytest_args",
        nargs="*",
        help="test files (default: all of asgiref's) and extra pytest arguments",
    )
    args = parser.parse_args()
    extract_tests(sdist())
    try:
        status = run(args.pytest_args)
    finally:
        shutil.rmtree(SUITE, ignore_errors=True)
    if any(arg.startswith("tests/") for arg in args.pytest_args):
        return status
    return run_channels_check() or status


def run_channels_check() -> int:
    """Run compat/channels_check/ (Channels' communicators on this package); return its status."""
    say("Django Channels communicators on asgibridge_any (compat/channels_check)")
    environment = dict(os.environ, PYTHONPATH=str(CHANNELS_CHECK))
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(CHANNELS_CHECK / "pytest.ini"),
        "--rootdir",
        str(CHANNELS_CHECK),
        "-p",
        "asgiref_alias",
        "-p",
        "no:cacheprovider",
        "-o",
        f"timeout={PER_TEST_TIMEOUT}",
        "-o",
        "timeout_method=thread",
        "-q",
        str(CHANNELS_CHECK),
    ]
    return subprocess.run(command, env=environment, check=False).returncode


def run(pytest_args: list[str]) -> int:
    """Run the extracted suite file by file; return 0 if everything passed."""
    listed = skipped()
    files = [arg for arg in pytest_args if arg.startswith("tests/")]
    extra = [arg for arg in pytest_args if not arg.startswith("tests/")]
    if not files:
        files = sorted(
            str(path.relative_to(SUITE)) for path in (SUITE / "tests").glob("test_*.py")
        )
    say(
        f"asgiref {ASGIREF_VERSION} suite; {len(listed)} test(s) listed in {SKIP_LIST.name}"
    )
    for test_id, reason in listed:
        say(f"  deselected {test_id}: {reason}")
    counts = Counts()
    worst = 0
    # One pytest process per file: a test that hangs the process (the timeout then ends
    # it, printing every thread's stack) costs that file's results, not the whole run's.
    for file in files:
        report = SUITE / "reports" / (Path(file).stem + ".xml")
        report.parent.mkdir(exist_ok=True)
        command = [*pytest_command(listed, report), *extra, file]
        returncode = subprocess.run(command, cwd=SUITE, check=False).returncode
        # 5: nothing collected (a file that skips itself entirely); not a failure.
        if returncode not in (0, 5):
            worst = worst or returncode
        if report.exists():
            counts.add(report)
        else:
            counts.crashed.append(file)
    say(counts.summary(len(listed)))
    return worst


def pytest_command(listed: list[tuple[str, str]], report: Path) -> list[str]:
    """The pytest invocation for one file, configured as asgiref's setup.cfg configures it."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(SUITE / "pytest.ini"),
        "--rootdir",
        str(SUITE),
        "-p",
        "asyncio",
        "-p",
        "no:cacheprovider",
        "-o",
        f"timeout={PER_TEST_TIMEOUT}",
        # The thread method ends a hung process even when the hang ignores signals.
        "-o",
        "timeout_method=thread",
        "-q",
        "-rfEs",
        "--junitxml",
        str(report),
    ]
    for test_id, _ in listed:
        command += ["--deselect", test_id]
    return command


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Counts:
    """Test outcome counts summed over the per-file JUnit XML reports."""

    def __init__(self) -> None:
        self.passed = self.failed = self.errors = self.skipped = 0
        self.crashed: list[str] = []

    def add(self, report: Path) -> None:
        root = ElementTree.parse(report).getroot()
        for suite in root.iter("testsuite"):
            total, failures, errors, skips = (
                int(suite.get(key, "0"))
                for key in ("tests", "failures", "errors", "skipped")
            )
            self.passed += total - failures - errors - skips
            self.failed += failures
            self.errors += errors
            self.skipped += skips

    def summary(self, listed: int) -> str:
        line = (
            f"asgiref {ASGIREF_VERSION} suite: {self.passed} passed, {self.failed} failed, "
            f"{self.errors} errors, {self.skipped} skipped, "
            f"{listed} listed in compat/{SKIP_LIST.name}"
        )
        if self.crashed:
            line += f"; no report (hung or crashed): {', '.join(self.crashed)}"
        return line


if __name__ == "__main__":
    sys.exit(main())
