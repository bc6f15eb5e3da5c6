"""
A ``.. markdown-changelog:: path`` directive: render the repository's CHANGELOG.md.

The changelog is kept in Markdown at the top of the repository (where people look for
it), and the docs render it without depending on a Markdown parser: it uses a small,
fixed subset (``#`` headings, ``-`` bullet lists with indented continuation lines, plain
paragraphs, ``**bold**`` and ```code``` spans, ``[text](url)`` links) that is translated to
reStructuredText line by line here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

if TYPE_CHECKING:
    from docutils.nodes import Node
    from sphinx.application import Sphinx

_UNDERLINES = {1: "=", 2: "-", 3: "~", 4: "^"}
_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def _inline(text: str) -> str:
    # `code` -> ``code``; [text](url) -> `text <url>`_ ; **bold** is the same in both.
    text = _CODE.sub(r"``\1``", text)
    return _LINK.sub(r"`\1 <\2>`__", text)


def markdown_to_rst(markdown: str) -> list[str]:
    """Translate the Markdown subset described above into reST lines."""
    lines: list[str] = []
    for raw in markdown.splitlines():
        heading = re.match(r"^(#{1,4})\s+(.*)$", raw)
        if heading:
            level, title = len(heading.group(1)), _inline(heading.group(2).strip())
            # Level 1 is the page title, which the including page provides.
            if level == 1:
                continue
            lines += [title, _UNDERLINES[level - 1] * len(title), ""]
            continue
        lines.append(_inline(raw))
    return lines


class MarkdownChangelog(SphinxDirective):
    """Insert a Markdown changelog, translated to reST, at this point of the page."""

    required_arguments = 1
    has_content = False
    option_spec: ClassVar[dict[str, Any]] = {}

    def run(self) -> list[Node]:
        source, path = self.env.relfn2path(self.arguments[0])
        self.env.note_dependency(path)
        text = Path(path).read_text(encoding="utf-8")
        self.state_machine.insert_input(
            StringList(markdown_to_rst(text), source), source
        )
        return []


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("markdown-changelog", MarkdownChangelog)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
