"""Run folders that travel (issue 24): a run keeps the questions and answers it judged, so a folder moved
after its inputs were deleted still shows every text; an old folder still reads its recorded input files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import ANSWERS_A, QUESTIONS, read_jsonl, run_cli, write_jsonl

import alignbench
from alignbench.rundir import load_answer_texts, load_run

N = 8  # questions judged: enough for every view, small enough to stay quick


@pytest.fixture
def moved(stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[int, str], dict[int, str]]:
    """Scored from ``work/`` with relative paths, then the run folder moved away and ``work/`` deleted."""
    work = tmp_path / "work"
    work.mkdir()
    qs = read_jsonl(QUESTIONS)[:N]
    ans = [a for a in read_jsonl(ANSWERS_A) if a["question_id"] in {q["question_id"] for q in qs}]
    write_jsonl(work / "q.jsonl", qs)
    write_jsonl(work / "a.jsonl", ans)
    monkeypatch.chdir(work)
    runs = alignbench.score("q.jsonl", "a.jsonl", "openai:gpt-4o", base_url=stub.url, out="runs/m")
    run = runs["model-a"]
    assert run.summary.run.questions["path"] == "q.jsonl"
    assert run.summary.run.questions["abs"] == str(work / "q.jsonl")
    assert run.summary.run.inputs["answers"]["source"] == {"path": "a.jsonl", "abs": str(work / "a.jsonl")}
    target = tmp_path / "archive" / "m"
    target.parent.mkdir()
    shutil.move(str(work / "runs" / "m"), str(target))
    monkeypatch.chdir(tmp_path)
    shutil.rmtree(work)
    return target, {q["question_id"]: q["question"] for q in qs}, {a["question_id"]: a["answer"] for a in ans}


def test_a_moved_run_keeps_its_texts(moved: tuple[Path, dict[int, str], dict[int, str]], tmp_path: Path) -> None:
    run_dir, questions, answers = moved
    run = load_run(run_dir)
    assert run.questions_note is None and {q: v.question for q, v in run.questions.items()} == questions
    kept, note = load_answer_texts(run)
    assert note is None and {q: a.text for q, a in kept.items()} == answers

    show = run_cli("show", str(run_dir), "--format", "json")
    assert show.returncode == 0, show.stderr
    audit = json.loads(show.stdout)["trust"]
    assert "not at hand" not in json.dumps(audit, ensure_ascii=False)

    [audit] = alignbench.audit([run_dir], n_boot=50)  # the trust commands read the kept answers too
    assert "not at hand" not in json.dumps(audit.as_dict(), ensure_ascii=False)

    qid = min(questions)
    one = run_cli("show", str(run_dir), "--question-id", str(qid))
    assert one.returncode == 0, one.stderr
    assert questions[qid].splitlines()[0] in one.stdout and answers[qid].splitlines()[0] in one.stdout

    report = tmp_path / "report.md"
    proc = run_cli("report", str(run_dir), "--out", str(report), "--no-charts")
    assert proc.returncode == 0, proc.stderr
    text = report.read_text(encoding="utf-8")
    assert "not found" not in text and any(q[:20] in text for q in questions.values())

    site = tmp_path / "site"
    proc = run_cli("view", str(run_dir), "--export", str(site))
    assert proc.returncode == 0, proc.stderr
    pages = {p.name: p.read_text(encoding="utf-8") for p in site.glob("q-*.html")}
    assert len(pages) == N
    import html
    for qid, q in questions.items():
        page = html.unescape(pages[f"q-{qid}.html"])
        assert q.splitlines()[0] in page and answers[qid].splitlines()[0] in page
        assert "not at hand" not in page and "not shown" not in page


def test_an_old_folder_reads_its_recorded_files(moved: tuple[Path, dict[int, str], dict[int, str]],
                                                 tmp_path: Path) -> None:
    """A folder written before the inputs were kept (no ``inputs``) reads the recorded files when present, and
    says which file is missing when not."""
    run_dir, questions, _ = moved
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    summary["run"].pop("inputs")
    summary["run"]["questions"] = {"path": str(QUESTIONS), "sha256": summary["run"]["questions"]["sha256"]}
    summary_path.write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    shutil.rmtree(run_dir / "inputs")
    run = load_run(run_dir)
    assert run.questions is None and "has changed since the run" in run.questions_note  # the full file, not ours
    summary["run"]["questions"]["sha256"] = alignbench.data.file_sha256(QUESTIONS)
    summary["run"]["answers"] = str(ANSWERS_A)
    summary_path.write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    run = load_run(run_dir)
    assert run.questions is not None and all(run.questions[q].question == t for q, t in questions.items())
    answers, note = load_answer_texts(run)
    assert note is None and len(answers) == len(read_jsonl(ANSWERS_A))


def test_show_takes_a_folder_of_runs_and_the_cli_names_its_version(judged) -> None:
    proc = run_cli("show", str(judged.root), "--format", "json", "--no-audit")
    assert proc.returncode == 0, proc.stderr
    assert [v["model"] for v in json.loads(proc.stdout)] == ["model-a", "model-b"]
    table = run_cli("show", str(judged.root), "--no-audit")
    assert table.returncode == 0 and table.stdout.index("model-a (") < table.stdout.index("model-b (")
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"alignbench {alignbench.__version__}"
