"""``alignbench judges``: which judges exist and whether this machine can use them.

What is present (packages, keys) is worked out by the library (``alignbench.api.judge_catalog``,
which never reads a key's value into its result); this module only renders it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from alignbench.cli.app import app, console
from alignbench.cli.options import print_json
from alignbench.reporting.tables import FitTable as Table


@app.command()
def judges(
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """List judge presets: backend, model, server, rubric, and whether package and key are present."""
    from alignbench import api

    catalog = api.judge_catalog()
    rows = catalog.presets
    if fmt == "json":
        print_json(catalog.as_json())
        return
    # at 80 columns the URL stays whole and the columns of least use go first (FitTable)
    table = Table(title="judge presets", title_justify="left", keep=("preset", "model", "base URL"),
                  drop=("package", "rubric", "backend", "key"))
    for column in ("preset", "backend", "model"):
        table.add_column(column, no_wrap=True)
    table.add_column("base URL", overflow="fold")
    for column in ("rubric", "package", "key"):
        table.add_column(column, no_wrap=True)
    key_envs: dict[str, str] = {}
    for row in rows:
        urls = "\n".join(row["base_url"]) or f"[dim]{catalog.default_urls[row['backend']]}\n(default)[/]"
        package = "[green]ok[/]" if row["package"] == "ok" else f"[red]{row['package']}[/]"
        key = {"set": "[green]set[/]", "not set": "[red]not set[/]"}.get(row["key"], row["key"])
        if row["key_env"]:
            key_envs[row["key_env"]] = row["backend"]
        table.add_row(row["name"], row["backend"], row["model"], urls, row["rubric"], package, key)
    console.print(table)
    if key_envs:
        console.print("[dim]keys are read from " + ", ".join(f"${env} ({backend})" for env, backend in key_envs.items())
                      + "; they are never printed or stored[/]", highlight=False)
    for row in rows:
        if row["install"]:
            console.print(f"[dim]{escape(row['name'])}: {escape(row['install'])}[/]", highlight=False)  # [local]
    console.print(f"[dim]Any model: --judge BACKEND:MODEL with backend {', '.join(sorted(catalog.default_urls))} "
                  "(e.g. openai:qwen2.5-72b-instruct, zhipuai:glm-4-air, hf:/path/to/model). "
                  "Several servers: repeat --judge-base-url.[/]", highlight=False)
