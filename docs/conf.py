"""Sphinx configuration for the asgibridge_any documentation (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

from asgibridge_any import __version__

project = "asgibridge_any"
author = "the asgibridge_any authors"
copyright = "2026, the asgibridge_any authors"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "markdown_changelog",  # docs/_ext: renders CHANGELOG.md without a Markdown parser
    "public_names",
    "bench_results",  # docs/_ext: the published benchmark chart and tables  # docs/_ext: links bare names such as ASGI3Application
]

# The build must work offline: no intersphinx. References to other projects' names
# (anyio, the standard library's modules) therefore cannot resolve; they are listed
# here so that nitpicky mode still catches every broken reference to our own names.
nitpicky = True
nitpick_ignore_regex = [
    # The standard library and the libraries we build on.
    (
        r"py:.*",
        r"(anyio|sniffio|trio|contextvars|concurrent|collections|typing)(\..*)?",
    ),
    (r"py:.*", r"(asyncio|threading|time|weakref)(\..*)?"),
    # Standard library classes that annotations name without their module.
    (r"py:class", r"Context|ContextVar|Executor|Future"),
    # Type variables (_P, _R, T, ...) and private helpers (asgibridge_any._threads.Lane,
    # testing._Stopping): deliberately not part of the reference.
    (r"py:.*", r"(asgibridge_any\.[\w.]*\.)?_?[A-Z](\.args|\.kwargs)?"),
    (r"py:.*", r"asgibridge_any\.(\w+\.)*_\w+(\.\w+)*"),
    (r"py:.*", r"_\w+(\.\w+)*"),
]
nitpick_ignore = [
    # Private to asgibridge_any._server_queue; ApplicationQueue.end() mentions it.
    ("py:exc", "NoMoreMessages"),
]

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

templates_path: list[str] = []
exclude_patterns = ["_build", "examples/*.txt"]
html_theme = "furo"
html_title = f"asgibridge_any {release}"
html_static_path: list[str] = []
