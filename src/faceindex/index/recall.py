"""How well an approximate index agrees with exact search (reported by ANN backends)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceindex.errors import InvalidInputError
from faceindex.index.base import PAD_ID, IdArray


@dataclass(frozen=True, slots=True)
class RecallReport:
    """How well an approximate index agrees with exact search on a sample of queries.

    ``recall`` is the mean over queries of ``|ann_top_k & exact_top_k| / |exact_top_k|``;
    ``rank1_agreement`` the fraction of queries whose best hit is the same (what an
    identification decision depends on most).
    """

    k: int
    n_queries: int
    recall: float
    rank1_agreement: float


def recall_at_k(approx: IdArray, exact: IdArray) -> RecallReport:
    """Compare two ``(m, k)`` id arrays (padding ``-1`` ignored) as a :class:`RecallReport`."""
    a = np.asarray(approx, dtype=np.int64)
    e = np.asarray(exact, dtype=np.int64)
    if a.shape != e.shape or a.ndim != 2:
        raise InvalidInputError(f"recall needs two (m, k) id arrays, got {a.shape} {e.shape}")
    m, k = e.shape
    hits = 0.0
    for row_a, row_e in zip(a, e, strict=True):
        truth = set(row_e[row_e != PAD_ID].tolist())
        if truth:
            hits += len(truth.intersection(row_a.tolist())) / len(truth)
        else:
            hits += 1.0
    rank1 = float(np.mean(a[:, 0] == e[:, 0])) if m else 1.0
    return RecallReport(k=k, n_queries=m, recall=hits / m if m else 1.0, rank1_agreement=rank1)
