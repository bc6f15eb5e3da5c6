"""
A ``.. benchmark-results::`` directive: the published benchmark chart and tables.

``make bench`` (with ``--publish``) commits ``benchmarks/ratios.svg`` and
``benchmarks/last_run.json``. The directive shows the chart and one table per case from
those files when they exist, and says how to produce them when they do not, so the page
always builds and always shows the latest published run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

if TYPE_CHECKING:
    from docutils.nodes import Node
    from sphinx.application import Sphinx


def _number(value: object, unit: str) -> str:
    if not isinstance(value, int | float):
        return ""
    if unit == "x":
        return f"{value:.2f}"
    if unit.endswith("/s"):
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def case_table(case: dict[str, Any]) -> list[str]:
    """Render one case of the JSON as a reST list-table."""
    unit = str(case.get("unit", ""))
    better = "lower" if case.get("lower_is_better", True) else "higher"
    refs = list(case.get("refs", {}))
    title = f"[{case.get('key', '?')}] {case.get('title', '')}"
    lines = [
        f".. list-table:: {title} ({unit}, {better} is better)",
        "   :header-rows: 1",
        "",
        "   * - row",
        "     - median",
        *[f"     - x {ref}" for ref in refs],
    ]
    for row in case.get("rows", []):
        ratios = row.get("ratios", {})
        if row.get("error"):
            cells = ["error"] + [""] * len(refs)
        elif row.get("na"):
            cells = ["n/a"] + [""] * len(refs)
        else:
            cells = [_number(row.get("median"), unit)] + [
                _number(ratios.get(ref, {}).get("median"), "x") for ref in refs
            ]
        lines.append(f"   * - {row.get('label', '?')}")
        lines += [f"     - {cell}" if cell else "     -" for cell in cells]
    return [*lines, ""]


_OPS = {"<=": "≤", ">=": "≥"}


def goals_table(cases: list[dict[str, Any]]) -> list[str]:
    """Render every case's goals (ours / peer against a threshold) as one list-table."""
    lines = [
        ".. list-table:: Goals of this run",
        "   :header-rows: 1",
        "",
        "   * - case",
        "     - row",
        "     - goal (ours / peer)",
        "     - measured",
        "     - met",
    ]
    count = 0
    for case in cases:
        for goal in case.get("goals", []):
            count += 1
            op = _OPS.get(str(goal.get("op")), str(goal.get("op")))
            target = f"{op} {_number(goal.get('threshold'), 'x')}"
            lines += [
                f"   * - {case.get('key', '?')}",
                f"     - {goal.get('row', '?')}",
                f"     - {target} x {goal.get('against', '?')}",
                f"     - {_number(goal.get('ratio'), 'x')}",
                f"     - {'yes' if goal.get('met') else 'no'}",
            ]
    return [*lines, ""] if count else []


class BenchmarkResults(SphinxDirective):
    """Insert the published chart and tables, or a note that there are none yet."""

    has_content = False
    option_spec: ClassVar[dict[str, Any]] = {
        "json": directives.unchanged_required,
        "chart": directives.unchanged_required,
    }

    def run(self) -> list[Node]:
        lines: list[str] = []
        chart_rel = self.options["chart"]
        _, chart = self.env.relfn2path(chart_rel)
        _, data_path = self.env.relfn2path(self.options["json"])
        if Path(chart).exists():
            self.env.note_dependency(chart)
            lines += [f".. image:: {chart_rel}", "   :alt: speed-up per goal", ""]
        if Path(data_path).exists():
            self.env.note_dependency(data_path)
            data = json.loads(Path(data_path).read_text(encoding="utf-8"))
            meta = data.get("meta", {})
            summary = (
                f"Run ``{meta.get('mode', '?')}`` finished {meta.get('finished', '?')} "
                f"on {meta.get('machine', '?')}, Python {meta.get('python', '?')}, "
                f"commit ``{meta.get('commit', '?')}``."
            )
            lines += [summary, ""]
            lines += goals_table(data.get("cases", []))
            for case in data.get("cases", []):
                lines += case_table(case)
        if not lines:
            lines = [
                ".. note::",
                "",
                "   No benchmark run is published in the repository yet: run",
                "   ``make bench`` and then publish it as described below.",
                "",
            ]
        source = self.get_source_info()[0] or ""
        self.state_machine.insert_input(StringList(lines, source), source)
        return []


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("benchmark-results", BenchmarkResults)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
