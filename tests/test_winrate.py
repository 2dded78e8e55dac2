"""Tests of the pairwise win-rate math: plain win rates, the joint LC GLM, bootstrap, AlpacaEval interop."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lc_reference import (
    difficulty_by_question,
    fit_per_model_glm,
    read_instruction_difficulty,
    simulate_preferences,
)
from scipy.optimize import approx_fprime

from alignbench.pairwise import winrate as W
from alignbench.pairwise.alpaca import alpaca_preference, read_alpaca_annotations
from alignbench.pairwise.winrate import (
    bootstrap_lc,
    fit_joint_glm,
    lc_disagreement_warning,
    plain_winrates,
    text_length,
)

ALPACA = Path(__file__).resolve().parents[2] / "shared" / "alpaca_eval"
LEADERBOARD = ALPACA / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"

needs_alpaca = pytest.mark.skipif(not LEADERBOARD.exists(), reason="../shared/alpaca_eval not available")

# Strengths used by the synthetic tests: "verbose" is exactly as strong as "weak" but writes 3x more,
# "terse" is as strong as "good" but writes about a third as much.
BETAS = {"strong": 1.0, "good": 0.5, "equal": 0.0, "weak": -0.5, "verbose": -0.5, "terse": 0.5}
LENGTHS = {"verbose": 3.0, "terse": 0.35}


# --------------------------------------------------------------------------------------------------
# AlpacaEval files
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alpaca_df() -> pd.DataFrame:
    files = sorted((ALPACA / "annotations").glob("*.json"))
    # NullModel's generator is recorded as "example": name models after their file, as the leaderboard does.
    return read_alpaca_annotations(files, model_name="file")


@pytest.fixture(scope="module")
def leaderboard() -> pd.DataFrame:
    return pd.read_csv(LEADERBOARD, index_col=0)


@needs_alpaca
def test_plain_winrate_matches_leaderboard(alpaca_df: pd.DataFrame, leaderboard: pd.DataFrame) -> None:
    wr = plain_winrates(alpaca_df)
    assert len(wr) == 10
    for model, w in wr.items():
        row = leaderboard.loc[model]
        assert w.baseline == "gpt4_1106_preview"
        assert w.n == row["n_total"] == 805
        assert w.n_failed == 0
        assert abs(w.win_rate - row["win_rate"]) < 0.01, model
        assert abs(w.standard_error - row["standard_error"]) < 0.01, model
        assert abs(w.discrete_win_rate - row["discrete_win_rate"]) < 0.01, model
        assert (w.n_wins, w.n_ties, w.n_losses) == (row["n_wins"], row["n_draws"], row["n_wins_base"]), model
        assert int(w.avg_length) == row["avg_length"], model


@needs_alpaca
def test_joint_lc_on_alpaca_is_sane(alpaca_df: pd.DataFrame, leaderboard: pd.DataFrame) -> None:
    fit = fit_joint_glm(alpaca_df)
    assert fit.converged
    assert fit.theta > 0  # the judge prefers longer answers
    assert abs(fit.lc_win_rate["gpt4_1106_preview"] - 50.0) < 0.1  # baseline against itself
    # Models about as long as the baseline need little length correction, so we should agree closely.
    for model in (
        "FuseChat-Gemma-2-9B-Instruct",
        "FuseChat-Qwen-2.5-7B-Instruct",
        "FuseChat-Llama-3.2-1B-Instruct",
    ):
        assert abs(fit.lc_win_rate[model] - leaderboard.loc[model, "length_controlled_winrate"]) < 1.5, model
    # Short models are corrected upwards, as on the leaderboard.
    for model in ("gpt-3.5-turbo-1106", "claude-2.1", "alpaca-7b", "gpt4_gamed"):
        assert fit.lc_win_rate[model] > leaderboard.loc[model, "win_rate"] + 2.0, model


@needs_alpaca
def test_per_model_fit_matches_alpacaeval_refit(alpaca_df: pd.DataFrame, leaderboard: pd.DataFrame) -> None:
    diff = difficulty_by_question(
        alpaca_df, read_instruction_difficulty(ALPACA / "instruction_difficulty_reconstructed.csv")
    )
    per = fit_per_model_glm(alpaca_df, diff)
    assert abs(per["gpt4_1106_preview"].lc_win_rate - 50.0) < 1e-6
    # The README: refits without gamed-baseline rows land within ~1.1 points for ordinary models.
    for model in (
        "FuseChat-Gemma-2-9B-Instruct",
        "FuseChat-Qwen-2.5-7B-Instruct",
        "FuseChat-Llama-3.2-1B-Instruct",
        "gpt-3.5-turbo-1106",
        "gpt-3.5-turbo-1106_verbose",
        "claude-2.1",
    ):
        assert abs(per[model].lc_win_rate - leaderboard.loc[model, "length_controlled_winrate"]) < 1.2, model
    assert per["claude-2.1"].theta > 0  # our sign: model minus baseline


def _write(tmp_path: Path, records: list[dict], name: str = "m.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def _record(instruction: str, pref: object, out1: str = "base answer", out2: str = "model") -> dict:
    return {
        "instruction": instruction,
        "output_1": out1,
        "output_2": out2,
        "generator_1": "base",
        "generator_2": "m",
        "preference": pref,
    }


def test_alpaca_reader_maps_preferences(tmp_path: Path) -> None:
    recs = [_record("a", 2.0), _record("b", 1.0), _record("c", 0), _record("d", None), _record("e", "1.25")]
    recs.append(_record("f", float("nan")))
    df = read_alpaca_annotations(_write(tmp_path, recs))
    assert list(df["question_id"]) == ["a", "b", "c", "d", "e", "f"]
    pref = df["preference"].to_numpy()
    assert list(pref[:3]) == [1.0, 0.0, 0.5]
    assert math.isnan(pref[3]) and math.isnan(pref[5])
    assert pref[4] == pytest.approx(0.25)
    assert list(df["len_model"]) == [5] * 6 and list(df["len_baseline"]) == [11] * 6
    wr = plain_winrates(df)["m"]
    assert (wr.n, wr.n_failed, wr.n_wins, wr.n_losses, wr.n_ties) == (4, 2, 1, 2, 1)
    by_pos = read_alpaca_annotations(_write(tmp_path, recs), question_id="position", model_name="file")
    assert list(by_pos["question_id"]) == list(range(6)) and set(by_pos["model"]) == {"m"}


def test_alpaca_reader_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside"):
        read_alpaca_annotations(_write(tmp_path, [_record("a", 2.5)]))
    path = _write(tmp_path, [_record("a", 1.5)])
    with pytest.raises(ValueError, match="duplicated"):
        read_alpaca_annotations([path, path])
    assert alpaca_preference(" 1.75 ") == pytest.approx(0.75)
    assert math.isnan(alpaca_preference("NaN"))


# --------------------------------------------------------------------------------------------------
# Plain win rates and failures
# --------------------------------------------------------------------------------------------------


def test_nan_preferences_are_dropped_and_counted() -> None:
    df, _ = simulate_preferences(BETAS, n_questions=300, seed=5)
    broken = df.copy()
    failed = broken.sample(n=40, random_state=0).index
    broken.loc[failed, "preference"] = np.nan
    kept = broken.drop(index=failed)

    wr_broken, wr_kept = plain_winrates(broken), plain_winrates(kept)
    counts = broken.loc[failed, "model"].value_counts()
    for model in BETAS:
        assert wr_broken[model].n_failed == counts.get(model, 0)
        assert wr_broken[model].n == wr_kept[model].n == 300 - counts.get(model, 0)
        assert wr_broken[model].win_rate == pytest.approx(wr_kept[model].win_rate)

    fit_broken, fit_kept = fit_joint_glm(broken), fit_joint_glm(kept)
    assert sum(fit_broken.n_failed.values()) == 40
    for model in BETAS:
        assert fit_broken.n[model] == wr_kept[model].n
        assert fit_broken.lc_win_rate[model] == pytest.approx(fit_kept.lc_win_rate[model], abs=1e-6)


def test_counts_ties_and_categories() -> None:
    df = pd.DataFrame(
        {
            "model": ["m"] * 6,
            "baseline": ["b"] * 6,
            "question_id": range(6),
            "preference": [1.0, 0.8, 0.5, 0.2, 0.0, np.nan],
            "len_model": [10, 20, 30, 40, 50, 60],
            "len_baseline": [10] * 6,
            "category": ["x", "x", "x", "y", "y", "y"],
        }
    )
    wr = plain_winrates(df)["m"]
    assert (wr.n_wins, wr.n_ties, wr.n_losses, wr.n, wr.n_failed) == (2, 1, 2, 5, 1)
    assert wr.win_rate == pytest.approx(50.0)
    assert wr.standard_error == pytest.approx(100 * np.std([1, 0.8, 0.5, 0.2, 0], ddof=1) / math.sqrt(5))
    assert wr.discrete_win_rate == pytest.approx(50.0)
    assert wr.avg_length == pytest.approx(30.0)
    assert wr.by_category["x"].win_rate == pytest.approx(100 * 2.3 / 3)
    assert (wr.by_category["y"].n, wr.by_category["y"].n_failed) == (2, 1)
    assert sum(c.n for c in wr.by_category.values()) == wr.n


def test_input_validation() -> None:
    df, _ = simulate_preferences({"a": 0.0}, n_questions=20)
    with pytest.raises(ValueError, match="outside"):
        plain_winrates(df.assign(preference=df["preference"] + 1.0))
    with pytest.raises(ValueError, match="lacks"):
        plain_winrates(df.drop(columns="len_model"))
    two = pd.concat([df, df.assign(baseline="other")])
    with pytest.raises(ValueError, match="one baseline"):
        fit_joint_glm(two)


# --------------------------------------------------------------------------------------------------
# Joint GLM on synthetic data
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["soft", "ternary"])
def test_joint_fit_recovers_strength_and_removes_length_bias(outcome: str) -> None:
    df, truth = simulate_preferences(
        BETAS, n_questions=683, theta=1.0, length_factor=LENGTHS, outcome=outcome, seed=1
    )
    if outcome == "ternary":
        assert set(np.unique(df["preference"])) <= {0.0, 0.5, 1.0}
    raw = plain_winrates(df)
    true_lc = truth["lc_win_rate"]
    # Length alone moves the raw win rates a lot ...
    assert raw["verbose"].win_rate - true_lc["verbose"] > 10
    assert raw["terse"].win_rate - true_lc["terse"] < -5

    fit = fit_joint_glm(df)
    assert fit.converged
    assert fit.theta == pytest.approx(1.0, abs=0.25)
    # ... and the LC win rates fall back to the true strengths.
    tol = 2.5 if outcome == "soft" else 3.5
    for model in BETAS:
        assert abs(fit.lc_win_rate[model] - true_lc[model]) < tol, model
    b = fit.beta
    assert b["strong"] > b["good"] > b["equal"] > b["weak"]
    assert b["strong"] > b["terse"] > b["equal"] > b["verbose"]
    assert abs(b["verbose"] - b["weak"]) < 0.25 and abs(b["terse"] - b["good"]) < 0.25
    # The verbose model's tanh(Δlen/σ) is pinned near 1: its own slope deviation stays small.
    assert abs(fit.theta_by_model["verbose"] - fit.theta) < 0.2
    d_true = truth["difficulty"]
    d_fit = np.array([fit.difficulty[i] for i in range(len(d_true))])
    assert np.corrcoef(d_true, d_fit)[0, 1] > 0.8


def test_shared_slope_only_and_equal_model() -> None:
    df, truth = simulate_preferences(BETAS, n_questions=500, length_factor=LENGTHS, outcome="prob", seed=3)
    # The baseline judged against itself: identical answers, every preference 0.5.
    self_rows = df[df["model"] == "equal"].assign(
        model="baseline", preference=0.5, len_model=lambda x: x["len_baseline"]
    )
    fit = fit_joint_glm(pd.concat([df, self_rows], ignore_index=True), theta_penalty=None)
    assert all(v == fit.theta for v in fit.theta_by_model.values())
    assert abs(fit.lc_win_rate["baseline"] - 50.0) < 0.5
    assert abs(fit.lc_win_rate["equal"] - truth["lc_win_rate"]["equal"]) < 1.5
    assert abs(fit.lc_win_rate["verbose"] - truth["lc_win_rate"]["verbose"]) < 1.5


def test_lc_by_category_and_warm_start() -> None:
    df, _ = simulate_preferences(BETAS, n_questions=200, length_factor=LENGTHS, seed=4)
    df["category"] = np.where(df["question_id"] % 2 == 0, "even", "odd")
    fit = fit_joint_glm(df)
    for model in BETAS:
        cats = fit.lc_by_category[model]
        assert set(cats) == {"even", "odd"}
        assert (cats["even"] + cats["odd"]) / 2 == pytest.approx(fit.lc_win_rate[model])
    again = fit_joint_glm(df, x0=fit.x)
    for model in BETAS:
        assert again.lc_win_rate[model] == pytest.approx(fit.lc_win_rate[model], abs=0.01)


def test_objective_gradient_is_exact() -> None:
    rng = np.random.default_rng(0)
    n, n_models, n_q = 300, 4, 30
    m = rng.integers(0, n_models, n)
    q = rng.integers(0, n_q, n)
    t = np.tanh(rng.normal(size=n))
    y = rng.random(n)
    w = rng.integers(1, 4, n).astype(float)
    lam_d = rng.uniform(0.2, 2.0, n_q)
    for n_dev, weights in ((n_models, w), (0, None)):
        fun = W._objective(t, y, weights, m, q, n_models, n_dev, 3.0, 0.01, lam_d)
        x = rng.normal(scale=0.7, size=1 + n_dev + n_models + n_q)
        numeric = approx_fprime(x, lambda v, f=fun: f(v)[0], 1e-6)
        assert np.allclose(fun(x)[1], numeric, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------------


def test_bootstrap_is_seeded_and_positive() -> None:
    df, _ = simulate_preferences(
        {"a": 0.5, "b": -0.3, "c": 0.0}, n_questions=250, length_factor={"c": 2.0}, seed=7
    )
    point = fit_joint_glm(df)
    first = bootstrap_lc(df, n_boot=30, seed=11, point=point)
    second = bootstrap_lc(df, n_boot=30, seed=11, point=point)
    other = bootstrap_lc(df, n_boot=30, seed=12, point=point)
    assert first.lc_standard_error == second.lc_standard_error
    assert np.array_equal(first.replicates, second.replicates)
    assert first.lc_standard_error != other.lc_standard_error
    raw = plain_winrates(df)
    for model, se in first.lc_standard_error.items():
        assert 0 < se < 10
        # Same order of magnitude as the per-question spread of the raw preferences.
        assert 0.2 < se / raw[model].standard_error < 3
    no_point = bootstrap_lc(df, n_boot=30, seed=11)
    assert no_point.lc_standard_error == pytest.approx(first.lc_standard_error, abs=0.02)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def test_lc_disagreement_warning_band() -> None:
    assert lc_disagreement_warning(50.0, 60.0) is None  # band 37.5 .. 62.5
    assert "above" in (lc_disagreement_warning(50.0, 63.0) or "")
    assert "below" in (lc_disagreement_warning(50.0, 37.0) or "")
    assert lc_disagreement_warning(3.7, 12.2) is None  # low WR: band reaches WR + 24
    assert lc_disagreement_warning(95.0, 84.0) is None  # band 71.25 .. 105
    assert lc_disagreement_warning(95.0, 70.0) is not None
    assert lc_disagreement_warning(float("nan"), 50.0) is None


def test_text_length() -> None:
    assert text_length("我爱北京天安门", "chars") == 7
    assert text_length("我爱北京天安门") == 4  # 我 / 爱 / 北京 / 天安门
    assert text_length("hello   world\n") == 2  # whitespace tokens do not count
    assert text_length("") == 0
    with pytest.raises(ValueError):
        text_length("x", "tokens")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# The library entry point of `alignbench winrate`: alignbench.api.winrate / read_preferences
# --------------------------------------------------------------------------------------------------


def _alpaca_file(path: Path, model: str = "m", baseline: str = "base", n: int = 40) -> Path:
    """``n`` AlpacaEval annotations of ``model`` against ``baseline``: preferences cycle 1, 2, 1.5, 2
    (model loses, wins, ties, wins), the model writing about three times more."""
    rows = [{"instruction": f"q{i}", "output_1": "base" * (i + 1), "output_2": "m" * (3 * i + 1),
             "generator_1": baseline, "generator_2": model, "preference": [1.0, 2.0, 1.5, 2.0][i % 4],
             "dataset": "helpful_base" if i % 2 else "koala"} for i in range(n)]
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def _verdict(order: str, winner: str | None) -> dict:
    return {"order": order, "status": "ok" if winner else "parse_failed", "winner": winner, "prompt_hash": "0" * 16}


def _ours_file(folder: Path, model: str = "ours", baseline: str = "base-ours", n: int = 12) -> Path:
    """A compare folder whose pairwise_judgments.jsonl holds ``n`` pairs: the model wins both orders on
    even questions, the orders disagree on odd ones, and the last pair failed."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for q in range(1, n + 1):
        failed = q == n
        first, second = ("model", "model") if q % 2 == 0 else ("model", "baseline")
        pref = None if failed else (1.0 if q % 2 == 0 else 0.5)
        lines.append({
            "question_id": q, "model": model, "baseline": baseline, "category": "基本任务", "subcategory": "",
            "answer_type": "生成型回答", "status": "parse_failed" if failed else "ok", "preference": pref,
            "consistent": None if failed else q % 2 == 0, "flip": None if failed else q % 2 == 1,
            "orders": [_verdict("model_first", first), _verdict("baseline_first", None if failed else second)],
            "judge": "openai:x", "rubric": "alignbench@1", "model_chars": 30 + q, "baseline_chars": 20,
            "model_words": 10 + q, "baseline_words": 8})
    (folder / "pairwise_judgments.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                                                     encoding="utf-8")
    return folder


def test_api_winrate_is_what_the_cli_prints(tmp_path: Path) -> None:
    """`alignbench winrate --format json` prints exactly what `alignbench.api.winrate` returns."""
    from conftest import run_cli

    from alignbench.api import winrate

    alpaca, ours = _alpaca_file(tmp_path / "m.json"), _ours_file(tmp_path / "run")
    summary = winrate([alpaca, ours], bootstrap=20, seed=3)
    proc = run_cli("winrate", str(alpaca), str(ours), "--bootstrap", "20", "--seed", "3", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(json.dumps(summary.as_dict()))
    assert summary.baseline is None and summary.baselines == ["base", "base-ours"]
    assert set(summary.glm) == {"base", "base-ours"} and summary.files == [str(alpaca), str(ours)]
    assert summary.length_unit == "chars (AlpacaEval files), words (pairwise judgments)"
    m, o = summary.models["m"], summary.models["ours"]
    assert (m["n"], m["n_wins"], m["n_ties"], m["n_losses"], m["win_rate"]) == (40, 20, 10, 10, 62.5)
    assert (o["n"], o["n_failed"], o["n_wins"], o["n_ties"]) == (11, 1, 5, 6)  # odd pairs split: a tie
    assert o["win_rate"] == pytest.approx((5 + 6 * 0.5) / 11 * 100)
    lcs = [v["lc_win_rate"] for v in summary.models.values()]
    assert lcs == sorted(lcs, reverse=True)  # leaderboard order
    # one baseline: the flat fields; a single path works too
    only = winrate(ours, baseline="base-ours", bootstrap=0, length_unit="chars")
    assert only.baseline == "base-ours" and list(only.models) == ["ours"] and only.length_unit == "chars"


def test_read_preferences_table_and_units(tmp_path: Path) -> None:
    from alignbench.api import read_preferences

    alpaca, ours = _alpaca_file(tmp_path / "m.json"), _ours_file(tmp_path / "run")
    table, unit = read_preferences([ours / "pairwise_judgments.jsonl"])
    assert unit == "words" and list(table["len_model"][:2]) == [11, 12] and table["preference"].isna().sum() == 1
    table, unit = read_preferences([alpaca], name_by="file", length_unit="words")
    assert unit == "words" and set(table["model"]) == {"m"}  # named by file stem
    assert list(table.columns) == ["model", "baseline", "question_id", "preference", "len_model", "len_baseline",
                                   "category"]
    assert set(table["category"]) == {"helpful_base", "koala"}  # AlpacaEval's dataset


def test_api_winrate_errors_name_the_file(tmp_path: Path) -> None:
    """Every problem is an InputError, one line, with the texts `alignbench winrate` prints (exit 2)."""
    from alignbench.api import PreferenceError, winrate
    from alignbench.data import InputError

    alpaca, ours = _alpaca_file(tmp_path / "m.json"), _ours_file(tmp_path / "run")

    def error(*files: Path, **kwargs: object) -> str:
        with pytest.raises(InputError) as info:
            winrate(list(files), bootstrap=0, **kwargs)
        assert "\n" not in str(info.value)
        return str(info.value)

    assert error(tmp_path / "nope.json") == f"{tmp_path / 'nope.json'}: file not found"
    assert error(tmp_path) == f"{tmp_path / 'pairwise_judgments.jsonl'}: file not found"
    other = tmp_path / "judgments.jsonl"
    other.write_text('{"question_id": 1, "status": "ok"}\n', encoding="utf-8")
    assert error(other).startswith(f"{other}: neither an AlpacaEval annotation file")
    bad = tmp_path / "bad.jsonl"
    good_line = (ours / "pairwise_judgments.jsonl").read_text(encoding="utf-8").splitlines()[0]
    bad.write_text(good_line + '\n{"preference": 1, "orders": [], "baseline": "x"}\n', encoding="utf-8")
    assert error(bad).startswith(f"{bad}:2: not a pairwise judgment")
    pref = tmp_path / "pref.json"
    pref.write_text(json.dumps([{"instruction": "hi", "output_1": "a", "output_2": "b", "generator_1": "base",
                                 "generator_2": "m", "preference": 7}]), encoding="utf-8")
    assert error(pref) == f"{pref}: record 0: preference 7.0 outside AlpacaEval's range [1, 2] (or legacy 0)"
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    assert error(empty) == f"{empty}: no annotation records read"
    assert error(ours, ours / "pairwise_judgments.jsonl") == ("model 'ours' is judged twice on the same question "
                                                             "against 'base-ours'; pass each file once")
    assert "duplicated (model, baseline, question) rows" in error(alpaca, alpaca)
    assert error(alpaca, baseline="other") == "no comparison against baseline 'other'; the files hold base"
    second = _alpaca_file(tmp_path / "m2.json", baseline="other")
    assert error(alpaca, second) == ("model 'm' is compared with two baselines (base, other); pick one with "
                                     "--baseline")
    assert error(alpaca, length_unit="bytes") == "--length-unit: must be words or chars, not 'bytes'"
    with pytest.raises(PreferenceError, match="no file given"):
        winrate([])
