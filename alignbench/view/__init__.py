"""``alignbench view``: a local web viewer to browse run folders, read the judge's reasons, and review
judgments.

* ``data``    — loads runs, answers, ensembles' per-judge runs, pairwise verdicts; the one filter/sort.
* ``queue``   — which judgments a reviewer should see first (the rule is in its docstring).
* ``reviews`` — ``reviews.jsonl``: reading, appending under a lock, judge–reviewer agreement (used by
  ``show``, ``report`` and ``meta-eval`` too).
* ``render``  — HTML pages (Jinja, autoescaped), shared by the server and the static export.
* ``server``  — the Starlette app, its safety rules, uvicorn.
* ``export``  — the same pages as static files.
"""

from __future__ import annotations

from alignbench.reviews import Agreement, Review, load_reviews, review_agreement

__all__ = ["Agreement", "Review", "load_reviews", "review_agreement"]
