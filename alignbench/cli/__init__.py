"""Command-line interface: ``alignbench <command>``. One module per command group."""

from __future__ import annotations

from alignbench.cli import score as _score  # noqa: F401  (registers commands)
from alignbench.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
