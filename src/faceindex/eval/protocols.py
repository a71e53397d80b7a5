"""Evaluation protocols: verification on a pairs CSV, open-set identification on a folder tree.

Why: a threshold, an aggregation rule and a margin are only as good as the measurement
behind them, and that measurement must be repeatable by anyone on their own photos. Both
protocols take an ``embed_fn(path) -> Embedding | None`` (``None``: no face found), so
they run the real pipeline (:func:`pipeline_embed_fn`) or, in tests, any fake.

Pairs (:func:`evaluate_pairs_csv`): the CSV of ``faceindex verify --pairs`` with a ``same``
column (1/0); paths relative to ``root`` (default: the CSV's folder). A photo without a
face gives its pairs the score ``-inf``: never accepted, as a deployed system behaves.

Gallery (:func:`evaluate_gallery`): one sub-folder per person. :func:`split_gallery` keeps
a share of the people out entirely (unknowns: all their photos are non-mated probes),
enrols up to ``enrol_per_person`` photos of each other person as templates and uses the
rest as mated probes. The split is a pure function of names and ``seed`` (orders come from
SHA-256 of ``"seed:name"``), so it is the same on every machine and numpy version, and
adding a person or a photo does not reshuffle the others.

Groups: a JSON object person -> group. The person of a CSV path is the name of the folder
holding the photo (for ``person/photo.jpg``, its first component; for deeper or absolute
paths, still the folder of the person); a key equal to the whole path, as written in the
CSV, takes precedence, for flat folders. A trial belongs to a group when both its people
are in it (see :mod:`faceindex.eval.groups`). ``more_groups`` names further groupings of
the same people (``{"age": {person: band}}``), each measured the same way; results record
in ``estimated_groups`` how groups were estimated when they were
(:mod:`faceindex.eval.estimated_groups`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from faceindex.errors import (
    EmbeddingModelMismatchError,
    InvalidInputError,
    NoFaceError,
    NotFoundError,
)
from faceindex.eval.groups import (
    EstimatedGroups,
    GroupBreakdown,
    GroupingBreakdown,
    group_of,
    group_rates,
    pair_group,
)
from faceindex.eval.identification import (
    IdentificationMetrics,
    cosine_search,
    decision_scores,
    identification_metrics,
)
from faceindex.eval.verification import (
    VerificationMetrics,
    verification_metrics,
)
from faceindex.io.files import person_folders
from faceindex.io.pairs import read_pairs
from faceindex.search import AggregationRule
from faceindex.types import Embedding

if TYPE_CHECKING:
    from faceindex.pipeline import Pipeline

log = logging.getLogger(__name__)

EmbedFn = Callable[[Path], Embedding | None]
#: Called as ``progress(photos_done, photos_total)`` while photos are embedded.
ProgressFn = Callable[[int, int], None]

#: Measured on glint6 by ``benchmarks/identification.py`` (5 templates per person, 15
#: folds): mean-top2 had the lower FNIR at FPIR 1e-2 (0.011 vs 0.017 for max; lower in 9
#: of 10 photo splits), and no margin above 0 lowered FNIR at any FPIR there.
DEFAULT_RULE = AggregationRule.MEAN_TOP2
DEFAULT_MARGIN = 0.0
DEFAULT_ENROL_PER_PERSON = 5
DEFAULT_UNKNOWN_FRACTION = 0.3
GROUP_RULE = (
    "a trial belongs to a group when both people are in it; the person of a photo is its "
    "folder name (or the whole path, when the groups file names it)"
)


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class LabelledPair:
    """One row of a pairs CSV: two paths as written there, and whether they are one person."""

    a: str
    b: str
    same: bool


def person_of(path: str) -> str | None:
    """The person a photo path names: the folder holding it (``None`` for a bare file)."""
    name = PurePosixPath(path.replace("\\", "/")).parent.name
    return name or None


def _group_of_path(path: str, groups: Mapping[str, str] | None) -> str | None:
    if groups is None:
        return None
    return groups.get(path) if path in groups else group_of(person_of(path), groups)


def read_pairs_csv(csv_path: str | Path) -> list[LabelledPair]:
    """Rows of a CSV with a header naming ``a``, ``b`` and ``same`` (see
    :func:`faceindex.io.pairs.read_pairs`, which reads it)."""
    return [LabelledPair(p.a, p.b, bool(p.same)) for p in read_pairs(csv_path, labelled=True).pairs]


def load_groups(path: str | Path) -> dict[str, str]:
    """A groups file: a JSON object mapping person (or photo path) to group name."""
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"{p}: no such file", path=str(p))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{p}: not a JSON file ({exc})", path=str(p)) from exc
    if not isinstance(data, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in data.values()
    ):
        raise InvalidInputError(f"{p}: expected a JSON object person -> group", path=str(p))
    return {str(k): str(v) for k, v in data.items()}


def pipeline_embed_fn(pipeline: Pipeline) -> EmbedFn:
    """An ``embed_fn`` for the protocols: the largest face of each photo, ``None`` if none.

    Unreadable images also give ``None`` (logged as warnings) so one bad file does not
    abort a long evaluation; they are listed among the failures of the result.
    """

    def embed(path: Path) -> Embedding | None:
        try:
            return pipeline.subject_face(path).embedding
        except NoFaceError:
            log.debug("%s: no face found", path)
        except (InvalidInputError, NotFoundError) as exc:
            log.warning("%s: counted as a failure: %s", path, exc.message)
        return None

    return embed


def _embed_all(
    paths: Sequence[Path], embed_fn: EmbedFn, progress: ProgressFn | None
) -> dict[Path, Embedding | None]:
    """Each distinct path embedded once; all embeddings must come from one model."""
    unique = list(dict.fromkeys(paths))
    out: dict[Path, Embedding | None] = {}
    model_id: str | None = None
    for done, path in enumerate(unique, start=1):
        emb = embed_fn(path)
        if emb is not None:
            if model_id is None:
                model_id = emb.model_id
            elif emb.model_id != model_id:
                raise EmbeddingModelMismatchError(
                    f"{path}: embedding of model {emb.model_id!r}, others are {model_id!r}",
                    a=model_id,
                    b=emb.model_id,
                )
        out[path] = emb
        if progress is not None:
            progress(done, len(unique))
    n_failed = sum(e is None for e in out.values())
    log.info("embedded %d photos, %d without a face", len(out), n_failed)
    return out


def _model_id(embeddings: Mapping[Path, Embedding | None]) -> str | None:
    return next((e.model_id for e in embeddings.values() if e is not None), None)


def _dumps(data: dict[str, Any], indent: int | None) -> str:
    return json.dumps(data, indent=indent, allow_nan=False)


def _grouping_dict(
    more: Sequence[GroupingBreakdown], estimated: EstimatedGroups | None
) -> dict[str, Any]:
    return {
        "more_groups": [g.to_dict() for g in more],
        "groups_estimated": estimated is not None,
        "group_estimation": None if estimated is None else estimated.to_dict(),
    }


@dataclass(frozen=True, slots=True)
class PairsResult:
    """What :func:`evaluate_pairs` measured. ``to_dict``/``to_json`` for machines."""

    source: str
    model_id: str | None
    n_pairs: int
    failed_photos: tuple[str, ...]
    n_photos: int
    n_failed_pairs: int
    verification: VerificationMetrics
    groups: GroupBreakdown | None
    more_groups: tuple[GroupingBreakdown, ...] = ()
    estimated_groups: EstimatedGroups | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": "pairs",
            "source": self.source,
            "model_id": self.model_id,
            "n_pairs": self.n_pairs,
            "n_photos": self.n_photos,
            "n_failed_photos": len(self.failed_photos),
            "failed_photos": list(self.failed_photos),
            "n_failed_pairs": self.n_failed_pairs,
            "verification": self.verification.to_dict(),
            "groups": None if self.groups is None else self.groups.to_dict(),
            **_grouping_dict(self.more_groups, self.estimated_groups),
            "group_rule": GROUP_RULE,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return _dumps(self.to_dict(), indent)


def evaluate_pairs(
    pairs: Sequence[LabelledPair],
    embed_fn: EmbedFn,
    *,
    threshold: float,
    target_fmr: float = 1e-3,
    groups: Mapping[str, str] | None = None,
    root: str | Path | None = None,
    source: str = "",
    progress: ProgressFn | None = None,
    more_groups: Mapping[str, Mapping[str, str]] | None = None,
    estimated_groups: EstimatedGroups | None = None,
) -> PairsResult:
    """Verification figures of ``pairs`` (paths relative to ``root``, default: as given)."""
    if not pairs:
        raise InvalidInputError("no pairs to evaluate")
    base = Path(root) if root is not None else Path()
    paths = [base / p for pair in pairs for p in (pair.a, pair.b)]
    embs = _embed_all(paths, embed_fn, progress)
    scores = np.empty(len(pairs))
    for i, pair in enumerate(pairs):
        ea, eb = embs[base / pair.a], embs[base / pair.b]
        if ea is None or eb is None:
            scores[i] = -np.inf
        else:
            scores[i] = float(np.clip(np.dot(ea.vector, eb.vector), -1.0, 1.0))
    same = np.array([p.same for p in pairs], dtype=bool)
    if same.all() or not same.any():
        raise InvalidInputError("pairs need at least one genuine (same=1) and one impostor")

    def breakdown_of(g: Mapping[str, str]) -> GroupBreakdown:
        trial_groups = [pair_group(_group_of_path(p.a, g), _group_of_path(p.b, g)) for p in pairs]
        return group_rates(scores, same, trial_groups, threshold=threshold)

    breakdown = None if groups is None else breakdown_of(groups)
    more = tuple(GroupingBreakdown(n, breakdown_of(g)) for n, g in (more_groups or {}).items())
    rel = {base / p: p for pair in pairs for p in (pair.a, pair.b)}
    return PairsResult(
        source=source,
        model_id=_model_id(embs),
        n_pairs=len(pairs),
        failed_photos=tuple(sorted(rel[p] for p, e in embs.items() if e is None)),
        n_photos=len(embs),
        n_failed_pairs=int(np.isneginf(scores).sum()),
        verification=verification_metrics(scores, same, threshold=threshold, target_fmr=target_fmr),
        groups=breakdown,
        more_groups=more,
        estimated_groups=estimated_groups,
    )


def evaluate_pairs_csv(
    csv_path: str | Path,
    embed_fn: EmbedFn,
    *,
    threshold: float,
    root: str | Path | None = None,
    target_fmr: float = 1e-3,
    groups: Mapping[str, str] | None = None,
    progress: ProgressFn | None = None,
    more_groups: Mapping[str, Mapping[str, str]] | None = None,
    estimated_groups: EstimatedGroups | None = None,
) -> PairsResult:
    """:func:`evaluate_pairs` on a CSV file; missing photos are reported before any work."""
    path = Path(csv_path)
    pairs_file = read_pairs(path, root=root, labelled=True)
    pairs = [LabelledPair(p.a, p.b, bool(p.same)) for p in pairs_file.pairs]
    base = pairs_file.root
    missing = sorted({p for pair in pairs for p in (pair.a, pair.b) if not (base / p).is_file()})
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise NotFoundError(
            f"{len(missing)} photos of {path} not found under {base}: {shown}",
            missing=missing[:100],
        )
    return evaluate_pairs(
        pairs,
        embed_fn,
        threshold=threshold,
        target_fmr=target_fmr,
        groups=groups,
        root=base,
        source=str(path),
        progress=progress,
        more_groups=more_groups,
        estimated_groups=estimated_groups,
    )


# ---------------------------------------------------------------- gallery


def list_people(root_dir: str | Path) -> dict[str, list[str]]:
    """``{person: ["person/photo", ...]}`` for each sub-folder holding photos (the walker
    of :func:`faceindex.io.files.person_folders`)."""
    return {
        person: [f"{person}/{photo.name}" for photo in photos]
        for person, photos in person_folders(root_dir)
    }


@dataclass(frozen=True, slots=True)
class GallerySplit:
    """Who is enrolled, who is unknown, and which photos enrol and probe (paths relative)."""

    seed: int
    enrol_per_person: int
    unknown_fraction: float
    enrolled: tuple[str, ...]
    unknown: tuple[str, ...]
    enrol: tuple[tuple[str, str], ...]
    probes: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "enrol_per_person": self.enrol_per_person,
            "unknown_fraction": self.unknown_fraction,
            "enrolled": list(self.enrolled),
            "unknown": list(self.unknown),
            "n_enrol_photos": len(self.enrol),
            "n_probe_photos": len(self.probes),
            "enrol_photos": [p for _, p in self.enrol],
        }


def _order_key(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def split_gallery(
    photos: Mapping[str, Sequence[str]],
    *,
    enrol_per_person: int = DEFAULT_ENROL_PER_PERSON,
    unknown_fraction: float = DEFAULT_UNKNOWN_FRACTION,
    seed: int = 0,
    unknown_people: Collection[str] | None = None,
) -> GallerySplit:
    """Split ``{person: photos}`` deterministically into enrolment and probe photos.

    People are ordered by SHA-256 of ``"seed:person"``; the first
    ``round(unknown_fraction * n)`` (at least 1 when the fraction is above 0, at most
    ``n - 1``) are unknowns, unless ``unknown_people`` names them. Each other person's
    photos are ordered by SHA-256 of ``"seed:photo"``; the first
    ``min(enrol_per_person, n_photos - 1)`` enrol (so every person with two photos or more
    has a probe; a person with one photo is enrolled with it), the rest are mated probes.
    """
    if enrol_per_person < 1:
        raise InvalidInputError(f"enrol_per_person must be >= 1, got {enrol_per_person}")
    if not 0.0 <= unknown_fraction < 1.0:
        raise InvalidInputError(f"unknown_fraction must be in [0, 1), got {unknown_fraction}")
    people = sorted(p for p, files in photos.items() if files)
    if not people:
        raise InvalidInputError("no people with photos to evaluate")
    if unknown_people is None:
        n_unknown = math.floor(unknown_fraction * len(people) + 0.5)
        if unknown_fraction > 0.0:
            n_unknown = max(n_unknown, 1)
        n_unknown = min(n_unknown, len(people) - 1)
        unknown = set(sorted(people, key=lambda p: _order_key(seed, p))[:n_unknown])
    else:
        unknown = set(unknown_people)
        if not unknown <= set(people):
            raise InvalidInputError(
                f"unknown people not in the folder: {sorted(unknown - set(people))}"
            )
        if len(unknown) >= len(people):
            raise InvalidInputError("at least one person must stay enrolled")
    enrol: list[tuple[str, str]] = []
    probes: list[tuple[str, str]] = []
    for person in people:
        ordered = sorted(photos[person], key=lambda f: _order_key(seed, f))
        if person in unknown:
            probes.extend((person, f) for f in ordered)
            continue
        k = min(enrol_per_person, max(1, len(ordered) - 1))
        enrol.extend((person, f) for f in ordered[:k])
        probes.extend((person, f) for f in ordered[k:])
    return GallerySplit(
        seed=seed,
        enrol_per_person=enrol_per_person,
        unknown_fraction=unknown_fraction,
        enrolled=tuple(p for p in people if p not in unknown),
        unknown=tuple(sorted(unknown)),
        enrol=tuple(enrol),
        probes=tuple(probes),
    )


@dataclass(frozen=True, slots=True)
class GalleryResult:
    """What :func:`evaluate_gallery` measured.

    ``identification``: open-set figures of the search. ``verification``: every probe
    against every enrolled person's aggregated score, as 1:1 trials (ROC, EER, FMR/FNMR).
    ``groups``: FMR/FNMR of those trials per group; ``open_set_groups``: FPIR/FNIR of the
    probes by their person's group (for FPIR, the group of the unknown person).
    """

    source: str
    model_id: str | None
    split: GallerySplit
    rule: AggregationRule
    margin: float
    failed_enrol: tuple[str, ...]
    failed_probes: tuple[str, ...]
    identification: IdentificationMetrics
    verification: VerificationMetrics | None
    groups: GroupBreakdown | None
    open_set_groups: GroupBreakdown | None
    more_groups: tuple[GroupingBreakdown, ...] = ()
    estimated_groups: EstimatedGroups | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": "gallery",
            "source": self.source,
            "model_id": self.model_id,
            "rule": str(self.rule),
            "margin": self.margin,
            "split": self.split.to_dict(),
            "failed_enrol_photos": list(self.failed_enrol),
            "failed_probe_photos": list(self.failed_probes),
            "identification": self.identification.to_dict(),
            "verification": None if self.verification is None else self.verification.to_dict(),
            "groups": None if self.groups is None else self.groups.to_dict(),
            "open_set_groups": (
                None if self.open_set_groups is None else self.open_set_groups.to_dict()
            ),
            **_grouping_dict(self.more_groups, self.estimated_groups),
            "group_rule": GROUP_RULE,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return _dumps(self.to_dict(), indent)


def evaluate_gallery(
    root_dir: str | Path,
    embed_fn: EmbedFn,
    *,
    threshold: float,
    enrol_per_person: int = DEFAULT_ENROL_PER_PERSON,
    unknown_fraction: float = DEFAULT_UNKNOWN_FRACTION,
    seed: int = 0,
    rule: AggregationRule = DEFAULT_RULE,
    margin: float = DEFAULT_MARGIN,
    groups: Mapping[str, str] | None = None,
    target_fpir: float = 1e-2,
    target_fmr: float = 1e-3,
    unknown_people: Collection[str] | None = None,
    progress: ProgressFn | None = None,
    more_groups: Mapping[str, Mapping[str, str]] | None = None,
    estimated_groups: EstimatedGroups | None = None,
) -> GalleryResult:
    """Open-set identification on a folder per person (see :func:`split_gallery`).

    ``threshold`` and ``margin`` apply to the aggregated person score, as in the search.
    """
    root = Path(root_dir)
    split = split_gallery(
        list_people(root),
        enrol_per_person=enrol_per_person,
        unknown_fraction=unknown_fraction,
        seed=seed,
        unknown_people=unknown_people,
    )
    embs = _embed_all([root / f for _, f in split.enrol + split.probes], embed_fn, progress)
    found = [e for e in embs.values() if e is not None]
    if not found:
        raise InvalidInputError(f"{root}: no face found in any photo")
    dim = found[0].dim
    templates = [(p, embs[root / f]) for p, f in split.enrol]
    owners = [p for p, e in templates if e is not None]
    t_vecs = np.array([e.vector for _, e in templates if e is not None]).reshape(-1, dim)
    labels = [p for p, _ in split.probes]
    probe_embs = [embs[root / f] for _, f in split.probes]
    failed = np.array([e is None for e in probe_embs], dtype=bool)
    p_vecs = np.zeros((len(labels), dim), dtype=np.float32)
    for i, e in enumerate(probe_embs):
        if e is not None:
            p_vecs[i] = e.vector
    outcomes = cosine_search(
        p_vecs, labels, t_vecs, owners, rule=rule, failed=failed, enrolled=split.enrolled
    )
    ident = identification_metrics(
        outcomes, threshold=threshold, margin=margin, target_fpir=target_fpir
    )

    # 1:1 trials: every probe against every enrolled person's aggregated score.
    people = np.array(outcomes.people, dtype=object)
    same = (np.array(labels, dtype=object)[:, None] == people[None, :]).ravel()
    trial_scores = outcomes.person_scores.ravel()
    verification = None
    if same.any() and not same.all():
        verification = verification_metrics(
            trial_scores, same, threshold=threshold, target_fmr=target_fmr
        )

    def breakdowns_of(g: Mapping[str, str]) -> tuple[GroupBreakdown | None, GroupBreakdown]:
        trial_groups = [
            pair_group(group_of(label, g), group_of(person, g))
            for label in labels
            for person in outcomes.people
        ]
        closed = None
        if trial_groups:
            closed = group_rates(trial_scores, same, trial_groups, threshold=threshold)
        open_set = group_rates(
            decision_scores(outcomes, margin=margin),
            outcomes.mated,
            [group_of(label, g) for label in labels],
            threshold=threshold,
            names=("FPIR", "FNIR"),
        )
        return closed, open_set

    breakdown = open_breakdown = None
    if groups is not None:
        breakdown, open_breakdown = breakdowns_of(groups)
    more = tuple(
        GroupingBreakdown(name, *breakdowns_of(g)) for name, g in (more_groups or {}).items()
    )
    return GalleryResult(
        source=str(root),
        model_id=_model_id(embs),
        split=split,
        rule=rule,
        margin=margin,
        failed_enrol=tuple(f for _, f in split.enrol if embs[root / f] is None),
        failed_probes=tuple(f for _, f in split.probes if embs[root / f] is None),
        identification=ident,
        verification=verification,
        groups=breakdown,
        open_set_groups=open_breakdown,
        more_groups=more,
        estimated_groups=estimated_groups,
    )
