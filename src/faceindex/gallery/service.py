"""The gallery service: enrol people, identify faces, manage and erase people.

Composes the store (SQLite), the recognition pipeline, a vector index (a cache rebuilt from
the store and kept current by replaying the store's template log, so that enrolments made
by other processes are seen) and the open-set decision of :mod:`faceindex.search`.

Enrolment quality gate, per photo, with reasons: unreadable, no face, several faces (an
enrolment photo must be unambiguous), and the face quality issues of
:mod:`faceindex.quality` (too small, blurry, too dark/bright, extreme pose). A photo whose
bytes are already enrolled is a duplicate (skipped for the same person, rejected for
another), which also makes bulk enrolment resumable. An accepted photo whose face is closer
to another enrolled person than to its own person's templates is flagged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import logging
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceindex.errors import (
    ConflictError,
    EmbeddingModelMismatchError,
    FaceIndexError,
    InvalidInputError,
    NoFaceError,
    NotFoundError,
)
from faceindex.gallery.store import Person, SqliteStore
from faceindex.io.image import ImageSource, load_image
from faceindex.pipeline import Pipeline
from faceindex.privacy.crypto import TemplateKey
from faceindex.quality import QualityThresholds
from faceindex.search import AggregationRule, IdentDecision, Identification, rank_people
from faceindex.search import decide as decide_identity
from faceindex.types import BBox, Face, ImageArray, Quality, Verification

log = logging.getLogger(__name__)

#: Galleries with at least this many templates are searched approximately (``auto``).
AUTO_ANN_FROM = 200_000

#: Who is acting, for the audit log, when a front end serves several callers through one
#: gallery (the REST API sets it per request); falls back to the gallery's ``actor``.
_ACTOR: ContextVar[str | None] = ContextVar("faceindex_gallery_actor", default=None)


def set_actor(actor: str | None) -> None:
    """Name the caller for audit entries made in the current context (request, task)."""
    _ACTOR.set(actor)


class EnrolStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class PhotoOutcome:
    source: str
    status: EnrolStatus
    reasons: tuple[str, ...] = ()
    template_id: int | None = None
    quality: Quality | None = None
    flags: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": str(self.status),
            "reasons": list(self.reasons),
            "template_id": self.template_id,
            "quality": self.quality.as_dict() if self.quality else None,
            "flags": list(self.flags),
        }


@dataclass(frozen=True, slots=True)
class EnrolmentReport:
    person: Person | None
    outcomes: tuple[PhotoOutcome, ...]

    @property
    def accepted(self) -> tuple[PhotoOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is EnrolStatus.ACCEPTED)

    @property
    def rejected(self) -> tuple[PhotoOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is EnrolStatus.REJECTED)


@dataclass(frozen=True, slots=True)
class PersonHit:
    id: int
    name: str
    similarity: float

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "similarity": round(self.similarity, 6)}


@dataclass(frozen=True, slots=True)
class FaceIdentity:
    """One face of a probe photo: who it is (``person`` None = unknown) and the runner-up."""

    bbox: BBox
    decision: IdentDecision
    best: PersonHit | None
    runner_up: PersonHit | None
    quality: Quality | None

    @property
    def person(self) -> PersonHit | None:
        return self.best if self.decision is IdentDecision.IDENTIFIED else None

    @property
    def similarity(self) -> float | None:
        return None if self.best is None else self.best.similarity


@dataclass(frozen=True, slots=True)
class _IndexState:
    index: Any
    owners: dict[int, int]
    last_seq: int


class Gallery:
    """A gallery bound to one embedding model; thread-safe; one per process or app."""

    def __init__(
        self,
        store: SqliteStore,
        pipeline: Pipeline,
        *,
        index_backend: str = "auto",
        threshold: float | None = None,
        margin: float = 0.0,
        rule: AggregationRule = AggregationRule.MEAN_TOP2,
        top_k: int = 50,
        keep_photos: bool = False,
        actor: str = "local",
        quality: QualityThresholds | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.index_backend = index_backend
        self.threshold = _identify_threshold(pipeline) if threshold is None else threshold
        self.margin = margin
        self.rule = rule
        self.top_k = top_k
        self.keep_photos = keep_photos
        self.actor = actor
        self.quality = quality or QualityThresholds()
        self._index_lock = threading.Lock()
        self._state: _IndexState | None = None

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        pipeline: Pipeline | None = None,
        key: TemplateKey | None = None,
        **options: Any,
    ) -> Gallery:
        store = SqliteStore(path, key=key)
        return cls(store, pipeline or Pipeline.from_settings(), **options)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def current_actor(self) -> str:
        """The caller named by :func:`set_actor` in this context, else the gallery's actor."""
        return _ACTOR.get() or self.actor

    def _check_model(self) -> None:
        bound = self.store.model_id
        if bound is not None and bound != self.pipeline.model_id:
            raise EmbeddingModelMismatchError(
                f"this gallery holds {bound!r} templates but the pipeline makes "
                f"{self.pipeline.model_id!r} ones: use the gallery's model, or re-embed it "
                "(needs the photos kept with --keep-photos)",
                gallery_model=bound,
                model=self.pipeline.model_id,
            )

    # -- enrolment --------------------------------------------------------------------

    def enroll(
        self,
        name: str,
        images: Sequence[ImageSource],
        *,
        sources: Sequence[str] | None = None,
        keep_photos: bool | None = None,
        external_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        person_id: int | None = None,
    ) -> EnrolmentReport:
        """Enrol photos of one person (created on the first accepted photo).

        With ``person_id`` the photos go to that existing person whatever their name is by
        the time each photo is committed (renames in between cannot misfile them).
        """
        self._check_model()
        if sources is not None and len(sources) != len(images):
            raise InvalidInputError("sources must name each image")
        keep = self.keep_photos if keep_photos is None else keep_photos
        outcomes = []
        for i, image in enumerate(images):
            label = sources[i] if sources is not None else _label(image, i)
            outcomes.append(
                self._enroll_one(
                    name,
                    image,
                    label,
                    keep,
                    external_id=external_id,
                    metadata=metadata,
                    person_id=person_id,
                )
            )
        person = None
        with contextlib.suppress(NotFoundError):
            person = self.store.person(person_id if person_id is not None else name.strip())
        return EnrolmentReport(person, tuple(outcomes))

    def create_person(
        self,
        name: str,
        *,
        external_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Person:
        """Create a person with no templates yet (photos come with :meth:`enroll_person`)."""
        with self.store.transaction() as conn:
            person_id = self.store.create_person(
                conn, name, external_id=external_id, metadata=metadata
            )
            self.store.audit(conn, "create_person", actor=self.current_actor(), person_id=person_id)
        return self.store.person(person_id)

    def enroll_person(
        self,
        ref: int | str,
        images: Sequence[ImageSource],
        *,
        sources: Sequence[str] | None = None,
        keep_photos: bool | None = None,
    ) -> EnrolmentReport:
        """Enrol photos of an existing person, by id or name (:class:`NotFoundError` if none)."""
        person = self.store.person(ref)
        return self.enroll(
            person.name, images, sources=sources, keep_photos=keep_photos, person_id=person.id
        )

    def verify_person(self, image: ImageSource, ref: int | str) -> Verification:
        """1:1: is the largest face of ``image`` this enrolled person?

        The face is compared with each of the person's templates and the scores are
        aggregated by the gallery's rule; the decision uses the verification threshold.
        """
        self._check_model()
        person = self.store.person(ref)
        template_ids = [t.id for t in self.store.templates(person.id)]
        if not template_ids:
            raise NotFoundError(f"{person.name} has no enrolled face to compare with")
        face = self.pipeline.largest_face(image)
        if face.embedding is None:  # pragma: no cover - largest_face always embeds
            raise NoFaceError("the face could not be embedded")
        vs = self.store.vectors(template_ids)
        sims = vs.vectors @ face.embedding.vector
        ranked = rank_people(sims, vs.person_ids, self.rule)
        result = Verification(ranked[0].similarity, self.pipeline.threshold, self.pipeline.model_id)
        with self.store.transaction() as conn:
            self.store.audit(
                conn,
                "verify",
                actor=self.current_actor(),
                person_id=person.id,
                decision=str(result.decision),
            )
        return result

    def _enroll_one(
        self,
        name: str,
        image: ImageSource,
        label: str,
        keep: bool,
        *,
        external_id: str | None,
        metadata: Mapping[str, Any] | None,
        person_id: int | None,
    ) -> PhotoOutcome:
        try:
            data = _image_bytes(image)
        except FaceIndexError as exc:
            return PhotoOutcome(label, EnrolStatus.REJECTED, (exc.code,))
        digest = hashlib.sha256(data).hexdigest()
        existing = person_id if person_id is not None else self._person_id(name)
        owners = self.store.photo_owners(digest)
        if owners:
            if existing is not None and existing in owners:
                return PhotoOutcome(label, EnrolStatus.DUPLICATE, ("already_enrolled",))
            return PhotoOutcome(label, EnrolStatus.REJECTED, ("duplicate_of_other_person",))
        try:
            source = data if isinstance(image, str | Path) else image
            rgb = load_image(source, limits=self.pipeline.limits, name=label)
            faces = self.pipeline.detect(rgb)
        except FaceIndexError as exc:
            return PhotoOutcome(label, EnrolStatus.REJECTED, (exc.code,))
        if not faces:
            return PhotoOutcome(label, EnrolStatus.REJECTED, ("no_face",))
        if len(faces) > 1:
            return PhotoOutcome(label, EnrolStatus.REJECTED, ("several_faces",))
        face = faces[0]
        if face.quality is not None and face.quality.issues:
            return PhotoOutcome(
                label,
                EnrolStatus.REJECTED,
                tuple(str(i) for i in face.quality.issues),
                quality=face.quality,
            )
        face = self.pipeline.embed_faces(rgb, [face])[0]
        if face.embedding is None:
            return PhotoOutcome(label, EnrolStatus.REJECTED, ("not_embedded",))
        flags = self._cross_check(face, existing)
        with self.store.transaction() as conn:
            if person_id is not None:
                if not self.store.person_exists(conn, person_id):
                    raise NotFoundError(f"person #{person_id} was deleted during enrolment")
            else:
                person_id = self.store.find_person_id(conn, name)
            if person_id is None:
                person_id = self.store.create_person(
                    conn, name, external_id=external_id, metadata=metadata
                )
            photo_id = self.store.add_photo(
                conn, person_id, digest, source=label, data=_photo_to_keep(image, data, rgb, keep)
            )
            template_id = self._add_template(conn, person_id, photo_id, face)
            self.store.audit(
                conn,
                "enroll",
                actor=self.current_actor(),
                person_id=person_id,
                decision="accepted",
                details={"template_id": template_id, "flags": list(flags)},
            )
        return PhotoOutcome(
            label,
            EnrolStatus.ACCEPTED,
            (),
            template_id=template_id,
            quality=face.quality,
            flags=flags,
        )

    def _add_template(
        self, conn: sqlite3.Connection, person_id: int, photo_id: int, face: Face
    ) -> int:
        if face.embedding is None:  # pragma: no cover - callers embed first
            raise InvalidInputError("a face must be embedded before it is stored")
        return self.store.add_template(
            conn,
            person_id,
            face.embedding,
            photo_id=photo_id,
            quality=face.quality.score if face.quality else None,
            bbox=face.bbox,
        )

    def _person_id(self, name: str) -> int | None:
        try:
            return self.store.person(name.strip()).id
        except NotFoundError:
            return None

    def _cross_check(self, face: Face, own_id: int | None) -> tuple[str, ...]:
        assert face.embedding is not None
        ranked = self._rank(face.embedding.vector[None, :])[0]
        if not ranked:
            return ()
        own = next((c.similarity for c in ranked if c.person_id == own_id), None)
        other = next((c for c in ranked if c.person_id != own_id), None)
        if other is None:
            return ()
        if own is not None and other.similarity > own:
            return (f"closer_to_other_person:{other.person_id}",)
        if own is None and other.similarity >= self.threshold:
            return (f"matches_other_person:{other.person_id}",)
        return ()

    # -- identification ---------------------------------------------------------------

    def identify(self, image: ImageSource) -> tuple[FaceIdentity, ...]:
        """Every face of a photo, identified against the gallery (or unknown)."""
        self._check_model()
        faces = self.pipeline.analyze(image)
        if not faces:
            self._audit_identify(image, ())
            return ()
        vectors = np.stack([f.embedding.vector for f in faces if f.embedding is not None])
        ranked_all = self._rank(vectors)
        ids = {c.person_id for ranked in ranked_all for c in ranked[:2]}
        names = self.store.names(sorted(ids))
        results = []
        for face, ranked in zip(faces, ranked_all, strict=True):
            decision = decide_identity(ranked, threshold=self.threshold, margin=self.margin)

            def hit(c: Any) -> PersonHit | None:
                if c is None or c.person_id not in names:
                    return None
                return PersonHit(c.person_id, names[c.person_id], c.similarity)

            results.append(
                FaceIdentity(
                    bbox=face.bbox,
                    decision=decision.decision,
                    best=hit(decision.best),
                    runner_up=hit(decision.runner_up),
                    quality=face.quality,
                )
            )
        out = tuple(results)
        self._audit_identify(image, out)
        return out

    def identify_embeddings(self, vectors: np.ndarray) -> list[Identification]:
        """Open-set decisions for ``(N, D)`` embeddings computed by the caller (video tracks).

        Same ranking and threshold as :meth:`identify`; not audited per call (a video makes
        many). Person names: ``self.store.names(ids)``.
        """
        self._check_model()
        arr = np.asarray(vectors, dtype=np.float32)
        dim = self.pipeline.embedder.spec.dim
        if arr.ndim != 2 or arr.shape[1] != dim:
            raise InvalidInputError(f"embeddings must have shape (N, {dim}), got {arr.shape}")
        return [
            decide_identity(ranked, threshold=self.threshold, margin=self.margin)
            for ranked in self._rank(arr)
        ]

    def _audit_identify(self, image: ImageSource, faces: tuple[FaceIdentity, ...]) -> None:
        with self.store.transaction() as conn:
            self.store.audit(
                conn,
                "identify",
                actor=self.current_actor(),
                decision=",".join(str(f.decision) for f in faces) or "no_face",
                details={
                    "faces": len(faces),
                    "identified": [f.person.id for f in faces if f.person is not None],
                },
            )

    def _rank(self, vectors: np.ndarray) -> list[list[Any]]:
        state = self._sync_index()
        if len(state.index) == 0:
            return [[] for _ in range(len(vectors))]
        k = min(self.top_k, len(state.index))
        ids, sims = state.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        out = []
        for row_ids, row_sims in zip(ids, sims, strict=True):
            keep = row_ids >= 0
            owners = [state.owners[int(t)] for t in row_ids[keep]]
            out.append(rank_people(row_sims[keep], owners, self.rule))
        return out

    # -- the index cache --------------------------------------------------------------

    def _sync_index(self) -> _IndexState:
        """Build the index on first use, then replay the store's log to stay current."""
        with self._index_lock:
            state = self._state
            if state is None:
                state = self._build_index()
            else:
                added, removed, last = self.store.changes_since(state.last_seq)
                if added or removed:
                    if removed:
                        state.index.remove(np.array(removed, dtype=np.int64))
                        for t in removed:
                            state.owners.pop(t, None)
                    if added:
                        fresh = self.store.vectors(added)
                        if len(fresh.template_ids):
                            state.index.add(fresh.template_ids, fresh.vectors)
                            for t, p in zip(fresh.template_ids, fresh.person_ids, strict=True):
                                state.owners[int(t)] = int(p)
                    state = dataclasses.replace(state, last_seq=last)
            self._state = state
            return state

    def _build_index(self) -> _IndexState:
        from faceindex.index import build_index

        vs = self.store.vectors()
        dim = vs.vectors.shape[1] if len(vs.template_ids) else int(self.store.meta("dim") or 0)
        dim = dim or self.pipeline.embedder.spec.dim
        backend = self.index_backend
        if backend == "auto":
            # Exact search answers in ~1 ms up to ~100k templates; past that the fast-scan
            # ANN (1.9 ms at 1M, recall@10 0.99) wins. Chosen when the index is built.
            backend = "pq-rerank" if len(vs.template_ids) >= AUTO_ANN_FROM else "exact"
        index = build_index(backend, dim)
        if len(vs.template_ids):
            index.add(vs.template_ids, vs.vectors)
        owners = {int(t): int(p) for t, p in zip(vs.template_ids, vs.person_ids, strict=True)}
        return _IndexState(index=index, owners=owners, last_seq=vs.last_seq)

    def rebuild_index(self) -> int:
        """Drop the index cache and rebuild it from the store; returns its size."""
        with self._index_lock:
            self._state = self._build_index()
            return len(self._state.index)

    # -- model migration --------------------------------------------------------------

    def reembed(self, pipeline: Pipeline) -> int:
        """Move the gallery to ``pipeline``'s model by re-embedding every kept photo.

        All or nothing: every template must come from a kept photo (``keep_photos``),
        every face is found again in its photo (the face whose box overlaps the stored
        box most), and the old templates are replaced in one transaction, so a failure
        leaves the gallery on its old model, intact. Returns the templates written.
        """
        sources = self.store.template_sources()
        missing = [t for t, _, photo, kept in sources if photo is None or not kept]
        if missing:
            raise ConflictError(
                f"{len(missing)} of {len(sources)} templates have no kept photo, so they cannot "
                "be re-embedded: enrol with keep_photos (--keep-photos) or stay on the "
                f"gallery's model {self.store.model_id!r}",
                templates_without_photo=len(missing),
            )
        by_photo: dict[int, list[int]] = {}
        for template_id, _, photo_id, _ in sources:
            by_photo.setdefault(int(photo_id or 0), []).append(template_id)
        infos = {
            t.id: t for pid in {p for _, p, _, _ in sources} for t in self.store.templates(pid)
        }
        new_rows: list[tuple[int, int, Face]] = []
        for photo_id, template_ids in by_photo.items():
            data = self.store.photo_bytes(photo_id)
            if data is None:  # pragma: no cover - excluded above
                raise ConflictError(f"photo #{photo_id} is not kept")
            rgb = load_image(data, limits=pipeline.limits, name=f"photo #{photo_id}")
            faces = pipeline.detect(rgb)
            for template_id in template_ids:
                info = infos[template_id]
                face = _matching_face(faces, info.bbox)
                if face is None:
                    raise NoFaceError(
                        f"the face of template #{template_id} is not found again in photo "
                        f"#{photo_id} by the new model's detector; nothing was changed"
                    )
                new_rows.append((info.person_id, photo_id, pipeline.embed_faces(rgb, [face])[0]))
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM templates")
            self.store.unbind_model(conn)
            for person_id, photo_id, face in new_rows:
                self._add_template(conn, person_id, photo_id, face)
            self.store.audit(
                conn,
                "reembed",
                actor=self.current_actor(),
                details={"model_id": pipeline.model_id, "templates": len(new_rows)},
            )
        self.store.checkpoint()
        self.pipeline = pipeline
        self.threshold = _identify_threshold(pipeline)
        with self._index_lock:
            self._state = None
        return len(new_rows)

    # -- people management ------------------------------------------------------------

    def people(
        self, *, search: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[Person]:
        return self.store.persons(search=search, offset=offset, limit=limit)

    def person(self, ref: int | str) -> Person:
        return self.store.person(ref)

    def rename(self, ref: int | str, new_name: str) -> Person:
        return self.update(ref, name=new_name)

    def update(
        self,
        ref: int | str,
        *,
        name: str | None = None,
        external_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Person:
        """Change a person's name, external id and/or metadata in one transaction."""
        person = self.store.person(ref)
        if name is None and external_id is None and metadata is None:
            return person
        with self.store.transaction() as conn:
            self.store.update_person(
                conn, person.id, name=name, external_id=external_id, metadata=metadata
            )
            renamed = name is not None and name.strip() != person.name
            self.store.audit(
                conn,
                "rename" if renamed else "update",
                actor=self.current_actor(),
                person_id=person.id,
            )
        return self.store.person(person.id)

    def remove(self, ref: int | str) -> int:
        """Erase a person: every template, photo and index entry. Returns templates removed."""
        person = self.store.person(ref)
        with self.store.transaction() as conn:
            n = self.store.delete_person(conn, person.id)
            self.store.audit(
                conn,
                "delete",
                actor=self.current_actor(),
                person_id=person.id,
                details={"templates": n},
            )
        self.store.checkpoint()
        if self._state is not None:  # drop the vectors from a built index now
            self._sync_index()
        return n

    def remove_template(self, template_id: int) -> None:
        with self.store.transaction() as conn:
            person_id = self.store.delete_template(conn, template_id)
            self.store.audit(
                conn,
                "delete_template",
                actor=self.current_actor(),
                person_id=person_id,
                details={"template_id": template_id},
            )
        self.store.checkpoint()
        if self._state is not None:  # drop the vectors from a built index now
            self._sync_index()

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        return self.store.audit_events(**filters)


def _label(image: ImageSource, i: int) -> str:
    return str(image) if isinstance(image, str | Path) else f"image {i + 1}"


def _image_bytes(image: ImageSource) -> bytes:
    """The bytes whose hash identifies a photo (file bytes, or the array's pixels)."""
    if isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise NotFoundError(f"{path}: no such file", path=str(path))
        return path.read_bytes()
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image)
    if isinstance(image, np.ndarray):
        return np.ascontiguousarray(image).tobytes() + str(image.shape).encode()
    raise InvalidInputError(f"unsupported image source of type {type(image).__name__}")


def _photo_to_keep(image: ImageSource, data: bytes, rgb: ImageArray, keep: bool) -> bytes | None:
    """The photo as the user gave it (encoded file bytes), or PNG for an array."""
    if not keep:
        return None
    if not isinstance(image, np.ndarray):
        return data
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def _matching_face(faces: Sequence[Face], bbox: BBox | None) -> Face | None:
    if not faces:
        return None
    if bbox is None:
        return faces[0] if len(faces) == 1 else None
    best = max(faces, key=lambda f: f.bbox.iou(bbox))
    return best if best.bbox.iou(bbox) >= 0.3 else None


def _identify_threshold(pipeline: Pipeline) -> float:
    """The open-set threshold: the spec's own, unless the user overrode the verification one."""
    spec = getattr(getattr(pipeline, "embedder", None), "spec", None)
    if spec is None:  # a stand-in pipeline that never identifies
        return pipeline.threshold
    if pipeline.threshold != spec.threshold or spec.identify_threshold is None:
        return pipeline.threshold
    return float(spec.identify_threshold)
