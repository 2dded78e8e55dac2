"""``alignbench canary [JUDGE]``: the judge canary's history (docs/trust.md §7). Reads the history file
beside the reply cache; calls nothing."""

from __future__ import annotations

from typing import Annotated

import typer

from alignbench.cli.app import app, console, guarded
from alignbench.cli.options import CacheOpt, FormatOpt, print_json


@app.command()
def canary(
    judge: Annotated[str | None, typer.Argument(help="A judge name (as `score --judge` gave it); default: every judge.")]
        = None,
    cache: CacheOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Show the judge canary's history: per run, when, the judge's identity (model id, hosts, model ids its
    replies reported), the canary's mean score and the change from the judge's previous record."""
    from rich.markup import escape
    from rich.table import Table

    from alignbench import api
    from alignbench.stats import fmt as f

    with guarded():
        records = api.canary_history(judge, cache=cache)
    if fmt == "json":
        print_json(records)
        return
    if not records:
        console.print(f"no canary records{f' of {judge}' if judge else ''} (score with --canary to start one)",
                      markup=False, highlight=False)
        return
    table = Table(title="judge canary history", header_style="bold", title_style="bold",
                  caption="model @ hosts: the model id sent and the servers; served: the model ids its replies "
                          "reported; mean: the canary items' mean overall score; change: mean paired change from "
                          "the same judge's previous record (same rubric; `--format json` has every field)")
    for col in ("time", "judge", "model", "served", "mean", "change", "failed", "run"):
        numeric = col in ("mean", "change", "failed")
        table.add_column(col, justify="right" if numeric else "left", no_wrap=numeric or col in ("time", "judge"),
                         overflow="fold", min_width=6 if numeric else None)
    last: dict[tuple[str, str], dict] = {}
    for r in records:
        who, scores = r.get("judge", {}), r.get("scores", {})
        ok = [v for v in scores.values() if v is not None]
        key = (who.get("name", ""), r.get("rubric", ""))
        prev = last.get(key)
        change = None
        if prev:
            pairs = [(v, prev["scores"].get(k)) for k, v in scores.items()
                     if v is not None and prev["scores"].get(k) is not None]
            change = sum(a - b for a, b in pairs) / len(pairs) if pairs else None
        last[key] = r
        table.add_row(str(r.get("time", ""))[:16].replace("T", " "), escape(who.get("name", "")),
                      escape(f"{who.get('model', '')} @ {', '.join(who.get('hosts') or [])}"),
                      escape(", ".join(who.get("served_models") or [])),
                      f.num(sum(ok) / len(ok) if ok else None), f.signed(change),
                      str(r.get("n_failed", 0)), escape(", ".join(r.get("run") or [])))
    console.print(table)
