"""
Run asgiref's own test suite against asgibridge_any (``make compat``).

Steps: fetch asgiref's sdist once into .compat/ (with pip, from the package index), copy its
tests/ into .compat/suite/tests with every ``asgiref`` renamed to ``asgibridge_any``, and run
them with pytest and pytest-asyncio configured as asgiref's setup.cfg configures them. The
tests listed in compat/skipped.txt are deselected by id. Extra arguments go to pytest.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ASGIREF_VERSION = "3.13.0"
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".compat"
DIST = CACHE / "dist"
SUITE = CACHE / "suite"
SKIP_LIST = Path(__file__).resolve().parent / "skipped.txt"

# asgiref's [tool:pytest] section (setup.cfg): no filterwarnings, strict asyncio mode.
PYTEST_INI = """\
[pytest]
testpaths = tests
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""
# A hang in one test must not hang CI; asgiref's tests all finish in seconds.
PER_TEST_TIMEOUT = "120"


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
            raise SystemExit(f"{SKIP_LIST}:{number}: no test {test_id} in asgiref's suite")
        entries.append((test_id, reason))
    return entries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest")
    args = parser.parse_args()
    extract_tests(sdist())
    listed = skipped()
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
        "-q",
        "-rfEs",
        "--continue-on-collection-errors",
    ]
    for test_id, _ in listed:
        command += ["--deselect", test_id]
    command += args.pytest_args
    print(f"asgiref {ASGIREF_VERSION} suite; {len(listed)} test(s) listed in {SKIP_LIST.name}")
    for test_id, reason in listed:
        print(f"  deselected {test_id}: {reason}")
    sys.stdout.flush()
    return subprocess.run(command, cwd=SUITE, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
