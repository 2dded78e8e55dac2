"""Run folders for the viewer's tests (no tests here): real summary.json files from
``aggregate.summarize`` with the real alignbench rubric, judgments.jsonl of ``Judgment`` records, an
ensemble run with its per-judge runs (``ensemble.combine``/``disagreement``), and a ``compare`` folder
of ``PairJudgment`` records summarised by ``pairwise.compare.summarize_compare``.

Known facts the tests check:

* model-a: overall score 3 + id % 6; Q1's answer and judge text are hostile HTML; Q5 failed to parse;
  Q7 needed a parse retry; Q9 has plan/execution sections; answers in an answer file beside the run.
* model-b (the baseline): 4 + (7·id) % 5; its answer file is gone ("answer file not at hand").
* model-c: an ensemble of two judges that differ by 4 points on Q3 and where one failed Q4.
* cmp/: model-a vs model-b pairwise; Q2 flips with the order, Q6 depends on it (win/tie).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from alignbench.aggregate import summarize
from alignbench.data import file_sha256, load_questions
from alignbench.ensemble import combine, disagreement
from alignbench.pairwise.compare import OrderVerdict, PairJudgment, summarize_compare
from alignbench.rubrics import load_rubric
from alignbench.types import Judgment, Question, Status, Usage

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "data" / "zh" / "questions.jsonl"
RUB = load_rubric("alignbench")
QS: list[Question] = load_questions(QUESTIONS, RUB)
JUDGE = {"name": "openai:gpt-4o", "backend": "openai", "model": "gpt-4o", "temperature": 0.0}

HOSTILE_ANSWER = ('<script>window.__pwned = "answer-script"</script>'
                  '<img src="x" onerror="window.__pwned = \'answer-img\'"> **粗体** <b>加粗</b> # 标题')
HOSTILE_JUDGE = ('分析：回答里有 <script>window.__pwned = "judge-script"</script> 和 '
                 '<img src="y" onerror="window.__pwned = \'judge-img\'">，这不安全。\n{\'综合得分\': 3}')
PLAN = "计划：先列出应有的三点习俗，再逐条核对。"
EXECUTION = "执行：第一点正确，第二点缺失。"


def score_a(q: Question) -> float:
    return float(3 + q.id % 6)


def score_b(q: Question) -> float:
    return float(4 + (7 * q.id) % 5)


def judgment(q: Question, model: str, score: float | None, judge: str = "openai:gpt-4o",
             raw: str | None = None, **extra: object) -> Judgment:
    atype = RUB.answer_type(q.category, q.subcategory)
    ok = score is not None
    return Judgment(
        question_id=q.id, model=model, category=q.category, subcategory=q.subcategory, answer_type=atype,
        status=Status.OK if ok else Status.PARSE_FAILED,
        scores={d: score for d in RUB.answer_types[atype].dimensions} if ok else {},
        overall=score, judge=judge, rubric=RUB.id, prompt_hash=f"{q.id:04d}{model[-1]}".ljust(16, "0"),
        raw=raw if raw is not None else f"第{q.id}题：{model} 的回答基本正确。\n{{'综合得分': {score}}}",
        detail="read from dict" if ok else "no overall score found",
        usage=Usage(prompt_tokens=100, completion_tokens=50),
        answer_chars=len(answer_text(q, model)), **extra)


def answer_text(q: Question, model: str) -> str:
    if model == "model-a" and q.id == 1:
        return HOSTILE_ANSWER
    return f"{model} 对第{q.id}题的回答：{q.question[:12]}……这是我的完整解答。"


def write_run(folder: Path, model: str, judgments: list[Judgment], judge: dict | None = None,
              answers_path: str | None = None, ensemble: dict | None = None) -> Path:
    """A finished run folder as `score` writes it (judgments sorted by question, summary last)."""
    folder.mkdir(parents=True, exist_ok=True)
    judgments = sorted(judgments, key=lambda j: j.question_id)
    lines = "".join(j.model_dump_json() + "\n" for j in judgments)
    (folder / "judgments.jsonl").write_text(lines, encoding="utf-8")
    if answers_path is None:
        answers = folder.parent / f"{model}.answers.jsonl"
        rows = [{"question_id": q.id, "model_id": model, "answer": answer_text(q, model)} for q in QS]
        answers.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        answers_path = str(answers)
    summary = {"model": model, **summarize(judgments, RUB, seed=0, n_boot=200),
               "usage": {"prompt_tokens": 100 * len(judgments), "completion_tokens": 50 * len(judgments)},
               "run": {"model": model, "judge": judge or JUDGE, "rubric": RUB.id,
                       "questions": {"path": str(QUESTIONS), "sha256": file_sha256(QUESTIONS)},
                       "answers": answers_path, "missing_answers": [], "n_missing_answers": 0,
                       "alignbench_version": "0.1.0", "created": "2026-01-02T03:04:05+00:00"},
               "finished": True}
    if ensemble is not None:
        summary["ensemble"] = ensemble
    (folder / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder


def build_model_a(root: Path) -> Path:
    js = []
    for q in QS:
        if q.id == 1:
            js.append(judgment(q, "model-a", 3.0, raw=HOSTILE_JUDGE))
        elif q.id == 5:
            js.append(judgment(q, "model-a", None, raw="这个回答我无法评分。"))
        elif q.id == 7:
            js.append(judgment(q, "model-a", score_a(q), attempts=2))
        elif q.id == 9:
            js.append(judgment(q, "model-a", score_a(q), sections={"plan": PLAN, "execution": EXECUTION}))
        else:
            js.append(judgment(q, "model-a", score_a(q)))
    return write_run(root / "model-a", "model-a", js)


def build_model_b(root: Path) -> Path:
    js = [judgment(q, "model-b", score_b(q)) for q in QS]
    return write_run(root / "model-b", "model-b", js, answers_path="gone/model-b.answers.jsonl")


def build_ensemble(root: Path) -> Path:
    folder = root / "model-c"
    per_judge: dict[str, list[Judgment]] = {}
    for name, shift in (("openai:j1", 0.0), ("openai:j2", 0.0)):
        js = []
        for q in QS:
            s = 5.0 + q.id % 3
            if name == "openai:j2" and q.id == 3:
                s -= 4
            failed = name == "openai:j2" and q.id == 4
            js.append(judgment(q, "model-c", None if failed else s + shift, judge=name))
        per_judge[name] = js
        write_run(folder / "judges" / name.replace(":", "-"), "model-c", js,
                  judge={"name": name, "backend": "openai", "model": name.split(":")[1]})
    combined = combine(per_judge)
    ens = {**disagreement(per_judge, RUB.category_names()),
           "runs": {n: str(folder / "judges" / n.replace(":", "-")) for n in per_judge},
           "scores": {n: {"overall": None, "categories": {}} for n in per_judge}}
    return write_run(folder, "model-c", combined, judge={"name": "openai:j1+openai:j2", "model": "j1+j2"},
                     ensemble=ens)


def verdict(order: str, winner: str) -> OrderVerdict:
    model_pos = "1" if order == "model_first" else "2"
    other = "2" if model_pos == "1" else "1"
    position = "tie" if winner == "tie" else (model_pos if winner == "model" else other)
    return OrderVerdict(order=order, status=Status.OK, position=position, winner=winner,  # type: ignore[arg-type]
                        raw=f"【{order}】 助手{position} 更好。<i>不是斜体</i>", prompt_hash="p" * 16)


def build_compare(root: Path) -> Path:
    folder = root / "cmp"
    folder.mkdir(parents=True, exist_ok=True)
    score = {"model": 1.0, "tie": 0.5, "baseline": 0.0}
    pairs = []
    for q in QS:
        a, b = ("model", "baseline") if q.id == 2 else ("model", "tie") if q.id == 6 else \
            (("model", "model") if q.id % 2 else ("baseline", "baseline"))
        pref = (score[a] + score[b]) / 2
        pairs.append(PairJudgment(
            question_id=q.id, model="model-a", baseline="model-b", category=q.category,
            subcategory=q.subcategory, answer_type=RUB.answer_type(q.category, q.subcategory),
            status=Status.OK, preference=pref, consistent=a == b, flip={a, b} == {"model", "baseline"},
            detail=f"model-first: {a}; baseline-first: {b}",
            orders=(verdict("model_first", a), verdict("baseline_first", b)), judge="openai:gpt-4o",
            rubric=RUB.id,
            model_chars=len(answer_text(q, "model-a")), baseline_chars=len(answer_text(q, "model-b")),
            model_words=10, baseline_words=10))
    (folder / "pairwise_judgments.jsonl").write_text("".join(p.model_dump_json() + "\n" for p in pairs),
                                                     encoding="utf-8")
    summary = summarize_compare(pairs, RUB, "chars", n_boot=0)
    (folder / "pairwise_summary.json").write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    return folder


def build_all(root: Path) -> dict[str, Path]:
    """Every folder above under ``root``."""
    return {"a": build_model_a(root), "b": build_model_b(root), "c": build_ensemble(root),
            "cmp": build_compare(root)}


def reviews_of(run_dir: Path) -> list[dict]:
    path = run_dir / "reviews.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


Builder = Callable[[Path], Path]
