"""Terminal tables that never cut a figure: ``FitTable`` is a rich ``Table`` that, when it is drawn narrower
than it would like (an 80-column terminal, a pipe, a CI log), gives the figures their full width and lets
the labels wrap, fold or go.

Why not rich's own fitting: rich shrinks the widest wrappable columns and then, as a last resort, every
column evenly, so a number in a no-wrap column becomes ``…`` (``70.5 ± 1…``, ``-0…``) and narrow columns
vanish. Here the widths are decided before rich draws: right-justified columns hold figures and keep the
width of their widest cell (their header may wrap between words); the other columns are labels and share
what is left, folding long words, down to a floor; columns named in ``drop`` (labels first, then figures
of least use) go, in that order, when even the floor does not fit, and the caption says which went.
Every table in the terminal output is one of these, so the rule holds everywhere (tests/test_tables.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

LABEL_FLOOR = 10  # cells a label column keeps at least (five CJK characters), before it is dropped


def _plain(renderable: Any) -> str:
    if isinstance(renderable, Text):
        return renderable.plain
    if isinstance(renderable, str):
        return Text.from_markup(renderable).plain
    return ""


def _longest_word(text: str) -> int:
    return max((cell_len(w) for w in text.split()), default=0)


class FitTable(Table):
    """A ``rich.table.Table`` fitted to the width it is drawn at (see the module docstring). ``drop``: the
    headers of the columns that may be left out when the width is short, in the order they go; ``keep``:
    the headers of label columns whose words are never broken (a URL, an id to copy): they wrap between
    words only."""

    def __init__(self, *headers: Column | str, drop: Sequence[str] = (), keep: Sequence[str] = (),
                 **kwargs: Any) -> None:
        super().__init__(*headers, **kwargs)
        self.drop = list(drop)
        self.keep = set(keep)
        self._caption = kwargs.get("caption")

    def _is_figure(self, column: Column) -> bool:
        return column.justify == "right"

    def _natural(self, console: Console, options: ConsoleOptions, column: Column) -> tuple[int, int]:
        """(width it would like, width it needs): a figure would like its header on one line and needs its
        widest cell and the longest word of its header; a label would like its widest cell and needs the floor
        (or less if it is narrower)."""
        cells = list(column.cells)
        widest = max((Measurement.get(console, options, c).maximum for c in cells), default=0)
        header = _plain(column.header)
        if self._is_figure(column):
            need = max(widest, _longest_word(header), 1)
            return max(need, cell_len(header)), need
        want = max(widest, cell_len(header), 1)
        if header in self.keep:  # wraps between words, never inside one
            return want, max(max((_longest_word(_plain(c)) for c in cells), default=0), _longest_word(header))
        return want, min(want, LABEL_FLOOR)

    def _fit(self, console: Console, options: ConsoleOptions) -> bool:
        """Fit the columns to the width; False when even the figures alone do not fit side by side."""
        width = options.max_width
        dropped: list[str] = []
        everything = list(self.columns)
        while True:
            columns = self.columns
            overhead = self._extra_width + sum(self._get_padding_width(i) for i in range(len(columns)))
            sizes = [self._natural(console, options, c) for c in columns]
            room = width - overhead
            if sum(want for want, _ in sizes) <= room:
                for c, (want, _) in zip(columns, sizes, strict=True):
                    c.width, c.no_wrap, c.overflow = want, False, "fold"
                break
            fits = sum(need for _, need in sizes) <= room
            if fits or not self._droppable(dropped):
                hard = sum(size[1] if self._is_figure(c) or _plain(c.header) in self.keep else 3
                           for c, size in zip(columns, sizes, strict=True))
                if not fits and hard > room:  # stacked instead: room for every column again
                    self.columns = everything
                    for i, c in enumerate(self.columns):
                        c._index = i
                    return False
                self._share(columns, sizes, room)
                break
            self._remove(self._droppable(dropped)[0], dropped)
        if dropped:
            note = f"left out at this width: {', '.join(dropped)} (wider terminal or --format json)"
            self.caption = f"{self._caption} · {note}" if self._caption else note
        return True

    def _stacked(self) -> Table:
        """Too many figures for one line: each row as a block of ``header  value`` lines, so every figure
        is still whole (a row's first cell heads its block)."""
        table = Table(title=self.title, title_style=self.title_style, box=self.box, show_header=False,
                      caption=(f"{self._caption} · " if self._caption else "") + "one block per row at this width")
        table.add_column(style="bold", overflow="fold")
        table.add_column(overflow="fold")
        for r in range(self.row_count):
            if r:
                table.add_section()
            for c in self.columns:
                cells = list(c.cells)
                table.add_row(c.header, cells[r] if r < len(cells) else "")
        return table

    def _droppable(self, dropped: Iterable[str]) -> list[str]:
        present = {_plain(c.header) for c in self.columns}
        return [h for h in self.drop if h in present and h not in dropped]

    def _remove(self, header: str, dropped: list[str]) -> None:
        self.columns = [c for c in self.columns if _plain(c.header) != header]
        for i, c in enumerate(self.columns):
            c._index = i
        dropped.append(header)

    def _share(self, columns: list[Column], sizes: list[tuple[int, int]], room: int) -> None:
        """Figures get what they need; the labels get what they need (a kept column its longest word,
        another the floor) and share the rest, the narrowest first: each what it would like up to an even
        share of what is left, folding what does not fit on a line."""
        labels = sorted((i for i, c in enumerate(columns) if not self._is_figure(c)), key=lambda i: sizes[i][0])
        left = room - sum(size[1] for i, size in enumerate(sizes) if i not in labels)
        kept = [i for i in labels if _plain(columns[i].header) in self.keep]
        soft = len(labels) - len(kept)
        # nothing left to drop and still short: the other labels go below the floor
        floor = min(LABEL_FLOOR, max(3, (left - sum(sizes[i][1] for i in kept)) // max(soft, 1)))
        base = {i: sizes[i][1] if i in kept else min(sizes[i][1], floor) for i in labels}
        left -= sum(base.values())
        for n, i in enumerate(labels):
            extra = max(0, min(sizes[i][0] - base[i], left // (len(labels) - n)))
            columns[i].width = base[i] + extra
            columns[i].no_wrap, columns[i].overflow = False, "fold"
            left -= extra
        for i, c in enumerate(columns):
            if i not in labels:  # its widest cell fits on one line: only its header wraps, between words
                c.width, c.no_wrap, c.overflow = sizes[i][1], False, "fold"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.columns and not self._fit(console, options):
            yield from self._stacked().__rich_console__(console, options)
            return
        yield from super().__rich_console__(console, options)


__all__ = ["FitTable", "LABEL_FLOOR"]
