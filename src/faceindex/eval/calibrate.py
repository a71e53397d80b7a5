"""Calibrate a model's decision on someone's own photos (``faceindex calibrate DIR``).

The shipped thresholds come from the development people (``benchmarks/generalisation.py``);
a deployment whose photos differ (cameras, ages, lighting, who its people are) is better
served by its own. Given a folder with one subfolder of photos per person, every photo is
embedded once and scored against every other:

- the verification threshold is set for the target false match rate over all impostor
  pairs, but only when there are enough of them to support it (rule of three: 3/FMR pairs,
  3,000 for 1e-3);
- each person's first photos are enrolled (up to ``enrol``) and the rest probe every
  enrolled person with the gallery's rule (mean-top2), giving person-level impostor scores,
  whose tail is fitted only from 2,000 scores up (20 above the 99th percentile), and
  genuine scores, summarised only from 50 up.

A part that the photos cannot support is refused with the reason, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceindex.calibration import Calibration, GenuineScores, ImpostorTail, trials_needed
from faceindex.errors import FaceIndexError, InvalidInputError
from faceindex.eval import metrics
from faceindex.io.files import person_folders
from faceindex.pipeline import Pipeline

#: Person-level impostor scores needed to fit the tail above their 99th percentile.
MIN_TAIL_SCORES = 2000
#: Genuine person-level scores needed to summarise their distribution.
MIN_GENUINE_SCORES = 50
TAIL_QUANTILE = 0.99
GENUINE_SHARES = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    calibration: Calibration
    #: Why each refused part was refused (empty when every part is supported).
    refused: tuple[str, ...]
    #: Photos that could not be used: (path, error code).
    failed: tuple[tuple[str, str], ...]
    #: Equal error rate over all pairs (None without both kinds of pair).
    eer: float | None


def calibrate_folder(
    folder: Path,
    pipeline: Pipeline,
    *,
    target_fmr: float = 1e-3,
    enrol: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> CalibrationResult:
    """Measure ``pipeline``'s scores on ``folder``/<person>/<photos> and calibrate on them."""
    if not 0.0 < target_fmr < 1.0:
        raise InvalidInputError(f"target FMR must be between 0 and 1, got {target_fmr}")
    if enrol < 1:
        raise InvalidInputError("enrol must be at least 1 photo per person")
    people = person_folders(folder)
    if len(people) < 2:
        raise InvalidInputError(f"{folder}: calibration needs photos of at least two people")
    vectors, owners, failed = [], [], []
    total = sum(len(photos) for _, photos in people)
    done = 0
    for index, (_, photos) in enumerate(people):
        for path in photos:
            try:
                face = pipeline.subject_face(path)
            except FaceIndexError as exc:
                failed.append((str(path), exc.code))
            else:
                if face.embedding is not None:
                    vectors.append(face.embedding.vector)
                    owners.append(index)
            done += 1
            if progress is not None:
                progress(done, total)
    if len(set(owners)) < 2:
        raise InvalidInputError(f"{folder}: faces were found for fewer than two people")
    x = np.stack(vectors)
    who = np.array(owners)
    sims = x @ x.T
    a, b = np.triu_indices(len(who), k=1)
    pair_scores, same = sims[a, b], who[a] == who[b]
    refused: list[str] = []

    n_imp = int((~same).sum())
    threshold = None
    if n_imp >= trials_needed(target_fmr):
        threshold = _threshold_at_fmr(pair_scores[~same], target_fmr)
    else:
        refused.append(
            f"verification threshold: {n_imp} impostor pairs cannot support a false match "
            f"rate of {target_fmr:g} (it needs {trials_needed(target_fmr)}: more people or "
            "more photos, or a higher target FMR)"
        )
    impostor, genuine = _person_scores(sims, who, enrol)
    tail = None
    if len(impostor) >= MIN_TAIL_SCORES:
        u = float(np.quantile(impostor, TAIL_QUANTILE))
        excess = impostor[impostor > u] - u
        if len(excess) and float(excess.mean()) > 0:
            tail = ImpostorTail(u=u, p_u=1.0 - TAIL_QUANTILE, beta=float(excess.mean()))
    if tail is None:
        refused.append(
            f"open-set threshold: {len(impostor)} person-level impostor scores cannot "
            f"support a tail model (it needs {MIN_TAIL_SCORES}: more people)"
        )
    genuine_scores = None
    if len(genuine) >= MIN_GENUINE_SCORES:
        # Quantiles are non-decreasing already; the running max guards float ties.
        qs = np.maximum.accumulate([float(np.quantile(genuine, q)) for q in GENUINE_SHARES])
        points = tuple((share, float(q)) for share, q in zip(GENUINE_SHARES, qs, strict=True))
        genuine_scores = GenuineScores(points)
    else:
        refused.append(
            f"expected miss rate: {len(genuine)} genuine probes cannot support it (it needs "
            f"{MIN_GENUINE_SCORES}: more photos per person, beyond the {enrol} enrolled)"
        )
    eer = metrics.eer(pair_scores, same)[0] if same.any() and (~same).any() else None
    calibration = Calibration(
        model_id=pipeline.model_id,
        target_fmr=target_fmr,
        threshold=threshold,
        tail=tail,
        genuine=genuine_scores,
        people=len(set(owners)),
        photos=len(owners),
        genuine_pairs=int(same.sum()),
        impostor_pairs=n_imp,
        impostor_person_scores=len(impostor),
        genuine_person_scores=len(genuine),
    )
    return CalibrationResult(calibration, tuple(refused), tuple(failed), eer)


def _threshold_at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """The lowest score whose false match rate over ``impostor`` is at most ``fmr``."""
    ordered = np.sort(impostor)[::-1]
    allowed = math.floor(fmr * len(ordered))  # this many may reach the threshold
    return float(np.nextafter(ordered[allowed], np.inf)) if allowed < len(ordered) else 0.0


def _person_scores(sims: np.ndarray, who: np.ndarray, enrol: int) -> tuple[np.ndarray, np.ndarray]:
    """Person-level (mean-top2) scores of probes against enrolled people: impostor, genuine."""
    enrolled: dict[int, np.ndarray] = {}
    probes: list[int] = []
    for person in np.unique(who):
        rows = np.flatnonzero(who == person)
        if len(rows) < 2:
            enrolled[int(person)] = rows  # no probe of their own, still an impostor target
            continue
        k = min(enrol, len(rows) - 1)
        enrolled[int(person)], probes = rows[:k], [*probes, *rows[k:].tolist()]
    impostor, genuine = [], []
    probe_rows = np.array(probes, dtype=np.int64)
    if not len(probe_rows):
        return np.zeros(0), np.zeros(0)
    for person, rows in enrolled.items():
        block = np.sort(sims[np.ix_(probe_rows, rows)], axis=1)[:, ::-1][:, :2].mean(axis=1)
        mated = who[probe_rows] == person
        genuine.append(block[mated])
        impostor.append(block[~mated])
    return np.concatenate(impostor), np.concatenate(genuine)
