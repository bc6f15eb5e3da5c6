#!/bin/sh
# Run the test suite under every other supported Python that this machine has.
#
# `make test` lints, type-checks and runs pytest once in .venv (made with $PYTHON); this
# script then runs pytest under each version in $PYTHON_VERSIONS other than that one, in a
# venv of its own (.venv-3.12, ...) holding the package and its test group. A version
# found neither on PATH (python3.12) nor in pyenv's versions ($PYENV_ROOT/versions/3.12.*)
# is reported and skipped; a failing suite fails the script, after the other versions ran.
set -u

MAIN_PYTHON=${1:?usage: pytest_each_python.sh MAIN_VENV_PYTHON}
PYTHON_VERSIONS=${PYTHON_VERSIONS:-3.11 3.12 3.13}
PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}

main_version=$("$MAIN_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
failed=""
skipped=""
passed="$main_version (.venv)"

# Print the path of a working interpreter of version $1, or nothing.
find_python() {
    candidates="python$1"
    # pyenv's installs, newest patch release last (so it wins).
    for dir in "$PYENV_ROOT"/versions/"$1".*; do
        [ -x "$dir/bin/python$1" ] && candidates="$candidates $dir/bin/python$1"
    done
    found=""
    for candidate in $candidates; do
        # A pyenv shim exists for versions that are not selected; running it fails.
        version=$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
        [ "$version" = "$1" ] && found=$(command -v "$candidate")
    done
    printf '%s' "$found"
}

for version in $PYTHON_VERSIONS; do
    [ "$version" = "$main_version" ] && continue
    python=$(find_python "$version")
    if [ -z "$python" ]; then
        echo "== Python $version: not found on PATH or in $PYENV_ROOT/versions; skipped"
        skipped="$skipped $version"
        continue
    fi
    venv=".venv-$version"
    echo "== Python $version: $python ($venv)"
    if [ ! -f "$venv/.installed" ] || [ pyproject.toml -nt "$venv/.installed" ]; then
        { [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"; } &&
            "$venv/bin/python" -m pip install -q --upgrade pip &&
            "$venv/bin/python" -m pip install -q -e . --group test &&
            touch "$venv/.installed" || {
            echo "== Python $version: installing into $venv failed"
            failed="$failed $version"
            continue
        }
    fi
    if "$venv/bin/python" -m pytest -q; then
        passed="$passed, $version"
    else
        failed="$failed $version"
    fi
done

echo "== pytest passed on Python $passed${skipped:+; not found:$skipped}${failed:+; FAILED on:$failed}"
[ -z "$failed" ]
