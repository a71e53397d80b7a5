"""The work unit of every engine: one photo in, its analysis out.

:func:`analyse_photo` is all the model work the gallery's enrolment gate and the library's
scan need before they decide and write: the photo's SHA-256 (how a gallery knows a photo
it has enrolled), its decoded size, every face with its box, landmarks and quality, the
embeddings of the faces the :class:`AnalysisPlan` selects, and the "face too small"
explanation when no face was found; or the typed error the photo gave (its ``code``).
It runs in-process (``local``) or on a worker (``dask``); the result is the same data, so
the decisions are the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from faceindex.config import GallerySettings, PrivacySettings, Settings
from faceindex.errors import FaceIndexError, InvalidInputError, NotFoundError
from faceindex.io.image import ImageSource, load_image
from faceindex.pipeline import Pipeline
from faceindex.types import Face

T = TypeVar("T")

#: The code of a photo an engine lost (its worker died, or the cluster went away) before
#: analysing it: nothing is written for it, so the next run of the same job does it.
NOT_DONE = "not_done"

#: The code of a photo file that exists but cannot be read (permissions, I/O error).
UNREADABLE = "unreadable"

#: Which faces of a photo to embed: ``select(faces, width, height)`` -> their indices.
#: Must be a module-level function (it is sent to workers by reference).
Select = Callable[[tuple[Face, ...], int, int], Sequence[int]]


@dataclass(frozen=True, slots=True)
class AnalysisPlan:
    """What to compute for each photo: ``select`` picks the faces to embed (``None``:
    every face, as the library scan wants; the enrolment gate embeds only the subject);
    ``too_small``: when no face is found, ask the detector for one under its size gate
    (the enrolment gate explains such a rejection; a scan has no use for it)."""

    select: Select | None = None
    too_small: bool = False


@dataclass(frozen=True, slots=True)
class Job(Generic[T]):
    """One photo to analyse (``path``), or, with ``path`` None, an item the caller has
    already decided (a duplicate, an unchanged file) that only keeps its place in the
    order. ``tag`` is the caller's, handed back with the analysis."""

    tag: T
    path: str | None


@dataclass(frozen=True, slots=True)
class PhotoAnalysis:
    """What was found in one photo (see the module docstring).

    ``faces``: every face found, largest first, with quality; those the plan selected are
    embedded. ``too_small``: when no face was found but the detector saw one under its size
    gate, the words for it (``face too small (14 px, need 20)``). ``error``: the code of the
    photo's error (unreadable, not an image, too large ...), final for this photo;
    ``sha256`` is None when its bytes could not be read at all. ``lost``: the engine lost
    the photo (:data:`NOT_DONE`): not analysed, not to be written, to be retried.
    """

    source: str
    sha256: str | None = None
    width: int = 0
    height: int = 0
    faces: tuple[Face, ...] = ()
    too_small: str | None = None
    error: str | None = None
    message: str | None = None
    lost: bool = False

    @classmethod
    def not_done(cls, source: str, message: str) -> PhotoAnalysis:
        return cls(source, error=NOT_DONE, message=message, lost=True)

    def sealed(self) -> PhotoAnalysis:
        """This analysis with its arrays read-only again (as the core types make them:
        unpickling, on the way back from a worker, skips their checks)."""
        return dataclasses.replace(self, faces=tuple(_sealed(f) for f in self.faces))


def _sealed(face: Face) -> Face:
    marks, emb = face.landmarks, face.embedding
    return dataclasses.replace(
        face,
        bbox=dataclasses.replace(face.bbox),
        landmarks=None if marks is None else dataclasses.replace(marks),
        embedding=None if emb is None else dataclasses.replace(emb),
    )


def read_photo(path: Path) -> bytes:
    """A photo file's bytes; a folder or a missing file is the photo's error (the same
    errors as the gallery's :func:`~faceindex.gallery.enrolment.photo_bytes`)."""
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder, not a photo", path=str(path))
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file", path=str(path))
    return path.read_bytes()


def analyse_photo(
    pipeline: Pipeline, source: ImageSource, *, label: str, plan: AnalysisPlan
) -> PhotoAnalysis:
    """Analyse one photo (a path, encoded bytes or a decoded array) with ``pipeline``:
    see :class:`PhotoAnalysis`. A :class:`FaceIndexError` of the photo is returned as its
    ``error``; anything else (a bug, a full disk) propagates."""
    digest: str | None = None
    try:
        image: ImageSource = source
        if isinstance(source, str | Path):
            try:
                image = read_photo(Path(source))
            except OSError as exc:  # unreadable (permissions, I/O): that photo's problem
                return PhotoAnalysis(label, error=UNREADABLE, message=exc.strerror or str(exc))
        if isinstance(image, bytes | bytearray | memoryview):
            digest = hashlib.sha256(image).hexdigest()
        rgb = load_image(image, limits=pipeline.limits, name=label)
        height, width = (int(v) for v in rgb.shape[:2])
        # Every face embedded: the pipeline's own analysis (one batch per photo).
        faces = pipeline.analyze(rgb) if plan.select is None else pipeline.detect(rgb)
        if not faces:
            small = pipeline.small_face(rgb) if plan.too_small else None
            too_small = None if small is None else pipeline.too_small_text(small)
            return PhotoAnalysis(label, digest, width, height, (), too_small)
        if plan.select is not None:
            picked = sorted(set(plan.select(faces, width, height)))
            embedded = pipeline.embed_faces(rgb, [faces[i] for i in picked])
            chosen = list(faces)
            for i, face in zip(picked, embedded, strict=True):
                chosen[i] = face
            faces = tuple(chosen)
        return PhotoAnalysis(label, digest, width, height, faces)
    except FaceIndexError as exc:
        return PhotoAnalysis(label, digest, error=exc.code, message=exc.message)


def worker_settings(settings: Settings) -> Settings:
    """``settings`` as sent to workers: what builds a pipeline (detection, embedding,
    runtime, ...), without the template key or the gallery's path, which workers never
    need (they only analyse photos; the writer holds the gallery)."""
    return dataclasses.replace(settings, privacy=PrivacySettings(), gallery=GallerySettings())
