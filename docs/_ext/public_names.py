"""
Resolve bare references to this package's public names (``CurrentThreadExecutor``).

Docstrings and postponed annotations often name a class of a sibling module without its
module (``ASGI3Application`` in ``compatibility``, imported under ``TYPE_CHECKING``).
Sphinx looks such names up in the current module only; this handler finds them in the
``__all__`` of every public module and links them there when the name is unambiguous.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docutils.nodes import Element, TextElement, reference
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

MODULES = (
    "sync",
    "current_thread_executor",
    "local",
    "wsgi",
    "server",
    "testing",
    "compatibility",
    "typing",
    "timeout",
)


def _public_names() -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for module in MODULES:
        full = f"asgibridge_any.{module}"
        for name in importlib.import_module(full).__all__:
            names.setdefault(name, []).append(f"{full}.{name}")
    return names


_NAMES: dict[str, list[str]] = {}


def _resolve(
    app: Sphinx, env: BuildEnvironment, node: Element, contnode: TextElement
) -> reference | None:
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if "." in target:
        return None
    candidates = _NAMES.get(target, [])
    if len(candidates) != 1:
        return None
    domain = env.get_domain("py")
    node["reftarget"] = candidates[0]
    # "obj": a type alias such as ASGI3Application is documented as data, not a class.
    return domain.resolve_xref(  # type: ignore[no-any-return]
        env, node["refdoc"], app.builder, "obj", candidates[0], node, contnode
    )


def setup(app: Sphinx) -> dict[str, Any]:
    _NAMES.update(_public_names())
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
