"""Error rates per demographic (or any) group at one threshold, and how unequal they are.

Why: one global FMR can hide a group for which the system is much worse. The NIST FRVT
demographic reports compare, at one fixed threshold, each group's false match and false
non-match rates and summarise them as the ratio of the worst group to the best. This
module does that for any trials with a group label.

Rules:

- A trial (a pair, or a probe compared with a person) belongs to a group only when both
  of its people are in that group (:func:`pair_group`); cross-group and unlabelled trials
  are counted in ``n_excluded`` and left out, so "FMR of group F" means F-vs-F impostors.
- Failures scored ``-inf`` are never accepted, whatever the threshold.
- A group without genuine (or impostor) trials has no FNMR (or FMR) and takes no part in
  that rate's ratio.
- The worst/best ratio: with fewer than two measured groups it is ``None``; when no group
  made an error it is 1.0 (equal, at zero); when the best group made no error but another
  did, it is infinite (``None`` in JSON, with a note): a zero rate is "fewer than about
  3/n at 95% confidence", not zero, so no finite ratio would be honest. Compare the counts
  in that case.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from faceindex.attributes.groups import InferredGroup
from faceindex.eval.identification import json_float

#: What every report of estimated groups says (``--groups auto``).
ESTIMATED_CAVEAT = (
    "groups estimated by the attribute models, not labels: they carry the models' own "
    "errors (gender a few percent, unevenly across people; apparent age 5-15 years on one "
    "photo: docs/attributes.md), so a group's rate mixes the system's errors with the "
    "estimator's, and the undecided are left out. Read them as groups 'as the models see "
    "them', never as people's demographics; prefer real labels (--groups FILE)."
)
#: How each estimated grouping is called where it is shown.
GROUPING_TITLES = {"gender": "estimated gender", "age": "estimated apparent-age band"}


def pair_group(group_a: str | None, group_b: str | None) -> str | None:
    """The group of a trial between two people: theirs if they share one, else ``None``."""
    return group_a if group_a is not None and group_a == group_b else None


def group_of(person: str | None, groups: Mapping[str, str] | None) -> str | None:
    if person is None or groups is None:
        return None
    return groups.get(person)


@dataclass(frozen=True, slots=True)
class GroupRates:
    """One group's trials and errors; a rate is ``None`` when there was nothing to count."""

    group: str
    n_genuine: int
    n_impostor: int
    false_matches: int
    false_non_matches: int

    @property
    def fmr(self) -> float | None:
        return self.false_matches / self.n_impostor if self.n_impostor else None

    @property
    def fnmr(self) -> float | None:
        return self.false_non_matches / self.n_genuine if self.n_genuine else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "n_genuine": self.n_genuine,
            "n_impostor": self.n_impostor,
            "false_matches": self.false_matches,
            "false_non_matches": self.false_non_matches,
            "fmr": json_float(self.fmr),
            "fnmr": json_float(self.fnmr),
        }


@dataclass(frozen=True, slots=True)
class Disparity:
    """Worst and best group for one rate and their ratio (see the module rules)."""

    rate: str
    worst_group: str | None
    best_group: str | None
    worst: float | None
    best: float | None
    ratio: float | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "worst_group": self.worst_group,
            "best_group": self.best_group,
            "worst": json_float(self.worst),
            "best": json_float(self.best),
            "ratio": json_float(self.ratio, 4),
            "note": self.note,
        }


def disparity(rate: str, values: Mapping[str, tuple[float | None, int]]) -> Disparity:
    """Worst/best ratio of ``{group: (rate or None, trials)}``; groups at ``None`` skipped."""
    measured = sorted((v, g, n) for g, (v, n) in values.items() if v is not None)
    if len(measured) < 2:
        return Disparity(rate, None, None, None, None, None, "fewer than two groups measured")
    best_v, best_g, best_n = measured[0]
    # Worst: highest rate among the other groups; among equals, the first by name.
    worst_v = measured[-1][0]
    worst_g = min(g for v, g, _ in measured[1:] if v == worst_v)
    if worst_v == 0.0:
        return Disparity(rate, worst_g, best_g, 0.0, 0.0, 1.0, "no errors in any group")
    if best_v == 0.0:
        note = (
            f"best group {best_g!r} had no errors in {best_n} trials: ratio unbounded; "
            "compare the counts"
        )
        return Disparity(rate, worst_g, best_g, worst_v, 0.0, math.inf, note)
    return Disparity(rate, worst_g, best_g, worst_v, best_v, worst_v / best_v, "worst / best")


@dataclass(frozen=True, slots=True)
class GroupBreakdown:
    """Per-group error rates at one threshold.

    ``names`` says what the two rates are called where they are shown: ("FMR", "FNMR")
    for verification trials, ("FPIR", "FNIR") for open-set identification probes.
    """

    threshold: float
    groups: tuple[GroupRates, ...]
    fmr_disparity: Disparity
    fnmr_disparity: Disparity
    n_excluded: int
    names: tuple[str, str] = ("FMR", "FNMR")

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": json_float(self.threshold),
            "rate_names": list(self.names),
            "groups": [g.to_dict() for g in self.groups],
            "fmr_disparity": self.fmr_disparity.to_dict(),
            "fnmr_disparity": self.fnmr_disparity.to_dict(),
            "n_excluded": self.n_excluded,
        }


def group_rates(
    scores: npt.ArrayLike,
    same: npt.ArrayLike,
    groups: Sequence[str | None],
    *,
    threshold: float,
    names: tuple[str, str] = ("FMR", "FNMR"),
) -> GroupBreakdown:
    """FMR and FNMR per group at ``threshold``; ``groups[i]`` is trial ``i``'s group or None.

    A trial is accepted when its score is finite and >= ``threshold``.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    if s.ndim != 1 or s.shape != y.shape or len(groups) != s.size:
        raise ValueError(
            f"scores, same and groups must be 1-D of equal length, got {s.shape}, {y.shape}, "
            f"{len(groups)}"
        )
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    accepted = np.isfinite(s) & (s >= threshold)
    labels = np.array([g if g is not None else "" for g in groups], dtype=object)
    in_group = np.array([g is not None for g in groups], dtype=bool)
    rows = []
    for name in sorted({g for g in groups if g is not None}):
        m = in_group & (labels == name)
        rows.append(
            GroupRates(
                group=name,
                n_genuine=int((m & y).sum()),
                n_impostor=int((m & ~y).sum()),
                false_matches=int((m & ~y & accepted).sum()),
                false_non_matches=int((m & y & ~accepted).sum()),
            )
        )
    fmr = disparity(names[0], {r.group: (r.fmr, r.n_impostor) for r in rows})
    fnmr = disparity(names[1], {r.group: (r.fnmr, r.n_genuine) for r in rows})
    return GroupBreakdown(
        threshold=threshold,
        groups=tuple(rows),
        fmr_disparity=fmr,
        fnmr_disparity=fnmr,
        n_excluded=int((~in_group).sum()),
        names=names,
    )


@dataclass(frozen=True, slots=True)
class GroupingBreakdown:
    """The rates of one more grouping of the same trials (e.g. apparent-age band beside
    gender): ``verification`` FMR/FNMR, ``open_set`` FPIR/FNIR (gallery only)."""

    name: str
    verification: GroupBreakdown | None
    open_set: GroupBreakdown | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "grouping": self.name,
            "groups": None if self.verification is None else self.verification.to_dict(),
            "open_set_groups": None if self.open_set is None else self.open_set.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class EstimatedGroups:
    """Groups estimated by the attribute models (``--groups auto``), and who was left
    undecided.

    ``unit`` is what got a group: a ``"person"`` (a gallery folder, from the subject
    faces of up to ``faces_per_person`` photos) or a ``"photo"`` (a pairs CSV path, as
    written there). ``inferred[grouping][key]`` is that key's :class:`InferredGroup`
    (group ``None``: undecided); ``no_face`` lists the keys without any face to estimate.
    """

    unit: Literal["person", "photo"]
    inferred: Mapping[str, Mapping[str, InferredGroup]]
    faces_per_person: int | None = None
    no_face: tuple[str, ...] = ()
    caveat: str = field(default=ESTIMATED_CAVEAT)

    @property
    def groupings(self) -> tuple[str, ...]:
        return tuple(self.inferred)

    def groups(self, grouping: str) -> dict[str, str]:
        """``key -> group`` of the decided keys: the shape of a ``groups.json``."""
        return {k: g.group for k, g in self.inferred[grouping].items() if g.group is not None}

    def undecided(self, grouping: str) -> list[str]:
        """The keys this grouping left without a group (no face, or no clear answer)."""
        return sorted(k for k, g in self.inferred[grouping].items() if g.group is None)

    def counts(self, grouping: str) -> dict[str, int]:
        return dict(sorted(Counter(self.groups(grouping).values()).items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimated": True,
            "unit": self.unit,
            "faces_per_person": self.faces_per_person,
            "caveat": self.caveat,
            "no_face": list(self.no_face),
            "groupings": {
                name: {
                    "title": GROUPING_TITLES.get(name, name),
                    "counts": self.counts(name),
                    "undecided": self.undecided(name),
                    "assigned": {
                        k: {"group": g.group, "share": round(g.share, 4), "faces": g.faces}
                        for k, g in sorted(self.inferred[name].items())
                    },
                }
                for name in self.groupings
            },
        }
