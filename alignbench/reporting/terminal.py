"""Rich tables for the terminal. The only place that formats results for people on a console."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from alignbench.metaeval import METRICS, SCALE_NOTE, MetaEvalResult
from alignbench.reporting.tables import FitTable as Table
from alignbench.rubrics import Rubric
from alignbench.stats import fmt
from alignbench.types import Judgment, Status, Summary

if TYPE_CHECKING:  # the compare module pulls in scipy's optimizer: only score's footer is needed at start-up
    from alignbench.pairwise.compare import PairwiseSummary


def score_table(summary: Summary, rubric: Rubric) -> Table:
    """Categories grouped under 推理/语言 with score, CI, n and failures."""
    run = summary.run
    title = f"{summary.model or '?'} · judge {fmt.judge_label(run, model=True)} · {run.rubric or rubric.id}"
    table = Table(title=escape(title), caption="1–10 scale · 95% bootstrap CI · failed judgments excluded",
                  header_style="bold", title_style="bold")
    _score_columns(table, "类别 category")
    cats = summary.categories
    for gid, group in summary.groups.items():
        members = [c for c in rubric.category_names(gid) if c in cats]
        if not members:
            continue
        n = sum(cats[c].n for c in members)
        nf = sum(cats[c].n_failed for c in members)
        table.add_row(f"[bold]{group.name} {group.en}[/]", f"[bold]{fmt.num(group.score)}[/]",
                      fmt.ci(group.ci), str(n), _failed(nf))
        for name in members:
            c = cats[name]
            table.add_row(f"  {name} [dim]{c.en}[/]", fmt.num(c.score), fmt.ci(c.ci), str(c.n), _failed(c.n_failed))
    table.add_section()
    table.add_row("[bold]总分 overall[/]", f"[bold]{fmt.num(summary.overall)}[/]", fmt.ci(summary.overall_ci),
                  str(summary.n_ok), _failed(summary.n_failed))
    return table


def dimension_table(summary: Summary, rubric: Rubric) -> Table:
    """Mean score per dimension (columns) within each category (rows); blank where a dimension
    does not apply to the category's answer types."""
    dims = [d for d in rubric.all_dimensions() if d in summary.dimensions]
    table = Table(title="维度得分 dimension means", header_style="bold", title_style="bold",
                  caption=" · ".join(f"{rubric.dimensions[d].short}={d}" for d in dims if rubric.dimensions[d].short))
    table.add_column("类别", no_wrap=True)
    for dim in dims:
        table.add_column(rubric.dimensions[dim].short or dim, justify="right")
    cats = summary.categories
    for name in rubric.category_names():
        if name in cats:
            own = cats[name].dimensions
            table.add_row(name, *[fmt.num(own[d].mean, 1) if d in own else "" for d in dims])
    table.add_section()
    table.add_row("[bold]全部 all[/]", *[fmt.num(summary.dimensions[d].mean, 1) for d in dims])
    return table


def dialogue_table(summary: Summary) -> Table | None:
    """Per-turn scores of a run's multi-turn dialogues (``summary.json`` → ``dialogues``), None without any.

    A dialogue's score is the mean of its judged turns, so the category table cannot show whether the
    model holds up as the dialogue goes on; this table can: turn k's mean, 95% CI, n and failures."""
    dialogues = (summary.model_extra or {}).get("dialogues") or {}
    turns = dialogues.get("turns") or {}
    if not turns:
        return None
    table = Table(title=escape(f"各轮得分 per turn · {summary.model or '?'}"), header_style="bold", title_style="bold",
                  caption=f"{dialogues.get('n', 0)} dialogues, {dialogues.get('judged_turns', 0)} judged turns · "
                          "dialogue = mean of its turns · 95% bootstrap CI · failed turns excluded")
    _score_columns(table, "轮次 turn")
    for k in sorted(turns, key=int):
        v = turns[k]
        table.add_row(f"第{escape(k)}轮 [dim]turn {escape(k)}[/]", fmt.num(v.get("score")), fmt.ci(v.get("ci")),
                      str(v.get("n", 0)), _failed(v.get("n_failed", 0)))
    return table


def _score_columns(table: Table, first: str) -> None:
    """The columns of a score table (categories or turns): name, score, 95% CI, n, failed."""
    table.add_column(first, no_wrap=True)
    for name in ("score", "95% CI", "n", "failed"):
        table.add_column(name, justify="right", style="dim" if name == "95% CI" else None, no_wrap=name == "95% CI")


def _failed(n: int) -> str:
    return f"[red]{n}[/]" if n else "0"


def print_summary(summary: Summary, rubric: Rubric, console: Console) -> None:
    """The score and dimension tables of one run, its per-turn table when it judged dialogues, and notes on
    what was excluded, answers' reasoning and the judge's usage."""
    console.print(score_table(summary, rubric))
    if summary.dimensions:
        console.print(dimension_table(summary, rubric))
    if (turns := dialogue_table(summary)) is not None:
        console.print(turns)
    notes = []
    if summary.n_failed:
        by = ", ".join(f"{k} {v}" for k, v in summary.failed_by_status.items())
        notes.append(f"{summary.n_failed} judgment(s) failed and are excluded ({by})")
    if summary.run.n_missing_answers:
        notes.append(f"{summary.run.n_missing_answers} question(s) had no answer and were not judged")
    incomplete = [g.name for g in summary.groups.values() if g.score is not None and g.complete is False]
    if incomplete:
        notes.append(f"groups {', '.join(incomplete)} lack some categories: not comparable with full AlignBench")
    reasoning = (summary.model_extra or {}).get("answer_reasoning") or {}
    if reasoning.get("removed") or reasoning.get("leaked"):
        notes.append(f"answers' reasoning: {reasoning.get('removed', 0)} hidden from the judge (leading think block "
                     f"removed), {reasoning.get('leaked', 0)} leaked into the final text (think tags after the answer "
                     "began; judged as written)")
    if shown := fmt.figures(summary.model_dump(mode="json")):
        notes.append(" · ".join(f"{label}: {text}" for label, text in shown))
    u = summary.usage
    from alignbench.cost import spend_line

    notes.append(f"judge calls {u.calls} · cached {u.cached_replies} · retries {u.retries} · "
                 f"tokens {u.prompt_tokens}+{u.completion_tokens} · {spend_line(u)}")
    for note in notes:
        console.print(f"[yellow]•[/] {escape(note)}", highlight=False)
    from alignbench.upstream import protocol_label

    console.print(f"[bold]protocol:[/] {escape(protocol_label(summary.run))}", highlight=False)


def print_fastchat_pairwise(summary: PairwiseSummary, console: Console) -> None:
    """A ``compare --upstream FASTCHAT`` run counted as FastChat's ``show_result.py`` counts it: per model, wins,
    losses and ties over (question, turn) rows, its win rates, and the rows without a verdict (counted)."""
    fc = (summary.model_extra or {}).get("fastchat") or {}
    label = ((summary.run or {}).get("upstream") or {}).get("label", "FastChat")
    table = Table(title=escape(f"{label} · vs {fc.get('baseline') or '?'}"), header_style="bold",
                  title_style="bold", caption=escape(fc.get("unit", "")))
    for name in ("model", "win", "loss", "tie", "error", "win_rate", "loss_rate", "win_rate_adjusted", "95% CI"):
        table.add_column(name, justify="left" if name == "model" else "right", no_wrap=True)
    for model, m in (fc.get("models") or {}).items():
        table.add_row(escape(model), str(m["win"]), str(m["loss"]), str(m["tie"]), _failed(m["error"]),
                      fmt.num(m["win_rate"], 3), fmt.num(m["loss_rate"], 3),
                      f"[bold]{fmt.num(m['win_rate_adjusted'], 3)}[/]", fmt.ci(m.get("win_rate_adjusted_ci"), 3))
    console.print(table)


def comparison_table(cmp: Any) -> Table:
    """A run against its baseline (``report.compare.Comparison``): per score the two values, the delta
    coloured green/red (bold when significant, dim when not), its 95% CI and the paired test's p."""

    table = Table(title=escape(f"{cmp.new_label} vs baseline {cmp.base_label}"), header_style="bold", title_style="bold",
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
        delta = f"[{style}]{fmt.signed(x.delta)}{' *' if row.significant else ''}[/]"
        p = fmt.p_value(row.p_holm if row.kind == "category" else x.p_value)
        table.add_row(label, fmt.num(x.base), fmt.num(x.new), delta, f"[dim]{fmt.ci(x.ci, sep=' … ', sign=True)}[/]",
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
            items = ", ".join(f"Q{m.question_id} {escape(m.category)} {fmt.num(m.base, 0)}→{fmt.num(m.new, 0)}" for m in moves)
            console.print(f"[dim]{title}:[/] {items}", highlight=False)


def pairwise_table(summary: PairwiseSummary, title: str | None = None) -> Table:
    """Pairwise results (``pairwise_summary.json`` or ``alignbench winrate``): per model the win rate
    and LC win rate ± SE (percent), wins/ties/losses, failures and position inconsistency."""
    from rich.markup import escape

    models = summary.models
    baselines = {m.get("baseline") for m in models.values()}
    several = len(baselines) > 1
    has_incons = any(m.get("inconsistency") is not None for m in models.values())
    glm = summary.glm
    caption = "percent ± SE · ties count half · LC = length-controlled (joint GLM"
    caption += f", {glm['n_boot']} bootstrap resamples)" if glm.get("n_boot") else ")"
    if summary.length_unit:
        caption += f" · length in {summary.length_unit}"
    if title is None:  # a compare run names its judge as every view does (with what its server says it serves)
        judge = f" · judge {fmt.judge_label({**(summary.run or {}), 'judge': summary.judge})}" if summary.judge else ""
        title = escape(f"pairwise vs {summary.baseline or 'baseline'}{judge}")
    table = Table(title=title, caption=caption,
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
        row += [fmt.pm(m.get("win_rate"), m.get("win_rate_se")), fmt.pm(m.get("lc_win_rate"), m.get("lc_win_rate_se")),
                wtl, str(m.get("n", 0)), _failed(m.get("n_failed", 0))]
        if has_incons:
            row.append(fmt.pct(m.get("inconsistency"), 1))
        table.add_row(*row)
    return table


def pairwise_category_table(summary: PairwiseSummary) -> Table | None:
    """Win rate (and position inconsistency) per category and model; None without categories."""
    from rich.markup import escape

    models = {n: m for n, m in summary.models.items() if m.get("categories")}
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
            incons = f" [dim]({fmt.pct(c['inconsistency'])})[/]" if c.get("inconsistency") is not None else ""
            cells.append(f"{fmt.num(c['win_rate'], 0)}{incons}")
        table.add_row(cat, *cells)
    return table


def print_pairwise(summary: PairwiseSummary, console: Console, categories: bool = True) -> None:
    """The pairwise tables and the notes that qualify them (failures, missing pairs, LC warnings)."""
    from rich.markup import escape

    console.print(pairwise_table(summary))
    if categories and (cat_table := pairwise_category_table(summary)) is not None:
        console.print(cat_table)
    notes = []
    bias = summary.position_bias or {}
    if bias.get("inconsistency") is not None:
        notes.append(f"position inconsistency over all pairs {fmt.pct(bias['inconsistency'], 1)} "
                     f"({bias.get('n_inconsistent', 0)} of {bias.get('n_pairs', 0)}; "
                     f"{bias.get('n_flips', 0)} flipped from win to loss with the order)")
    for name, m in summary.models.items():
        if m.get("n_failed"):
            by = ", ".join(f"{k} {v}" for k, v in m.get("failed_by_status", {}).items())
            notes.append(f"{escape(name)}: {m['n_failed']} pair(s) failed and are excluded" + (f" ({by})" if by else ""))
        if m.get("lc_warning"):
            notes.append(f"[yellow]{escape(name)}: {escape(m['lc_warning'])}[/]")
        if m.get("n_injection"):
            notes.append(f"[yellow]{escape(name)}: {m['n_injection']} answer(s) carry a verdict of their own (injection "
                         "attempts); copies of it in the judge's reply were not read as its verdict[/]")
    for name, ids in (summary.run or {}).get("missing", {}).items():
        if ids:
            notes.append(f"{escape(name)}: {len(ids)} question(s) without both answers were not compared")
    usage = summary.usage or {}
    if usage:
        from alignbench.cost import spend_line

        notes.append(f"judge calls {usage.get('calls', 0)} · cached {usage.get('cached_replies', 0)} · "
                     f"retries {usage.get('retries', 0)} · tokens {usage.get('prompt_tokens', 0)}+"
                     f"{usage.get('completion_tokens', 0)} · {escape(spend_line(usage))}")
    for note in notes:
        console.print(f"[yellow]•[/] {note}", highlight=False)


# -- meta-eval, ensembles, single judgments -----------------------------------------------------


def _with_ci(value: float | None, ci: Any, missing: str = "undefined", sep: str = "–", wrap: str = "{}") -> str:
    """A correlation (three decimals) with its CI dimmed after it."""
    if value is None:
        return missing
    return fmt.num(value, 3) + (f" [dim]{wrap.format(fmt.ci(ci, sep=sep))}[/]" if ci else "")


def _grid(payload: MetaEvalResult, kind: str, metric: str, title: str) -> Table:
    """Protocols (rows) × judges (columns), one metric per cell (the ReIFE view)."""
    table = Table(title=title, header_style="bold", title_style="bold")
    table.add_column("protocol", no_wrap=True)
    for j in payload.judges:
        table.add_column(escape(j), justify="right")
    for p in payload.protocols:
        cells = []
        for j in payload.judges:
            m = payload.results[j][p][kind]
            cells.append(_with_ci(m.get(metric), m.get("ci", {}).get(metric), sep=", ", wrap="[{}]"))
        table.add_row(p, *cells)
    return table


def print_meta_eval(payload: MetaEvalResult, rub: Rubric, console: Console) -> None:
    """The meta-eval tables: a protocols × judges grid of the headline metric (with its CI), a detail
    row per (judge, protocol), per-category correlations, and notes on what is undefined or failed."""
    combos = [(j, p) for j in payload.judges for p in payload.protocols]
    first = payload.results[combos[0][0]][combos[0][1]]
    notes: list[str] = []
    if first["pointwise"] is not None:
        console.print(_grid(payload, "pointwise", "spearman",
                            "pointwise · Spearman ρ with human scores (pooled, 95% CI) · protocols × judges"))
        table = Table(title="pointwise agreement with human scores", header_style="bold", title_style="bold",
                      caption="pooled over judged rows; sample ρ: within each question, averaged over questions "
                              "(CritiqueLLM), (n questions); system ρ: per-model means, (n models). "
                              + SCALE_NOTE + ".")
        for col in ("judge", "protocol", "n", "failed", "Pearson", "Spearman", "Kendall τ", "sample ρ",
                    "system ρ"):
            left = col in ("judge", "protocol")
            table.add_column(col, justify="left" if left else "right", no_wrap=left)
        for j, p in combos:
            m = payload.results[j][p]["pointwise"]
            s, sy = m["sample_level"], m["system_level"]
            table.add_row(escape(j), p, str(m["n"]), _failed(m["n_failed"]), *[fmt.num(m[k], 3, 'undefined') for k in METRICS],
                          f"{fmt.num(s['spearman'], 3, 'undefined')} ({s['n_blocks']})", f"{fmt.num(sy['spearman'], 3, 'undefined')} ({sy['n_systems']})")
            where = f"{j} · {p}"
            for what, fig in (("pooled", m), ("sample level", s), ("system level", sy)):
                if fig["undefined"]:
                    notes.append(f"{where}: {what} correlation undefined: {fig['undefined']}")
            if m["n_failed"]:
                notes.append(f"{where}: {m['n_failed']} pointwise judgment(s) failed and are excluded ("
                             + ", ".join(f"{k} {v}" for k, v in m["failed_by_status"].items()) + ")")
        console.print(table)
        cat_table = Table(title="pointwise · Spearman ρ per category (n)", header_style="bold", title_style="bold")
        cat_table.add_column("类别 category", no_wrap=True)
        for j, p in combos:
            cat_table.add_column(escape(f"{j} · {p}"), justify="right")
        for cat in rub.category_names():
            cells = []
            for j, p in combos:
                c = payload.results[j][p]["pointwise"]["categories"].get(cat)
                cells.append("" if c is None else f"{fmt.num(c['spearman'], 3, 'undefined')} ({c['n']})")
            if any(cells):
                cat_table.add_row(cat, *cells)
        console.print(cat_table)
        _per_file(payload, combos, "pointwise", "spearman", "pointwise · Spearman ρ per file (n)", console)
        for p, agr in (payload.agreement or {}).items():
            table = Table(title=f"agreement between judges · {p} · {escape(' + '.join(agr['judges']))}",
                          header_style="bold", title_style="bold",
                          caption="Krippendorff's α of the judges' scores of the same rows, 95% bootstrap CI over rows")
            for col in ("类别 category", "α interval", "α ordinal", "n"):
                table.add_column(col, justify="left" if col.startswith("类别") else "right", no_wrap=True)
            for cat, a in agr["categories"].items():
                table.add_row(cat, *_alpha_cells(a), str(a["n_units"]))
            table.add_section()
            table.add_row("[bold]全部 all[/]", *_alpha_cells(agr["overall"]), str(agr["overall"]["n_units"]))
            console.print(table)
    if first["pairwise"] is not None:
        console.print(_grid(payload, "pairwise", "agreement",
                            "pairwise · agreement with human labels (both orders, 95% CI) · protocols × judges"))
        table = Table(title="pairwise agreement with human labels", header_style="bold", title_style="bold",
                      caption="agreement: both orders agree and match the label (ties included); excl. ties: "
                              "pairs where neither the human nor the judge says tie (inconsistent = judge tie); "
                              "per order: each order's verdict alone; 助手1 rate: share of decisive verdicts for "
                              "the answer shown first (0.5 = no position bias)")
        for col in ("judge", "protocol", "n", "failed", "agreement", "excl. ties (n)", "consistency", "per order",
                    "助手1 rate"):
            left = col in ("judge", "protocol")
            table.add_column(col, justify="left" if left else "right", no_wrap=left)
        for j, p in combos:
            m = payload.results[j][p]["pairwise"]
            table.add_row(escape(j), p, str(m["n"]), _failed(m["n_failed"]), fmt.num(m["agreement"], 3, 'undefined'),
                          f"{fmt.num(m['agreement_excl_ties'], 3)} ({m['n_excl_ties']})", fmt.num(m["consistency"], 3, 'undefined'),
                          fmt.num(m["accuracy_per_order"], 3), fmt.num(m["first_position_rate"], 3))
            if m["n_failed"]:
                notes.append(f"{j} · {p}: {m['n_failed']} pair(s) without a verdict in both orders are excluded ("
                             + ", ".join(f"{k} {v}" for k, v in m["failed_by_status"].items()) + ")")
        console.print(table)
        _per_file(payload, combos, "pairwise", "agreement", "pairwise · agreement per file (n)", console)
    for note in notes:
        console.print(f"[yellow]•[/] {escape(note)}", highlight=False)


def _per_file(payload: MetaEvalResult, combos: list[tuple[str, str]], kind: str, metric: str, title: str,
              console: Console) -> None:
    """One row per data file, when several files hold rows of this kind (e.g. LLMBar's subsets)."""
    first = payload.results[combos[0][0]][combos[0][1]][kind]
    if not first.get("files"):
        return
    table = Table(title=title, header_style="bold", title_style="bold")
    table.add_column("file", no_wrap=True)
    for j, p in combos:
        table.add_column(escape(f"{j} · {p}"), justify="right")
    for path in first["files"]:
        cells = [payload.results[j][p][kind]["files"][path] for j, p in combos]
        table.add_row(escape(Path(path).name), *[f"{fmt.num(f[metric], 3, 'undefined')} ({f['n']})" for f in cells])
    console.print(table)


def print_probes(result: dict[str, Any], console: Console) -> None:
    """Each style probe's paired effect on the judge's score, overall and per category."""
    table = Table(title=f"style probes · {escape(str(result.get('judge')))}", header_style="bold", title_style="bold",
                  caption="effect = mean (rewrite − original) overall score over answers both judged, 95% bootstrap "
                          "CI; moved = share of answers whose score changed; a judge that ignores style shows ≈ 0")
    for col in ("probe", "类别 category", "effect", "95% CI", "moved", "n"):
        table.add_column(col, justify="left" if col in ("probe", "类别 category") else "right", no_wrap=True)
    for name, p in result["probes"].items():
        for cat, e in [("全部 all", p["overall"]), *p["categories"].items()]:
            table.add_row(escape(name) if cat == "全部 all" else "", cat, fmt.signed(e["mean"]),
                          fmt.ci(e["ci"], sign=True), fmt.pct(e["share_moved"]), str(e["n"]))
        table.add_section()
    console.print(table)


def _alpha_cells(alpha: dict[str, Any] | None) -> list[str]:
    """Krippendorff's α (interval, ordinal) with its CI, or why it is undefined (older runs: blank)."""
    if not alpha:
        return ["", ""]
    return [f"{fmt.num(a['alpha'], 2)} [{fmt.ci(a['ci'])}]" if a.get("alpha") is not None else "undefined"
            for a in (alpha.get("interval", {}), alpha.get("ordinal", {}))]


def print_disagreement(ensemble: dict[str, Any], console: Console) -> None:
    """Per category: each judge's score, their mean absolute difference and rank correlation."""
    judges = ensemble["judges"]
    table = Table(title=f"judge disagreement · {escape(' + '.join(judges))}", header_style="bold", title_style="bold",
                  caption="MAD = mean |difference| between judges' overall scores of the same answer (1–10 points); "
                          "ρ = Spearman rank correlation of those scores within the category (undefined when "
                          "a judge gave every answer there the same score); α = Krippendorff's α of "
                          "the judges' overall scores (interval, ordinal) with its 95% bootstrap CI; "
                          f"{ensemble['n_compared']} of {ensemble['n_answers']} answers scored by every judge")
    table.add_column("类别 category", no_wrap=True)
    scores = ensemble.get("scores", {})
    for j in judges:
        table.add_column(escape(j), justify="right")
    table.add_column("MAD", justify="right")
    table.add_column("ρ", justify="right")
    table.add_column("α interval", justify="right")
    table.add_column("α ordinal", justify="right")
    table.add_column("n", justify="right")
    for cat, d in ensemble["categories"].items():
        table.add_row(cat, *[fmt.num(scores.get(j, {}).get("categories", {}).get(cat)) for j in judges],
                      fmt.num(d["mad"]), fmt.num(d["spearman"], 3, 'undefined'), *_alpha_cells(d.get("alpha")),
                      str(d["n"]))
    table.add_section()
    o = ensemble["overall"]
    table.add_row("[bold]全部 all[/]", *[fmt.num(scores.get(j, {}).get("overall")) for j in judges],
                  fmt.num(o["mad"]), fmt.num(o["spearman"], 3, 'undefined'), *_alpha_cells(o.get("alpha")),
                  str(o["n"]))
    console.print(table)
    if ensemble.get("dimensions"):
        console.print("[dim]per-dimension MAD: " + " · ".join(f"{d} {fmt.num(v['mad'])}" for d, v in
                                                             ensemble["dimensions"].items()) + "[/]",
                      highlight=False)


def print_judgments(judgments: list[Judgment], console: Console) -> None:
    """Everything kept about one question's judgment(s): status, scores, detail, the plan and
    execution of a plan-execute judge, the judge's full text."""
    from alignbench.rubrics import RubricError, load_rubric

    for j in judgments:
        try:
            titles = {s.id: s.title for s in load_rubric(j.rubric.split("@")[0]).sections}
        except RubricError:
            titles = {}
        console.rule(f"[bold]question {j.question_id} · {escape(j.model)} · judge {escape(j.judge)} · {escape(j.rubric)}")
        status = "[green]ok[/]" if j.status is Status.OK else f"[red]{j.status.value}[/]"
        console.print(f"{status} · {j.category}{' / ' + j.subcategory if j.subcategory else ''} · {j.answer_type}"
                      f" · attempts {j.attempts}{' · cached' if j.cached else ''}", highlight=False)
        if j.status is Status.OK:
            scores = " · ".join(f"{d} {v:g}" for d, v in j.scores.items())
            console.print(f"[bold]综合得分 {j.overall:g}[/]" + (f"  ({scores})" if scores else ""), highlight=False)
        if j.detail:
            console.print(f"[dim]{escape(j.detail)}[/]", highlight=False)
        for sid, text in j.sections.items():
            console.rule(f"【{titles.get(sid, sid)}】", style="cyan", align="left")
            console.print(text, markup=False, highlight=False)
        if not j.sections:
            console.rule("judge's text", style="dim", align="left")
            console.print(j.raw or "(no text: the judge was not reached)", markup=False, highlight=False)
        else:
            console.print("[dim](the judge's full text: --format json)[/]", highlight=False)


# -- judge trust (issue 14): calibration, bridges, bias audits, judge variance ---------------------


def _est(e: Any) -> str:
    """A trust.Estimate as 'score lo–hi'."""
    if e is None or e.score is None:
        return "—"
    return f"{fmt.num(e.score)} [dim]{fmt.ci(e.ci)}[/]"


def calibration_table(label: str, cal: Any, judge: str = "") -> Table:
    """One run's calibration (``trust.Calibration``): per row the calibrated score, the judge-only and
    labels-only estimates, each with its CI, the labels used and the effective labels gained."""
    level = fmt.pct(cal.level)
    table = Table(title=escape(f"{label} · calibrated with human labels" + (f" · judge {judge}" if judge else "")),
                  header_style="bold", title_style="bold",
                  caption=f"{level} CIs ({cal.method}, λ {cal.lam}) · calibrated = judge on every answer + mean human−judge "
                          "difference on the labelled ones (prediction-powered inference): its CI includes the "
                          "judge's error · effective = labels the labels-only estimate would need for the same "
                          "width (gained)")
    table.add_column("类别 category", min_width=8)
    for name in ("calibrated", "judge only", "labels only", "labels / n", "effective (gained)"):
        table.add_column(name, justify="right", min_width=10)  # a CI wraps under its score when narrow
    for row in cal.rows():
        name = f"[bold]{row.name} {row.en}[/]" if row.kind != "category" else f"  {row.name} [dim]{row.en}[/]"
        flag = " [yellow]‡[/]" if row.flag else ""
        eff = "—" if row.effective_labels is None else f"{fmt.num(row.effective_labels, 1)} ({fmt.signed(row.labels_gained, 1)})"
        table.add_row(name, _est(row.calibrated) + flag, _est(row.judge_only), _est(row.labels_only),
                      f"{row.n_labels}/{row.n}", eff)
        if row.kind == "overall":
            table.add_section()
    return table


def print_calibrations(cset: Any, console: Console) -> None:
    """Every run of a ``trust.runs.CalibrationSet``: its table, the labels' own scale, then the warnings
    (with counts) of each run and of the label set."""
    labels = cset.labels
    what = "reviews in" if labels.kind == "reviews" else "labels file"
    console.print(f"[dim]human labels: {what} {escape(labels.source)} ({len(labels.labels)} label(s)); the labelled "
                  "answers must be a random sample within each category[/]", highlight=False)
    for label, cal in cset.runs.items():
        console.print(calibration_table(label, cal, cset.judges.get(label, "")))
        back = cset.on_label_scale.get(label)
        if back:
            ci = f" [{fmt.ci(back['ci'])}]" if back.get("ci") else ""
            console.print(f"[dim]on the labels' {back['scale'][0]:g}–{back['scale'][1]:g} scale: overall "
                          f"{fmt.num(back['score'])}{ci}[/]", highlight=False)
        a = cal.labels
        console.print(f"[dim]labels: {a.n_given} given, {a.n_used} used, {a.n_on_failed} on failed judgments, "
                      f"{a.n_unmatched} matching no judgment[/]", highlight=False)
        for w in cal.warnings:
            console.print(f"[yellow]•[/] {escape(w)}", highlight=False)
    for w in cset.warnings:
        console.print(f"[yellow]•[/] {escape(w)}", highlight=False)


def print_bridge(fit: Any, console: Console, saved: str | None = None) -> None:
    """A ``trust.BridgeFit``: agreement overall and per category, every model's scores on both scales
    (old judge, new judge, old judge bridged), the warnings, and where the bridge was saved."""
    b = fit.bridge
    table = Table(title=escape(f"agreement · old {b.old_judge} ({b.old_rubric}) vs new {b.new_judge} ({b.new_rubric})"),
                  header_style="bold", title_style="bold",
                  caption="same answers judged by both · Spearman and Kendall τ-b with bootstrap 95% CIs · |diff| = "
                          "mean |new − old| (raw scales) · after bridge = mean |new − bridge(old)| (in sample)")
    table.add_column("类别 category", no_wrap=True)
    for name in ("n", "Spearman", "Kendall τ-b", "|diff|", "new − old", "after bridge"):
        table.add_column(name, justify="right", min_width=6)  # a CI wraps under its score when narrow

    def row(name: str, a: Any) -> None:
        table.add_row(name, str(a.n), _with_ci(a.spearman, a.spearman_ci, "—", "–"), _with_ci(a.kendall, a.kendall_ci, "—", "–"),
                      fmt.num(a.mean_abs_diff), fmt.signed(a.mean_diff),
                      fmt.num(a.mean_abs_diff_bridged))

    for cat, a in fit.categories.items():
        row(f"  {cat}", a)
    table.add_section()
    row("[bold]全部 all[/]", fit.agreement)
    console.print(table)
    for model, rows in fit.scores.items():
        t = Table(title=escape(f"{model} · scores on both scales"), header_style="bold", title_style="bold")
        t.add_column("类别 category", no_wrap=True)
        for name in ("old judge", "new judge", "old, bridged", "n"):
            t.add_column(name, justify="right")
        for r in rows:
            name = f"[bold]{r.name}[/]" if r.kind != "category" else f"  {r.name}"
            t.add_row(name, fmt.num(r.old), fmt.num(r.new), fmt.num(r.bridged), str(r.n))
        console.print(t)
    knots = ", ".join(f"{x:g}→{fmt.num(y)}" for x, y in zip(b.knots_old, b.knots_new, strict=True))
    console.print(f"[dim]map (isotonic, {b.n} answers): {knots}[/]", highlight=False)
    if b.band_x:
        lo, hi = b.band(b.band_x)
        widest = max(range(len(b.band_x)), key=lambda i: hi[i] - lo[i])
        console.print(f"[dim]{fmt.pct(b.level)} bootstrap band ({b.n_boot} resamples): widest at old score "
                      f"{b.band_x[widest]:g}: {fmt.num(lo[widest])}–{fmt.num(hi[widest])}[/]", highlight=False)
    for w in fit.warnings:
        console.print(f"[yellow]•[/] {escape(w)}", highlight=False)
    if saved:
        console.print(f"bridge saved: {escape(saved)} (use it with `alignbench report OLD_RUN... --bridge "
                      f"{escape(saved)}`)", highlight=False)


def print_audit(audit: Any, console: Console) -> None:
    """A short bias-audit section (``trust.runs.BiasAudit``) for ``show``: one line per finding."""
    lines: list[str] = []
    if audit.length is not None:
        for unit, x in audit.length.units.items():
            if x.slope is None:
                continue
            design = "within question" if x.design == "within-question" else "across questions (confounded)"
            lines.append(f"length ({unit}): {fmt.signed(x.slope)}/100 [{fmt.ci(x.slope_ci) if x.slope_ci else '—'}], "
                         f"ρ {fmt.num(x.spearman)} · {design} · {x.n_answers} answers")
        for model, rows in audit.length.adjusted.items():
            top = next((r for r in rows if r.kind == "overall"), None)
            if top is not None and top.delta is not None:
                lines.append(f"at equal length ({audit.length.adjust_unit}): {model} {fmt.num(top.score)} → "
                             f"{fmt.num(top.at_equal_length)} ({fmt.signed(top.delta)})")
    if audit.format is not None:
        for feat, x in audit.format.controlling_length.items():
            if x.slope is not None:
                share = audit.format.share_with_structure.get(feat, 0.0)
                lines.append(f"format ({feat.replace('_', ' ')}, {fmt.pct(share)} of answers): {fmt.signed(x.slope)} each "
                             f"[{fmt.ci(x.slope_ci) if x.slope_ci else '—'}] controlling for length")
    if audit.position is not None and audit.position.overall.n_pairs:
        p = audit.position.overall
        lines.append(f"position ({p.n_pairs} pairs): first-position win rate {fmt.num(p.first_position_rate)}, "
                     f"flip rate {fmt.pct(p.flip_rate, 1)}, inconsistency {fmt.pct(p.inconsistency_rate, 1)}")
    if audit.self_preference is not None:
        for r in audit.self_preference.judges:
            lines.append(f"self-preference of {r.judge}: " + (f"{fmt.signed(r.effect)} points" if r.effect is not None
                                                             else r.note))
    if audit.family is not None and audit.family.warning:
        lines.append(audit.family.warning)
    lines += [f"{label}: {text}" for label, text in fmt.figures(audit.as_dict(), of="audit")]
    notes = list(audit.notes) + (list(audit.length.warnings) if audit.length is not None else [])
    across = audit.length is not None and any(x.design != "within-question" for x in audit.length.units.values())
    hint = ("; one answer per question, so length is compared across questions (confounded by difficulty): give "
            "--baseline-run, or report several models, to compare within each question") if across else ""
    console.print(f"[bold]judge bias audit[/] [dim]({escape(audit.judge)}{escape(hint)})[/]", highlight=False)
    for line in lines:
        console.print(f"  {escape(line)}", highlight=False)
    for n in notes:
        console.print(f"  [dim]{escape(n)}[/]", highlight=False)


def print_samples(section: dict[str, Any], console: Console) -> None:
    """Judge variance of a run judged K times per answer (``summary.samples``): the within-answer
    spread and how much of each CI the judge's noise accounts for."""
    v = section.get("variance") or {}
    table = Table(title=f"judge variance · {section.get('k')} samples per answer", header_style="bold",
                  title_style="bold",
                  caption="sd within = pooled SD of one answer's samples · noise share = part of the score's "
                          "variance due to the judge's noise (K samples averaged; single = one sample per answer) · "
                          "CI narrower w/o noise = how much narrower the CI would be with a noiseless judge")
    table.add_column("类别 category", min_width=8)
    for name in ("answers", "sd within", "noise share", "CI narrower w/o noise", "single: share", "single: narrower"):
        table.add_column(name, justify="right")
    for r in v.get("rows", []):
        name = f"[bold]{r['name']}[/]" if r["kind"] != "category" else f"  {r['name']}"
        table.add_row(name, str(r["n_answers"]), fmt.num(r["sd_within"]), fmt.pct(r["share_of_variance"], 1),
                      fmt.pct(r["ci_narrower_without_noise"], 1), fmt.pct(r["share_of_variance_single"], 1),
                      fmt.pct(r["ci_narrower_without_noise_single"], 1))
    console.print(table)
    temp = section.get("temperature")
    console.print(f"[dim]{v.get('n_answers', 0)} answers with ≥ 2 ok samples · mean SD {fmt.num(v.get('mean_sd'))}"
                  f" · max SD {fmt.num(v.get('max_sd'))} · samples disagree on "
                  f"{fmt.pct(v.get('share_answers_disagreeing'), 1)} of answers · reliability (ICC) "
                  f"{fmt.num(v.get('reliability'))} · judge temperature {temp} · every sample in "
                  f"{section.get('file')}[/]", highlight=False)


def print_run_trust(rt: Any, console: Console) -> None:
    """``show``'s trust section (``trust.runs.RunTrust``): reviews, judge variance, bias audit."""
    if rt.review_problem:
        console.print(f"[yellow]•[/] reviews.jsonl unreadable: {escape(rt.review_problem)}", highlight=False)
    if rt.reviews is not None:
        a = rt.reviews
        extra = f"; reviewer − judge {fmt.signed(a.bias)} on average" if a.n_compared else ""
        console.print(f"[bold]human reviews[/] {escape(a.line())}{extra}", highlight=False)
    if rt.samples:
        print_samples(rt.samples, console)
    for audit in rt.audits:
        print_audit(audit, console)


def print_meta_bias(payload: MetaEvalResult, console: Console) -> None:
    """meta-eval's bias figures: per (judge, protocol) the length slope of the judge, of the humans and of
    the judge beyond the humans (pointwise), and the position figures (pairwise)."""
    combos = [(j, p) for j in payload.judges for p in payload.protocols]
    rows = [(j, p, (payload.results[j][p].get("pointwise") or {}).get("length_bias")) for j, p in combos]
    rows = [(j, p, lb) for j, p, lb in rows if lb and not lb.get("undefined")]
    if rows:
        table = Table(title="pointwise · length: judge vs human labels", header_style="bold", title_style="bold",
                      caption=rows[0][2]["note"])
        for col in ("judge", "protocol", "unit", "design", "judge /100", "human /100", "judge beyond human /100"):
            table.add_column(col, justify="left" if col in ("judge", "protocol", "unit", "design") else "right",
                             no_wrap=True)

        def cell(a: dict[str, Any]) -> str:
            if a["slope"] is None:
                return "—"
            ci = a.get("slope_ci")
            return fmt.signed(a['slope']) + (f" [dim]{fmt.ci(ci, sep=' … ', sign=True)}[/]" if ci else "")

        for j, p, lb in rows:
            for unit in ("chars", "words"):
                u = lb.get(unit)
                if u is None:
                    continue
                design = "within" if u["judge"]["design"] == "within-question" else "across (confounded)"
                table.add_row(escape(j), p, unit, design, cell(u["judge"]), cell(u["human"]),
                              cell(u["judge_beyond_human"]))
        console.print(table)
    for j, p in combos:
        pb = (payload.results[j][p].get("pairwise") or {}).get("position_bias")
        if pb and pb["overall"]["n_pairs"]:
            o = pb["overall"]
            console.print(f"[bold]position[/] {escape(j)} · {p}: first-position win rate "
                          f"{fmt.num(o['first_position_rate'])}, flip rate {fmt.pct(o['flip_rate'], 1)}, "
                          f"inconsistency {fmt.pct(o['inconsistency_rate'], 1)} over {o['n_pairs']} pairs",
                          highlight=False)
