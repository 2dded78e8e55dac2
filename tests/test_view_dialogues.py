"""`alignbench view` on multi-turn dialogues: run folders written by the real `alignbench score` CLI against
the loopback stub judge, read by the real server (and one page in a real headless Chromium).

Three runs of the data/zh multi-turn sample (questions 101–106):

* model A (``alignbench-multiturn``, every turn judged): the sample answers, with hostile HTML in turn 1 of
  dialogue 101; the judge's verdict on turn 2 of that dialogue is hostile HTML too, after a think block.
* model B (same rubric): test_report_dialogues' model B: no three-turn dialogue 105, a leaked think block in
  101 turn 1, and turn 2 of 104 the judge cannot score (so dialogue 104 fails); and turn 1 of 106, which
  the judge's server refuses as too long (no judge text at all).
* model C (a copy of the rubric with ``turns: last``): only each dialogue's last turn is judged, answers
  clipped to 80 characters in the prompt, and its answer file edited after the run.

Every number and text the pages must show is read back from the run folders (judgments.jsonl,
summary.json, the answer files), never restated here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, read_jsonl, run_cli, write_jsonl
from stub_server import Refuse, StubServer
from test_report_dialogues import (
    MODEL_A,
    MODEL_B,
    MT_ANSWERS,
    MT_QUESTIONS,
    UNSCORABLE,
    expected_cells,
    model_b_answers,
)
from test_report_dialogues import judge as report_judge

from alignbench.data import load_questions
from alignbench.rubrics import load_rubric
from alignbench.types import Judgment
from alignbench.view.data import Query, load_view
from alignbench.view.export import export_site
from alignbench.view.render import Pages
from alignbench.view.server import Background, ServeConfig

MODEL_C = "multiturn-model-c"
HOSTILE_REPLY = ('<script>window.__pwned = "reply-script"</script>'
                 '<img src="x" onerror="window.__pwned = \'reply-img\'"> **粗体** 回答标记ANSWER-XSS')
HOSTILE_VERDICT = ('<think>评审思考：核对 176 − 172 = 4</think>分析：第二轮 <script>window.__pwned = "judge-script"'
                   '</script><img src="y" onerror="window.__pwned = \'judge-img\'"> 计算正确，JUDGE-TURN2-评语。\n'
                   "{'事实正确性': 9, '满足用户需求': 8, '逻辑连贯性': 9, '完备性': 7, '上下文一致性': 8, '综合得分': 8}")
TURN1_VERDICT = ("分析：第一轮思考过程泄漏到回答里，TURN1-ONLY-评语。\n"
                 "{'事实正确性': 4, '满足用户需求': 5, '逻辑连贯性': 6, '完备性': 4, '上下文一致性': 6, '综合得分': 5}")
TOO_LONG = "【这一轮超出评审上下文】"
QUESTIONS = {q.id: q for q in load_questions(MT_QUESTIONS, load_rubric("alignbench-multiturn"))}


def judge(body: dict) -> str:
    """The stub judge of test_report_dialogues, plus verdicts told apart by the turn under review: A's
    turn 2 of dialogue 101 (whose turn 1 carries the hostile reply), B's turn 1 of 101, and B's turn 1 of
    106, refused as a server refuses a prompt over its context length."""
    prompt = body["messages"][-1]["content"]
    if TOO_LONG in prompt and "待评价的是第 1 轮" in prompt:
        raise Refuse(400, "This model's maximum context length is 4096 tokens")
    if "ANSWER-XSS" in prompt and "待评价的是第 2 轮" in prompt:
        return HOSTILE_VERDICT
    if "再核对一遍" in prompt and "待评价的是第 1 轮" in prompt:
        return TURN1_VERDICT
    return report_judge(body)


@pytest.fixture(scope="module")
def mt(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The three run folders (two `score` commands at once, one stub judge) and their answer files."""
    tmp = tmp_path_factory.mktemp("view-dialogues")
    rows_a = read_jsonl(MT_ANSWERS)
    for r in rows_a:
        if r["question_id"] == 101:
            r["turns"] = [r["turns"][0] + HOSTILE_REPLY, r["turns"][1]]
    answers_a = write_jsonl(tmp / "model-a.jsonl", rows_a)
    rows_b = read_jsonl(model_b_answers(tmp / "model-b.jsonl"))
    for r in rows_b:
        if r["question_id"] == 106:
            r["turns"] = [r["turns"][0] + TOO_LONG, r["turns"][1]]
    answers_b = write_jsonl(tmp / "model-b.jsonl", rows_b)
    answers_c = write_jsonl(tmp / "model-c.jsonl", [{**r, "model_id": MODEL_C} for r in read_jsonl(MT_ANSWERS)])
    last = tmp / "rubric-last"
    shutil.copytree(ROOT / "rubrics" / "alignbench-multiturn", last)
    spec = (last / "rubric.yaml").read_text(encoding="utf-8")
    (last / "rubric.yaml").write_text(spec.replace("turns: each", "turns: last"), encoding="utf-8")
    with StubServer(responder=judge) as stub, ThreadPoolExecutor(2) as pool:
        common = ("-q", str(MT_QUESTIONS), "--judge", "openai:stub-judge", "--judge-base-url", stub.url,
                  "--max-failed", "2")
        each = pool.submit(run_cli, "score", *common, "-a", str(answers_a), "-a", str(answers_b),
                           "--rubric", "alignbench-multiturn", "--out", str(tmp / "runs"),
                           env={"ALIGNBENCH_CACHE": str(tmp / "cache-each.sqlite")})
        only_last = pool.submit(run_cli, "score", *common, "-a", str(answers_c), "--rubric", str(last),
                                "--max-answer-chars", "80", "--out", str(tmp / "last"),
                                env={"ALIGNBENCH_CACHE": str(tmp / "cache-last.sqlite")})
        for proc in (each.result(), only_last.result()):
            assert proc.returncode == 0, proc.stderr
    runs = {MODEL_A: tmp / "runs" / "multiturn-model-a", MODEL_C: tmp / "last"}
    runs[MODEL_B] = next(p for p in (tmp / "runs").iterdir() if p.is_dir() and p != runs[MODEL_A])
    assert all((d / "summary.json").is_file() for d in runs.values())
    # the answer file of C changes after its run: the page must say the reply differs from what was judged. C is
    # made a folder from before runs kept the texts they judged (a kept copy never changes: tests/test_travel.py)
    shutil.rmtree(runs[MODEL_C] / "inputs")
    summary_c = json.loads((runs[MODEL_C] / "summary.json").read_text(encoding="utf-8"))
    summary_c["run"].pop("inputs")
    (runs[MODEL_C] / "summary.json").write_text(json.dumps(summary_c, ensure_ascii=False), encoding="utf-8")
    rows_c = read_jsonl(answers_c)
    for r in rows_c:
        if r["question_id"] == 102:
            r["turns"] = [r["turns"][0], r["turns"][1] + "（事后补充的一句）"]
    write_jsonl(answers_c, rows_c)
    return {"tmp": tmp, "runs": runs, "answers": {MODEL_A: answers_a, MODEL_B: answers_b, MODEL_C: answers_c}}


@pytest.fixture(scope="module")
def data(mt: dict):
    """The viewer over A, B, C and a single-turn example run (no dialogues: no turns anywhere)."""
    single = ROOT / "reports" / "examples" / "runs" / "model-a"
    return load_view([mt["runs"][MODEL_A], mt["runs"][MODEL_B], mt["runs"][MODEL_C], single])


@pytest.fixture(scope="module")
def site(data) -> Iterator[str]:
    with Background(data, ServeConfig(port=0, reviewer="王五")) as url:
        yield url


def judgments(run_dir: Path) -> dict[int, Judgment]:
    return {j.question_id: j for j in (Judgment.model_validate(r) for r in read_jsonl(run_dir / "judgments.jsonl"))}


def replies(path: Path, model: str) -> dict[int, list[str]]:
    return {r["question_id"]: r["turns"] for r in read_jsonl(path) if r.get("model_id") == model}


def key_of(data, model: str) -> str:
    return next(rv.key for rv in data.runs if rv.model == model)


class Page(HTMLParser):
    """A page as the browser's parser reads it: the text inside every element with an id (entities
    decoded, so an escaped ``<script>`` comes out as the characters a reader sees), the cell texts of
    the table rows under each id (nearest id), and every start tag (a live ``<script>`` or ``<img>``
    from a run's text would show up here)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.texts: dict[str, list[str]] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)
        self.close()

    def _owner(self) -> str | None:
        return next((a["id"] for _, a in reversed(self.stack) if a.get("id")), None)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "tr" and self._owner():
            self.rows.setdefault(self._owner(), []).append([])  # type: ignore[arg-type]
        if tag in ("td", "th") and self._owner() in self.rows:
            self.rows[self._owner()][-1].append("")  # type: ignore[index]
        if tag not in self.VOID:
            self.stack.append((tag, a))
            if a.get("id"):
                self.texts.setdefault(a["id"], [])

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        for _, a in self.stack:
            if a.get("id"):
                self.texts[a["id"]].append(data)
        if any(t in ("td", "th") for t, _ in self.stack) and self._owner() in self.rows:
            row = self.rows[self._owner()][-1]  # type: ignore[index]
            if row:
                row[-1] += data

    def text(self, element_id: str) -> str:
        return "".join(self.texts[element_id])

    def table(self, element_id: str) -> list[list[str]]:
        return [[" ".join(c.split()) for c in row] for row in self.rows.get(element_id, [])]


def check_question_page(page: Page, data, mt: dict, qid: int) -> None:
    """Every message of dialogue ``qid`` in order, every run's reply to every turn, and each judged
    turn's overall, status, dimension scores, detail and full analysis, from the run folders."""
    q = QUESTIONS[qid]
    dialogue = " ".join(page.text("dialogue").split())
    at = 0
    for turn in q.turns:  # user turns and fixed assistant turns, in order
        at = dialogue.index(" ".join(turn.content.split()), at)
    for k in range(1, q.model_turns + 1):
        reference = q.reference_for(k)
        if reference:
            assert " ".join(reference.split()) in " ".join(page.text(f"turn-{k}").split())
    score_rows = {row[0]: row[1:] for row in page.table("score-table")}
    labels = [h for h in page.table("score-table")[0][1:]]
    for model, run_dir in mt["runs"].items():
        key = key_of(data, model)
        mine = replies(mt["answers"][model], model).get(qid)
        j = judgments(run_dir).get(qid)
        col = labels.index(next(rv.label for rv in data.runs if rv.model == model))
        if j is None:
            assert score_rows["综合得分 overall (dialogue: mean of judged turns)"][col] == "not judged"
            for k in range(1, q.model_turns + 1):
                cell = page.text(f"run-{key}-turn-{k}")
                assert f"this run did not judge question {qid}" in cell and "answer file" not in cell
            continue
        overall = score_rows["综合得分 overall (dialogue: mean of judged turns)"][col]
        assert overall == (f"{j.overall:g}" if j.status.value == "ok" else j.status.value)
        by_turn = {t.turn: t for t in j.turns}
        for k in range(1, q.model_turns + 1):
            cell = page.text(f"run-{key}-turn-{k}")
            assert mine[k - 1] in cell  # the reply as written, <think> blocks and HTML included
            t = by_turn.get(k)
            if t is None:
                assert f"turn {k} not judged" in cell and score_rows[f"第{k}轮 turn {k}"][col] == "—"
                continue
            assert score_rows[f"第{k}轮 turn {k}"][col] == (f"{t.overall:g}" if t.status.value == "ok"
                                                            else t.status.value)
            assert page.table(f"run-{key}-turn-{k}") == [[d, f"{v:g}"] for d, v in t.scores.items()]
            assert t.status.value in cell and (t.raw or "no text: the judge was not reached") in cell
            assert (t.detail or "") in cell
            assert (t.reasoning or "") in cell


# ================================================================================================
# the question page, over HTTP
# ================================================================================================


def test_question_pages_hold_every_turn(site: str, data, mt: dict) -> None:
    with httpx.Client(base_url=site) as c:
        for qid in sorted(QUESTIONS):
            check_question_page(Page(c.get(f"/q/{qid}").text), data, mt, qid)
        html = c.get("/q/101").text
    page = Page(html)
    a, b = key_of(data, MODEL_A), key_of(data, MODEL_B)
    # the hostile reply and verdict are text: escaped in the HTML, no tag of theirs reaches the parser
    assert HOSTILE_REPLY in page.text(f"run-{a}-turn-1") and "&lt;script&gt;window.__pwned" in html
    turn2 = judgments(mt["runs"][MODEL_A])[101].turns[1]
    assert "JUDGE-TURN2-评语" in turn2.raw and turn2.reasoning == "评审思考：核对 176 − 172 = 4"
    assert turn2.raw in page.text(f"run-{a}-turn-2") and turn2.reasoning in page.text(f"run-{a}-turn-2")
    assert "<script>window" not in html and "<img src=" not in html
    assert [attrs.get("src") for tag, attrs in page.tags if tag == "script"] == ["/static/view.js"]  # ours only
    assert [tag for tag, _ in page.tags if tag == "img"] == []
    # B's turn 1 leaked its thinking into the reply; A's 102 turn 2 had its think block hidden
    assert "reasoning leaked" in page.text(f"run-{b}-turn-1") and "TURN1-ONLY-评语" in page.text(f"run-{b}-turn-1")
    with httpx.Client(base_url=site) as c:
        p102 = Page(c.get("/q/102").text)
        p104 = Page(c.get("/q/104").text)
        p103 = Page(c.get("/q/103").text)
    assert "thinking hidden from judge" in p102.text(f"run-{a}-turn-2")
    # the fixed assistant turn of 103 is shown as context, not as any run's reply
    fixed = QUESTIONS[103].turns[1].content
    assert fixed.split("\n")[0] in p103.text("dialogue") and "Fixed assistant turn" in p103.text("dialogue")
    assert "参考答案 Reference (turn 1)" not in p103.text("dialogue")  # 103 has no reference for turn 1
    # B's unscorable turn 2 of 104 fails the dialogue: the turn and the dialogue show the failure
    j104 = judgments(mt["runs"][MODEL_B])[104]
    failed = j104.turns[1].status.value
    assert failed != "ok" and j104.status.value == failed and j104.turns[0].status.value == "ok"
    assert UNSCORABLE in p104.text(f"run-{b}-turn-2") and failed in p104.text(f"run-{b}-turn-2")
    assert failed in p104.text(f"run-{b}") and j104.detail in p104.text(f"run-{b}")
    # B's turn 1 of 106 never reached a verdict: the turn says there is no judge text, and why
    too_long = judgments(mt["runs"][MODEL_B])[106].turns[0]
    assert (too_long.status.value, too_long.raw) == ("too_long", None) and "maximum context length" in too_long.detail
    with httpx.Client(base_url=site) as c:
        cell = Page(c.get("/q/106").text).text(f"run-{b}-turn-1")
    assert "too_long" in cell and "no text: the judge was not reached" in cell and too_long.detail in cell


def test_turns_last_and_a_changed_answer_file(site: str, data, mt: dict) -> None:
    """Run C judged only each dialogue's last turn, with replies clipped in the prompt; its answer file
    changed after the run."""
    c_key = key_of(data, MODEL_C)
    jc = judgments(mt["runs"][MODEL_C])
    assert [t.turn for t in jc[102].turns] == [2] and jc[102].overall == jc[102].turns[0].overall
    with httpx.Client(base_url=site) as c:
        page = Page(c.get("/q/102").text)
    assert "turn 1 not judged: the run's rubric judges only the dialogue's last turn" in page.text(f"run-{c_key}-turn-1")
    cell = page.text(f"run-{c_key}-turn-2")
    judged_chars = jc[102].turns[0].answer_chars
    edited = replies(mt["answers"][MODEL_C], MODEL_C)[102][1]
    assert f"the answer file's reply ({len(edited)} characters) differs in length from the reply that was " \
           f"judged ({judged_chars})" in cell
    assert jc[102].turns[0].truncated_answer and "cut to the run's max_answer_chars" in cell
    assert "mean of 1 judged turn." in page.text(f"run-{c_key}")


def test_review_of_a_dialogue_is_of_its_overall(site: str, data, mt: dict) -> None:
    a = key_of(data, MODEL_A)
    with httpx.Client(base_url=site) as c:
        page = Page(c.get("/q/103").text)
        assert "reviews its overall score (the mean of its judged turns), not one turn's" in page.text(f"run-{a}")
        j = judgments(mt["runs"][MODEL_A])[103]
        assert f"confirm judge's {j.overall:g}" in page.text(f"run-{a}")
        r = c.post("/api/review", json={"run": a, "question_id": 103, "verdict": "confirm", "reviewer": "王五"})
        assert r.status_code == 200, r.text
    line = json.loads((mt["runs"][MODEL_A] / "reviews.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    mean = sum(t.overall for t in j.turns) / len(j.turns)  # type: ignore[misc]
    assert (line["question_id"], line["score"], line["judge_score"]) == (103, j.overall, j.overall)
    assert j.overall == pytest.approx(mean, abs=1e-4) and line["prompt_hash"] == j.prompt_hash


# ================================================================================================
# leaderboard, run page, lists, search, API
# ================================================================================================


def test_leaderboard_and_run_page_show_per_turn_scores(site: str, data, mt: dict) -> None:
    with httpx.Client(base_url=site) as c:
        board = Page(c.get("/").text)
        run_b = Page(c.get(f"/run/{key_of(data, MODEL_B)}").text)
        single = Page(c.get(f"/run/{key_of(data, 'model-a')}").text)
    summaries = {m: json.loads((d / "summary.json").read_text(encoding="utf-8")) for m, d in mt["runs"].items()}
    table = board.table("turn-table")
    shown = [label for label in table[0][1:]]
    models = {rv.label: rv.model for rv in data.runs}
    assert sorted(models[x] for x in shown) == sorted(mt["runs"])  # the single-turn run has no column group
    assert table[1] == ["score", "95% CI", "n", "failed"] * len(shown)
    ks = sorted({k for s in summaries.values() for k in s["dialogues"]["turns"]}, key=int)
    assert [row[0] for row in table[2:]] == [f"第{k}轮 turn {k}" for k in ks] == ["第1轮 turn 1", "第2轮 turn 2",
                                                                              "第3轮 turn 3"]
    for row, k in zip(table[2:], ks, strict=True):
        want = [cell for label in shown for cell in expected_cells(summaries[models[label]]["dialogues"]["turns"].get(k))]
        assert row[1:] == want
    for model, s in summaries.items():
        label = next(rv.label for rv in data.runs if rv.model == model)
        d = s["dialogues"]
        assert f"{label}: {d['n']} dialogues, {d['judged_turns']} judged turns" in board.text("turn-scores")
    b_turns = summaries[MODEL_B]["dialogues"]["turns"]
    assert run_b.table("turn-table")[2:] == [[f"第{k}轮 turn {k}", *expected_cells(v)] for k, v in b_turns.items()]
    assert "turn-table" not in single.texts  # a single-turn run's page has no per-turn table


def test_lists_mark_dialogues_and_show_their_overall(site: str, data, mt: dict) -> None:
    with httpx.Client(base_url=site) as c:
        items = c.get("/api/judgments", params={"limit": 1000}).json()["items"]
        page = c.get("/list", params={"run": key_of(data, MODEL_A)}).text
    by = {(i["model"], i["question_id"]): i for i in items}
    for model, run_dir in mt["runs"].items():
        for qid, j in judgments(run_dir).items():
            row = by[(model, qid)]
            assert row["turns"] == QUESTIONS[qid].model_turns
            assert row["overall"] == (j.overall if j.status.value == "ok" else None)
    assert {i["turns"] for i in items if i["model"] == "model-a"} == {0}  # single answers: no indicator
    rows = Page(page).table("items")[1:]
    assert [r[0] for r in rows] == [str(q) for q in sorted(QUESTIONS)]
    ja = judgments(mt["runs"][MODEL_A])
    for r in rows:
        qid = int(r[0])
        assert r[3].endswith(f"{QUESTIONS[qid].model_turns} turns") and r[5] == f"{ja[qid].overall:g}"
    assert "3 turns" in rows[4][3]
    single = httpx.get(site + "/list", params={"run": key_of(data, "model-a")}).text
    assert len(Page(single).table("items")) == 33 and 'class="badge turns"' not in single


def test_search_finds_text_in_any_turn(data) -> None:
    a, b = key_of(data, MODEL_A), key_of(data, MODEL_B)

    def found(q: str, scope: str = "all") -> set[tuple[int, str]]:
        return {(it.qid, it.run.key) for it in data.select(Query(q=q, scope=scope))}

    everyone_101 = {(101, it.run.key) for it in data.by_q[101]}
    assert found("如果改成先减 20 元", "question") == everyone_101  # the second user turn
    assert found("先打折再减更划算", "question") == everyone_101  # the reference of turn 2
    assert found("ANSWER-XSS", "answer") == {(101, a)}  # turn 1's reply (not the last)
    assert found("TURN1-ONLY", "judge") == {(101, b)}  # the judge's text on turn 1 (not the last)
    assert found("评审思考", "judge") == {(101, a)}  # the judge's reasoning on a turn
    assert found("JUDGE-TURN2-评语 ANSWER-XSS") == {(101, a)}  # terms in different turns and texts
    assert found("TURN1-ONLY", "answer") == set()
    fixed = QUESTIONS[103].turns[1].content.split("\n")[1][:12]  # inside the fixed assistant turn
    assert found(fixed, "question") == {(103, it.run.key) for it in data.by_q[103]}


def test_api_question_has_every_turn(site: str, data, mt: dict) -> None:
    with httpx.Client(base_url=site) as c:
        body = c.get("/api/question/101").json()
    assert [t["content"] for t in body["question"]["turns"]] == [t.content for t in QUESTIONS[101].turns]
    for run in body["runs"]:
        model = run["judgment"]["model"]
        assert run["answer_turns"] == replies(mt["answers"][model], model)[101]
        assert run["judgment"]["turns"] == [t.model_dump(mode="json") for t in judgments(mt["runs"][model])[101].turns]


# ================================================================================================
# the static copy; a run whose question file is gone
# ================================================================================================


def test_static_export_carries_the_dialogues(data, mt: dict, tmp_path: Path) -> None:
    out = tmp_path / "site"
    export_site(data, out)
    for qid in sorted(QUESTIONS):
        html = (out / f"q-{qid}.html").read_text(encoding="utf-8")
        check_question_page(Page(html), data, mt, qid)
        assert '<form class="review"' not in html
    html = (out / "q-101.html").read_text(encoding="utf-8")
    assert "<script>window" not in html and "&lt;script&gt;window.__pwned" in html
    assert Page((out / "index.html").read_text(encoding="utf-8")).table("turn-table")[2][0] == "第1轮 turn 1"
    listed = Page((out / "list.html").read_text(encoding="utf-8")).table("items")[1:]
    assert sum(r[3].endswith("2 turns") for r in listed) == 3 * 5  # A, B, C: the two-turn dialogues
    assert sum(r[3].endswith("3 turns") for r in listed) == 2


def test_question_file_gone(mt: dict, tmp_path: Path) -> None:
    """Without the question file the user turns are unknown: the page says so and still shows every
    model turn with each reply and verdict."""
    run = tmp_path / "a"
    shutil.copytree(mt["runs"][MODEL_A], run)
    shutil.rmtree(run / "inputs")  # a folder from before runs kept their texts (tests/test_travel.py: with them)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    summary["run"].pop("inputs")
    summary["run"]["questions"].pop("abs")
    summary["run"]["questions"]["path"] = str(tmp_path / "moved.jsonl")
    (run / "summary.json").write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    data = load_view([run])
    assert [it.n_turns for it in data.by_q[105]] == [3]
    html = Pages(data).question_page(102, Query())
    assert html is not None
    page = Page(html)
    assert "question text not at hand" in page.text("dialogue")
    assert QUESTIONS[102].turns[1].content not in html
    j = judgments(run)[102]
    for k, reply in enumerate(replies(mt["answers"][MODEL_A], MODEL_A)[102], start=1):
        cell = page.text(f"run-0-turn-{k}")
        assert reply in cell and j.turns[k - 1].raw in cell
    # the answer file gone as well: each turn says so and keeps the judge's verdict
    summary["run"]["answers"] = str(tmp_path / "moved-answers.jsonl")
    (run / "summary.json").write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    page = Page(Pages(load_view([run])).question_page(102, Query()) or "")
    for k, t in enumerate(j.turns, start=1):
        cell = page.text(f"run-0-turn-{k}")
        assert "answer file not at hand" in cell and "moved-answers.jsonl not found" in cell and t.raw in cell


# ================================================================================================
# a real browser
# ================================================================================================

CHROMIUM = os.environ.get("ALIGNBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium: apt-get install chromium (or set ALIGNBENCH_CHROMIUM)")
def test_browser_opens_turn_two_analysis_and_runs_nothing(site: str, data, mt: dict) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    a, b = key_of(data, MODEL_A), key_of(data, MODEL_B)
    turn2 = judgments(mt["runs"][MODEL_A])[101].turns[1]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(8000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("dialog", lambda d: (errors.append(d.message), d.dismiss()))
            page.goto(site + f"/q/101?at={a}")
            cell = page.locator(f"#run-{a}-turn-2")
            assert cell.locator(".analysis").is_hidden()  # collapsed until asked for
            cell.locator("details.turn-analysis summary").click()
            assert cell.locator(".analysis").inner_text() == turn2.raw
            assert cell.locator(".judge-reasoning").inner_text() == turn2.reasoning
            assert page.locator(f"#run-{a}-turn-1 .reply").inner_text() == \
                replies(mt["answers"][MODEL_A], MODEL_A)[101][0]
            assert page.evaluate("window.__pwned") is None
            assert page.locator("main script, main img").count() == 0
            # hiding a run's column hides its cell in every turn too
            page.locator(f"#colpick input[data-col='{b}']").uncheck()
            assert page.locator(f"#run-{b}-turn-1").is_hidden() and page.locator(f"#run-{b}-turn-2").is_hidden()
            assert page.locator(f"#run-{a}-turn-2").is_visible()
            assert errors == []
        finally:
            browser.close()
