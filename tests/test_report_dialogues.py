"""Per-turn scores of multi-turn dialogues in `alignbench report` and in the terminal view.

The data/zh multi-turn sample is scored end to end through the `alignbench score` CLI against the loopback
stub judge, for two models: model A's sample answers, and a model B whose answers (built from A's) skip the
three-turn dialogue, leak a think block into one reply and carry one reply the judge cannot score. The
report and the terminal table must hold exactly the per-turn numbers of each run's summary.json, which
are checked against the turn judgments in judgments.jsonl.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import ROOT, ZH, read_jsonl, run_cli, write_jsonl
from markdown_it import MarkdownIt
from rich.console import Console
from stub_server import StubServer, alignbench_responder

from alignbench.reporting.markdown import build_report, write_report
from alignbench.reporting.terminal import print_summary
from alignbench.rubrics import load_rubric
from alignbench.rundir import load_run

MT_QUESTIONS = ZH / "multiturn_questions.jsonl"
MT_ANSWERS = ZH / "answers" / "multiturn-model-a.jsonl"
MODEL_A = "multiturn-model-a"
MODEL_B = "多轮 b|[red]x[/] *y*"  # a table separator, rich markup and Markdown emphasis: all literal
UNSCORABLE = "【此轮回答评审无法给分】"
SINGLE_TURN = ROOT / "reports" / "examples" / "runs" / "model-a"


def judge(body: dict) -> str:
    """The stub AlignBench judge, except for a turn whose reply carries UNSCORABLE: no score at all."""
    prompt = body["messages"][-1]["content"]
    return "这个回答无法评价。" if UNSCORABLE in prompt else alignbench_responder(body)


def model_b_answers(path: Path) -> Path:
    rows = [{**r, "model_id": MODEL_B} for r in read_jsonl(MT_ANSWERS) if r["question_id"] != 105]  # no 3rd turn
    by_id = {r["question_id"]: r for r in rows}
    q101 = by_id[101]["turns"]
    by_id[101]["turns"] = [q101[0] + "（<think>再核对一遍</think>没错）", q101[1]]  # leaked, not a leading block
    q104 = by_id[104]["turns"]
    by_id[104]["turns"] = [q104[0], q104[1] + UNSCORABLE]  # turn 2 of 104 fails, so does dialogue 104
    return write_jsonl(path, rows)


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Both models scored once by the real CLI; the run folders and what `score` printed, per model."""
    tmp = tmp_path_factory.mktemp("dialogues")
    answers_b = model_b_answers(tmp / "model-b.jsonl")
    with StubServer(responder=judge) as stub:
        proc = run_cli("score", "-q", str(MT_QUESTIONS), "-a", str(MT_ANSWERS), "-a", str(answers_b),
                       "--rubric", "alignbench-multiturn", "--judge", "openai:stub-judge", "--judge-base-url",
                       stub.url, "--out", str(tmp / "runs"), "--max-failed", "1",
                       env={"ALIGNBENCH_CACHE": str(tmp / "cache.sqlite")})
    assert proc.returncode == 0, proc.stderr
    printed: dict[str, str] = {}
    chunk: list[str] = []
    for line in proc.stdout.splitlines():
        if line.startswith("run folder: "):
            printed[line.removeprefix("run folder: ")] = "\n".join(chunk)
            chunk = []
        else:
            chunk.append(line)
    runs = {load_run(Path(d)).summary.model: Path(d) for d in printed}
    assert set(runs) == {MODEL_A, MODEL_B}
    return {"tmp": tmp, "runs": runs, "printed": {m: printed[str(d)] for m, d in runs.items()}}


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


def expected_cells(turn: dict | None) -> list[str]:
    """A turn's cells as both outputs must show them: score, 95% CI, n, failed (— where there is none)."""
    if turn is None:
        return ["—", "—", "0", "0"]
    ci = turn["ci"]
    return [f"{turn['score']:.2f}" if turn["score"] is not None else "—",
            f"{ci[0]:.2f}–{ci[1]:.2f}" if ci else "—", str(turn["n"]), str(turn["n_failed"])]


def section_table(text: str, heading: str) -> list[list[str]] | None:
    """The cell texts (header first) of the first table under the level-2 heading ``heading``, parsed as
    CommonMark + GFM tables; None when the page has no such heading."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    titles = [i for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2"
              and tokens[i + 1].content == heading]
    if not titles:
        return None
    rows: list[list[str]] = []
    for i in range(titles[0], len(tokens)):
        tok = tokens[i]
        if tok.type == "tr_open":
            rows.append([])
        elif tok.type in ("th_open", "td_open"):
            inline = tokens[i + 1]
            rows[-1].append("".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline")))
        elif tok.type == "table_close":
            return rows
    raise AssertionError(f"no table under {heading}")


def terminal_rows(printed: str) -> list[list[str]]:
    """Rows of the per-turn rich table in a run's terminal output (header row first)."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if "轮次 turn" in line)
    rows = [[c.strip() for c in lines[start].strip().strip("┃").split("┃")]]
    for line in lines[start + 1:]:
        if line.startswith("└"):
            return rows
        if line.startswith("│"):
            rows.append([c.strip() for c in line.strip().strip("│").split("│")])
    raise AssertionError("the per-turn table is not closed")


# -- the summaries the outputs must reproduce ----------------------------------------------------------

def test_per_turn_summary_is_what_the_turn_judgments_say(scored: dict) -> None:
    """The numbers the report shows are the real ones: each turn's mean over the turn judgments that
    succeeded, its n and its failures, recomputed here from judgments.jsonl."""
    for model, want_n, want_failed, reasoning in ((MODEL_A, {"1": 6, "2": 6, "3": 1}, {"1": 0, "2": 0, "3": 0},
                                                   {"removed": 1, "leaked": 0}),
                                                  (MODEL_B, {"1": 5, "2": 4}, {"1": 0, "2": 1},
                                                   {"removed": 1, "leaked": 1})):
        run_dir = scored["runs"][model]
        summary = summary_of(run_dir)
        turns = summary["dialogues"]["turns"]
        assert {k: v["n"] for k, v in turns.items()} == want_n
        assert {k: v["n_failed"] for k, v in turns.items()} == want_failed
        assert summary["answer_reasoning"] == reasoning
        judged = [t for j in read_jsonl(run_dir / "judgments.jsonl") for t in j["turns"]]
        for k, v in turns.items():
            ok = [t["overall"] for t in judged if t["turn"] == int(k) and t["status"] == "ok"]
            assert v["score"] == pytest.approx(sum(ok) / len(ok), abs=1e-4)
            assert v["ci"][0] <= v["score"] <= v["ci"][1]
    b = summary_of(scored["runs"][MODEL_B])
    assert (b["dialogues"]["n"], b["dialogues"]["judged_turns"], b["n_failed"]) == (5, 10, 1)


# -- the Markdown report -----------------------------------------------------------------------------

def test_report_has_a_column_group_per_run(scored: dict) -> None:
    a, b = scored["runs"][MODEL_A], scored["runs"][MODEL_B]
    out = scored["tmp"] / "two" / "report.md"
    write_report([a, b], out, baseline_dir=a, lang="zh", charts=False)
    text = out.read_text(encoding="utf-8")
    table = section_table(text, "多轮对话：各轮得分")
    assert table is not None
    cols = ["分数", "95% CI", "n", "失败"]
    assert table[0] == ["轮次", *(f"{MODEL_A} (基线) · {c}" for c in cols), *(f"{MODEL_B} · {c}" for c in cols)]
    turns_a = summary_of(a)["dialogues"]["turns"]
    turns_b = summary_of(b)["dialogues"]["turns"]
    assert [row[0] for row in table[1:]] == ["第1轮", "第2轮", "第3轮"]
    for row, k in zip(table[1:], ("1", "2", "3"), strict=True):
        assert row[1:] == expected_cells(turns_a[k]) + expected_cells(turns_b.get(k))
    # model B never reached a third turn; its failed turn 2 is counted, not averaged
    assert table[3][5:] == ["—", "—", "0", "0"] and table[2][8] == "1"
    assert table[1][1:5] == ["6.50", "6.00–7.17", "6", "0"]  # the stub judge's scores are deterministic
    # the section sits between the score tables, and the answers' reasoning is stated for each run
    assert text.index("## 排行榜") < text.index("## 多轮对话：各轮得分") < text.index("## 类别 × 维度得分")
    assert "- multiturn-model-a：6 段对话，共评审 13 个轮次" in text
    assert f"{MODEL_A}: 1 个回答的思考过程未展示给评审；0 个回答的思考内容泄漏到最终回答中" in text
    assert "1 个回答的思考过程未展示给评审；1 个回答的思考内容泄漏到最终回答中" in text.split("## 排行榜")[0]


def test_report_of_one_run_and_of_a_mixed_pair(scored: dict) -> None:
    a = scored["runs"][MODEL_A]
    text, _ = build_report([load_run(a)], lang="en", charts=False, audit=False)
    table = section_table(text, "Multi-turn dialogues: score per turn")
    turns = summary_of(a)["dialogues"]["turns"]
    assert table == [["turn", "score", "95% CI", "n", "failed"],
                     *[[f"turn {k}", *expected_cells(v)] for k, v in turns.items()]]
    assert "- Each cell: the mean of that turn over the dialogues" in text
    assert "- multiturn-model-a: 6 dialogues, 13 judged turns" in text
    # a single-turn run beside it gets no column group (it has no turns), the dialogue run keeps its name
    text, _ = build_report([load_run(SINGLE_TURN), load_run(a)], lang="en", charts=False, audit=False)
    table = section_table(text, "Multi-turn dialogues: score per turn")
    assert table[0] == ["turn", *(f"{MODEL_A} · {c}" for c in ("score", "95% CI", "n", "failed"))]
    assert [row[1:] for row in table[1:]] == [expected_cells(v) for v in turns.values()]
    section = text.split("## Multi-turn dialogues: score per turn")[1].split("\n## ")[0]
    notes = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(notes) == 2 and notes[1] == "- multiturn-model-a: 6 dialogues, 13 judged turns"


def test_single_turn_report_and_terminal_have_no_turn_section() -> None:
    run = load_run(SINGLE_TURN)
    assert "dialogues" not in (run.summary.model_extra or {})
    for lang, heading in (("zh", "多轮对话：各轮得分"), ("en", "Multi-turn dialogues: score per turn")):
        text, _ = build_report([run], lang=lang, charts=False, audit=False)
        assert section_table(text, heading) is None and heading not in text
    console = Console(record=True, width=120, file=io.StringIO())
    print_summary(run.summary, load_rubric("alignbench"), console)
    out = console.export_text()
    assert "总分 overall" in out and "轮次 turn" not in out and "per turn" not in out
    assert "answers' reasoning" not in out


# -- the terminal view -------------------------------------------------------------------------------

def test_terminal_table_holds_the_summary_numbers(scored: dict) -> None:
    for model in (MODEL_A, MODEL_B):
        printed = scored["printed"][model]
        summary = summary_of(scored["runs"][model])
        rows = terminal_rows(printed)
        assert rows[0] == ["轮次 turn", "score", "95% CI", "n", "failed"]
        assert rows[1:] == [[f"第{k}轮 turn {k}", *expected_cells(v)] for k, v in summary["dialogues"]["turns"].items()]
        d = summary["dialogues"]
        assert f"{d['n']} dialogues, {d['judged_turns']} judged turns" in printed
        r = summary["answer_reasoning"]
        assert (f"answers' reasoning: {r['removed']} hidden from the judge (leading think block removed), "
                f"{r['leaked']} leaked into the final" in " ".join(printed.split()))
    # the model name is printed literally: no rich markup taken from it
    assert f"per turn · {MODEL_B}" in scored["printed"][MODEL_B]
    assert terminal_rows(scored["printed"][MODEL_B])[2][4] == "1"


def test_show_prints_the_same_table(scored: dict) -> None:
    run_dir = scored["runs"][MODEL_B]
    proc = run_cli("show", str(run_dir), "--no-audit")
    assert proc.returncode == 0, proc.stderr
    assert terminal_rows(proc.stdout) == terminal_rows(scored["printed"][MODEL_B])
