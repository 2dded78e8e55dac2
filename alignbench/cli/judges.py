"""``alignbench judges``: which judges exist and whether this machine can use them.

It checks packages with ``importlib.util.find_spec`` (nothing heavy is imported) and keys by
whether the environment variable is set; the key itself is never read into the output.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.table import Table

from alignbench.cli.app import app, console
from alignbench.cli.options import print_json


def _package_status(backend: str) -> tuple[bool, list[str]]:
    from alignbench.judges import backends

    missing = backends()[backend].missing_packages()
    return not missing, missing


def _key_status(spec: dict[str, Any]) -> str:
    env = spec.get("api_key_env")
    if not env:
        return "not needed"
    if os.environ.get(env):
        return "set"
    return "optional" if spec.get("key_required", True) is False else "not set"


def judge_rows() -> list[dict[str, Any]]:
    """One row per preset: what it is and whether it is usable here (no secrets)."""
    from alignbench.judges import backends, load_presets

    rows = []
    for name, spec in sorted(load_presets().items()):
        backend = spec["backend"]
        ok, missing = _package_status(backend)
        urls = spec.get("base_url")
        urls = [u.strip() for u in urls.split(",")] if isinstance(urls, str) else list(urls or [])
        rows.append({
            "name": name, "backend": backend, "model": spec["model"],
            "base_url": urls, "rubric": spec.get("rubric", "alignbench"),
            "package": "ok" if ok else f"missing {', '.join(missing)}",
            "install": None if ok else (backends()[backend].install or f"pip install {' '.join(missing)}"),
            "key_env": spec.get("api_key_env"),
            "key": _key_status(spec),
            "options": spec.get("options", {}),
        })
    return rows


@app.command()
def judges(
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """List judge presets: backend, model, server, rubric, and whether package and key are present."""
    from alignbench.judges import backends

    rows = judge_rows()
    if fmt == "json":
        print_json(rows)
        return
    table = Table(title="judge presets", title_justify="left")
    for column in ("preset", "backend", "model"):
        table.add_column(column, no_wrap=True)
    table.add_column("base URL", overflow="fold")
    for column in ("rubric", "package", "key"):
        table.add_column(column, no_wrap=True)
    key_envs: dict[str, str] = {}
    for row in rows:
        urls = "\n".join(row["base_url"]) or f"[dim]{backends()[row['backend']].default_url} (default)[/]"
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
            console.print(f"[dim]{row['name']}: {row['install']}[/]", highlight=False)
    console.print(f"[dim]Any model: --judge BACKEND:MODEL with backend {', '.join(sorted(backends()))} "
                  "(e.g. openai:qwen2.5-72b-instruct, zhipuai:glm-4-air, hf:/path/to/model). "
                  "Several servers: repeat --judge-base-url.[/]", highlight=False)
