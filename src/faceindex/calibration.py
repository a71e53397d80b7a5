"""Score calibration as data: how often strangers reach a score, for any gallery size.

An open-set gallery names a stranger when the best of its N people's scores crosses the
threshold, and the chance of that grows with N: a threshold that gives 1% false positive
identifications (FPIR) with 10 people gives far more with 10,000. So the threshold is not a
constant but a function of the gallery's size.

:class:`ImpostorTail` models the upper tail of the *person-level* impostor score (a
stranger's probe against one enrolled person, aggregated over that person's templates by
the gallery's rule) as exponential above its 99th percentile ``u`` (a peaks-over-threshold
model: the excesses of a light-tailed score over a high threshold are close to
exponential). With ``P(score > t) = p_u * exp(-(t - u) / beta)`` for ``t > u`` and people
scored independently, a gallery of N people gives ``FPIR(t) = 1 - (1 - P(score > t)) ** N``,
and the threshold for a target FPIR is where that equals the target. The parameters are
fitted by ``benchmarks/generalisation.py`` on the development people and shipped in each
embedder's spec; the same benchmark measures the FPIR they give on held-out people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ImpostorTail:
    """``P(person-level impostor score > t) = p_u * exp(-(t - u) / beta)`` for ``t > u``."""

    #: The score above which the tail is modelled (a high quantile of impostor scores).
    u: float
    #: The share of impostor scores above ``u``.
    p_u: float
    #: The mean excess over ``u`` (the exponential's scale), in cosine units.
    beta: float

    def __post_init__(self) -> None:
        if not (0.0 < self.p_u < 1.0) or self.beta <= 0.0:
            raise ValueError(f"an impostor tail needs 0 < p_u < 1 and beta > 0, got {self}")

    def exceed(self, threshold: float) -> float:
        """The chance that one stranger-vs-person score reaches ``threshold``."""
        if threshold <= self.u:
            return self.p_u  # below the modelled tail: at least this (a conservative cap)
        return self.p_u * math.exp(-(threshold - self.u) / self.beta)

    def fpir(self, threshold: float, people: int) -> float:
        """Expected share of strangers named by a gallery of ``people`` at ``threshold``."""
        return 1.0 - (1.0 - self.exceed(threshold)) ** max(people, 1)

    def threshold(self, people: int, fpir: float) -> float:
        """The threshold that holds ``fpir`` for a gallery of ``people``."""
        if not 0.0 < fpir < 1.0:
            raise ValueError(f"a target FPIR must be in (0, 1), got {fpir}")
        per_person = 1.0 - (1.0 - fpir) ** (1.0 / max(people, 1))
        if per_person >= self.p_u:
            return self.u
        return self.u + self.beta * math.log(self.p_u / per_person)


@dataclass(frozen=True, slots=True)
class GenuineScores:
    """The person-level score of a person's own probes, as (cumulative share, score) points.

    ``fnir(t)`` interpolates the share of genuine probes scoring below ``t``: the expected
    false negative identification rate at that threshold (before rank errors, which are
    rare when the threshold is high). Measured on the development people, so it is a
    guide for photos like theirs, not a guarantee for yours.
    """

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        shares = [p for p, _ in self.points]
        scores = [s for _, s in self.points]
        if len(self.points) < 2 or shares != sorted(shares) or scores != sorted(scores):
            raise ValueError("genuine score points must be at least two, both increasing")
        if shares[0] != 0.0 or shares[-1] != 1.0:
            raise ValueError("genuine score points must run from share 0 to share 1")

    def fnir(self, threshold: float) -> float:
        """The share of genuine person-level scores below ``threshold`` (interpolated)."""
        if threshold <= self.points[0][1]:
            return 0.0
        for (pa, sa), (pb, sb) in zip(self.points, self.points[1:], strict=False):
            if threshold <= sb:
                return pa + (pb - pa) * (threshold - sa) / (sb - sa) if sb > sa else pb
        return 1.0


#: The fewest impostor trials that can support a false match rate: by the rule of three,
#: zero errors in 3/FMR trials bound the rate below FMR at 95% confidence.
def trials_needed(rate: float) -> int:
    return math.ceil(3.0 / rate)


@dataclass(frozen=True, slots=True)
class Calibration:
    """A model's decision calibrated on someone's own photos (``faceindex calibrate``).

    Each part is ``None`` when the photos had too few trials to support it; the model's
    shipped value then stays in force. ``trials`` records what the parts rest on.
    """

    model_id: str
    target_fmr: float
    threshold: float | None
    tail: ImpostorTail | None
    genuine: GenuineScores | None
    people: int
    photos: int
    genuine_pairs: int
    impostor_pairs: int
    impostor_person_scores: int
    genuine_person_scores: int

    def to_dict(self) -> dict[str, object]:
        return {
            "model_id": self.model_id,
            "target_fmr": self.target_fmr,
            "threshold": self.threshold,
            "tail": None
            if self.tail is None
            else {"u": self.tail.u, "p_u": self.tail.p_u, "beta": self.tail.beta},
            "genuine": None if self.genuine is None else [list(p) for p in self.genuine.points],
            "people": self.people,
            "photos": self.photos,
            "genuine_pairs": self.genuine_pairs,
            "impostor_pairs": self.impostor_pairs,
            "impostor_person_scores": self.impostor_person_scores,
            "genuine_person_scores": self.genuine_person_scores,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        tail = d.get("tail")
        genuine = d.get("genuine")
        return cls(
            model_id=str(d["model_id"]),
            target_fmr=float(d["target_fmr"]),
            threshold=None if d.get("threshold") is None else float(d["threshold"]),
            tail=None if tail is None else ImpostorTail(**tail),
            genuine=None
            if genuine is None
            else GenuineScores(tuple((float(a), float(b)) for a, b in genuine)),
            people=int(d["people"]),
            photos=int(d["photos"]),
            genuine_pairs=int(d["genuine_pairs"]),
            impostor_pairs=int(d["impostor_pairs"]),
            impostor_person_scores=int(d["impostor_person_scores"]),
            genuine_person_scores=int(d["genuine_person_scores"]),
        )
