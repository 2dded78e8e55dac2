"""Exports of finished runs: a leaderboard and per-judgment rows as CSV, XLSX or JSON, and Hugging Face
evaluation results. Pure functions of run folders; nothing is judged or recomputed.

Why each choice:

* **CSV in UTF-8 with a byte-order mark.** Excel opens a CSV without one in the system code page and shows
  Chinese as mojibake; with the BOM it reads UTF-8. Text cells that start with ``= + - @`` get a leading
  apostrophe, so a judge's reply is never run as a spreadsheet formula.
* **XLSX through openpyxl**, two sheets (排行榜 leaderboard, 评审 judgments) with a header row of the
  Chinese names; text cells are stored as text (never formulas) and cut at Excel's 32,767 characters.
* **JSON**: the same two tables, for scripts.
* **Hugging Face**: the Hub's model evaluation results (``.eval_results/*.yaml`` in a model repo, documented
  at https://huggingface.co/docs/hub/eval-results): a list of entries with ``dataset.id``, ``dataset.task_id``
  and ``value`` (required), ``date`` and ``notes`` (optional). One file per model, under
  ``OUT/<model>/.eval_results/``; ``notes`` names the judge, the protocol, the CI and n, because a
  judge-scored number means nothing without its judge.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from alignbench.data import InputError
from alignbench.rundir import (
    Run,
    RunError,
    expand_runs,
    folder_name,
    load_answer_texts,
    load_run,
    unique_labels,
)
from alignbench.stats import fmt

ExportFormat = Literal["csv", "xlsx", "json", "hf"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "xlsx", "json", "hf")
HF_DATASET = "THUDM/AlignBench"  # the Hub dataset the results name (``dataset=`` to change it)
HF_TASKS = (("overall", "总分"), ("reasoning", "推理"), ("language", "语言"))  # task_id, figure
XLSX_CELL = 32767  # Excel's longest cell text
_FORMULA_START = ("=", "+", "-", "@")


def protocol_label(run: Run) -> str:
    """The judge protocol a run used, in one line: rubric@version and the protocol switches that change
    what the judge was asked (structured output, log-probability scores, completion prompts), or the tool
    it was imported from."""
    manifest = run.summary.run
    if getattr(manifest, "upstream", None) or getattr(manifest, "imported", None):  # the one label of those runs
        from alignbench.upstream import protocol_label as upstream_label

        return upstream_label(manifest)
    judge = run.summary.run.judge
    parts = [run.rubric_id]
    if judge.get("structured"):
        parts.append(f"structured ({judge['structured']})")
    if judge.get("score_from"):
        parts.append(f"scores from {judge['score_from']}")
    if judge.get("prompt_format"):
        parts.append(f"prompt {judge['prompt_format']}")
    if judge.get("tool"):
        parts.append(f"imported from {judge['tool']}")
    return " · ".join(parts)


def _judge(run: Run) -> str:
    judge = run.summary.run.judge
    return str(judge.get("name") or run.judge_id)


def _ci(ci: Sequence[float] | None) -> tuple[float | None, float | None]:
    return (fmt.rnd(ci[0]), fmt.rnd(ci[1])) if ci else (None, None)


def _categories(runs: Sequence[Run]) -> list[str]:
    seen: dict[str, None] = {}
    for r in runs:
        seen.update(dict.fromkeys(r.summary.categories))
    return list(seen)


def leaderboard(runs: Sequence[Run]) -> tuple[list[str], list[dict[str, Any]]]:
    """Every model's row (best 总分 first): 总分, 推理, 语言 and each category with its CI, n, failures, judge
    and protocol. Returns the column names (Chinese first, English after) and the rows keyed by them."""
    cats = _categories(runs)
    columns = ["模型 model", "总分 overall", "总分 CI 下限 low", "总分 CI 上限 high", "推理 reasoning",
               "推理 CI 下限 low", "推理 CI 上限 high", "语言 language", "语言 CI 下限 low", "语言 CI 上限 high"]
    for c in cats:
        columns += [c, f"{c} CI 下限 low", f"{c} CI 上限 high", f"{c} n"]
    columns += ["n", "已评 judged", "失败 failed", "评审 judge", "协议 protocol", "运行 run"]
    rows = []
    for r in sorted(runs, key=lambda r: (r.summary.overall is None, -(r.summary.overall or 0), r.label)):
        s = r.summary
        row: dict[str, Any] = {"模型 model": r.label}
        for key, name in (("overall", "总分 overall"), ("reasoning", "推理 reasoning"), ("language", "语言 language")):
            lo, hi = _ci(getattr(s, f"{key}_ci"))
            label = name.split()[0]
            row.update({name: fmt.rnd(getattr(s, key)), f"{label} CI 下限 low": lo, f"{label} CI 上限 high": hi})
        for c in cats:
            cat = s.categories.get(c)
            lo, hi = _ci(cat.ci if cat else None)
            row.update({c: fmt.rnd(cat.score) if cat else None, f"{c} CI 下限 low": lo, f"{c} CI 上限 high": hi,
                        f"{c} n": cat.n if cat else None})
        row.update({"n": s.n, "已评 judged": s.n_ok, "失败 failed": s.n_failed, "评审 judge": _judge(r),
                    "协议 protocol": protocol_label(r), "运行 run": r.dir.name})
        rows.append(row)
    return columns, rows


def judgment_rows(runs: Sequence[Run]) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per judgment: model, question, status, overall and every dimension's score, the question and
    answer texts (from the run folder, ``rundir``), the judge's reply and what went wrong when it failed."""
    dims: dict[str, None] = {}
    for r in runs:
        for j in r.judgments:
            dims.update(dict.fromkeys(j.scores))
    columns = ["模型 model", "题号 question_id", "类别 category", "子类 subcategory", "状态 status", "综合得分 overall",
               *dims, "评审 judge", "问题 question", "回答 answer", "评审回复 judge reply", "说明 detail"]
    rows = []
    for r in runs:
        answers, _ = load_answer_texts(r)
        for j in r.judgments:
            q = r.questions.get(j.question_id) if r.questions else None
            a = answers.get(j.question_id)
            rows.append({"模型 model": r.label, "题号 question_id": j.question_id, "类别 category": j.category,
                         "子类 subcategory": j.subcategory, "状态 status": str(j.status.value),
                         "综合得分 overall": fmt.rnd(j.overall), **{d: fmt.rnd(j.scores.get(d)) for d in dims},
                         "评审 judge": j.judge, "问题 question": q.question if q else None,
                         "回答 answer": a.text if a else None, "评审回复 judge reply": j.raw, "说明 detail": j.detail})
    return columns, rows


def hf_results(run: Run, dataset: str = HF_DATASET) -> list[dict[str, Any]]:
    """The run's 总分, 推理 and 语言 as Hugging Face evaluation result entries (one per figure that exists)."""
    s = run.summary
    out = []
    for task, label in HF_TASKS:
        value = getattr(s, task)
        if value is None:
            continue
        ci = getattr(s, f"{task}_ci")
        ci_text = f"{fmt.pct(s.ci_level)} CI {fmt.ci(ci)}" if ci else "no CI"
        notes = (f"AlignBench {label} ({task}), judged by {_judge(run)} with {protocol_label(run)}; {ci_text}; "
                 f"n={s.n_ok} judged, {s.n_failed} failed; alignbench {s.run.alignbench_version}")
        entry: dict[str, Any] = {"dataset": {"id": dataset, "task_id": task}, "value": fmt.rnd(value, 2)}
        if s.run.created:
            entry["date"] = s.run.created[:10]
        entry["notes"] = notes
        out.append(entry)
    return out


def _safe_text(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> Path:
    """A CSV Excel opens with Chinese intact (UTF-8 with a BOM)."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows({k: _safe_text(v) for k, v in row.items()} for row in rows)
    return path


def write_xlsx(path: Path, sheets: Sequence[tuple[str, Sequence[str], Sequence[dict[str, Any]]]]) -> Path:
    """One worksheet per (title, columns, rows), header row bold and frozen, text never read as a formula."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.append(list(columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for r, row in enumerate(rows, start=2):
            for c, name in enumerate(columns, start=1):
                value = row.get(name)
                if isinstance(value, str):
                    value = ILLEGAL_CHARACTERS_RE.sub("", value)[:XLSX_CELL]
                cell = sheet.cell(row=r, column=c, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # "=…" from a judge stays text
    book.save(path)
    return path


def _runs(paths: Sequence[Path | str] | Sequence[Run]) -> list[Run]:
    runs = [p if isinstance(p, Run) else load_run(p) for p in
            (paths if paths and all(isinstance(p, Run) for p in paths) else expand_runs(paths))]  # type: ignore[arg-type]
    if not runs:
        raise RunError("no run folder to export")
    unique_labels(runs)
    return runs


def export(runs: Sequence[Path | str] | Sequence[Run], format: str = "csv", out: Path | str | None = None, *,
           dataset: str = HF_DATASET) -> list[Path]:
    """Write the runs' leaderboard and judgments as ``format`` (csv, xlsx, json or hf); returns the files
    written. ``runs``: run folders (a folder of runs counts as its runs) or loaded ``Run``s. ``out``: csv
    writes ``OUT`` (leaderboard) and ``OUT-judgments.csv``; xlsx and json one file; hf a folder with
    ``<model>/.eval_results/alignbench.yaml`` per model (``dataset``: the Hub dataset id the results name).
    Defaults: ``alignbench-export.csv|xlsx|json``, ``hf-eval-results/``."""
    if format not in FORMATS:
        raise InputError("--format", None, f"must be one of {', '.join(FORMATS)}, not {format!r}")
    loaded = _runs(runs)
    if format == "hf":
        root = Path(out) if out is not None else Path("hf-eval-results")
        written = []
        for r in loaded:
            entries = hf_results(r, dataset)
            if not entries:
                continue
            target = root / folder_name(r.label) / ".eval_results" / "alignbench.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml.safe_dump(entries, allow_unicode=True, sort_keys=False), encoding="utf-8")
            written.append(target)
        return written
    path = Path(out) if out is not None else Path(f"alignbench-export.{format}")
    path.parent.mkdir(parents=True, exist_ok=True)
    board = leaderboard(loaded)
    judged = judgment_rows(loaded)
    if format == "csv":
        rows_path = path.with_name(f"{path.stem}-judgments{path.suffix or '.csv'}")
        return [write_csv(path, *board), write_csv(rows_path, *judged)]
    if format == "xlsx":
        return [write_xlsx(path, [("排行榜 leaderboard", *board), ("评审 judgments", *judged)])]
    payload = {"leaderboard": board[1], "judgments": judged[1]}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return [path]


__all__ = ["FORMATS", "HF_DATASET", "export", "hf_results", "judgment_rows", "leaderboard", "protocol_label"]
