# Where each implementation under test comes from. Imports are attempted once, and a module
# that is missing or raises on import turns its rows into "n/a" with the reason, so a
# half-finished package (or a missing peer) never stops the other measurements.
from __future__ import annotations

__all__ = ("Impl", "load", "versions")

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any


@dataclass(frozen=True)
class Impl:
    """The imported attributes of one implementation, or why they are not available."""

    attrs: dict[str, Any]
    na: str | None

    def __getitem__(self, name: str) -> Any:
        return self.attrs[name]


_cache: dict[tuple[str, tuple[str, ...]], Impl] = {}


def load(module: str, *names: str) -> Impl:
    """
    Import ``names`` from ``module``; never raise.

    :param module: dotted module path, e.g. ``"asgibridge_any.sync"``
    :param names: attributes the benchmark needs from it
    :returns: an :class:`Impl` whose ``na`` says why it cannot be used, or ``None``
    """
    key = (module, names)
    if key not in _cache:
        try:
            mod = importlib.import_module(module)
            attrs = {name: getattr(mod, name) for name in names}
        except Exception as exc:
            reason = f"{module}: {type(exc).__name__}: {exc}".splitlines()[0][:160]
            _cache[key] = Impl({}, reason)
        else:
            _cache[key] = Impl(attrs, None)
    return _cache[key]


def versions() -> dict[str, str]:
    """Return the installed versions of every distribution the run compares."""
    out = {}
    for dist in (
        "asgibridge_any",
        "asgiref",
        "a2wsgi",
        "anyio",
        "trio",
        "hypercorn",
        "flask",
        "matplotlib",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
