"""Tables that never cut a figure: every table command at 80 columns into a pipe (not a terminal), and
every figure its ``--format json`` gives, formatted as the table formats it, is in the text in full; no
``…`` touches a digit. ``score --help`` at 80 columns cuts no option name or word."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, ROOT, run_cli
from stub_server import StubServer
from test_compare import scripted
from test_metaeval import files, table_judge  # noqa: F401 - `files` is a fixture

from alignbench.batch import Ledger
from alignbench.stats import fmt

CUT = re.compile(r"[\d.]…|…[\d.+-]")


def _narrow(*args: str, env: dict | None = None) -> tuple[str, dict]:
    """The command's table at 80 columns and its JSON (same arguments, --format json)."""
    table = run_cli(*args, env=env, width=80)
    assert table.returncode == 0, table.stderr
    data = run_cli(*args, "--format", "json", env=env)
    assert data.returncode == 0, data.stderr
    return table.stdout, json.loads(data.stdout)


def _assert_whole(text: str, figures: list[str]) -> None:
    assert not CUT.search(text), CUT.search(text)
    assert figures
    missing = [f for f in figures if not re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", text)]
    assert not missing, f"cut or missing at 80 columns: {missing}\n{text}"


def _score_figures(d: dict) -> list[str]:
    rows = [*d["categories"].values(), *({"score": g["score"], "ci": g["ci"]} for g in d["groups"].values())]
    out = [fmt.num(d["overall"]), fmt.ci(d["overall_ci"]), str(d["n_ok"])]
    for r in rows:
        out += [fmt.num(r["score"]), fmt.ci(r["ci"])]
    out += [fmt.num(v["mean"], 1) for v in d["dimensions"].values()]
    return out


def test_show_and_baseline_at_80_columns(judged) -> None:
    a, b = judged.root / "model-a", judged.root / "model-b"
    args = ("show", str(b), "--baseline-run", str(a), "--no-audit")  # the audit's lines are prose, not tables
    data = run_cli(*args, "--format", "json")
    assert data.returncode == 0, data.stderr
    d = json.loads(data.stdout)
    figures = _score_figures(d)
    for row in d["comparison"]["rows"]:
        x = row["test"]
        p = row["p_holm"] if row["kind"] == "category" else x["p_value"]
        figures += [fmt.num(x["base"]), fmt.num(x["new"]), fmt.signed(x["delta"]),
                    fmt.ci(x["ci"], sep=" … ", sign=True), fmt.p_value(p), str(x["n"])]
    # a real pipe with no $COLUMNS (rich's default width, 80): the score, dimension and baseline tables whole
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    piped = subprocess.run([sys.executable, "-m", "alignbench", *args], capture_output=True, text=True, cwd=ROOT,
                           env={**env, "PYTHONIOENCODING": "utf-8"}, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert max(len(line) for line in piped.stdout.splitlines()) <= 80
    _assert_whole(piped.stdout, figures)


def test_winrate_and_meta_eval_at_80_columns(tmp_path: Path, files) -> None:  # noqa: F811
    env = {"ALIGNBENCH_CACHE": str(tmp_path / "cache.sqlite")}
    with StubServer(responder=scripted) as stub:
        run = run_cli("compare", "-q", str(QUESTIONS), "--answers", str(ANSWERS_A), "--baseline", str(ANSWERS_B),
                      "--judge", "openai:gpt-4o", "--judge-base-url", stub.url, "--bootstrap", "20",
                      "--out", str(tmp_path / "cmp"), env=env)
        assert run.returncode == 0, run.stderr
    text, d = _narrow("winrate", str(tmp_path / "cmp"), "--bootstrap", "20")
    figures = []
    for m in d["models"].values():
        figures += [fmt.pm(m["win_rate"], m["win_rate_se"]), fmt.pm(m["lc_win_rate"], m["lc_win_rate_se"]),
                    f"{m['n_wins']}/{m['n_ties']}/{m['n_losses']}", str(m["n"])]
    _assert_whole(text, figures)

    points, pairs = files
    with StubServer(responder=table_judge) as stub:
        args = ("meta-eval", "--judge-base-url", stub.url, "--bootstrap", "50", "--max-failed", "100%",
                "--data", str(points), "--data", str(pairs), "--judge", "openai:good,openai:flat",
                "--protocol", "multi-dimension,general")
        text, d = _narrow(*args, env=env)
    figures = []
    for by_protocol in d["results"].values():
        for res in by_protocol.values():
            for metric in ("pearson", "spearman", "kendall"):
                value = (res["pointwise"] or {}).get(metric)
                if isinstance(value, float):
                    figures.append(fmt.num(value, 3))
    _assert_whole(text, figures)


def test_judges_batches_and_help_at_80_columns(tmp_path: Path) -> None:
    text, d = _narrow("judges")
    assert not CUT.search(text)
    for preset in d:
        for url in preset["base_url"]:
            assert url in text  # a URL is kept whole (FitTable keep): other columns go first
    cache = tmp_path / "c.sqlite"
    ledger = Ledger(cache)
    ledger.add("a1b2c3d4e5f6", "openai", "https://api.openai.com/v1", None, "openai:gpt-4o-2024-08-06",
               [f"k{i}" for i in range(1234)])
    ledger.update("a1b2c3d4e5f6", batch_id="batch_6790f2a8e4c08190a1b2c3d4e5f60718", state="in_progress",
                  completed=987, failed=12)
    ledger.close()
    text, rows = _narrow("batches", "--cache", str(cache), "--no-refresh")
    _assert_whole(text, [rows[0]["batch_id"], str(rows[0]["n"]), str(rows[0]["completed"]), str(rows[0]["failed"])])

    helped = run_cli("score", "--help", width=80)
    assert helped.returncode == 0 and "…" not in helped.stdout
    for option in ("--judge-base-url", "--batch-file-out", "--batch-file-in", "--max-answer-chars"):
        assert option in helped.stdout
    for panel in ("Judge", "Requests", "Cache", "Batch and cost"):
        assert re.search(rf"╭─ {panel} ─", helped.stdout)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
