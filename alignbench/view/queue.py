"""The review queue: which judgments a reviewer should look at first.

A reviewer has a budget (say 50 labels). A label is worth most where the judge's number is least
trustworthy or where it moves a conclusion, so each judgment gets a usefulness score from the facts
below (points add up; the reasons are shown next to every queue entry):

=====================================================  ===============  ====================================
fact                                                   points           why a human look helps
=====================================================  ===============  ====================================
pairwise verdict flips with the order (win ↔ loss)     4                the judge followed the position
pairwise verdict changes with the order (not a flip)   2                same, weaker
ensemble judges differ by d ≥ 1 point                  min(d, 5)        one judge is off by d/2 or more
a judge of the ensemble failed this answer             1.5              the mean rests on fewer judges
the judge's reply had to be asked again (parse retry)  2                a rambling judge is often unsure
the judgment failed (no score)                         2                only a human can score it now
the change vs the baseline is typical of its category  1 + min(|m|, 2)  is the category's move m real?
=====================================================  ===============  ====================================

"Typical" means: the category's mean change m (this run − baseline, over the questions both runs
scored) is at least 0.25 points, and this question changed in the same direction by an amount within
1 point of m. Checking a few such questions tells whether "逻辑推理 dropped 0.8" is the model or
the judge; an outlier question tells little about the category.

Ties go by question id. Judgments with no point at all follow, in a seeded order that takes the
categories in turn, so labels spent there estimate the judge's agreement over the whole benchmark.
A judgment with a current review leaves the queue; one whose review went stale comes back.

The viewer also offers a *random-sample* queue: every judgment, flagged or not, in a seeded random
order that takes the categories in turn. Its reviews are stamped ``picked: sample``. They are the
labels a calibration may treat as a random sample; labels from this usefulness queue are chosen
because the judge looks wrong, which is what finds failures and what would bias an error estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignbench.stats import fmt

TYPICAL_MIN_CATEGORY_CHANGE = 0.25
TYPICAL_WINDOW = 1.0


@dataclass(frozen=True)
class Facts:
    """What is known about one judgment that bears on the value of reviewing it."""

    ok: bool
    status: str = "ok"
    attempts: int = 1
    n_judges: int = 1  # an ensemble judgment's attempts add up over its judges
    spread: float | None = None  # ensemble: max − min of the judges' overall scores
    judge_failed: bool = False
    flip: bool = False
    inconsistent: bool = False
    delta: float | None = None  # this run − baseline on this question
    category_delta: float | None = None  # mean of ``delta`` over the category
    category: str = ""


def usefulness(f: Facts) -> tuple[float, list[str]]:
    """(points, reasons) of one judgment under the rule in this module's docstring."""
    points = 0.0
    reasons: list[str] = []
    if f.flip:
        points += 4
        reasons.append("pairwise position flip")
    elif f.inconsistent:
        points += 2
        reasons.append("pairwise verdict depends on order")
    if f.spread is not None and f.spread >= 1:
        points += min(f.spread, 5.0)
        reasons.append(f"judges differ by {f.spread:g}")
    if f.judge_failed:
        points += 1.5
        reasons.append("a judge of the ensemble failed")
    if f.attempts > f.n_judges:
        points += 2
        reasons.append("parse retry")
    if not f.ok:
        points += 2
        reasons.append(f"failed ({f.status})")
    m = f.category_delta
    if (f.delta is not None and m is not None and abs(m) >= TYPICAL_MIN_CATEGORY_CHANGE and f.delta * m > 0
            and abs(f.delta - m) <= TYPICAL_WINDOW):
        points += 1 + min(abs(m), 2.0)
        reasons.append(f"typical of {f.category}'s change ({fmt.signed(m)})")
    return points, reasons
