"""``alignbench view``: a local web viewer to browse run folders, read the judge's reasons, and review
judgments (the review file itself is ``alignbench.reviews``, read by ``show``, ``report`` and ``meta-eval`` too).

* ``data``    — loads runs, answers, ensembles' per-judge runs, pairwise verdicts; the one filter/sort.
* ``queue``   — which judgments a reviewer should see first (the rule is in its docstring).
* ``render``  — HTML pages (Jinja, autoescaped), shared by the server and the static export.
* ``server``  — the Starlette app (a handler per page, ``ROUTES``), its safety rules, uvicorn.
* ``export``  — the same pages as static files.
"""
