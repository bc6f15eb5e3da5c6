# Turning measured cases into what people read: the text table with ratios and goals, the
# JSON document (the single source the chart and the notes are made from), and the chart.
from __future__ import annotations

__all__ = ("case_json", "chart", "goals_summary", "markdown", "table")

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from ._harness import Case


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("us/call", "MiB"):
        return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
    if unit == "s":
        return f"{value:.3f}"
    return f"{value:,.0f}"


def _width(column: str) -> int:
    return max(14, len(column) + 5)


def _columns(case: Case) -> list[str]:
    return list(case.refs)


def table(case: Case, rounds: int) -> str:
    """Return the printed table of one case: values, ratios per column, goals."""
    better = "lower is better" if case.lower_is_better else "higher is better"
    lines = [
        f"[{case.key}] {case.title}",
        (
            f"     {case.unit}, {better}; median of {rounds} rounds; ratios = median of same-round "
            f"ratios (this / column); {case.seconds:.1f} s"
        ),
    ]
    cols = _columns(case)
    head = f"  {'implementation':<24}{'median':>12}" + "".join(
        f"{'x ' + c:>{_width(c)}}" for c in cols
    )
    lines.append(head + "   goal")
    for row in case.rows:
        start = f"  {row.label:<24}"
        if row.na is not None:
            lines.append(start + f"{'n/a':>12}   ({row.na})")
            continue
        if row.error is not None and row.median() is None:
            lines.append(start + f"{'ERROR':>12}   {row.error}")
            continue
        cells = []
        for col in cols:
            ratio = case.ratio(row, col)
            width = _width(col)
            cells.append(f"{ratio:>{width}.2f}" if ratio is not None else " " * width)
        goals = []
        for goal in case.goals:
            if goal.row == row.label:
                ratio, met = case.goal_met(goal)
                verdict = "n/a" if met is None else ("MET" if met else "NOT MET")
                goals.append(f"{goal.text()}: {verdict}")
        line = start + f"{_fmt(row.median(), case.unit):>12}" + "".join(cells)
        if goals:
            line += "   " + "; ".join(goals)
        if row.error is not None:
            line += f"   ERROR in a later round: {row.error}"
        lines.append(line)
    for check in case.checks:
        verdict = (
            f"   goal {check.goal}: {'MET' if check.met else 'NOT MET'}"
            if check.met is not None
            else ""
        )
        lines.append(
            f"    {check.row:<22} {check.metric}: {_fmt(check.value, check.unit)} {check.unit}{verdict}"
        )
    return "\n".join(lines)


def goals_summary(cases: list[Case]) -> str:
    """Return one line per goal of the issue: the ratio and whether it is met."""
    lines = ["Goals:"]
    for case in cases:
        for goal in case.goals:
            ratio, met = case.goal_met(goal)
            verdict = "n/a" if met is None else ("MET" if met else "NOT MET")
            shown = f"{ratio:.2f}" if ratio is not None else "-"
            lines.append(
                f"  [{case.key:>2}] {goal.row:<20} {goal.text():<22} ratio {shown:>6}  {verdict}"
            )
        for check in case.checks:
            if check.goal:
                verdict = (
                    "n/a" if check.met is None else ("MET" if check.met else "NOT MET")
                )
                lines.append(
                    f"  [{case.key:>2}] {check.row:<20} {check.metric} {check.goal}: "
                    f"{_fmt(check.value, check.unit)} {check.unit}  {verdict}"
                )
    return "\n".join(lines)


def case_json(case: Case) -> dict[str, Any]:
    """Return everything measured for one case as plain JSON data."""
    rows = [
        {
            "label": row.label,
            "impl": row.impl,
            "loop": row.loop,
            "role": row.role,
            "na": row.na,
            "error": row.error,
            "values": row.values,
            "median": row.median(),
            "ratios": {
                col: {
                    "median": case.ratio(row, col),
                    "per_round": case.ratios(row, col),
                }
                for col in case.refs
                if case.ratios(row, col)
            },
        }
        for row in case.rows
    ]
    goals = []
    for goal in case.goals:
        ratio, met = case.goal_met(goal)
        goals.append(
            {
                "row": goal.row,
                "against": goal.against,
                "op": goal.op,
                "threshold": goal.threshold,
                "ratio": ratio,
                "met": met,
            }
        )
    return {
        "key": case.key,
        "title": case.title,
        "unit": case.unit,
        "lower_is_better": case.lower_is_better,
        "seconds": case.seconds,
        "refs": {col: dict(per_loop) for col, per_loop in case.refs.items()},
        "rows": rows,
        "goals": goals,
        "checks": [vars(check) for check in case.checks],
    }


def _speedup(ratio: float, lower_is_better: bool) -> float:
    # the chart always shows "times faster than the reference": > 1 is better
    return 1.0 / ratio if lower_is_better else ratio


def chart(data: dict[str, Any], path: Path) -> None:
    """
    Draw the goal ratios of a run (as written to JSON) to ``path`` (.svg or .png).

    Left: every goal of the issue as "times faster than the peer" with the goal marked.
    Right: ours against the raw floor (ContextVar or plain anyio), where one exists.
    """
    import matplotlib

    matplotlib.use("Agg")
    # SVG text stays text (small file, searchable, styled by the docs' fonts)
    matplotlib.rcParams["svg.fonttype"] = "none"
    import matplotlib.pyplot as plt

    goal_bars: list[tuple[str, float | None, float, bool | None]] = []
    floor_bars: list[tuple[str, float]] = []
    for case in data["cases"]:
        lower = case["lower_is_better"]
        for goal in case["goals"]:
            value = _speedup(goal["ratio"], lower) if goal["ratio"] else None
            target = _speedup(goal["threshold"], lower)
            label = f"[{case['key']}] {goal['row']} vs {goal['against']}"
            goal_bars.append((label, value, target, goal["met"]))
        for row in case["rows"]:
            floor = row["ratios"].get("floor")
            if row["role"] == "ours" and floor and floor["median"]:
                floor_bars.append(
                    (
                        f"[{case['key']}] {row['label']}",
                        _speedup(floor["median"], lower),
                    )
                )

    height = max(4.0, 0.32 * max(len(goal_bars), len(floor_bars)) + 1.5)
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(15, height), gridspec_kw={"width_ratios": [3, 2]}
    )
    ys = list(range(len(goal_bars)))[::-1]
    for y, (_label, value, target, met) in zip(ys, goal_bars, strict=True):
        color = "#2a9d4a" if met else ("#c0392b" if met is False else "#999999")
        if value is None:
            left.text(1.0, y, "  n/a", va="center", fontsize=8, color="#666666")
        else:
            left.barh(y, value, color=color, height=0.6)
            left.text(value, y, f" {value:.2f}x", va="center", fontsize=8)
        if target:
            left.plot([target, target], [y - 0.4, y + 0.4], color="black", linewidth=2)
    left.set_yticks(ys, [g[0] for g in goal_bars], fontsize=8)
    left.axvline(1.0, color="#555555", linestyle=":", linewidth=1)
    left.set_xscale("log")
    ticks = [0.25, 0.5, 1, 2, 4, 8, 16, 32]
    shown = [v for _l, v, _t, _m in goal_bars if v] + [t for _l, _v, t, _m in goal_bars]
    lo, hi = min([*shown, 1.0]) / 1.3, max([*shown, 1.0]) * 1.6
    left.set_xlim(lo, hi)
    left.set_xticks(
        [t for t in ticks if lo <= t <= hi], [f"{t:g}x" for t in ticks if lo <= t <= hi]
    )
    left.minorticks_off()
    left.set_xlabel(
        "times faster than the peer (black tick = goal; green met, red not met)"
    )
    left.set_title("asgibridge_any vs asgiref / a2wsgi")

    fys = list(range(len(floor_bars)))[::-1]
    for y, (_label, value) in zip(fys, floor_bars, strict=True):
        right.barh(y, value, color="#3b6ea8", height=0.6)
        right.text(value, y, f" {value:.2f}x", va="center", fontsize=8)
    right.set_yticks(fys, [f[0] for f in floor_bars], fontsize=8)
    right.axvline(1.0, color="#555555", linestyle=":", linewidth=1)
    if floor_bars:
        right.set_xlim(0, max(1.1, max(v for _l, v in floor_bars) * 1.25))
    right.set_xlabel("speed relative to the raw floor (1.0 = as fast as the floor)")
    right.set_title("asgibridge_any vs raw anyio / ContextVar")

    meta = data["meta"]
    fig.suptitle(
        f"{meta['mode']} run {meta['finished']} - {meta['machine']} - "
        f"load {meta['loadavg_before'][0]:.2f}/{meta['loadavg_after'][0]:.2f}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _md_value(value: float | None, unit: str) -> str:
    return _fmt(value, unit) if value is not None else "-"


def markdown(data: dict[str, Any]) -> str:
    """
    Return the run (as written to JSON) as Markdown: per case, every row's median and its
    ratios; then the goals with MET / NOT MET. Used for benchmarks/NOTES.md.
    """
    meta = data["meta"]
    load = f"{meta['loadavg_before'][0]:.2f} before, {(meta['loadavg_after'] or [0])[0]:.2f} after"
    head = (
        f"Run: {meta['mode']}, finished {meta['finished']}, wall {meta['wall_seconds']} s; "
        f"{meta['machine']}; Python {meta['python']}; load average {load}; commit {meta['commit']}."
    )
    out = [head, ""]
    for case in data["cases"]:
        cols = list(case["refs"])
        better = "lower is better" if case["lower_is_better"] else "higher is better"
        out.append(f"**[{case['key']}] {case['title']}** ({case['unit']}, {better})")
        out.append("")
        out.append("| row | median | " + " | ".join(f"x {c}" for c in cols) + " |")
        out.append("|---|---:|" + "---:|" * len(cols))
        for row in case["rows"]:
            if row["na"]:
                out.append(
                    f"| {row['label']} | n/a | " + " | ".join("" for _ in cols) + " |"
                )
                continue
            if row["error"] and row["median"] is None:
                out.append(
                    f"| {row['label']} | ERROR: {row['error']} | "
                    + " | ".join("" for _ in cols)
                    + " |"
                )
                continue
            cells = []
            for col in cols:
                ratio = row["ratios"].get(col)
                cells.append(
                    f"{ratio['median']:.2f}" if ratio and ratio["median"] else ""
                )
            value = _md_value(row["median"], case["unit"])
            out.append(f"| {row['label']} | {value} | " + " | ".join(cells) + " |")
        if case["checks"]:
            out.append("")
        for check in case["checks"]:
            goal = f" (goal {check['goal']})" if check["goal"] else ""
            out.append(
                f"- {check['row']}: {check['metric']} = "
                f"{_md_value(check['value'], check['unit'])} {check['unit']}{goal}"
            )
        out.append("")
    out.append("| case | row | goal | ratio | verdict |")
    out.append("|---|---|---|---:|---|")
    for case in data["cases"]:
        for goal in case["goals"]:
            verdict = (
                "n/a" if goal["met"] is None else ("MET" if goal["met"] else "NOT MET")
            )
            ratio = f"{goal['ratio']:.2f}" if goal["ratio"] is not None else "-"
            out.append(
                f"| {case['key']} | {goal['row']} | {goal['op']} {goal['threshold']:g}x "
                f"{goal['against']} | {ratio} | {verdict} |"
            )
        for check in case["checks"]:
            if check["goal"]:
                verdict = (
                    "n/a"
                    if check["met"] is None
                    else ("MET" if check["met"] else "NOT MET")
                )
                value = _md_value(check["value"], check["unit"])
                out.append(
                    f"| {case['key']} | {check['row']} | {check['metric']} {check['goal']} "
                    f"| {value} {check['unit']} | {verdict} |"
                )
    return "\n".join(out) + "\n"
