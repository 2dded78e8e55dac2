"""The judge canary: a small fixed set of (question, answer) pairs judged alongside a run, so that a judge
that changed behind the same name is caught.

Why: a provider can re-point a model name without notice, an alias such as ``glm-4-latest`` re-points by
design, and a re-trained local judge is often served under the old name. Scores then move with no change in
the model under test. The canary answers (``canary.jsonl``, written for this package: 16 short Chinese
questions of eight categories, answers from right to plainly wrong) are judged fresh every time (never
from the reply cache: a cached reply would replay the old judge), with the judge's identity (name, model
id, server hosts, the model ids its replies reported), into a per-user history next to the reply cache
(``canary.jsonl`` there). Each run compares its canary scores with the previous record of the same judge
name and rubric: paired differences over the items both scored, an exact sign-flip test
(``stats.paired``), and *drift* when p < ``ALPHA`` **and** the mean shift is at least ``MIN_SHIFT`` points
(both: a tiny but consistent shift of a deterministic judge is not worth failing CI over; a large shift on
a noisy judge must be more than noise).

Default: on for API judges whose model id is an alias (ends in ``latest``); ``--canary`` turns it on for
any judge, ``--no-canary`` off. Cost: one call per canary item (16), online, shown by ``--dry-run``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from alignbench.stats import fmt
from alignbench.stats.fmt import rnd
from alignbench.stats.paired import sign_flip_p

ITEMS_FILE = Path(__file__).with_name("canary.jsonl")
HISTORY_FILE = "canary.jsonl"
ALPHA = 0.001
MIN_SHIFT = 0.5
DRIFT_EXIT = 4  # `alignbench score` exit code when the canary drifted (docs/trust.md §7)
LOCAL_BACKENDS = ("hf",)


def default_on(config: Any) -> bool:
    """On by default for an API judge whose model id is an alias that re-points by design (``*latest``)."""
    model = str(getattr(config, "model", "") or "")
    return config.backend not in LOCAL_BACKENDS and model.lower().rstrip("/").endswith("latest")


def wanted(setting: bool | None, config: Any) -> bool:
    return default_on(config) if setting is None else bool(setting)


def plan_items(config: Any, rubric: Any, max_answer_chars: int | None) -> tuple[list[Any], str | None]:
    """The canary's rendered requests for this judge and rubric, or ([], why not) when the rubric cannot
    take them (its categories differ from AlignBench's)."""
    from alignbench.data import InputError, load_questions
    from alignbench.scoring import plan
    from alignbench.types import Answer

    try:
        questions = load_questions(ITEMS_FILE, rubric)
    except InputError as exc:
        return [], f"the canary does not fit rubric {rubric.id}: {exc}"
    rows = {int(r["question_id"]): r["answer"] for r in map(json.loads, ITEMS_FILE.read_text(encoding="utf-8").splitlines())
            if r}
    pairs = [(q, Answer(question_id=q.id, model="canary", text=rows[q.id])) for q in questions]
    return plan(pairs, rubric, config, max_answer_chars), None


def history_path(cache: Any) -> Path:
    """The history file beside the reply cache (the default one, or the file ``cache`` names)."""
    from alignbench.cache import default_cache_path

    base = Path(cache) if isinstance(cache, str | Path) else default_cache_path()
    return base.parent / HISTORY_FILE


def read_history(path: Path, judge: str | None = None) -> list[dict[str, Any]]:
    """Every record (oldest first), or those of one judge name."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a half-written line of a killed run
        if judge is None or rec.get("judge", {}).get("name") == judge:
            out.append(rec)
    return out


def identity(config: Any, served: dict[str, int] | None) -> dict[str, Any]:
    """What names the judge: preset name, model id sent, server hosts (no paths, no credentials), and the
    model ids the server reported in its replies."""
    hosts = sorted({urlsplit(u).hostname or "" for u in (config.base_url or ()) if u} - {""})
    return {"name": config.name, "backend": config.backend, "model": config.model, "hosts": hosts,
            "served_models": sorted(served or {})}


def compare(previous: dict[str, Any] | None, scores: dict[str, float | None]) -> dict[str, Any]:
    """This run's canary scores against the previous record's: paired shift, exact p, drift or not."""
    if previous is None:
        return {"compared_with": None, "drift": False, "note": "first canary of this judge: nothing to compare"}
    old = previous.get("scores", {})
    keys = [k for k, v in scores.items() if v is not None and old.get(k) is not None]
    d = np.array([scores[k] - old[k] for k in keys], dtype=float)  # type: ignore[operator]
    p = sign_flip_p(d) if len(d) else 1.0
    shift = float(d.mean()) if len(d) else 0.0
    return {"compared_with": {"time": previous.get("time"), "run": previous.get("run"),
                              "judge": previous.get("judge")},
            "n_compared": len(keys), "shift": rnd(shift), "p_value": rnd(p, 6),
            "moved": int((d != 0).sum()), "drift": bool(len(d) and p < ALPHA and abs(shift) >= MIN_SHIFT),
            "rule": f"drift when p < {ALPHA} and |mean shift| ≥ {MIN_SHIFT} (exact paired sign-flip test)"}


async def run_canary(plan: Any, items: Sequence[Any], settings: Any, run_dirs: Sequence[str]) -> dict[str, Any]:
    """Judge the canary fresh (no cache), compare with this judge's previous record, append this one to
    the history; what the run's manifest keeps under ``canary``."""
    from alignbench.cache import NullStore
    from alignbench.judges import make_client
    from alignbench.scoring import judge_items
    from alignbench.types import Status

    config = plan.config
    client = make_client(config)
    try:
        judgments, engine = await judge_items(items, plan.rubric, client, NullStore(), config.name,
                                              retry=settings.retry, parse_retries=settings.parse_retries,
                                              serve_hint=config.serve_hint)
    finally:
        await client.aclose()
    scores = {str(j.question_id): (float(j.overall) if j.status is Status.OK and j.overall is not None else None)
              for j in judgments}
    who = identity(config, getattr(engine, "reported", None))
    path = history_path(settings.cache)
    earlier = [r for r in read_history(path, config.name) if r.get("rubric") == plan.rubric.id]
    result = compare(earlier[-1] if earlier else None, scores)
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "judge": who,
              "rubric": plan.rubric.id, "run": list(run_dirs), "scores": scores,
              "n_failed": sum(v is None for v in scores.values())}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:  # one line per run, appended whole
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    mean = [v for v in scores.values() if v is not None]
    return {"items": len(items), "n_failed": record["n_failed"], "mean": rnd(np.mean(mean)) if mean else None,
            "judge": who, "history": str(path), **result}


def drift_message(canary: dict[str, Any]) -> str | None:
    """The footer line of a drifted canary, naming the earlier run compared with; None without drift."""
    if not canary or not canary.get("drift"):
        return None
    prev = canary.get("compared_with") or {}
    runs = ", ".join(prev.get("run") or []) or "?"
    return (f"judge canary drift: {canary['judge']['name']} scores the canary {fmt.signed(canary['shift'])} points "
            f"differently than on {prev.get('time')} (run {runs}); p {fmt.p_value(canary['p_value'])} over "
            f"{canary['n_compared']} items. The judge may have changed behind the same name.")
