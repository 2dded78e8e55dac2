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


def comparison_table(cmp: Any) -> Table:
    """A run against its baseline (``report.compare.Comparison``): per score the two values, the delta
    coloured green/red (bold when significant, dim when not), its 95% CI and the paired test's p."""
    from alignbench.report.compare import fmt_p

    table = Table(title=f"{cmp.new_label} vs baseline {cmp.base_label}", header_style="bold", title_style="bold",
                  caption=f"paired over {cmp.n_shared} shared questions · bootstrap CI · sign-flip permutation p "
                          "(categories Holm-adjusted) · * significant at p < "
                          f"{cmp.settings.get('alpha', 0.05)}")
    table.add_column("类别 category", no_wrap=True)
    for name in ("baseline", "this run", "Δ", "95% CI of Δ", "p", "n"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in cmp.rows:
        label = f"[bold]{row.name} {row.en}[/]" if row.kind != "category" else f"  {row.name} [dim]{row.en}[/]"
        if row.test is None:
            table.add_row(label, "—", "—", "—", "", "", "0")
            continue
        x = row.test
        colour = "green" if x.delta > 0 else "red" if x.delta < 0 else "white"
        style = f"bold {colour}" if row.significant else f"{colour}"
        delta = f"[{style}]{x.delta:+.2f}{' *' if row.significant else ''}[/]"
        p = fmt_p(row.p_holm if row.kind == "category" else x.p_value)
        table.add_row(label, _fmt(x.base), _fmt(x.new), delta, f"[dim]{x.ci[0]:+.2f} … {x.ci[1]:+.2f}[/]",
                      p, str(x.n))
    return table


def print_comparison(cmp: Any, console: Console) -> None:
    """The comparison table, what was skipped and why, and the questions that moved most."""
    from rich.markup import escape

    if cmp.comparable:
        console.print(comparison_table(cmp))
    for problem in cmp.problems:
        console.print(f"[yellow]•[/] {escape(problem)}", highlight=False)
    for title, moves in (("largest gains", cmp.gains), ("largest drops", cmp.drops)):
        if moves:
            items = ", ".join(f"Q{m.question_id} {escape(m.category)} {m.base:.0f}→{m.new:.0f}" for m in moves)
            console.print(f"[dim]{title}:[/] {items}", highlight=False)


def _pm(value: float | None, se: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" + (f" ± {se:.{digits}f}" if se is not None else "")


def _share(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def pairwise_table(summary: dict[str, Any], title: str | None = None) -> Table:
    """Pairwise results (``pairwise_summary.json`` or ``alignbench winrate``): per model the win rate
    and LC win rate ± SE (percent), wins/ties/losses, failures and position inconsistency."""
    from rich.markup import escape

    models = summary.get("models", {})
    baselines = {m.get("baseline") for m in models.values()}
    several = len(baselines) > 1
    has_incons = any(m.get("inconsistency") is not None for m in models.values())
    glm = summary.get("glm", {})
    caption = "percent ± SE · ties count half · LC = length-controlled (joint GLM"
    caption += f", {glm['n_boot']} bootstrap resamples)" if glm.get("n_boot") else ")"
    if summary.get("length_unit"):
        caption += f" · length in {summary['length_unit']}"
    table = Table(title=title or f"pairwise vs {escape(str(summary.get('baseline') or 'baseline'))}", caption=caption,
                  header_style="bold", title_style="bold")
    table.add_column("model", no_wrap=True)
    if several:
        table.add_column("baseline", no_wrap=True)
    for name in ("win rate", "LC win rate", "W/T/L", "n", "failed"):
        table.add_column(name, justify="right", no_wrap=True)
    if has_incons:
        table.add_column("position inconsistency", justify="right")
    for name, m in models.items():
        wtl = f"{m.get('n_wins', 0)}/{m.get('n_ties', 0)}/{m.get('n_losses', 0)}"
        row = [escape(name)] + ([escape(str(m.get("baseline")))] if several else [])
        row += [_pm(m.get("win_rate"), m.get("win_rate_se")), _pm(m.get("lc_win_rate"), m.get("lc_win_rate_se")),
                wtl, str(m.get("n", 0)), _failed(m.get("n_failed", 0))]
        if has_incons:
            row.append(_share(m.get("inconsistency")))
        table.add_row(*row)
    return table


def pairwise_category_table(summary: dict[str, Any]) -> Table | None:
    """Win rate (and position inconsistency) per category and model; None without categories."""
    from rich.markup import escape

    models = {n: m for n, m in summary.get("models", {}).items() if m.get("categories")}
    if not models:
        return None
    cats: list[str] = []
    for m in models.values():
        cats += [c for c in m["categories"] if c not in cats]
    table = Table(title="分类胜率 win rate by category (position inconsistency)", header_style="bold",
                  title_style="bold")
    table.add_column("类别 category", no_wrap=True)
    for name in models:
        table.add_column(escape(name), justify="right", no_wrap=True)
    for cat in cats:
        cells = []
        for m in models.values():
            c = m["categories"].get(cat)
            if not c or c.get("win_rate") is None:
                cells.append("—")
                continue
            incons = f" [dim]({_share(c['inconsistency'], 0)})[/]" if c.get("inconsistency") is not None else ""
            cells.append(f"{c['win_rate']:.0f}{incons}")
        table.add_row(cat, *cells)
    return table


def print_pairwise(summary: dict[str, Any], console: Console, categories: bool = True) -> None:
    """The pairwise tables and the notes that qualify them (failures, missing pairs, LC warnings)."""
    from rich.markup import escape

    console.print(pairwise_table(summary))
    if categories and (cat_table := pairwise_category_table(summary)) is not None:
        console.print(cat_table)
    notes = []
    bias = summary.get("position_bias", {})
    if bias.get("inconsistency") is not None:
        notes.append(f"position inconsistency over all pairs {_share(bias['inconsistency'])} "
                     f"({bias.get('n_inconsistent', 0)} of {bias.get('n_pairs', 0)}; "
                     f"{bias.get('n_flips', 0)} flipped from win to loss with the order)")
    for name, m in summary.get("models", {}).items():
        if m.get("n_failed"):
            by = ", ".join(f"{k} {v}" for k, v in m.get("failed_by_status", {}).items())
            notes.append(f"{escape(name)}: {m['n_failed']} pair(s) failed and are excluded" + (f" ({by})" if by else ""))
        if m.get("lc_warning"):
            notes.append(f"[yellow]{escape(name)}: {escape(m['lc_warning'])}[/]")
    for name, ids in summary.get("run", {}).get("missing", {}).items():
        if ids:
            notes.append(f"{escape(name)}: {len(ids)} question(s) without both answers were not compared")
    usage = summary.get("usage", {})
    if usage:
        notes.append(f"judge calls {usage.get('calls', 0)} · cached {usage.get('cached_replies', 0)} · "
                     f"retries {usage.get('retries', 0)} · tokens {usage.get('prompt_tokens', 0)}+"
                     f"{usage.get('completion_tokens', 0)}")
    for note in notes:
        console.print(f"[yellow]•[/] {note}", highlight=False)
