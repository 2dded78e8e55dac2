"""The judge canary (alignbench.canary, score --canary, `alignbench canary`): a judge that changes its
scoring behind the same name is reported with the right size and exit code 4; an unchanged but noisy
judge raises no alarm over 20 seeded runs. The paired test is exact (stats.paired)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ANSWERS_A, QUESTIONS, read_jsonl, run_cli, write_jsonl
from scipy import stats
from stub_server import StubServer, _last_user_text

import alignbench
from alignbench.canary import ALPHA, DRIFT_EXIT, ITEMS_FILE, history_path
from alignbench.stats.paired import sign_flip_p


class NoisyJudge:
    """A judge whose score is the answer's worth (a hash of the question and answer) plus seeded noise in
    {−1, 0, +1} drawn from (seed, epoch, prompt), so each run (epoch) is a new draw, yet reproducible;
    ``shift`` is what a re-trained judge behind the same name adds."""

    def __init__(self, seed: int) -> None:
        self.seed, self.epoch, self.shift = seed, 0, 0

    def __call__(self, body: dict) -> str:
        prompt = _last_user_text(body)
        content = prompt.split("用户的提问：", 1)[-1]
        worth = 3 + hashlib.sha256(content.encode()).digest()[0] % 5
        noise = hashlib.sha256(f"{self.seed}:{self.epoch}:{prompt}".encode()).digest()[0] % 3 - 1
        return f"分析从略。\n{{'综合得分': {worth + noise + self.shift}}}"


def test_the_sign_flip_test_is_exact() -> None:
    d = [1.0, 2.0, -1.0, 0.0, 3.0, 1.0]
    nz = np.array([x for x in d if x])
    signs = np.array(np.meshgrid(*[[1, -1]] * len(nz))).reshape(len(nz), -1).T
    assert sign_flip_p(d) == pytest.approx(np.mean(np.abs(signs @ nz) >= abs(nz.sum())))
    two = stats.permutation_test((nz,), np.sum, permutation_type="samples", n_resamples=np.inf).pvalue
    assert sign_flip_p(d) == pytest.approx(two)
    assert sign_flip_p([0, 0]) == 1.0 and sign_flip_p([2] * 16) == pytest.approx(2 / 2 ** 16)


@pytest.fixture
def two_answers(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "a.jsonl", read_jsonl(ANSWERS_A)[:2])


def test_a_judge_changed_behind_its_name_is_caught(tmp_path: Path, two_answers: Path) -> None:
    judge = NoisyJudge(seed=1)
    items = len(ITEMS_FILE.read_text(encoding="utf-8").splitlines())
    with StubServer(responder=judge) as stub:
        plan = alignbench.plan_score(QUESTIONS, two_answers, "openai:glm-latest", base_url=stub.url)
        assert len(plan.requests()[0][1]) == 2 + items == 18  # the dry run prices the canary too
        quiet = alignbench.plan_score(QUESTIONS, two_answers, "openai:glm-4", base_url=stub.url)
        assert len(quiet.requests()[0][1]) == 2  # not an alias: off unless --canary
        ensemble = alignbench.plan_score(QUESTIONS, two_answers, "openai:glm-latest,openai:x", base_url=stub.url)
        assert [len(r) for _, r in ensemble.requests()] == [2, 2]  # ensembles do not run the canary
        first = alignbench.score(QUESTIONS, two_answers, "openai:glm-latest", base_url=stub.url, out=tmp_path / "r1")
        c1 = first["model-a"].summary.run.canary
        assert c1["items"] == items and c1["compared_with"] is None and stub.calls == 18
        judge.epoch, judge.shift = 1, 2  # re-trained, served under the same name
        second = alignbench.score(QUESTIONS, two_answers, "openai:glm-latest", base_url=stub.url, out=tmp_path / "r2")
        assert stub.calls == 18 + 16  # the run's replies come from the cache, the canary's never
        judge.epoch = 2
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(two_answers), "--judge", "openai:glm-latest",
                       "--judge-base-url", stub.url, "--out", str(tmp_path / "r3"), "--no-canary")
        assert proc.returncode == 0 and stub.calls == 34  # --no-canary: nothing judged, nothing compared
        judge.shift = 0  # rolled back: the CLI reports the drift back down and exits 4
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(two_answers), "--judge", "openai:glm-latest",
                       "--judge-base-url", stub.url, "--out", str(tmp_path / "r4"))
    c2 = second["model-a"].summary.run.canary
    history = alignbench.api.canary_history("openai:glm-latest")
    old, new = history[0]["scores"], history[1]["scores"]
    expected = np.mean([new[k] - old[k] for k in old])
    assert c2["drift"] is True and c2["shift"] == pytest.approx(expected) and abs(c2["shift"] - 2) < 0.75
    assert c2["p_value"] < ALPHA and c2["compared_with"]["run"] == [str(tmp_path / "r1")]
    assert c2["judge"]["hosts"] == ["127.0.0.1"] and c2["judge"]["model"] == "glm-latest"
    saved = json.loads((tmp_path / "r2" / "summary.json").read_text(encoding="utf-8"))
    assert saved["run"]["canary"]["drift"] is True
    assert proc.returncode == DRIFT_EXIT, proc.stderr
    assert "judge canary drift" in proc.stderr and str(tmp_path / "r2") in proc.stderr
    assert len(alignbench.api.canary_history("openai:glm-latest")) == 3
    alignbench.api.report([tmp_path / "r2"], tmp_path / "report.md", lang="en", charts=False, audit=False)
    assert f"judge canary drift: +{c2['shift']:.2f} points" in (tmp_path / "report.md").read_text(encoding="utf-8")
    shown = run_cli("canary", "openai:glm-latest")
    assert shown.returncode == 0 and shown.stdout.count("openai:glm-latest") == 3
    assert f"+{c2['shift']:.2f}" in shown.stdout  # the change of the re-trained judge's record
    assert history_path(None).is_file()


def test_an_unchanged_noisy_judge_raises_no_alarm_in_20_runs(tmp_path: Path, two_answers: Path) -> None:
    judge = NoisyJudge(seed=7)
    with StubServer(responder=judge) as stub:
        plan = alignbench.plan_score(QUESTIONS, two_answers, "openai:x", base_url=stub.url, canary=True)
        results = []
        for epoch in range(21):
            judge.epoch = epoch
            runs = alignbench.score_from_plan(plan, out=tmp_path / f"r{epoch}")
            results.append(runs["model-a"].summary.run.canary)
    compared = results[1:]
    assert all(c["n_compared"] == 16 for c in compared)
    assert sum(c["moved"] > 0 for c in compared) >= 19  # the noise is real: the canary moves run to run
    assert not any(c["drift"] for c in compared), [(c["shift"], c["p_value"]) for c in compared]
