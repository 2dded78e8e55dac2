"""alignbench: Chinese-first, multi-dimension LLM-as-judge scoring (AlignBench rubrics).

Data flows one way: load -> prompt -> judge -> parse -> aggregate -> report. The Python API
(``score``, ``compare``, ``meta_eval``, ``answer``, ``run``, ``report``, ``show``, ``prompt``, ``winrate``,
``calibrate``, ``bridge``, ``audit``, ``load_run``, ``judge_catalog``, the ``*_async`` forms and
``JudgeSettings``, the judge settings score, compare and meta-eval share) is re-exported here from
``alignbench.api``, imported on first use so that ``import alignbench`` (and ``alignbench --help``) stays
cheap.
"""

from __future__ import annotations

from typing import Any

_TYPES = {"__version__", "Answer", "ModelReply", "ModelRequest", "Judgment", "Question", "Status", "Summary"}
_API = {"score", "score_async", "compare", "compare_async", "meta_eval", "meta_eval_async", "answer", "answer_async",
        "run", "run_async", "report", "load_run", "Run", "RunError", "PairwiseRun", "plan_score", "plan_compare",
        "plan_meta_eval", "score_from_plan", "score_from_plan_async", "show", "prompt", "judge_catalog",
        "calibrate", "bridge", "audit", "winrate", "read_preferences", "JudgeSettings"}
_API.add("import_judgments")  # alignbench import


def __getattr__(name: str) -> Any:
    if name in _TYPES:
        from alignbench import types

        return getattr(types, name)
    if name in _API:
        from alignbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'alignbench' has no attribute {name!r}")


__all__ = ["__version__", *sorted(_TYPES), *sorted(_API)]  # noqa: PLE0604
