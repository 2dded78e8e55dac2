"""Read AlpacaEval annotation files into the preference table used by ``alignbench.pairwise.winrate``.

An AlpacaEval annotation file is a JSON list of objects with ``instruction``, ``output_1`` (the
baseline's answer), ``output_2`` (the evaluated model's answer), ``generator_1``, ``generator_2`` and
``preference`` in [1, 2] (1 = baseline preferred, 2 = model preferred). Legacy files write 0 for a
draw; failed judgments are null/NaN and some files store the number as a string.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from alignbench import safejson
from alignbench.pairwise.winrate import text_length

__all__ = [
    "alpaca_preference",
    "read_alpaca_annotations",
]


def alpaca_preference(raw: Any) -> float:
    """Map an AlpacaEval preference to ours: p ∈ [1, 2] → p − 1; legacy 0 → 0.5; missing → NaN.

    Anything else is an error rather than a guess: a value of, say, 0.7 could be either convention,
    and silently reading it one way would shift the win rate.
    """
    if raw is None:
        return math.nan
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in {"", "nan", "none", "null"}:
            return math.nan
        raw = float(text)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError(f"preference {raw!r} is not a number")
    value = float(raw)
    if math.isnan(value):
        return math.nan
    if value == 0.0:
        return 0.5
    if 1.0 <= value <= 2.0:
        return value - 1.0
    raise ValueError(f"preference {value!r} outside AlpacaEval's range [1, 2] (or legacy 0)")


def read_alpaca_annotations(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    length_unit: Literal["chars", "words"] = "chars",
    question_id: Literal["instruction", "position"] = "instruction",
    model_name: Literal["generator", "file"] = "generator",
) -> pd.DataFrame:
    """Load one or more AlpacaEval annotation files as a preference table.

    Columns: ``model`` (``generator_2``, or the file stem with ``model_name="file"`` — useful when a
    generator is recorded under a placeholder name such as NullModel's ``example``), ``baseline``
    (``generator_1``), ``question_id``, ``preference`` in [0, 1] (NaN = failed), ``len_model``,
    ``len_baseline``, plus ``position`` (row index in the file, the key of AlpacaEval's difficulty
    vector), ``instruction``, ``dataset`` and ``source`` (the file).

    The question id defaults to the instruction text, so files need not share a row order; use
    ``question_id="position"`` to key by row index instead. Length defaults to characters, as in
    AlpacaEval (English). A (model, baseline, question) seen twice is rejected: it would be counted
    twice without anyone noticing (e.g. the same file passed twice).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    rows: list[dict[str, Any]] = []
    for path in paths:
        path = Path(path)
        try:
            records = safejson.read_json(path)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}: {safejson.describe(exc)}") from None
        if not isinstance(records, list):
            raise ValueError(f"{path}: expected a JSON list of annotation objects")
        for pos, rec in enumerate(records):
            try:
                instruction = rec["instruction"]
                out_base = rec.get("output_1") or ""
                out_model = rec.get("output_2") or ""
                generator = path.stem if model_name == "file" else str(rec["generator_2"])
                pref = alpaca_preference(rec.get("preference"))
                baseline = str(rec["generator_1"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}: record {pos}: {exc}") from exc
            rows.append(
                {
                    "model": generator,
                    "baseline": baseline,
                    "question_id": instruction if question_id == "instruction" else pos,
                    "preference": pref,
                    "len_model": text_length(out_model, length_unit),
                    "len_baseline": text_length(out_base, length_unit),
                    "position": pos,
                    "instruction": instruction,
                    "dataset": rec.get("dataset"),
                    "source": str(path),
                }
            )
    df = pd.DataFrame(rows)
    if df.empty:
        raise ValueError("no annotation records read")
    dup = df.duplicated(["model", "baseline", "question_id"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise ValueError(
            f"{int(dup.sum())} duplicated (model, baseline, question) rows, e.g. model {first['model']!r} "
            f"in {first['source']}; pass each file once"
        )
    df["preference"] = df["preference"].astype(float)
    return df
