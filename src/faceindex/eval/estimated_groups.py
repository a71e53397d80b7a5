"""Per-group error rates without labels: groups estimated by the attribute models
(``faceindex eval pairs|gallery --groups auto``).

Why: a per-group report needs labels, which most users' photos lack. The gender and age
models (:mod:`faceindex.attributes`) can supply estimated ones, good enough to see
whether the errors fall unevenly, as long as the report says that the groups are
estimated, carry the models' own errors, and who was left undecided.

- Gallery (a folder per person): each person gets one group per grouping from the
  subject faces of up to ``faces_per_person`` (10) of their photos, in name order
  (:func:`faceindex.attributes.groups.vote`: gender by an 80% majority, else undecided;
  age by the band of the median apparent age).
- Pairs (a CSV) whose photos sit in person folders: the same, per person (the folder
  that names the person of a path, :func:`faceindex.eval.protocols.person_of`), from up
  to ``faces_per_person`` of the person's photos in the CSV
  (:func:`estimate_people_groups`).
- Pairs otherwise (or when asked): each photo gets its own groups
  (:func:`faceindex.attributes.groups.photo_group`: gender only at a score of 0.9 or
  more, the band of its apparent age), keyed by the path as written in the CSV, so two
  photos of one person that the model reads differently make a cross-group pair, left
  out like any other. This drops the photos the gender model finds hard, which are
  often hard for recognition too: on glint6's pairs it left out 53 of the 503 genuine
  pairs of the men, 26 of them misses, and halved their FNMR (docs/attributes.md). Per
  person is the default wherever the folders allow it.

Each photo is decoded and detected once: its subject's embedding is kept
(:func:`cached_embed_fn`) for the evaluation that follows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from faceindex.attributes import Attribute, FaceAttributes
from faceindex.attributes.groups import GroupKind, InferredGroup, photo_group, vote
from faceindex.errors import InvalidInputError, NoFaceError, NotFoundError
from faceindex.eval.groups import EstimatedGroups
from faceindex.eval.protocols import EmbedFn, ProgressFn, list_people
from faceindex.types import Embedding, Face, ImageArray

if TYPE_CHECKING:
    from faceindex.attributes.analyzer import FaceAnalyzer
    from faceindex.pipeline import Pipeline

log = logging.getLogger(__name__)

#: The groupings ``--groups auto`` estimates; the first is the report's main one.
GROUPINGS: tuple[GroupKind, ...] = ("gender", "age")
DEFAULT_FACES_PER_PERSON = 10

#: ``subject(path)``: the decoded photo and its subject face, embedded; ``None`` when the
#: photo has no face or cannot be read.
SubjectFn = Callable[[Path], tuple[ImageArray, Face] | None]
#: ``estimate(image, face)``: the face's gender and age.
EstimateFn = Callable[[ImageArray, Face], FaceAttributes]
#: What was found per photo: its embedding (or None) and attributes (or None).
Found = dict[Path, tuple[Embedding | None, FaceAttributes | None]]


def pipeline_subject_fn(pipeline: Pipeline) -> SubjectFn:
    """The photo's subject as :func:`faceindex.eval.protocols.pipeline_embed_fn` finds it
    (the same face and embedding), with the decoded photo for the attribute models."""

    def subject(path: Path) -> tuple[ImageArray, Face] | None:
        try:
            image = pipeline.load(path)
            return image, pipeline.choose_face(image, label=str(path)).face
        except NoFaceError:
            log.debug("%s: no face found", path)
        except (InvalidInputError, NotFoundError) as exc:
            log.warning("%s: counted as a failure: %s", path, exc.message)
        return None

    return subject


def analyzer_estimate_fn(analyzer: FaceAnalyzer | None = None) -> EstimateFn:
    """Gender and age from the attribute models (loaded on the first call)."""
    if analyzer is None:
        from faceindex.attributes.analyzer import FaceAnalyzer

        analyzer = FaceAnalyzer({Attribute.GENDER, Attribute.AGE})
    chosen = analyzer

    def estimate(image: ImageArray, face: Face) -> FaceAttributes:
        return chosen.estimate(image, [face], {Attribute.GENDER, Attribute.AGE})[0]

    return estimate


def _visit(
    paths: Sequence[Path],
    subject_fn: SubjectFn,
    estimate_fn: EstimateFn,
    progress: ProgressFn | None,
) -> Found:
    found: Found = {}
    unique = list(dict.fromkeys(paths))
    for done, path in enumerate(unique, start=1):
        hit = subject_fn(path)
        if hit is None:
            found[path] = (None, None)
        else:
            image, face = hit
            found[path] = (face.embedding, estimate_fn(image, face))
        if progress is not None:
            progress(done, len(unique))
    return found


def estimate_photo_groups(
    photos: Mapping[str, Path],
    subject_fn: SubjectFn,
    estimate_fn: EstimateFn,
    *,
    groupings: Sequence[GroupKind] = GROUPINGS,
    progress: ProgressFn | None = None,
) -> tuple[EstimatedGroups, Found]:
    """Groups of each photo of ``{key: path}`` (key: the path as a pairs CSV writes it);
    missing files are skipped (the evaluation reports them)."""
    present = {k: p for k, p in photos.items() if p.is_file()}
    found = _visit(list(present.values()), subject_fn, estimate_fn, progress)
    inferred: dict[str, dict[str, InferredGroup]] = {g: {} for g in groupings}
    no_face = []
    for key, path in sorted(present.items()):
        attrs = found[path][1]
        if attrs is None:
            no_face.append(key)
        for g in groupings:
            inferred[g][key] = (
                InferredGroup(None, 0.0, 0) if attrs is None else photo_group(attrs, g)
            )
    return EstimatedGroups("photo", inferred, None, tuple(no_face)), found


def estimate_person_groups(
    root_dir: str | Path,
    subject_fn: SubjectFn,
    estimate_fn: EstimateFn,
    *,
    faces_per_person: int = DEFAULT_FACES_PER_PERSON,
    groupings: Sequence[GroupKind] = GROUPINGS,
    progress: ProgressFn | None = None,
) -> tuple[EstimatedGroups, Found]:
    """Groups of each person folder of ``root_dir``, from the subject faces of their
    first ``faces_per_person`` photos in name order."""
    root = Path(root_dir)
    people = {person: [root / f for f in files] for person, files in list_people(root).items()}
    return estimate_people_groups(
        people,
        subject_fn,
        estimate_fn,
        faces_per_person=faces_per_person,
        groupings=groupings,
        progress=progress,
    )


def estimate_people_groups(
    people: Mapping[str, Sequence[Path]],
    subject_fn: SubjectFn,
    estimate_fn: EstimateFn,
    *,
    faces_per_person: int = DEFAULT_FACES_PER_PERSON,
    groupings: Sequence[GroupKind] = GROUPINGS,
    progress: ProgressFn | None = None,
) -> tuple[EstimatedGroups, Found]:
    """Groups of each person of ``{person: photos}``, from the subject faces of their
    first ``faces_per_person`` photos in path order (missing files skipped)."""
    if faces_per_person < 1:
        raise InvalidInputError(f"faces_per_person must be >= 1, got {faces_per_person}")
    chosen = {
        person: sorted(p for p in set(paths) if p.is_file())[:faces_per_person]
        for person, paths in people.items()
    }
    found = _visit([p for ps in chosen.values() for p in ps], subject_fn, estimate_fn, progress)
    inferred: dict[str, dict[str, InferredGroup]] = {g: {} for g in groupings}
    no_face = []
    for person, paths in sorted(chosen.items()):
        attrs = [a for _, a in (found[p] for p in paths) if a is not None]
        if not attrs:
            no_face.append(person)
        for g in groupings:
            inferred[g][person] = vote(attrs, g)
    return EstimatedGroups("person", inferred, faces_per_person, tuple(no_face)), found


def cached_embed_fn(found: Found, fallback: EmbedFn) -> EmbedFn:
    """An ``embed_fn`` answering from what the estimation already found, else
    ``fallback``."""

    def embed(path: Path) -> Embedding | None:
        hit = found.get(path)
        return fallback(path) if hit is None else hit[0]

    return embed


def split_groupings(
    estimated: EstimatedGroups,
) -> tuple[dict[str, str] | None, dict[str, dict[str, str]]]:
    """The main grouping's ``groups`` mapping and the others' (``more_groups``)."""
    names = estimated.groupings
    if not names:
        return None, {}
    return estimated.groups(names[0]), {n: estimated.groups(n) for n in names[1:]}


__all__ = [
    "DEFAULT_FACES_PER_PERSON",
    "GROUPINGS",
    "EstimateFn",
    "SubjectFn",
    "analyzer_estimate_fn",
    "cached_embed_fn",
    "estimate_people_groups",
    "estimate_person_groups",
    "estimate_photo_groups",
    "pipeline_subject_fn",
    "split_groupings",
]
