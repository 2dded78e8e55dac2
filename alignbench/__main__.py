"""``python -m alignbench`` is the ``alignbench`` command."""

from alignbench.cli import main

main()
