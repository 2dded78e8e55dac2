"""``alignbench import``: judgment files written as AlignBench's judge.py and FastChat's gen_judgment.py write
them (their own code builds the prompts and stores the scores here) -> run folders every reading command opens,
and a differences table that is right row by row."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import socket
import warnings
from pathlib import Path
from typing import Any

import pytest

from alignbench import api
from alignbench.data import InputError
from alignbench.importing import ImportFormatError, import_judgments
from alignbench.types import Status
from tests.conftest import OFFICIAL, SHARED, read_jsonl, run_cli, write_jsonl

UPSTREAM_AB = SHARED / "upstream" / "AlignBench"
FASTCHAT = SHARED / "upstream" / "FastChat" / "fastchat" / "llm_judge"
MODEL = "chatglm-test"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is re-judged: any connection attempt fails the test."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("alignbench import opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# -- AlignBench judge.py: its own prompt_construct and post_process -------------------------------------------


def _judge_py(tmp_path: Path) -> tuple[Any, Any]:
    """THUDM/AlignBench's judge.py as a module, with a Config over its own config/ files."""
    spec = importlib.util.spec_from_file_location("upstream_alignbench_judge", UPSTREAM_AB / "judge.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    cfg = {"OpenAI": {"api_key": "unused", "api_url": "http://127.0.0.1:9/unused"},
           "Paths": {"dimension_set_filepath": str(UPSTREAM_AB / "config" / "dimension_set.json"),
                     "dimension_def_filepath": str(UPSTREAM_AB / "config" / "dimension_definition.json"),
                     "model_answer_dir": str(tmp_path / "model_answer"),
                     "model_judgement_dir": str(tmp_path / "judgment"),
                     "subcategory_mapping": str(UPSTREAM_AB / "config" / "subcategory_question_mapping.json")}}
    (tmp_path / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return module, module.Config(str(tmp_path / "config.json"))


def _questions_by_category(n_each: int) -> list[dict]:
    rows = [json.loads(line) for line in OFFICIAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    out: list[dict] = []
    for cat in dict.fromkeys(r["category"] for r in rows):
        out += [r for r in rows if r["category"] == cat][:n_each]
    return out


def _dict(dims: list[str], values: list[Any], overall: Any, sep: str = ": ", quote: str = "'") -> str:
    inner = ", ".join(f"{quote}{d}{quote}{sep}{v}" for d, v in zip(dims, values, strict=False))
    return "{" + inner + f", {quote}综合得分{quote}{sep}{overall}" + "}"


# The special texts, by position in the file (0-based); the rest are plain verdicts.
def _ab_text(i: int, dims: list[str]) -> tuple[str, float | None]:
    """A judge text for row i and the overall score our parser must read (None: no verdict)."""
    n = len(dims)
    if i == 0:  # a normal verdict
        return "回答基本正确，条理清楚。\n" + _dict(dims, [7] * n, 7), 7.0
    if i == 1:  # their -1: no space after the colon, their "': (\d+)" does not match
        return "回答有小错误。\n" + _dict(dims, [6] * n, 6, sep=":"), 6.0
    if i == 2:  # the prompt's example dict after the real one: their regex takes the last braces
        return ("回答有明显错误。\n" + _dict(dims, [4] * n, 4)
                + "\n例如：{'事实正确性': 9, '满足用户需求': 6, ..., '综合得分': 7}"), 4.0
    if i == 3:  # decimals: their "(\d+)" cuts 6.5 to 6
        return "回答尚可。\n" + _dict(dims, ["7.5"] + ["6"] * (n - 1), "6.5"), 6.5
    if i == 4:  # no verdict at all
        return "这个回答整体还可以，但有些地方不够准确，我给它中等偏上的分数。", None
    if i == 5:  # cut off inside the final dict: they read 1, the judge may have meant 10
        return "回答很差。\n" + _dict(dims, [3] * n, 1)[:-1], None
    if i == 6:  # the overall agrees, a dimension does not: their "(\d+)" reads 8.5 as 8
        return "回答较好。\n" + _dict(dims, ["8.5"] + ["8"] * (n - 1), 8), 8.0
    score = 3 + i % 6
    return f"第{i}个回答的评价。\n" + _dict(dims, [score] * n, score), float(score)


def _alignbench_file(tmp_path: Path, model: str = MODEL, shift: int = 0, n_each: int = 3) -> tuple[Path, list[dict], list]:
    """A data/judgment/<model>.jsonl exactly as judge.py's run_sample_and_save writes it."""
    judge_py, config = _judge_py(tmp_path)
    lines, expected = [], []
    for i, q in enumerate(_questions_by_category(n_each)):
        doc = {**q, "model_id": model, "answer": f"{model} 对问题 {q['question_id']} 的回答。" * (1 + i % 4)}
        dims, prompt = judge_py.prompt_construct(judge_py.Sample(doc["question"], doc["reference"], doc["answer"],
                                                                  doc["category"], doc["subcategory"]), config)
        text, ours = _ab_text(i, dims)
        if shift and ours is not None:  # a second judge: one point higher where it can be
            text = text.replace(f"'综合得分': {ours:g}", f"'综合得分': {min(10, ours + shift):g}")
            ours = float(min(10, ours + shift))
        rating, score = judge_py.post_process(text)
        doc.update({"dimensions": dims, "judge_prompt": prompt, "judgment": text, "rating": rating, "score": score})
        lines.append(doc)
        expected.append(ours)
    path = tmp_path / "data" / "judgment" / f"{model}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in lines), encoding="utf-8")
    return path, lines, expected


def test_alignbench_import_differences_row_by_row(tmp_path: Path) -> None:
    path, lines, expected = _alignbench_file(tmp_path)
    # what judge.py itself stored for the special rows (its own post_process ran above)
    assert [lines[i]["score"] for i in range(7)] == [7, -1, 7, 6, -1, 1.0, 8]
    [result] = import_judgments(path, out=tmp_path / "runs")
    assert result.format == "alignbench-judge" and result.judge_model == "gpt-4"
    rows = [(d.line, d.kind, d.theirs, d.ours, d.our_status) for d in result.differences]
    assert rows == [(2, "their_failure", -1.0, 6.0, "ok"), (3, "misread", 7.0, 4.0, "ok"),
                    (4, "misread", 6.0, 6.5, "ok"), (6, "our_failure", 1.0, None, "parse_failed"),
                    (7, "misread", 8.0, 8.0, "ok")]
    assert result.differences[-1].detail == "dimensions differ: 事实正确性 8 vs 8.5"
    run = result.runs[MODEL]
    by_q = {j.question_id: j for j in run.judgments}
    for doc, ours in zip(lines, expected, strict=True):
        j = by_q[doc["question_id"]]
        assert j.overall == ours and (j.status is Status.OK) == (ours is not None)
        assert j.raw == doc["judgment"] and j.scores.keys() <= set(doc["dimensions"])
    assert by_q[lines[3]["question_id"]].scores["事实正确性"] == 7.5
    # written beside the run: the differences, the questions and answers it judged
    written = read_jsonl(run.dir / "import_differences.jsonl")
    assert [(r["line"], r["kind"]) for r in written] == [(r[0], r[1]) for r in rows]
    manifest = json.loads((run.dir / "summary.json").read_text(encoding="utf-8"))["run"]
    assert manifest["imported"]["sha256"] == result.sha256 and manifest["imported"]["format"] == "alignbench-judge"
    assert manifest["imported"]["source"] == str(path) and manifest["rubric"] == "alignbench@imported-judge.py"
    assert run.questions is not None and len(run.questions) == len(lines)  # load_run found the questions file


def test_alignbench_import_aggregates_like_a_run(tmp_path: Path) -> None:
    path, lines, expected = _alignbench_file(tmp_path)
    [result] = import_judgments(path, out=tmp_path / "runs")
    s = result.runs[MODEL].summary
    ok = [(d, e) for d, e in zip(lines, expected, strict=True) if e is not None]
    assert s.n == len(lines) and s.n_ok == len(ok) and s.n_failed == 2
    cats: dict[str, list[float]] = {}
    for d, e in ok:
        cats.setdefault("基本任务" if d["category"] == "基本能力" else d["category"], []).append(e)
    means = {c: sum(v) / len(v) for c, v in cats.items()}
    reasoning = (means["数学计算"] + means["逻辑推理"]) / 2
    language = sum(means[c] for c in means if c not in ("数学计算", "逻辑推理")) / 6
    assert s.reasoning == pytest.approx(reasoning, abs=1e-4) and s.language == pytest.approx(language, abs=1e-4)
    assert s.overall == pytest.approx((reasoning + language) / 2, abs=1e-4)
    assert s.overall_ci[0] <= s.overall <= s.overall_ci[1]
    assert "事实正确性" in s.dimensions and s.usage.calls == 0


def test_reading_commands_open_alignbench_import(tmp_path: Path) -> None:
    path, lines, expected = _alignbench_file(tmp_path, n_each=4)
    out = tmp_path / "runs"
    [result] = import_judgments(path, out=out)
    run_dir = result.runs[MODEL].dir
    view = api.show(run_dir)
    assert view.run.summary.overall == result.runs[MODEL].summary.overall
    report = api.report([run_dir], tmp_path / "r.md", charts=False, lang="en")
    text = report.path.read_text(encoding="utf-8").replace("\\", "")  # Markdown escapes in the path
    assert f"imported from {path} (alignbench-judge), not re-judged" in text
    assert f"sha256 {result.sha256[:12]}" in text
    # audit: answer texts come from the answers file the import wrote
    [audit] = api.audit(run_dir, n_boot=20)
    assert "answer file not at hand" not in json.dumps(audit.as_dict(), ensure_ascii=False)
    # calibrate: labels on the judged answers (human = judge score, rounded down)
    labels = [{"question_id": d["question_id"], "model": MODEL, "score": int(e)}
              for d, e in zip(lines, expected, strict=True) if e is not None]
    cal = api.calibrate(run_dir, write_jsonl(tmp_path / "labels.jsonl", labels), min_labels=2, n_boot=50)
    top = cal.runs[MODEL].overall
    assert top is not None and top.calibrated.score == pytest.approx(
        result.runs[MODEL].summary.overall, abs=0.6)
    # bridge: the same answers judged by a second judge one point higher
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    path2, _, expected2 = _alignbench_file(second_dir, shift=1, n_each=4)
    [second] = import_judgments(path2, out=tmp_path / "runs2", judge_model="gpt-4o")
    fit = api.bridge(run_dir, second.runs[MODEL].dir, n_boot=20)
    assert fit.n_matched == sum(1 for a, b in zip(expected, expected2, strict=True) if a is not None and b is not None)
    assert fit.n_failed == sum(1 for a in expected if a is None) and fit.bridge.old_judge != fit.bridge.new_judge
    assert float(fit.bridge.predict([5.0])[0]) == pytest.approx(6.0)
    # the viewer: its data loader and a static export, whose run page says where the run came from
    from alignbench.view.data import load_answer_texts, load_view
    from alignbench.view.export import export_site

    answers, note = load_answer_texts(result.runs[MODEL])
    assert note is None and answers[lines[0]["question_id"]].text == lines[0]["answer"]
    written = export_site(load_view([run_dir]), tmp_path / "site")
    run_page = next(p for p in written if p.name.startswith("run-")).read_text(encoding="utf-8")
    assert "(alignbench-judge), not re-judged" in run_page and result.sha256[:12] in run_page
    question_page = next(p for p in written if p.name.startswith("q")).read_text(encoding="utf-8")
    assert "judge.py stored score" in question_page or lines[0]["judgment"][:6] in question_page


def test_cli_import_then_show(tmp_path: Path) -> None:
    path, _, _ = _alignbench_file(tmp_path)
    out = tmp_path / "runs"
    proc = run_cli("import", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    flat = " ".join(proc.stdout.split())
    assert "5 judgment(s) read differently from the stored score" in flat
    assert "not re-judged" in flat and "sha256" in flat
    assert "their -1 / error, we read" in flat and "we read nothing" in flat and "read differently" in flat
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    shown = run_cli("show", str(run_dir))
    assert shown.returncode == 0, shown.stderr
    flat = " ".join(shown.stdout.split())
    assert "(alignbench-judge), not re-judged" in flat and "总分 overall" in flat


# -- FastChat ------------------------------------------------------------------------------------------


def _fastchat_patterns() -> dict[str, re.Pattern[str]]:
    """The score patterns of FastChat's common.py, read from the file (its module needs FastChat installed)."""
    with warnings.catch_warnings():  # its patterns are plain strings with regex escapes
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse((FASTCHAT / "common.py").read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("one_score_pattern", "one_score_pattern_backup"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                out[node.targets[0].id] = re.compile(ast.literal_eval(node.value.args[0]))  # type: ignore[attr-defined]
    return out


def _their_single(judgment: str) -> float:
    """run_judge_single's reading: the first [[N]], else the first [N], else -1."""
    p = _fastchat_patterns()
    match = re.search(p["one_score_pattern"], judgment) or re.search(p["one_score_pattern_backup"], judgment)
    return ast.literal_eval(match.groups()[0]) if match else -1


def _their_pair(judgment: str) -> str:
    """run_judge_pair's reading for output_format [[A]]."""
    for tag, winner in (("[[A]]", "A"), ("[[B]]", "B"), ("[[C]]", "tie")):
        if tag in judgment:
            return winner
    return "error"


SINGLE_TEXTS: list[tuple[str, float | None]] = [
    ("The answer is helpful and accurate.\n\nRating: [[8]]", 8.0),  # normal
    ("Mostly right, one slip.\n\nRating: [[ 7 ]]", 7.0),  # their -1: a space inside the brackets
    ('The required output format is "Rating: [[5]]".\n\nThe answer misses the point.\n\nRating: [[3]]', 3.0),
    ("Good but terse.\n\nRating: [[7.5]]", 7.5),  # a decimal: both read it
    ("I am not able to decide on this one.", None),  # no verdict
    ("Partly correct.\n\nRating: [6]", None),  # single brackets: their backup pattern reads 6, we read nothing
    ("$ERROR$", None),  # FastChat's API failure marker
]


def _mt_bench_dirs(tmp_path: Path) -> tuple[Path, list[dict]]:
    bench = tmp_path / "data" / "mt_bench"
    (bench / "model_judgment").mkdir(parents=True)
    (bench / "model_answer").mkdir()
    src = (FASTCHAT / "data" / "mt_bench" / "question.jsonl").read_text(encoding="utf-8")
    (bench / "question.jsonl").write_text(src, encoding="utf-8")
    questions = [json.loads(line) for line in src.splitlines() if line.strip()]
    by_cat: dict[str, dict] = {}
    for q in questions:
        by_cat.setdefault(q["category"], q)
    return bench, list(by_cat.values())


def _write_answers(bench: Path, model: str, questions: list[dict]) -> None:
    write_jsonl(bench / "model_answer" / f"{model}.jsonl",
                [{"question_id": q["question_id"], "model_id": model,
                  "choices": [{"index": 0, "turns": [f"{model} turn 1 " * (3 + q["question_id"] % 5),
                                                     f"{model} turn 2"]}]} for q in questions])


def test_fastchat_single_import(tmp_path: Path) -> None:
    bench, questions = _mt_bench_dirs(tmp_path)
    _write_answers(bench, "vicuna-test", questions)
    rows, ours = [], []
    k = 0
    for q in questions:
        for turn in (1, 2):
            text, score = SINGLE_TEXTS[k] if k < len(SINGLE_TEXTS) else (f"Fine.\n\nRating: [[{4 + k % 5}]]", 4.0 + k % 5)
            k += 1
            rows.append({"question_id": q["question_id"], "model": "vicuna-test",
                         "judge": ["gpt-4", "single-v1" if turn == 1 else "single-v1-multi-turn"],
                         "user_prompt": 'strictly following this format: "[[rating]]", for example: "Rating: [[5]]".',
                         "judgment": text, "score": _their_single(text), "turn": turn, "tstamp": 1.0})
            ours.append((q["question_id"], turn, score))
    path = write_jsonl(bench / "model_judgment" / "gpt-4_single.jsonl", rows)
    [result] = import_judgments(path, out=tmp_path / "runs")
    assert result.format == "fastchat-single" and result.prompt_names == ["single-v1", "single-v1-multi-turn"]
    diffs = [(d.line, d.turn, d.kind, d.theirs, d.ours) for d in result.differences]
    assert diffs == [(2, 2, "their_failure", -1.0, 7.0), (3, 1, "misread", 5.0, 3.0),
                     (6, 2, "our_failure", 6.0, None)]
    s = result.runs["vicuna-test"].summary
    read = [x for *_, x in ours if x is not None]
    mt = s.model_extra["mtbench"]
    assert mt["score"] == pytest.approx(sum(read) / len(read), abs=1e-4) and s.overall == mt["score"]
    assert mt["n"] == len(read) and mt["n_failed"] == len(ours) - len(read)
    for turn in (1, 2):
        mine = [x for _, t, x in ours if t == turn and x is not None]
        assert mt["turns"][str(turn)]["score"] == pytest.approx(sum(mine) / len(mine), abs=1e-4)
    # FastChat's show_result.py on its own stored scores: the mean of rows whose score is not -1
    theirs = [r["score"] for r in rows if r["score"] != -1]
    assert sum(theirs) / len(theirs) != pytest.approx(mt["score"])  # the misreads move it
    run = result.runs["vicuna-test"]
    assert run.questions is not None and run.questions[questions[0]["question_id"]].model_turns == 2
    error = next(j for j in run.judgments if j.question_id == questions[3]["question_id"])
    assert error.status is not Status.OK and error.turns[0].status is Status.JUDGE_ERROR
    assert api.show(run.dir).run.summary.overall == s.overall
    shown = run_cli("show", str(run.dir))
    flat = " ".join(shown.stdout.split())
    assert shown.returncode == 0, shown.stderr
    assert f"{s.overall:.2f}" in flat and "(fastchat-single), not re-judged" in flat and "writing" in flat
    [audit] = api.audit(run.dir, n_boot=20)
    assert "answer file not at hand" not in json.dumps(audit.as_dict(), ensure_ascii=False)


def test_fastchat_pair_import(tmp_path: Path) -> None:
    bench, questions = _mt_bench_dirs(tmp_path)
    for m in ("vicuna-test", "gpt-3.5-turbo"):
        _write_answers(bench, m, questions)
    # (g1 text, g2 text, our model-vs-baseline reading per game): in g1 the model is A, in g2 it is B
    games = [
        ("A is better.\n\n[[A]]", "B is better.\n\n[[B]]"),  # normal: the model wins both
        ("[[ A ]]", "[[B]]"),  # their error in g1 (a space), we read A
        ('Output "[[A]]" if assistant A is better, "[[B]]" if B is.\n\nMy final verdict: [[B]]', "[[C]]"),
        ("Both are fine.", "[[C]]"),  # no verdict in g1
        ("Hard to say.\n[[A]]\n[[B]]", "[[A]]"),  # they read A; we read two verdicts in a row: none
    ]
    rows = []
    for i, q in enumerate(questions[:5]):
        g1, g2 = games[i]
        for turn in (1, 2):
            w1, w2 = _their_pair(g1), _their_pair(g2)
            rows.append({"question_id": q["question_id"], "model_1": "vicuna-test", "model_2": "gpt-3.5-turbo",
                         "g1_winner": {"A": "model_1", "B": "model_2"}.get(w1, w1),
                         "g2_winner": {"A": "model_2", "B": "model_1"}.get(w2, w2),
                         "judge": ["gpt-4", "pair-v2" if turn == 1 else "pair-v2-multi-turn"],
                         "g1_user_prompt": "p", "g1_judgment": g1, "g2_user_prompt": "p", "g2_judgment": g2,
                         "turn": turn, "tstamp": 1.0})
    path = write_jsonl(bench / "model_judgment" / "gpt-4_pair.jsonl", rows)
    [result] = import_judgments(path, out=tmp_path / "runs")
    assert result.format == "fastchat-pair"
    kinds = sorted({(d.question_id, d.order, d.kind, d.theirs, d.ours) for d in result.differences})
    q = [x["question_id"] for x in questions[:5]]
    assert kinds == sorted({(q[1], "g1", "their_failure", "error", "model_1"),
                            (q[2], "g1", "misread", "model_1", "model_2"),
                            (q[4], "g1", "our_failure", "model_1", None)})
    assert len(result.differences) == 6  # each for both turns
    pr = result.pairwise
    assert pr is not None and pr.total == 5 and pr.failed == 2
    by_q = {j.question_id: j for j in pr.judgments}
    assert by_q[q[0]].preference == 1.0 and by_q[q[1]].preference == 1.0
    assert by_q[q[2]].preference == 0.25  # baseline wins g1, tie in g2
    m = pr.summary.models["vicuna-test"]
    assert m["n_failed"] == 2 and m["baseline"] == "gpt-3.5-turbo"
    assert m["win_rate"] == pytest.approx(100 * (1.0 + 1.0 + 0.25) / 3, abs=1e-6)
    # compare readers: winrate and the position audit
    wr = api.winrate(pr.dir / "pairwise_judgments.jsonl")
    assert wr.models["vicuna-test"]["win_rate"] == pytest.approx(m["win_rate"])
    written = json.loads((pr.dir / "pairwise_summary.json").read_text(encoding="utf-8"))
    assert written["run"]["imported"]["format"] == "fastchat-pair" and written["finished"] is True
    assert read_jsonl(pr.dir / "import_differences.jsonl")[0]["kind"] == "their_failure"


def test_format_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": 1, "model": "x", "judgment": "t", "score": 3}\n', encoding="utf-8")
    with pytest.raises(ImportFormatError, match=r"bad\.jsonl:1: not a judgment of AlignBench"):
        import_judgments(bad, out=tmp_path / "runs")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question_id": 1}\n{not json\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.jsonl:2: not valid JSON"):
        import_judgments(broken, out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
    proc = run_cli("import", str(bad), "--out", str(tmp_path / "runs"))
    assert proc.returncode != 0 and "bad.jsonl:1" in proc.stderr


def test_rerun_appends_are_read_as_the_last_judgment(tmp_path: Path) -> None:
    """judge.py appends: a run started again writes every judgment once more; the later line is imported."""
    path, lines, expected = _alignbench_file(tmp_path, n_each=1)
    again = dict(lines[0], judgment=lines[0]["judgment"].replace("'综合得分': 7", "'综合得分': 9"), score=9)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(again, ensure_ascii=False) + "\n")
    [result] = import_judgments(path, out=tmp_path / "runs")
    judged = {j.question_id: j for j in result.runs[MODEL].judgments}
    assert len(judged) == len(lines) and judged[lines[0]["question_id"]].overall == 9.0
    assert result.records == len(lines) + 1 and "1 line(s) judge an answer judged again" in result.notes[0]
    assert "judged again" in " ".join(result.runs[MODEL].summary.run.model_extra["notes"])


def test_fastchat_files_that_are_not_one_run(tmp_path: Path) -> None:
    bench, questions = _mt_bench_dirs(tmp_path)
    row = {"question_id": questions[0]["question_id"], "model": "m", "judge": ["gpt-4", "single-v1"],
           "user_prompt": "p", "judgment": "Rating: [[5]]", "score": 5, "turn": 1, "tstamp": 1.0}
    two = write_jsonl(bench / "model_judgment" / "two_single.jsonl",
                      [row, {**row, "judge": ["claude-v1", "single-v1"]}])
    with pytest.raises(InputError, match=r"two_single\.jsonl:2: judge 'claude-v1' here, 'gpt-4' on line 1"):
        import_judgments(two, out=tmp_path / "runs")
    pair = {"question_id": questions[0]["question_id"], "model_1": "a", "model_2": "b", "g1_winner": "tie",
            "g2_winner": "tie", "judge": ["gpt-4", "single-v1"], "g1_user_prompt": "p", "g1_judgment": "[[5]]",
            "g2_user_prompt": "p", "g2_judgment": "[[5]]", "m1_score": 5, "m2_score": 5, "tstamp": 1.0}
    single_pair = write_jsonl(bench / "model_judgment" / "gpt-4_pair.jsonl", [pair])
    with pytest.raises(ImportFormatError, match=r"gpt-4_pair\.jsonl:1: pairs judged by a single-answer judge"):
        import_judgments(single_pair, out=tmp_path / "runs")
    (bench / "question.jsonl").unlink()
    good = write_jsonl(bench / "model_judgment" / "gpt-4_single.jsonl", [row])
    with pytest.raises(InputError, match="question.jsonl not found"):
        import_judgments(good, out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_fastchat_single_score_equals_show_result_where_readings_agree(tmp_path: Path) -> None:
    """Where every text reads the same both ways, the MT-Bench score and per-turn scores are show_result.py's:
    its own pandas steps (drop score -1, mean per turn, mean over all judged turns) on the stored scores."""
    import pandas as pd

    bench, questions = _mt_bench_dirs(tmp_path)
    rows = []
    for i, q in enumerate(questions):
        for turn in (1, 2):
            text = "Unanswerable for me." if i == 2 and turn == 2 else f"Ok.\n\nRating: [[{1 + (3 * i + turn) % 10}]]"
            rows.append({"question_id": q["question_id"], "model": "m", "judge": ["gpt-4", "single-v1"],
                         "user_prompt": "p", "judgment": text, "score": _their_single(text), "turn": turn,
                         "tstamp": 1.0})
    path = write_jsonl(bench / "model_judgment" / "gpt-4_single.jsonl", rows)
    [result] = import_judgments(path, out=tmp_path / "runs")
    assert result.differences == []
    df = pd.read_json(path, lines=True)[["model", "score", "turn"]]
    df = df[df["score"] != -1]
    mt = result.runs["m"].summary.model_extra["mtbench"]
    assert mt["score"] == pytest.approx(float(df[["model", "score"]].groupby(["model"]).mean().loc["m", "score"]),
                                        abs=1e-4)
    for turn in (1, 2):
        expected = float(df[df["turn"] == turn].groupby(["model", "turn"]).mean().iloc[0]["score"])
        assert mt["turns"][str(turn)]["score"] == pytest.approx(expected, abs=1e-4)
    assert mt["n_failed"] == 1 and mt["turns"]["2"]["n_failed"] == 1
