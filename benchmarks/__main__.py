"""Entry point: ``python -m benchmarks [--quick]`` (what ``make bench`` runs)."""

from __future__ import annotations

from .run import main

if __name__ == "__main__":
    main()
