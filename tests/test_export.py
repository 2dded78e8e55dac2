"""``alignbench export`` (issue 24 part 3): CSV read back (BOM, Chinese intact), XLSX read back with openpyxl,
JSON, and Hugging Face evaluation results checked against the Hub's documented schema."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import openpyxl
import yaml
from conftest import run_cli

import alignbench
from alignbench.rundir import load_run


def _expected(judged) -> dict[str, object]:
    return {m: load_run(judged.root / m).summary for m in ("model-a", "model-b")}


def test_csv_has_a_bom_and_keeps_chinese_and_every_figure(judged, tmp_path: Path) -> None:
    out = tmp_path / "board.csv"
    proc = run_cli("export", str(judged.root), "--format", "csv", "--out", str(out))  # a folder of runs
    assert proc.returncode == 0, proc.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with it
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    summaries = _expected(judged)
    assert {r["模型 model"] for r in rows} == set(summaries)
    overall = [float(r["总分 overall"]) for r in rows]
    assert overall == sorted(overall, reverse=True)  # best first
    for row in rows:
        s = summaries[row["模型 model"]]
        assert float(row["总分 overall"]) == round(s.overall, 4)
        assert [float(row["总分 CI 下限 low"]), float(row["总分 CI 上限 high"])] == [round(v, 4) for v in s.overall_ci]
        for cat, c in s.categories.items():  # Chinese category names as column headers
            assert float(row[cat]) == round(c.score, 4) and int(row[f"{cat} n"]) == c.n
        assert int(row["n"]) == s.n and int(row["失败 failed"]) == s.n_failed
        assert row["评审 judge"] == judged.judge and row["协议 protocol"].startswith("alignbench@")
    judgments = out.with_name("board-judgments.csv")
    with judgments.open(encoding="utf-8-sig", newline="") as fh:
        jrows = list(csv.DictReader(fh))
    assert len(jrows) == sum(len(load_run(judged.root / m).judgments) for m in summaries)
    assert all(r["问题 question"] and r["回答 answer"] and r["评审回复 judge reply"] for r in jrows)
    assert any(re.search(r"[\u4e00-\u9fff]", r["问题 question"]) for r in jrows)


def test_xlsx_reads_back_with_openpyxl(judged, tmp_path: Path) -> None:
    out = tmp_path / "board.xlsx"
    [written] = alignbench.export([judged.a, judged.b], "xlsx", out)
    book = openpyxl.load_workbook(written, read_only=True)
    assert book.sheetnames == ["排行榜 leaderboard", "评审 judgments"]
    board = list(book["排行榜 leaderboard"].iter_rows(values_only=True))
    header, rows = board[0], board[1:]
    assert header[:2] == ("模型 model", "总分 overall") and "推理 reasoning" in header and "语言 language" in header
    summaries = _expected(judged)
    for row in rows:
        got = dict(zip(header, row, strict=True))
        s = summaries[got["模型 model"]]
        assert got["总分 overall"] == round(s.overall, 4) and isinstance(got["总分 overall"], float)
        assert all(got[c] == round(v.score, 4) for c, v in s.categories.items())
    judged_rows = list(book["评审 judgments"].iter_rows(values_only=True))
    assert judged_rows[0][:3] == ("模型 model", "题号 question_id", "类别 category")
    assert len(judged_rows) - 1 == sum(len(load_run(judged.root / m).judgments) for m in summaries)


def test_json_holds_both_tables(judged, tmp_path: Path) -> None:
    [written] = alignbench.export([judged.a], "json", tmp_path / "e.json")
    data = json.loads(written.read_text(encoding="utf-8"))
    assert [r["模型 model"] for r in data["leaderboard"]] == ["model-a"]
    assert len(data["judgments"]) == len(load_run(judged.a).judgments)


# The Hub's model evaluation results, as documented at https://huggingface.co/docs/hub/eval-results:
# a YAML list in .eval_results/*.yaml; per entry dataset.id (a Hub dataset id, required), dataset.task_id
# (required), dataset.revision (optional), value (required, the metric value), verifyToken, date (ISO-8601
# date or datetime), source (url required when given; name, user) and notes, all optional.
_ENTRY_KEYS = {"dataset", "value", "verifyToken", "date", "source", "notes"}
_DATASET_KEYS = {"id", "task_id", "revision"}


def _check_eval_results(entries: object) -> None:
    assert isinstance(entries, list) and entries
    for e in entries:
        assert isinstance(e, dict) and set(e) <= _ENTRY_KEYS and {"dataset", "value"} <= set(e)
        ds = e["dataset"]
        assert isinstance(ds, dict) and set(ds) <= _DATASET_KEYS and {"id", "task_id"} <= set(ds)
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", ds["id"]) and isinstance(ds["task_id"], str)
        assert isinstance(e["value"], int | float) and not isinstance(e["value"], bool)
        if "date" in e:
            dt.datetime.fromisoformat(str(e["date"]))
        if "source" in e:
            assert isinstance(e["source"], dict) and "url" in e["source"]
        if "notes" in e:
            assert isinstance(e["notes"], str)


def test_hf_eval_results_follow_the_hub_schema_and_name_judge_and_protocol(judged, tmp_path: Path) -> None:
    written = alignbench.export([judged.root], "hf", tmp_path / "hf")
    assert sorted(p.relative_to(tmp_path / "hf").as_posix() for p in written) == [
        "model-a/.eval_results/alignbench.yaml", "model-b/.eval_results/alignbench.yaml"]
    for path in written:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        _check_eval_results(entries)
        s = load_run(judged.root / path.parent.parent.name).summary
        by_task = {e["dataset"]["task_id"]: e for e in entries}
        assert by_task["overall"]["value"] == round(s.overall, 2) and by_task["overall"]["dataset"]["id"] == \
            "THUDM/AlignBench"
        assert set(by_task) == {t for t in ("overall", "reasoning", "language") if getattr(s, t) is not None}
        assert all(judged.judge in e["notes"] and "alignbench@" in e["notes"] for e in entries)


def test_cli_rejects_an_unknown_format(judged) -> None:
    proc = run_cli("export", str(judged.a), "--format", "ods")
    assert proc.returncode == 2 and "--format must be" in proc.stderr


def test_a_judge_text_is_never_a_spreadsheet_formula(tmp_path: Path) -> None:
    from alignbench.exporting import write_csv, write_xlsx

    rows = [{"text": "=HYPERLINK(\"http://x\")", "n": -1.5}]
    write_csv(tmp_path / "f.csv", ["text", "n"], rows)
    with (tmp_path / "f.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert next(csv.DictReader(fh)) == {"text": "'=HYPERLINK(\"http://x\")", "n": "-1.5"}
    write_xlsx(tmp_path / "f.xlsx", [("s", ["text", "n"], rows)])
    cell = openpyxl.load_workbook(tmp_path / "f.xlsx")["s"]["A2"]
    assert cell.data_type == "s" and cell.value == "=HYPERLINK(\"http://x\")"
