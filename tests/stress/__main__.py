"""
Run the stress storms: ``python -m tests.stress [--short] [storm ...]``.

Each storm module exposes ``run(short: bool) -> bool``: it prints its own figures and
returns whether every promise held. ``--short`` is the form CI runs (a minute at most
in all); the full form takes at most five minutes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

#: Storm name -> module (inside this package) that runs it, in the order they run.
STORMS = {
    "bridge": "storm_bridge",
    "http": "storm_http",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stress")
    parser.add_argument("--short", action="store_true", help="the CI form (<= 60 s)")
    parser.add_argument("storms", nargs="*", choices=[*STORMS, []], default=[])
    args = parser.parse_args(argv)
    failed = []
    for name in args.storms or list(STORMS):
        try:
            module = importlib.import_module(f"{__package__}.{STORMS[name]}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{STORMS[name]}":
                raise
            print(f"[{name}] not written yet: skipped")
            continue
        started = time.monotonic()
        print(f"[{name}] {'short' if args.short else 'full'} storm")
        ok = module.run(args.short)
        print(
            f"[{name}] {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.1f} s"
        )
        if not ok:
            failed.append(name)
    if failed:
        print(f"stress: failed: {', '.join(failed)}")
        return 1
    print("stress: every storm held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
