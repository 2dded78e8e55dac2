"""Bias audits: ``length_bias`` and ``format_bias`` (within-question association of score with answer
length / Markdown structure), ``position_bias`` (pairwise first-position win rate and flip rate),
``self_preference`` and ``family_report`` (judge and model from one family)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from alignbench import stats
from alignbench.rubrics import Rubric
from alignbench.stats.fmt import finite as _f
from alignbench.trust.base import Key, Kind, _AsDict, _ok_overall, _one_per_answer, _weighted_scores
from alignbench.types import Judgment

if TYPE_CHECKING:
    from alignbench.pairwise.compare import PairJudgment


class Association(_AsDict):
    """Association of the score with one answer feature (length, a Markdown count).

    ``design`` "within-question": both are demeaned within each question (only questions with ≥ 2
    answers count), so question difficulty cannot fake an association; the slope is the pooled
    fixed-effects slope (score points per unit of the feature) and ``spearman`` the rank correlation of
    the demeaned values. "between-question" (one answer per question, e.g. a single model): plain
    association across answers, ``confounded`` (hard questions may get both longer answers and lower
    scores). ``controls``: features partialled out of both (format features control for length). CIs
    resample questions."""

    feature: str
    design: Literal["within-question", "between-question"]
    confounded: bool
    n_answers: int
    n_questions: int
    slope: float | None
    slope_ci: tuple[float, float] | None
    spearman: float | None
    spearman_ci: tuple[float, float] | None
    controls: tuple[str, ...] = ()
    per: float = 1.0  # slope unit: score points per ``per`` units of the feature
    note: str = ""


def _padded(groups: list[np.ndarray], width: int) -> np.ndarray:
    out = np.full((len(groups), width), -1, dtype=int)
    for i, g in enumerate(groups):
        out[i, :g.size] = g
    return out


def _demean(v: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    sums = np.bincount(groups, weights=v, minlength=n_groups)
    counts = np.bincount(groups, minlength=n_groups)
    return v - (sums / np.maximum(counts, 1))[groups]


def _estimates(rows: np.ndarray, sample: np.ndarray, n_samples: int, x: np.ndarray, y: np.ndarray,
               z: np.ndarray | None, within: bool, per: float) -> tuple[np.ndarray, np.ndarray]:
    """(slope × ``per``, Spearman ρ of the residuals) of each sample: ``rows`` of every sample laid end to end,
    ``sample`` naming each row's sample (the bootstrap's resamples at once: no loop over resamples). ``x``, ``y``,
    ``z`` are already demeaned within each question in the within-question design; between questions each
    sample is demeaned by its own mean. With ``z``, it is partialled out of both: the slope is x's coefficient in
    the regression of y on x and z."""
    xs, ys = x[rows], y[rows]
    zs = None if z is None else z[rows]
    if not within:
        n = np.maximum(np.bincount(sample, minlength=n_samples), 1)
        center = [v - (s / n)[sample] for v, s in zip((xs, ys), stats.group_sums(sample, n_samples, xs, ys),
                                                       strict=True)]
        xs, ys = center
        if zs is not None:
            zs = zs - (stats.group_sums(sample, n_samples, zs)[0] / n)[sample]
    if zs is not None:  # coefficients of z per sample; a sample where z is constant keeps x and y (no control)
        szz, szx, szy = stats.group_sums(sample, n_samples, zs * zs, zs * xs, zs * ys)
        with np.errstate(invalid="ignore", divide="ignore"):
            cx, cy = (np.where(szz > 0, s / np.where(szz > 0, szz, 1), 0.0) for s in (szx, szy))
        xs, ys = xs - zs * cx[sample], ys - zs * cy[sample]
    sxx, sxy = stats.group_sums(sample, n_samples, xs * xs, xs * ys)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1), np.nan) * per
    return slope, stats.corr_groups(xs, ys, sample, n_samples, "spearman")


def association(scores: Sequence[float], feature: Sequence[float], questions: Sequence[Any], *, name: str = "x",
                control: Sequence[float] | None = None, control_name: str = "", per: float = 1.0,
                n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Association:
    """Within-question association of ``scores`` with ``feature`` (one value per answer; ``questions``
    names each answer's question), falling back to the between-question design when no question has
    two answers. ``control``: a covariate partialled out of both (within the same design).

    Within: s̃ = s − mean_q(s), x̃ = x − mean_q(x); slope = Σx̃s̃ / Σx̃² (with a control: the coefficient
    of x̃ in the regression of s̃ on x̃ and z̃). The bootstrap resamples questions, keeping each
    question's answers together."""
    y_all = np.asarray(scores, dtype=float)
    x_all = np.asarray(feature, dtype=float)
    z_all = None if control is None else np.asarray(control, dtype=float)
    _, q_idx, counts = np.unique(np.asarray([str(q) for q in questions]), return_inverse=True, return_counts=True)
    within = bool((counts >= 2).any())
    keep = counts[q_idx] >= 2 if within else np.ones(q_idx.size, dtype=bool)
    y, x = y_all[keep], x_all[keep]
    z = None if z_all is None else z_all[keep]
    _, g = np.unique(q_idx[keep], return_inverse=True)
    n_q = int(g.max()) + 1 if g.size else 0
    design: Literal["within-question", "between-question"] = "within-question" if within else "between-question"
    note = ("score and feature demeaned within each question with ≥ 2 answers" if within else
            "one answer per question: no within-question variation; this is the association ACROSS questions "
            "and is confounded by question difficulty (hard questions can draw longer answers and lower scores)")
    if within and (counts < 2).any():
        note += f"; {int((counts < 2).sum())} question(s) with a single answer left out"
    controls = (control_name or "control",) if z is not None else ()
    if y.size < 3:
        return Association(name, design, not within, int(y.size), n_q, None, None, None, None, controls, per,
                           note + "; fewer than 3 answers")

    # Within a question the demeaned values do not depend on the resample (questions are drawn whole)
    xt, yt = (_demean(x, g, n_q), _demean(y, g, n_q)) if within else (x, y)
    zt = None if z is None else (_demean(z, g, n_q) if within else z)
    slope, rho = (float(v[0]) for v in _estimates(np.arange(y.size), np.zeros(y.size, dtype=int), 1, xt, yt, zt,
                                                       within, per))
    slope_ci = rho_ci = None
    if n_boot >= 2 and n_q >= 2:
        rng = np.random.default_rng(seed)
        members = [np.flatnonzero(g == q) for q in range(n_q)]
        table = _padded(members, max(m.size for m in members))
        b_slope, b_rho = np.empty(n_boot), np.empty(n_boot)
        step = max(1, 2_000_000 // max(1, table.size))  # resamples per block: ~2M rows in memory at most
        for start in range(0, n_boot, step):
            picks = table[stats.draw(rng, n_q, min(step, n_boot - start))]  # (block, n_q, width): questions whole
            which, _, _ = np.nonzero(picks >= 0)
            stop = start + picks.shape[0]
            b_slope[start:stop], b_rho[start:stop] = _estimates(picks[picks >= 0], which, picks.shape[0], xt, yt,
                                                                zt, within, per)
        slope_ci, rho_ci = stats.percentile_ci(b_slope, level), stats.percentile_ci(b_rho, level)
    return Association(name, design, not within, int(y.size), n_q, _f(slope), slope_ci, _f(rho), rho_ci, controls,
                       per, note)


def count_words(text: str) -> int:
    """jieba words: the tokens of ``jieba.lcut`` that are not pure whitespace. A Chinese word is ~1.5
    characters and an English one ~5, so words compare answers mixing the two better than characters."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return sum(1 for tok in jieba.lcut(text) if tok.strip())


class AdjustedRow(_AsDict):
    """One score of one model as judged and at equal length (see ``length_bias``)."""

    key: str
    kind: Kind
    name: str
    n: int
    score: float | None
    at_equal_length: float | None
    delta: float | None


class LengthBias(_AsDict):
    """``length_bias``'s result: the association overall and per category for each unit (chars, words),
    and (within-question design only) every model's scores at equal length in ``adjust_unit``."""

    units: dict[str, Association]
    categories: dict[str, dict[str, Association]]  # unit -> category -> association
    adjusted: dict[str, tuple[AdjustedRow, ...]]  # model -> rows; empty without within-question variation
    adjust_unit: str | None
    models: tuple[str, ...]
    warnings: tuple[str, ...]
    method_note: str


def answer_lengths(texts: Mapping[Key, str], units: Sequence[str] = ("chars", "words")) -> dict[str, dict[Key, int]]:
    """Length of each answer text in characters and/or jieba words: {unit: {(question_id, model): n}}."""
    out: dict[str, dict[Key, int]] = {}
    for unit in units:
        if unit == "chars":
            out[unit] = {k: len(t) for k, t in texts.items()}
        elif unit == "words":
            out[unit] = {k: count_words(t) for k, t in texts.items()}
        else:
            raise ValueError(f"unknown length unit {unit!r} (chars or words)")
    return out


def _ok_rows(judgments: Sequence[Judgment], rubric: Rubric) -> tuple[list[Key], dict[Key, Judgment], dict[Key, str]]:
    by_key = _one_per_answer([j for j in judgments if _ok_overall(j)], "audit")
    cat_of = {k: rubric.canonical(j.category) for k, j in by_key.items()}
    return sorted(by_key), by_key, cat_of


def length_bias(judgments: Sequence[Judgment], rubric: Rubric, *, texts: Mapping[Key, str] | None = None,
                lengths: Mapping[str, Mapping[Key, float]] | None = None, units: Sequence[str] = ("chars", "words"),
                adjust_unit: str | None = None, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> LengthBias:
    """Does the judge reward length? Within-question association of the overall score with answer length,
    and each model's category/group/overall scores at equal length.

    Lengths come from ``lengths`` ({unit: {(question_id, model): length}}), else from ``texts`` (chars =
    ``len``, words = jieba), else characters from ``Judgment.answer_chars`` (words then unavailable).
    Equal length: each score is moved by −slope × (length − the question's mean length over the
    models), with the pooled within-question slope of ``adjust_unit`` (default: words when available,
    else chars). The adjustments of one question sum to zero, so the average over models stays put and
    only the split between long- and short-answering models moves. Limits (docs/trust.md): linear;
    one slope for all categories; removes whatever length buys, deserved or not; depends on which models
    are compared (the question mean moves with them)."""
    keys, by_key, cat_of = _ok_rows(judgments, rubric)
    warnings: list[str] = []
    table: dict[str, dict[Key, float]] = {}
    if lengths is not None:
        table = {u: dict(v) for u, v in lengths.items() if u in units}
    elif texts is not None:
        table = {u: {k: float(v) for k, v in d.items()} for u, d in answer_lengths(texts, units).items()}
    else:
        if "chars" in units:
            table["chars"] = {k: float(by_key[k].answer_chars) for k in keys}
        if "words" in units:
            warnings.append("word counts need the answer texts (texts=...): words skipped")
    assoc: dict[str, Association] = {}
    per_cat: dict[str, dict[str, Association]] = {}
    for unit in units:
        lens = table.get(unit)
        if lens is None:
            continue
        have = [k for k in keys if k in lens]
        if len(have) < len(keys):
            warnings.append(f"{len(keys) - len(have)} judged answer(s) have no {unit} length and are left out")
        if unit == "chars" and texts is None and lengths is None and all(lens[k] == 0 for k in have):
            warnings.append("no answer lengths recorded in the judgments (answer_chars is 0): pass texts")
            continue
        s = [float(by_key[k].overall) for k in have]  # type: ignore[arg-type]
        x = [lens[k] for k in have]
        assoc[unit] = association(s, x, [k[0] for k in have], name=unit, per=100.0, n_boot=n_boot, seed=seed,
                                  level=level)
        per_cat[unit] = {}
        for c in rubric.category_names():
            mine = [i for i, k in enumerate(have) if cat_of[k] == c]
            if mine:
                per_cat[unit][c] = association([s[i] for i in mine], [x[i] for i in mine],
                                               [have[i][0] for i in mine], name=unit, per=100.0, n_boot=n_boot,
                                               seed=seed, level=level)
    models = tuple(sorted({k[1] for k in keys}))
    unit = adjust_unit or ("words" if "words" in assoc else "chars" if "chars" in assoc else None)
    adjusted: dict[str, tuple[AdjustedRow, ...]] = {}
    if unit is not None and unit in assoc and assoc[unit].design == "within-question" and assoc[unit].slope is not None:
        slope = assoc[unit].slope / assoc[unit].per
        lens = table[unit]
        have = [k for k in keys if k in lens]
        by_q: dict[int, list[Key]] = {}
        for k in have:
            by_q.setdefault(k[0], []).append(k)
        qmean = {q: float(np.mean([lens[k] for k in ks])) for q, ks in by_q.items()}
        series = {"score": {k: float(by_key[k].overall) for k in have},  # type: ignore[arg-type]
                  "adjusted": {k: float(by_key[k].overall) - slope * (lens[k] - qmean[k[0]]) for k in have}}  # type: ignore[arg-type]
        known = [k for k in have if rubric.category(cat_of[k]) is not None]
        for model in models:
            mk = [k for k in known if k[1] == model]
            rows = []
            for key, kind, name, n, v in _weighted_scores(mk, cat_of, series, rubric):
                d = None if v["score"] is None or v["adjusted"] is None else v["adjusted"] - v["score"]
                rows.append(AdjustedRow(key, kind, name, n, v["score"], v["adjusted"], d))
            adjusted[model] = tuple(rows)
    elif unit is not None and unit in assoc:
        warnings.append("no question has answers from two or more models: no within-question comparison, so no "
                        "scores at equal length (the association shown is between questions and confounded)")
    method = ("within-question fixed-effects slope (score points per 100 units of length) and Spearman of the "
              "within-question demeaned values; CIs resample questions")
    return LengthBias(units=assoc, categories=per_cat, adjusted=adjusted, adjust_unit=unit if adjusted else None,
                      models=models, warnings=tuple(warnings), method_note=method)


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+\S", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]\s+|\d+[.)]\s+|\d+、\s*|[（(]\d+[）)]\s*)\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+?\*\*|__[^_\n]+?__")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$", re.MULTILINE)
FORMAT_FEATURES = ("headings", "list_items", "bold", "table_rows")


def markdown_features(text: str) -> dict[str, int]:
    """Counts of Markdown structure in an answer: headings (#…), list items (-, *, +, •, 1. 1) 1、 (1)),
    bold spans (**…**, __…__) and table rows (|…|)."""
    return {"headings": len(_HEADING.findall(text)), "list_items": len(_LIST_ITEM.findall(text)),
            "bold": len(_BOLD.findall(text)), "table_rows": len(_TABLE_ROW.findall(text))}


class FormatBias(_AsDict):
    """``format_bias``'s result: per Markdown feature, the within-question association with the score,
    raw and controlling for length in characters (structure and length go together)."""

    features: dict[str, Association]
    controlling_length: dict[str, Association]
    share_with_structure: dict[str, float]  # feature -> share of answers with at least one
    warnings: tuple[str, ...]


def format_bias(judgments: Sequence[Judgment], rubric: Rubric, texts: Mapping[Key, str], *, n_boot: int = 1000,
                seed: int = 0, level: float = 0.95) -> FormatBias:
    """Score vs Markdown structure (headings, list items, bold, table rows) within a question, raw and
    with answer length (characters) partialled out. A feature no answer uses is skipped."""
    keys, by_key, _ = _ok_rows(judgments, rubric)
    have = [k for k in keys if k in texts]
    warnings = [f"{len(keys) - len(have)} judged answer(s) have no text and are left out"] if len(have) < len(keys) else []
    feats = {k: markdown_features(texts[k]) for k in have}
    s = [float(by_key[k].overall) for k in have]  # type: ignore[arg-type]
    q = [k[0] for k in have]
    chars = [float(len(texts[k])) for k in have]
    raw: dict[str, Association] = {}
    ctl: dict[str, Association] = {}
    share: dict[str, float] = {}
    for name in FORMAT_FEATURES:
        x = [float(feats[k][name]) for k in have]
        share[name] = float(np.mean([v > 0 for v in x])) if x else 0.0
        if not any(x):
            warnings.append(f"no answer has {name.replace('_', ' ')}: skipped")
            continue
        raw[name] = association(s, x, q, name=name, n_boot=n_boot, seed=seed, level=level)
        ctl[name] = association(s, x, q, name=name, control=chars, control_name="chars", n_boot=n_boot, seed=seed,
                                level=level)
    return FormatBias(features=raw, controlling_length=ctl, share_with_structure=share, warnings=tuple(warnings))


# -- position bias (pairwise) ---------------------------------------------------------------------


class PositionStats(_AsDict):
    """Position figures over the pairs judged successfully in both orders.

    ``first_position_rate``: share of decisive single-order verdicts (not ties) that chose 助手1. A judge
    consistent on every pair scores exactly 0.5 (each pair shows each answer first once), so any
    departure comes from inconsistent pairs. ``flip_rate``: share of pairs won by the model in one order
    and by the baseline in the other (the verdict followed the position). ``inconsistency_rate``: share
    whose two un-swapped verdicts differ at all (win/tie included). CIs resample pairs."""

    n_pairs: int
    n_decisive_verdicts: int
    first_position_rate: float | None
    first_position_ci: tuple[float, float] | None
    flip_rate: float | None
    flip_ci: tuple[float, float] | None
    inconsistency_rate: float | None
    inconsistency_ci: tuple[float, float] | None


class PositionBias(_AsDict):
    overall: PositionStats
    categories: dict[str, PositionStats]
    n_failed: int  # pairs with a failed order, left out


def _pair_outcome(p: Any) -> tuple[str, str, str, str] | None:
    """(position model-first, position baseline-first, winner model-first, winner baseline-first), or
    None when either order has no verdict."""
    orders = {getattr(v, "order", None): v for v in p.orders}
    first, second = orders.get("model_first"), orders.get("baseline_first")
    if first is None or second is None:
        first, second = p.orders[0], p.orders[1]
    out = []
    for v in (first, second):
        status = getattr(v.status, "value", v.status)
        if status != "ok" or v.position not in ("1", "2", "tie"):
            return None
        out.append(v.position)
    win = {"1": "model", "2": "baseline", "tie": "tie"}
    win_b = {"1": "baseline", "2": "model", "tie": "tie"}
    return out[0], out[1], win[out[0]], win_b[out[1]]


def _position_stats(outcomes: list[tuple[str, str, str, str]], n_boot: int, rng: np.random.Generator,
                    level: float) -> PositionStats:
    n = len(outcomes)
    if not n:
        return PositionStats(0, 0, None, None, None, None, None, None)
    ones = np.array([(a == "1") + (b == "1") for a, b, _, _ in outcomes], dtype=float)
    decisive = np.array([(a != "tie") + (b != "tie") for a, b, _, _ in outcomes], dtype=float)
    flips = np.array([{wa, wb} == {"model", "baseline"} for _, _, wa, wb in outcomes], dtype=float)
    incons = np.array([wa != wb for _, _, wa, wb in outcomes], dtype=float)
    n_dec = int(decisive.sum())

    def boot(num: np.ndarray, den: np.ndarray | None) -> tuple[float, float] | None:
        if n_boot < 2 or n < 2:
            return None
        idx = stats.draw(rng, n, n_boot)
        if den is None:
            return stats.percentile_ci(num[idx].mean(axis=1), level)
        d = den[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return stats.percentile_ci(np.where(d > 0, num[idx].sum(axis=1) / np.where(d > 0, d, 1), np.nan), level)

    return PositionStats(n_pairs=n, n_decisive_verdicts=n_dec,
                         first_position_rate=float(ones.sum() / n_dec) if n_dec else None,
                         first_position_ci=boot(ones, decisive) if n_dec else None,
                         flip_rate=float(flips.mean()), flip_ci=boot(flips, None),
                         inconsistency_rate=float(incons.mean()), inconsistency_ci=boot(incons, None))


def position_bias(pairs: Sequence[PairJudgment], rubric: Rubric | None = None, *, n_boot: int = 1000, seed: int = 0,
                  level: float = 0.95) -> PositionBias:
    """First-position win rate and flip rate, pooled over every model (position bias is a property of
    the judge) and per category, from pairwise judgments (``alignbench compare``'s ``PairJudgment``:
    ``orders`` = (model_first, baseline_first), each with ``status`` and ``position`` "1"/"2"/"tie")."""
    rng = np.random.default_rng(seed)
    done: list[tuple[Any, tuple[str, str, str, str]]] = []
    failed = 0
    for p in pairs:
        o = _pair_outcome(p)
        if o is None:
            failed += 1
        else:
            done.append((p, o))

    def cat_name(p: Any) -> str:
        return (rubric.canonical(p.category)) if rubric else p.category

    names = rubric.category_names() if rubric else sorted({cat_name(p) for p, _ in done})
    cats = {}
    for c in names:
        mine = [o for p, o in done if cat_name(p) == c]
        if mine:
            cats[c] = _position_stats(mine, n_boot, rng, level)
    return PositionBias(overall=_position_stats([o for _, o in done], n_boot, rng, level), categories=cats,
                        n_failed=failed)



# (family, pattern over the lower-cased name). First match wins, so fine-tuned judges named after their
# base come before the broad patterns: CritiqueLLM is a ChatGLM fine-tune, CompassJudger a Qwen one.
FAMILIES: tuple[tuple[str, str], ...] = (
    ("GLM", r"critiquellm|chatglm|\bglm|glm-|zhipu|智谱|codegeex|cogvlm"),
    ("Qwen", r"compassjudger|qwen|qwq|通义|tongyi"),
    ("DeepSeek", r"deepseek|深度求索"),
    ("GPT", r"gpt|openai|davinci|(?:^|[^a-z0-9])o[134](?:-|$|[^a-z0-9])"),
    ("Claude", r"claude|anthropic"),
    ("Gemini", r"gemini|gemma|bard|palm"),
    ("Llama", r"llama|auto-j"),
    ("Mistral", r"mistral|mixtral|codestral|ministral"),
    ("Baichuan", r"baichuan|百川"),
    ("InternLM", r"internlm|书生"),
    ("Yi", r"(?:^|[^a-z])yi-|零一万物|01-ai"),
    ("ERNIE", r"ernie|文心|wenxin"),
    ("Moonshot", r"moonshot|kimi"),
    ("Spark", r"sparkdesk|spark|星火|讯飞"),
    ("MiniMax", r"minimax|abab"),
    ("Hunyuan", r"hunyuan|混元"),
    ("Doubao", r"doubao|豆包|skylark"),
    ("SenseChat", r"sensechat|sensenova|商汤"),
)
_BACKENDS = ("openai", "zhipuai", "hf", "local", "vllm", "bridged")


def model_family(name: str) -> str | None:
    """The model family a judge or model name belongs to (``FAMILIES``), or None when unknown. A
    backend prefix (``openai:``) is ignored: it names the API, not the model."""
    text = name.strip().lower()
    while ":" in text and text.split(":", 1)[0] in _BACKENDS:
        text = text.split(":", 1)[1]
    for family, pattern in FAMILIES:
        if re.search(pattern, text):
            return family
    return None


class FamilyRow(_AsDict):
    name: str
    role: Literal["judge", "model"]
    family: str | None
    shares_family_with: tuple[str, ...]  # judges (for a model) or models (for a judge) of its family


class FamilyReport(_AsDict):
    """Judges and models by family; ``warning`` (for the top of a report) when any pair shares one."""

    rows: tuple[FamilyRow, ...]
    shared: tuple[tuple[str, str, str], ...]  # (judge, model, family)
    warning: str | None


def family_report(judges: Sequence[str], models: Sequence[str]) -> FamilyReport:
    """Which judges and models share a family: such a judge may favour its own (self-preference)."""
    jf = {j: model_family(j) for j in judges}
    mf = {m: model_family(m) for m in models}
    shared = tuple((j, m, jf[j]) for j in judges for m in models if jf[j] is not None and jf[j] == mf[m])
    rows = [FamilyRow(j, "judge", jf[j], tuple(m for jj, m, _ in shared if jj == j)) for j in judges]
    rows += [FamilyRow(m, "model", mf[m], tuple(j for j, mm, _ in shared if mm == m)) for m in models]
    warning = None
    if shared:
        pairs = "; ".join(f"{j} judges {m} ({fam})" for j, m, fam in shared)
        warning = (f"judge and model from the same family: {pairs}. A judge may favour its own family; "
                   "score with a cross-family ensemble (e.g. --judge a,b from different families) or check "
                   "with self_preference over several judges")
    return FamilyReport(rows=tuple(rows), shared=shared, warning=warning)


class SelfPreferenceRow(_AsDict):
    """One judge's preference for its own family: ``effect`` = mean(d | own family) − mean(d | others),
    where d = this judge's score − the other judges' mean score of the same answer. Positive: the judge
    is kinder to its own family than the other judges are (in score points)."""

    judge: str
    family: str | None
    n_own: int
    n_other: int
    effect: float | None
    ci: tuple[float, float] | None
    own_models: tuple[str, ...]
    note: str = ""


class SelfPreference(_AsDict):
    judges: tuple[SelfPreferenceRow, ...]
    n_answers: int  # answers judged ok by every judge


def self_preference(judgments: Sequence[Judgment], *, n_boot: int = 1000, seed: int = 0,
                    level: float = 0.95) -> SelfPreference:
    """Self-preference from several judges' scores of the same answers (judgments of all judges in one
    list, told apart by ``Judgment.judge``). A difference in differences: a judge's harshness or
    leniency cancels (it shifts own and other families alike); what remains is the extra it gives its
    own family. Needs ≥ 2 judges and models of the judge's family and of others. CIs resample questions."""
    by_judge: dict[str, dict[Key, float]] = {}
    for j in judgments:
        if _ok_overall(j):
            seen = by_judge.setdefault(j.judge, {})
            key = (j.question_id, j.model)
            if key in seen:
                raise ValueError(f"self_preference: judge {j.judge} judged (question {key[0]}, model {key[1]}) twice")
            seen[key] = float(j.overall)  # type: ignore[arg-type]
    judges = sorted(by_judge)
    common = sorted(set.intersection(*(set(v) for v in by_judge.values()))) if judges else []
    rows = []
    rng = np.random.default_rng(seed)
    for judge in judges:
        fam = model_family(judge)
        own_models = tuple(sorted({k[1] for k in common if fam is not None and model_family(k[1]) == fam}))
        if len(judges) < 2:
            rows.append(SelfPreferenceRow(judge, fam, 0, 0, None, None, own_models, "needs a second judge"))
            continue
        if fam is None:
            rows.append(SelfPreferenceRow(judge, fam, 0, 0, None, None, own_models, "judge family unknown"))
            continue
        others = [o for o in judges if o != judge]
        d = np.array([by_judge[judge][k] - np.mean([by_judge[o][k] for o in others]) for k in common])
        own = np.array([k[1] in own_models for k in common])
        n_own, n_other = int(own.sum()), int((~own).sum())
        if not n_own or not n_other:
            rows.append(SelfPreferenceRow(judge, fam, n_own, n_other, None, None, own_models,
                                          "no model of the judge's family" if not n_own else "no model of another family"))
            continue
        effect = float(d[own].mean() - d[~own].mean())
        ci = None
        qs = np.array([k[0] for k in common])
        uq, g = np.unique(qs, return_inverse=True)
        if n_boot >= 2 and uq.size >= 2:
            w_own = np.bincount(g, weights=own.astype(float), minlength=uq.size)
            w_oth = np.bincount(g, weights=(~own).astype(float), minlength=uq.size)
            s_own = np.bincount(g, weights=np.where(own, d, 0.0), minlength=uq.size)
            s_oth = np.bincount(g, weights=np.where(own, 0.0, d), minlength=uq.size)
            idx = stats.draw(rng, uq.size, n_boot)
            with np.errstate(invalid="ignore", divide="ignore"):
                b = s_own[idx].sum(1) / w_own[idx].sum(1) - s_oth[idx].sum(1) / w_oth[idx].sum(1)
            ci = stats.percentile_ci(b, level)
        rows.append(SelfPreferenceRow(judge, fam, n_own, n_other, effect, ci, own_models))
    return SelfPreference(judges=tuple(rows), n_answers=len(common))
