"""Rich tables for the terminal. The only place that formats results for people on a console."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from alignbench.rubrics import Rubric


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f"{ci[0]:.2f}–{ci[1]:.2f}"


def score_table(summary: dict[str, Any], rubric: Rubric) -> Table:
    """Categories grouped under 推理/语言 with score, CI, n and failures."""
    run = summary.get("run", {})
    judge = run.get("judge", {})
    title = (f"{summary.get('model', '?')} · judge {judge.get('name', '?')} ({judge.get('model', '?')})"
             f" · {run.get('rubric', rubric.id)}")
    table = Table(title=title, caption="1–10 scale · 95% bootstrap CI · failed judgments excluded",
                  header_style="bold", title_style="bold")
    table.add_column("类别 category", no_wrap=True)
    table.add_column("score", justify="right")
    table.add_column("95% CI", justify="right", style="dim", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("failed", justify="right")
    cats = summary.get("categories", {})
    for gid, group in summary.get("groups", {}).items():
        members = [c for c in rubric.category_names(gid) if c in cats]
        if not members:
            continue
        n = sum(cats[c]["n"] for c in members)
        nf = sum(cats[c]["n_failed"] for c in members)
        table.add_row(f"[bold]{group['name']} {group['en']}[/]", f"[bold]{_fmt(group['score'])}[/]",
                      _ci(group.get("ci")), str(n), _failed(nf))
        for name in members:
            c = cats[name]
            table.add_row(f"  {name} [dim]{c['en']}[/]", _fmt(c["score"]), _ci(c.get("ci")), str(c["n"]),
                          _failed(c["n_failed"]))
    table.add_section()
    table.add_row("[bold]总分 overall[/]", f"[bold]{_fmt(summary.get('overall'))}[/]", _ci(summary.get("overall_ci")),
                  str(summary.get("n_ok", 0)), _failed(summary.get("n_failed", 0)))
    return table


def dimension_table(summary: dict[str, Any], rubric: Rubric) -> Table:
    """Mean score per dimension (columns) within each category (rows); blank where a dimension
    does not apply to the category's answer types."""
    dims = [d for d in rubric.all_dimensions() if d in summary.get("dimensions", {})]
    table = Table(title="维度得分 dimension means", header_style="bold", title_style="bold",
                  caption=" · ".join(f"{rubric.dimensions[d].short}={d}" for d in dims if rubric.dimensions[d].short))
    table.add_column("类别", no_wrap=True)
    for dim in dims:
        table.add_column(rubric.dimensions[dim].short or dim, justify="right")
    cats = summary.get("categories", {})
    for name in rubric.category_names():
        if name in cats:
            table.add_row(name, *[_fmt(cats[name]["dimensions"].get(d, {}).get("mean"), 1) if d in
                                  cats[name]["dimensions"] else "" for d in dims])
    table.add_section()
    table.add_row("[bold]全部 all[/]", *[_fmt(summary["dimensions"][d]["mean"], 1) for d in dims])
    return table


def _failed(n: int) -> str:
    return f"[red]{n}[/]" if n else "0"


def print_summary(summary: dict[str, Any], rubric: Rubric, console: Console) -> None:
    console.print(score_table(summary, rubric))
    if summary.get("dimensions"):
        console.print(dimension_table(summary, rubric))
    notes = []
    if summary.get("n_failed"):
        by = ", ".join(f"{k} {v}" for k, v in summary.get("failed_by_status", {}).items())
        notes.append(f"{summary['n_failed']} judgment(s) failed and are excluded ({by})")
    missing = summary.get("run", {}).get("n_missing_answers", 0)
    if missing:
        notes.append(f"{missing} question(s) had no answer and were not judged")
    incomplete = [g["name"] for g in summary.get("groups", {}).values() if g.get("score") is not None
                  and not g.get("complete", True)]
    if incomplete:
        notes.append(f"groups {', '.join(incomplete)} lack some categories: not comparable with full AlignBench")
    usage = summary.get("usage", {})
    if usage:
        notes.append(f"judge calls {usage.get('calls', 0)} · cached {usage.get('cached_replies', 0)} · "
                     f"retries {usage.get('retries', 0)} · tokens {usage.get('prompt_tokens', 0)}+"
                     f"{usage.get('completion_tokens', 0)}")
    for note in notes:
        console.print(f"[yellow]•[/] {note}", highlight=False)
