"""A paired sign-flip permutation test, exact: for a few dozen paired differences (the judge canary's
items scored by the same judge name at two times) every sign pattern of the non-zero differences is
enumerated, so the p-value has no Monte-Carlo error and needs no seed.

Why sign flips and not Wilcoxon: a judge at temperature 0 gives many identical scores, i.e. many zero
differences, which Wilcoxon's normal approximation and its zero-handling variants treat awkwardly; under
"no change" each non-zero difference is as likely positive as negative, which is exactly what flipping
signs tests, on the mean difference itself (the figure reported as the drift's size).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_EXACT = 20  # 2^20 sign patterns, in chunks: about a second


def sign_flip_p(differences: Sequence[float]) -> float:
    """Two-sided p-value of the mean of paired differences under random signs (exact). Zero differences
    carry no sign and are kept (they pull the mean toward 0 in every pattern alike). 1.0 for none non-zero."""
    d = np.asarray(differences, dtype=float)
    nz = d[d != 0]
    if not len(nz):
        return 1.0
    if len(nz) > MAX_EXACT:
        raise ValueError(f"exact sign-flip test takes at most {MAX_EXACT} non-zero differences, not {len(nz)}")
    observed = abs(nz.sum())
    k = len(nz)
    hits = 0
    chunk = 1 << min(k, 16)
    for start in range(0, 1 << k, chunk):
        codes = np.arange(start, start + chunk, dtype=np.int64)
        signs = 1 - 2 * ((codes[:, None] >> np.arange(k)) & 1)  # every sign pattern once
        hits += int((np.abs(signs @ nz) >= observed - 1e-9).sum())
    return hits / (1 << k)
