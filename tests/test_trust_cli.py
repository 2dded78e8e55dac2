"""Judge trust wired into the product (issue 14, and issue 13's reviews in show/report/meta-eval).

The statistics themselves are checked in tests/test_trust.py; here the commands and the API must reach
them with the right inputs and give the same numbers: ``calibrate`` (labels file and reviews), ``bridge``
and ``report --bridge``, ``score --samples K``, bias audits in ``show``/``report``/``meta-eval``, reviews
in ``show``/``report``. Run folders are real: written by ``alignbench.score`` against the loopback stub
judge, or by ``RunFolder.write_run`` from judgments with a planted, known behaviour.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, read_jsonl, run_cli, write_jsonl
from scripted_judge import scripted_judge
from stub_server import StubServer, alignbench_responder

import alignbench
from alignbench.data import file_sha256, load_questions
from alignbench.reviews import append_review, make_review
from alignbench.rubrics import load_rubric
from alignbench.rundir import RunFolder, load_run
from alignbench.scoring import build_summary, manifest
from alignbench.trust import Bridge, apply_bridge, calibrate, judge_variance, parse_label_scale
from alignbench.types import Judgment, Status, UsageTotals

RUB = load_rubric("alignbench")
QS = load_questions(QUESTIONS, RUB)


def invoke(*args: str):
    """The CLI in-process (the same app as ``python -m alignbench``), wide enough for every column."""
    from typer.testing import CliRunner

    from alignbench.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def write_run(path: Path, model: str, scores: dict[int, float | None], *, judge: str = "openai:judge-a",
              judge_model: str = "judge-a", answers: Path | None = None, rubric_id: str | None = None) -> Path:
    """A finished run folder from known overall scores (None = a parse failure), through the real
    ``RunFolder.write_run``; ``answers`` is the answer file the manifest records."""
    judgments = []
    texts = {}
    if answers is not None:
        texts = {r["question_id"]: r["answer"] for r in read_jsonl(answers)}
    for q in QS:
        score = scores[q.id]
        atype = RUB.answer_type(q.category, q.subcategory)
        judgments.append(Judgment(
            question_id=q.id, model=model, category=q.category, subcategory=q.subcategory, answer_type=atype,
            status=Status.OK if score is not None else Status.PARSE_FAILED, overall=score,
            scores={d: score for d in RUB.answer_types[atype].dimensions} if score is not None else {},
            judge=judge, rubric=rubric_id or RUB.id, prompt_hash=f"{q.id:016d}", raw=f"分析。{{'综合得分': {score}}}",
            answer_chars=len(texts.get(q.id, ""))))
    run = manifest(model, {"name": judge, "backend": "openai", "model": judge_model}, RUB,
                   {"path": str(QUESTIONS), "sha256": file_sha256(QUESTIONS)}, str(answers) if answers else None)
    with RunFolder(path) as folder:
        folder.write_run(judgments, build_summary(judgments, RUB, run, UsageTotals()))
    return path


def human_of(qid: int, judge_score: float) -> int:
    """A human 1–5 score that follows the judge loosely (deterministic)."""
    return int(min(5, max(1, round((judge_score - 1) / 2.25) + 1 + (qid % 3 == 0) - (qid % 5 == 0))))


# ================================================================================================
# calibrate
# ================================================================================================


def test_calibrate_cli_equals_api_equals_trust(judged, tmp_path):
    run_dir = judged.a  # the session's judged run of model-a: read only
    run = load_run(run_dir)
    labelled = [j for j in run.judgments if j.question_id % 4 != 1]  # 3 of the 4 answers of every category
    labels = write_jsonl(tmp_path / "labels.jsonl", [
        {"question_id": j.question_id, "model": "model-a", "score": human_of(j.question_id, j.overall)}
        for j in labelled] + [{"question_id": 3, "model": "someone-else", "score": 2}])

    proc = run_cli("calibrate", str(run_dir), "--labels", str(labels), "--label-scale", "1-5", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    cli = json.loads(proc.stdout)
    api = alignbench.calibrate(run_dir, labels, label_scale="1-5")
    assert cli == json.loads(json.dumps(api.as_dict(), ensure_ascii=False))
    # the numbers are trust.calibrate's on the run's judgments, with the labels of its model only
    direct = calibrate(load_run(run_dir).judgments, {(j.question_id, "model-a"): human_of(j.question_id, j.overall)
                                                     for j in labelled}, RUB, label_scale="1-5")
    (mine,) = cli["runs"].values()
    assert mine["overall"]["calibrated"]["score"] == pytest.approx(direct.overall.calibrated.score, abs=1e-4)
    assert mine["overall"]["calibrated"]["ci"] == pytest.approx(list(direct.overall.calibrated.ci), abs=1e-4)
    assert mine["overall"]["judge_only"]["score"] == pytest.approx(run.summary.overall, abs=1e-4)
    assert mine["labels"]["n_used"] == 24 and cli["labels"]["n"] == 25
    assert any("someone-else (1)" in w for w in cli["warnings"])  # a label of a model in no run, counted
    # back on the labels' own 1–5 scale
    back = parse_label_scale("1-5").from_rubric(direct.overall.calibrated.score, RUB)
    assert mine["overall_on_label_scale"]["score"] == pytest.approx(float(back), abs=1e-4)

    table = invoke("calibrate", str(run_dir), "--labels", str(labels), "--label-scale", "1-5")
    assert table.exit_code == 0, table.output
    out = table.stdout
    for needle in ("calibrated", "judge only", "labels only", "effective (gained)", "总分 Overall", "中文推理",
                   "数学计算", "on the labels' 1–5 scale"):
        assert needle in out
    # every category has 3 labels: flagged with its count
    assert out.count("3 label(s) (< 10)") == 8
    assert f"{direct.overall.calibrated.score:.2f}" in out and f"{direct.overall.judge_only.score:.2f}" in out


def test_labels_file_errors_name_file_and_line_before_anything(tmp_path):
    bad = tmp_path / "labels.jsonl"
    missing_run = tmp_path / "no-such-run"
    cases = [
        ('{"question_id": 1, "model": "m", "score": 3}\n{"question_id": 2, "model": "m", "score": 3}\n{oops\n',
         "labels.jsonl:3: not valid JSON"),
        ('{"question_id": 1, "score": 3}\n', "labels.jsonl:1: missing 'model'"),
        ('{"question_id": "x", "model": "m", "score": 3}\n', "labels.jsonl:1: question_id must be an integer"),
        ('{"question_id": 1, "model": "m", "score": "good"}\n', "labels.jsonl:1: score must be a finite number"),
    ]
    for text, expected in cases:
        bad.write_text(text, encoding="utf-8")
        res = invoke("calibrate", str(missing_run), "--labels", str(bad))
        assert res.exit_code == 2 and expected in res.stderr, (expected, res.stderr)
        assert "no-such-run" not in res.stderr  # the labels are read before any run
    # a score outside the scale in use, with the hint
    run_dir = write_run(tmp_path / "run", "m", {q.id: 5.0 for q in QS})
    bad.write_text('{"question_id": 1, "model": "m", "score": 3}\n{"question_id": 2, "model": "m", "score": 40}\n',
                   encoding="utf-8")
    res = invoke("calibrate", str(run_dir), "--labels", str(bad))
    assert res.exit_code == 2 and "labels.jsonl:2: score 40 of question 2, model m is outside the label scale 1-10" \
        in res.stderr and "--label-scale" in res.stderr
    res = invoke("calibrate", str(run_dir), "--labels", str(bad), "--label-scale", "1-5")
    assert res.exit_code == 2 and "labels.jsonl:2:" in res.stderr and "1-5" in res.stderr
    res = invoke("calibrate", str(run_dir), "--labels", str(tmp_path / "none.jsonl"))
    assert res.exit_code == 2 and "no such labels file or run folder" in res.stderr


def _reviewed_run(tmp_path: Path) -> tuple[Path, list[Judgment]]:
    run_dir = write_run(tmp_path / "run", "model-a", {q.id: float(3 + q.id % 6) for q in QS})
    judgments = load_run(run_dir).judgments
    for j in judgments:
        picked = "sample" if j.question_id % 2 == 0 else "queue"
        verdict = "confirm" if j.question_id % 3 else "override"
        score = None if verdict == "confirm" else max(1.0, j.overall - 2)
        append_review(run_dir, make_review(j, verdict, score, reviewer="alice", picked=picked))
    return run_dir, judgments


def test_calibrate_with_reviews_as_labels(tmp_path):
    run_dir, judgments = _reviewed_run(tmp_path)
    res = invoke("calibrate", str(run_dir), "--labels", str(run_dir), "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    (cal,) = data["runs"].values()
    assert data["labels"]["kind"] == "reviews" and cal["labels"]["n_used"] == 16  # only picked == "sample"
    assert any("16 review(s) not picked from sample are left out" in w for w in data["warnings"])
    labels = {(j.question_id, j.model): (j.overall if j.question_id % 3 else max(1.0, j.overall - 2))
              for j in judgments if j.question_id % 2 == 0}
    direct = calibrate(judgments, labels, RUB)
    assert cal["overall"]["calibrated"]["score"] == pytest.approx(direct.overall.calibrated.score, abs=1e-4)
    res = invoke("calibrate", str(run_dir), "--labels", str(run_dir), "--picked", "all", "--format", "json")
    assert json.loads(res.stdout)["runs"]["model-a"]["labels"]["n_used"] == 32
    res = invoke("calibrate", str(run_dir), "--labels", str(run_dir), "--label-scale", "1-5")
    assert res.exit_code == 2 and "--label-scale applies to a labels file only" in res.stderr
    res = invoke("calibrate", str(run_dir), "--labels", str(run_dir), "--picked", "often")
    assert res.exit_code == 2 and "--picked must be all or a comma list" in res.stderr


# ================================================================================================
# bridge and report --bridge
# ================================================================================================


def _old_new_runs(tmp_path: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Two models judged by an old judge (scores 1..10) and a new one whose scale is a known convex,
    increasing map of the old one (plus a little noise that never reverses two old scores)."""
    old, new = {}, {}
    for m, shift in (("model-a", 0), ("model-b", 2)):
        olds = {q.id: float(1 + (q.id * 7 + shift) % 10) for q in QS}
        news = {qid: round(1 + 9 * ((s - 1) / 9) ** 1.6, 2) for qid, s in olds.items()}
        old[m] = write_run(tmp_path / "old" / m, m, olds, judge="openai:old-judge", judge_model="old-judge")
        new[m] = write_run(tmp_path / "new" / m, m, news, judge="openai:new-judge", judge_model="new-judge")
    return old, new


def test_bridge_cli_api_and_report(tmp_path):
    old, new = _old_new_runs(tmp_path)
    saved = tmp_path / "bridge.json"
    res = invoke("bridge", str(tmp_path / "old"), str(tmp_path / "new"), "--save", str(saved), "--format", "json",
                 "--bootstrap", "50")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["agreement"]["spearman"] == pytest.approx(1.0) and data["n_matched"] == 64
    assert set(data["scores"]) == {"model-a", "model-b"} and len(data["categories"]) == 8
    fit = alignbench.bridge(tmp_path / "old", tmp_path / "new", n_boot=50)
    assert data["agreement"] == json.loads(json.dumps(fit.as_dict()["agreement"]))
    bridge = Bridge.from_dict(json.loads(saved.read_text(encoding="utf-8")))
    # the map recovers the new judge's scale at every old score
    for s in range(1, 11):
        assert float(bridge.predict([s])[0]) == pytest.approx(1 + 9 * ((s - 1) / 9) ** 1.6, abs=0.01)
    table = invoke("bridge", str(tmp_path / "old"), str(tmp_path / "new"), "--bootstrap", "20")
    assert table.exit_code == 0 and "scores on both scales" in table.stdout and "Kendall τ-b" in table.stdout

    # report: model-b's old run beside model-a's new run, the old one bridged onto the new scale
    out = tmp_path / "rep" / "report.md"
    res = invoke("report", str(old["model-b"]), str(new["model-a"]), "--bridge", str(saved), "--out", str(out),
                 "--no-charts", "--lang", "en", "--no-audit")
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    board = text.split("## Leaderboard")[1].split("\n\n")[1]
    row_b = next(line for line in board.splitlines() if line.startswith("| model-b"))
    assert "model-b (bridged)" in row_b
    bridged = apply_bridge(bridge, load_run(old["model-b"]).judgments)
    expected = build_summary(bridged, RUB, load_run(old["model-b"]).summary.run, UsageTotals()).overall
    assert f"{expected:.2f}" in row_b.split("|")[2]
    assert "put on openai:new-judge's scale through a bridge" in text
    assert "the runs differ in judge" not in text  # bridged history + the new judge's run: one scale
    # a bridge that matches no run says so
    res = invoke("report", str(new["model-a"]), "--bridge", str(saved), "--out", str(out), "--no-charts", "--no-audit")
    assert res.exit_code == 0 and "nothing was bridged" in res.stderr
    saved.write_text('{"format": "something-else"}', encoding="utf-8")
    res = invoke("report", str(new["model-a"]), "--bridge", str(saved), "--out", str(out), "--no-charts")
    assert res.exit_code == 2 and "bridge.json: not an alignbench bridge" in res.stderr


# ================================================================================================
# score --samples K
# ================================================================================================


def noisy_judge(body: dict) -> str:
    """The stub judge's reply with its overall score moved by -1, 0 or +1 by the request's seed."""
    text = alignbench_responder(body)
    key = f"{body.get('seed')}|{json.dumps(body['messages'], ensure_ascii=False)}"
    shift = hashlib.sha256(key.encode("utf-8")).digest()[0] % 3 - 1
    m = re.search(r"'综合得分': (\d+)", text)
    return f"{text[:m.start()]}'综合得分': {min(10, max(1, int(m.group(1)) + shift))}{text[m.end():]}"


def test_samples_k_distinct_cache_entries_mean_and_variance(tmp_path):
    with StubServer(responder=noisy_judge) as judge:
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:noisy", base_url=judge.url, out=tmp_path / "k3",
                                samples=3, temperature=0.7)
        assert judge.calls == 3 * 32
        assert sorted({str(r.get("seed")) for r in judge.requests}) == ["1000", "2000", "None"]
        calls = judge.calls
        one = alignbench.score(QUESTIONS, ANSWERS_A, "openai:noisy", base_url=judge.url, out=tmp_path / "k1",
                               temperature=0.7)["model-a"]
        assert judge.calls == calls and one.summary.usage.cached_replies == 32  # K = 1: the same cache keys
        assert not (tmp_path / "k1" / "samples.jsonl").exists() and getattr(one.summary, "samples", None) is None
    run = load_run(tmp_path / "k3")
    drawn = [json.loads(line) for line in (tmp_path / "k3" / "samples.jsonl").read_text("utf-8").splitlines()]
    assert len(drawn) == 96 and [d["sample"] for d in drawn[:3]] == [0, 1, 2]
    samples = [Judgment.model_validate(d["judgment"]) for d in drawn]
    for j in run.judgments:  # each judgment is the mean of its samples
        mine = [s.overall for s in samples if s.question_id == j.question_id]
        assert j.overall == pytest.approx(np.mean(mine), abs=1e-4) and len(mine) == 3
    assert [s.overall for s in samples if s.question_id == 5][0] == next(
        j.overall for j in one.judgments if j.question_id == 5)  # sample 0 is the plain run's judgment
    assert run.summary.overall == pytest.approx(runs["model-a"].summary.overall)
    section = run.summary.samples
    direct = judge_variance(samples, RUB)
    assert section["k"] == 3 and section["variance"]["rows"][0]["share_of_variance"] == pytest.approx(
        direct.rows[0].share_of_variance, abs=1e-4)
    assert direct.mean_sd > 0 and section["variance"]["n_answers"] == 32
    res = invoke("show", str(tmp_path / "k3"), "--no-audit")
    assert res.exit_code == 0 and "judge variance · 3 samples per answer" in res.stdout
    assert f"{direct.rows[0].sd_within:.2f}" in res.stdout
    with pytest.raises(alignbench.api.InputError, match="--samples"):
        alignbench.score(QUESTIONS, ANSWERS_A, "openai:noisy", base_url="http://127.0.0.1:9/v1", out=tmp_path / "x",
                         samples=0)


def test_score_cli_samples_option(tmp_path):
    with StubServer(responder=noisy_judge) as judge:
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:noisy",
                       "--judge-base-url", judge.url, "--out", str(tmp_path / "run"), "--samples", "2")
        assert proc.returncode == 0, proc.stderr
        assert judge.calls == 64
    assert "judge variance · 2 samples per answer" in proc.stdout
    assert "--samples 2 at judge temperature 0" in proc.stderr  # the samples may not differ: said so


# ================================================================================================
# bias audits and reviews in show / report
# ================================================================================================


def _length_runs(tmp_path: Path, planted: bool) -> list[Path]:
    """Two models over the 32 questions with answers of random lengths; with ``planted`` the judge adds
    one point per 100 characters (within every question), otherwise the score ignores length."""
    rng = np.random.default_rng(7)
    dirs = []
    for m in ("glm-chat-a", "model-b"):
        lengths = {q.id: int(rng.integers(40, 600)) for q in QS}
        answers = write_jsonl(tmp_path / f"{m}.jsonl", [
            {"question_id": q.id, "model_id": m, "answer": "- 要点\n" * (lengths[q.id] % 3) + "答" * lengths[q.id]} for q in QS])
        scores = {q.id: float(np.clip(round(2 + (lengths[q.id] / 100 if planted else rng.integers(0, 6))
                                            + rng.normal(0, 0.3)), 1, 10)) for q in QS}
        dirs.append(write_run(tmp_path / "runs" / m, m, scores, judge="openai:glm-4", judge_model="glm-4",
                              answers=answers))
    return dirs


@pytest.mark.parametrize("planted", [True, False])
def test_report_bias_section_finds_a_planted_length_preference(tmp_path, planted):
    dirs = _length_runs(tmp_path, planted)
    out = tmp_path / "report.md"
    res = invoke("report", *map(str, dirs), "--out", str(out), "--no-charts")
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    section = text.split("## 评审偏差审查")[1]
    assert "同题比较，64 个回答 / 32 道题" in section and "**长度（词，jieba 分词）**" in section
    assert ("评审偏好更长的回答" in section) == planted and ("未发现长度偏好" in section) != planted
    assert "**等长总分**" in section and "**格式（列表项）**" in section
    # judge glm-4 and model glm-chat-a share the GLM family: said at the top of the report
    top = text.split("## 运行信息")[0]
    assert "评审与被评模型属于同一家族" in top and "glm-4 评 glm-chat-a（GLM）" in top
    audits = alignbench.audit(dirs, n_boot=100)
    slope = audits[0].length.units["chars"].slope
    assert (slope > 0.7) == planted
    assert f"{slope:+.2f}" in section


def test_show_reviews_audit_and_position(tmp_path):
    run_dir, _ = _reviewed_run(tmp_path)
    with StubServer(responder=scripted_judge) as judge:
        pair = alignbench.compare(QUESTIONS, [ANSWERS_B], ANSWERS_A, "openai:noise-judge", base_url=judge.url,
                                  out=tmp_path / "cmp", bootstrap=0)
    res = invoke("show", str(run_dir), "--compare-run", str(pair.dir))
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "human reviews 32 judgment(s) reviewed; judge vs reviewer on 32" in out
    assert "69% within 1 point" in out and "reviewer − judge -0.62 on average" in out  # 10 overrides of −2
    assert "judge bias audit" in out and "position (32 pairs)" in out
    assert "answer file not at hand" in out  # this run records no answer file: said, characters from judgments
    data = json.loads(invoke("show", str(run_dir), "--compare-run", str(pair.dir), "--format", "json").stdout)
    assert data["trust"]["reviews"]["n_reviewed"] == 32 and data["trust"]["reviews"]["n_overridden"] == 10
    position = data["trust"]["audits"][0]["position"]["overall"]
    assert position["n_pairs"] == 32 and position["first_position_rate"] > 0.5  # ties go to 助手1: a bias

    out_md = tmp_path / "r.md"
    res = invoke("report", str(run_dir), "--out", str(out_md), "--no-charts", "--compare-run", str(pair.dir))
    assert res.exit_code == 0, res.output
    text = out_md.read_text(encoding="utf-8")
    assert "model-a：人工复核了 32 条评审；其中 32 条与评审分数比较" in text
    assert "**位置**（成对比较 32 对）" in text


def test_report_labels_add_a_calibrated_column(tmp_path):
    run_dir, judgments = _reviewed_run(tmp_path)
    labels = write_jsonl(tmp_path / "labels.jsonl", [
        {"question_id": j.question_id, "model": "model-a", "score": human_of(j.question_id, j.overall)}
        for j in judgments if j.question_id % 2])
    out = tmp_path / "r.md"
    res = invoke("report", str(run_dir), "--labels", str(labels), "--label-scale", "1-5", "--out", str(out),
                 "--no-charts", "--no-audit", "--lang", "en")
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| model | Overall"))
    assert header.split(" | ")[2] == "calibrated"
    cal = alignbench.calibrate(run_dir, labels, label_scale="1-5").runs["model-a"]
    board = text.split("## Leaderboard")[1]
    row = next(line for line in board.splitlines() if line.startswith("| model-a |"))
    assert row.split(" | ")[2].startswith(f"{cal.overall.calibrated.score:.2f} (")
    assert row.split(" | ")[2].endswith("‡")  # 2 labels per category: flagged
    assert "## Calibrated scores (human scale)" in text and "| **Overall** |" in text


# ================================================================================================
# meta-eval: a run folder's reviews as human labels; length against the humans
# ================================================================================================


def test_meta_eval_takes_reviews_as_labels(judged_copy, tmp_path):
    stub, judge_id = judged_copy.stub, judged_copy.judge  # a copy of the session's run; its replies in our cache
    run_dir = judged_copy.a
    run = load_run(run_dir)
    for j in run.judgments[:20]:
        append_review(run_dir, make_review(j, "override", float(1 + j.question_id % 10), reviewer="bob"))
    calls = stub.calls
    payload = alignbench.meta_eval([run_dir], judge_id, base_url=stub.url, bootstrap=50)
    assert stub.calls == calls  # the same prompts as the run: every reply from the cache
    info = payload.data[str(run_dir)]
    assert info["kind"] == "reviews" and info["n_pointwise"] == 20 and info["human_range"] == [1.0, 10.0]
    m = payload.results[judge_id]["multi-dimension"]["pointwise"]
    assert m["n"] == 20
    judge = [j.overall for j in run.judgments[:20]]
    human = [float(1 + j.question_id % 10) for j in run.judgments[:20]]
    from scipy import stats

    assert m["spearman"] == pytest.approx(stats.spearmanr(judge, human).statistic, abs=1e-4)
    lb = m["length_bias"]
    assert set(lb) >= {"chars", "words", "note"}
    assert lb["chars"]["judge_beyond_human"]["controls"] == ["human score"]
    res = invoke("meta-eval", "--data", str(run_dir), "--judge", judge_id, "--judge-base-url", stub.url,
                 "--bootstrap", "20")
    assert res.exit_code == 0, res.output
    assert "length: judge vs human labels" in res.stdout
    empty = write_run(tmp_path / "plain", "model-a", {q.id: 5.0 for q in QS})
    res = invoke("meta-eval", "--data", str(empty), "--judge", judge_id, "--judge-base-url", stub.url)
    assert res.exit_code == 2 and "no current review in reviews.jsonl" in res.stderr
