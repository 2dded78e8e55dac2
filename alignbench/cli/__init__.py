"""Command-line interface: ``alignbench <command>``. One module per command group."""

from __future__ import annotations

from alignbench.cli import answer as _answer  # noqa: F401  (answer, run)
from alignbench.cli import batches as _batches  # noqa: F401  (batches, batches cancel)
from alignbench.cli import canary as _canary  # noqa: F401  (canary)
from alignbench.cli import compare as _compare  # noqa: F401  (compare, winrate)
from alignbench.cli import exporting as _exporting  # noqa: F401  (export)
from alignbench.cli import importing as _importing  # noqa: F401  (import)
from alignbench.cli import judges as _judges  # noqa: F401  (judges)
from alignbench.cli import metaeval as _metaeval  # noqa: F401  (meta-eval; score --judge a,b)
from alignbench.cli import probe as _probe  # noqa: F401  (probe)
from alignbench.cli import report as _report  # noqa: F401  (report)
from alignbench.cli import score as _score  # noqa: F401  (registers commands)
from alignbench.cli import trust as _trust  # noqa: F401
from alignbench.cli import view as _view  # noqa: F401  (view)
from alignbench.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
