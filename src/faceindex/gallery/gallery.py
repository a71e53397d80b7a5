"""The gallery: one front door over people records, enrolment and search.

:class:`Gallery` composes the parts, each in its own module, and owns none of their logic:

- :mod:`~faceindex.gallery.records`: people (names matched regardless of case), merging
  two people, and the audit log (no models);
- :mod:`~faceindex.gallery.enrolment`: quality gate, duplicate photos, cross-person check;
- :mod:`~faceindex.gallery.searcher`: index cache, top-k, aggregation, open-set decision
  (identification and verification against an enrolled person);
- :mod:`~faceindex.gallery.migration`: re-embedding to another model;
- :mod:`~faceindex.gallery.transfer`: the gallery to one file and back (export, import);
- :mod:`~faceindex.gallery.store` (SQL only) with :mod:`~faceindex.gallery.sealing`
  (encryption at rest) underneath.

The pipeline is needed only for enrolment and search, so a gallery opened to list or erase
people never builds one; when it is needed and none was given, it is built from the
settings (cheap: models load on first use).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceindex.calibration import Calibration
from faceindex.config import Settings
from faceindex.crypto import TemplateKey
from faceindex.engines.analysis import PhotoAnalysis
from faceindex.errors import InvalidInputError, NotFoundError
from faceindex.gallery import migration
from faceindex.gallery.enrolment import Enroller, EnrolmentReport, PhotoOutcome
from faceindex.gallery.records import CALIBRATION_KEY, GalleryRecords
from faceindex.gallery.sealing import Sealer
from faceindex.gallery.searcher import Expectations, Searcher, SearchPolicy
from faceindex.gallery.store import GalleryStore, Person, SqliteStore
from faceindex.gallery.transfer import ImportReport, import_gallery
from faceindex.io.image import ImageSource
from faceindex.pipeline import FaceChoice, Pipeline
from faceindex.search import AggregationRule
from faceindex.types import BBox, Embedding, Identification, Verification


class Gallery(GalleryRecords):
    """A gallery bound to one embedding model; thread-safe; one per process or app.

    Adds enrolment and search, which need the pipeline, to :class:`GalleryRecords`.
    """

    def __init__(
        self,
        store: GalleryStore,
        pipeline: Pipeline | None = None,
        *,
        settings: Settings | None = None,
        index_backend: str | None = None,
        threshold: float | None = None,
        margin: float | None = None,
        rule: AggregationRule | str | None = None,
        top_k: int | None = None,
        keep_photos: bool | None = None,
        actor: str = "local",
    ) -> None:
        super().__init__(store, actor=actor)
        s = settings or Settings()
        self._settings = s
        self._pipeline = pipeline
        self._threshold = threshold if threshold is not None else s.search.threshold
        self.margin = s.search.margin if margin is None else margin
        self.rule = AggregationRule(s.search.rule if rule is None else rule)
        self.top_k = s.search.top_k if top_k is None else top_k
        self.index_backend = s.index.backend if index_backend is None else index_backend
        self.keep_photos = s.gallery.keep_photos if keep_photos is None else keep_photos
        self._lock = threading.Lock()
        self._searcher: Searcher | None = None
        self._enroller: Enroller | None = None

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        pipeline: Pipeline | None = None,
        key: TemplateKey | None = None,
        **options: Any,
    ) -> Gallery:
        """Open the gallery at ``path``: a SQLite file, or a ``postgresql://`` URL
        (:mod:`~faceindex.gallery.pg_store`)."""
        from faceindex import pg

        if pg.is_url(path):
            from faceindex.gallery.pg_store import PgStore

            return cls(PgStore(str(path), sealer=Sealer(key)), pipeline, **options)
        return cls(SqliteStore(path, sealer=Sealer(key)), pipeline, **options)

    @property
    def pipeline(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                self._pipeline = Pipeline.from_settings(self._settings)
            return self._pipeline

    @property
    def threshold(self) -> float:
        """The open-set identification threshold in force (it rises with the gallery's size
        when set from the embedder's impostor tail)."""
        return self.searcher.threshold()

    @property
    def searcher(self) -> Searcher:
        pipeline = self.pipeline
        with self._lock:
            if self._searcher is None:
                policy = SearchPolicy.for_pipeline(
                    pipeline,
                    calibration=self._own_calibration_unlocked(pipeline),
                    threshold=self._threshold,
                    target_fpir=self._settings.search.target_fpir,
                    margin=self.margin,
                    rule=self.rule,
                    top_k=self.top_k,
                    index_backend=self.index_backend,
                    ann_from=self._settings.index.ann_from,
                    pg_hnsw_from=self._settings.index.pg_hnsw_from,
                )
                self._searcher = Searcher(
                    self._store, policy, dim=pipeline.embedder.spec.dim, model_id=pipeline.model_id
                )
            return self._searcher

    def _enrolment(self) -> Enroller:
        searcher, pipeline = self.searcher, self.pipeline
        with self._lock:
            if self._enroller is None:
                self._enroller = Enroller(
                    self._store,
                    pipeline,
                    searcher,
                    actor=self.current_actor,
                    keep_photos=self.keep_photos,
                )
            return self._enroller

    def _check_model(self) -> None:
        migration.check_model(self._store.model_id, self.pipeline.model_id)

    def _refresh_index(self) -> None:
        if self._searcher is not None:  # drop erased vectors from a built index now
            self._searcher.refresh()

    # -- enrolment ----------------------------------------------------------------------

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
        force: bool = False,
        analyses: Sequence[PhotoAnalysis | None] | None = None,
    ) -> EnrolmentReport:
        """Enrol photos of one person (created on the first accepted photo; the name is
        matched regardless of case). A face that matches another enrolled person is refused
        (``matches_other_person``, with the ``conflict``) unless ``force`` (see
        :mod:`~faceindex.gallery.enrolment`). ``analyses``: each photo's analysis made
        beforehand by an engine (:mod:`faceindex.engines`, with
        :data:`~faceindex.gallery.enrolment.ENROLMENT_PLAN`), or None to analyse it here."""
        self._check_model()
        return self._enrolment().enroll(
            name,
            images,
            sources=sources,
            keep_photos=keep_photos,
            external_id=external_id,
            metadata=metadata,
            person_id=person_id,
            force=force,
            analyses=analyses,
        )

    def known_photo(self, name: str, image: ImageSource, label: str) -> PhotoOutcome | None:
        """Enrolling ``image`` for ``name`` needs no analysis: the gallery holds its bytes
        (the outcome: duplicate, or rejected for another person), or they cannot be read.
        None when it must be analysed (see :meth:`Enroller.known_photo`)."""
        self._check_model()
        return self._enrolment().known_photo(name, image, label)

    def enroll_person(
        self,
        ref: int | str,
        images: Sequence[ImageSource],
        *,
        sources: Sequence[str] | None = None,
        keep_photos: bool | None = None,
        force: bool = False,
    ) -> EnrolmentReport:
        """Enrol photos of an existing person, by id or name (:class:`NotFoundError` if none)."""
        person = self._store.person(ref)
        return self.enroll(
            person.name,
            images,
            sources=sources,
            keep_photos=keep_photos,
            person_id=person.id,
            force=force,
        )

    def enroll_embeddings(
        self,
        name: str,
        embeddings: Sequence[Embedding],
        *,
        person_id: int | None = None,
        sources: Sequence[tuple[str, str] | None] | None = None,
        bboxes: Sequence[BBox | None] | None = None,
        qualities: Sequence[float | None] | None = None,
    ) -> tuple[Person, list[int]]:
        """Add faces already embedded elsewhere (the photo library's clusters) as templates
        of a person: ``person_id``, else the person named ``name`` (regardless of case),
        created if there is none. ``sources[i]``: (photo path, SHA-256 of its bytes) or
        None; the photo is recorded for the person, without its bytes, so that enrolling
        the same file later is a duplicate. No quality gate or cross-person check: the
        caller vouches for the faces (a user naming a cluster). One transaction, audited
        (``enroll``, decision ``accepted``, ``details.via = "embeddings"``); returns the
        person and the new template ids."""
        n = len(embeddings)
        for given in (sources, bboxes, qualities):
            if given is not None and len(given) != n:
                raise InvalidInputError("sources, bboxes and qualities must name each embedding")
        ids: list[int] = []
        with self._store.transaction() as conn:
            if person_id is not None:
                if not self._store.person_exists(conn, person_id):
                    raise NotFoundError(f"no person #{person_id}", person=person_id)
                pid = person_id
            else:
                found = self._store.find_person_id(conn, name)
                pid = found if found is not None else self._store.create_person(conn, name)
            for i, embedding in enumerate(embeddings):
                photo_id = None
                source = sources[i] if sources is not None else None
                if source is not None:
                    path, digest = source
                    if pid not in self._store.photo_owners(digest):
                        photo_id = self._store.add_photo(conn, pid, digest, source=path, data=None)
                template_id = self._store.add_template(
                    conn,
                    pid,
                    embedding,
                    photo_id=photo_id,
                    quality=qualities[i] if qualities is not None else None,
                    bbox=bboxes[i] if bboxes is not None else None,
                )
                ids.append(template_id)
            self._store.audit(
                conn,
                "enroll",
                actor=self.current_actor(),
                person_id=pid,
                decision="accepted",
                details={"template_ids": ids, "via": "embeddings"},
            )
        self._refresh_index()
        return self._store.person(pid), ids

    @property
    def sealer(self) -> Sealer:
        """How this gallery's file seals blobs (its template key, or none): for components
        keeping tables of their own in the file (the photo library)."""
        return self._store.sealer

    # -- search -------------------------------------------------------------------------

    def identify(
        self, image: ImageSource, *, reject_below: float | None = None
    ) -> tuple[Identification, ...]:
        """Every face of a photo, identified against the gallery (or unknown). A face whose
        quality score is under ``reject_below`` is answered ``unsure``, never named."""
        self._check_model()
        faces = self.pipeline.analyze(image)
        results: tuple[Identification, ...] = ()
        if faces:
            vectors = np.stack([f.embedding.vector for f in faces if f.embedding is not None])
            unsure = None
            if reject_below is not None:
                unsure = [f.quality is None or f.quality.score < reject_below for f in faces]
            decisions = self.searcher.identify(vectors, unsure=unsure)
            results = tuple(
                Identification(d.decision, d.best, d.runner_up, bbox=f.bbox, quality=f.quality)
                for f, d in zip(faces, decisions, strict=True)
            )
        self.record(
            "identify",
            decision=",".join(str(r.decision) for r in results) or "no_face",
            details={
                "faces": len(results),
                "identified": [r.person.person_id for r in results if r.person is not None],
            },
        )
        return results

    def identify_vectors(self, vectors: np.ndarray) -> list[Identification]:
        """Open-set decisions for ``(N, D)`` embeddings computed by the caller (video).

        Same ranking and threshold as :meth:`identify`; not audited per call (a video makes
        many). This is the :class:`faceindex.video.recognition.Identifier` protocol.
        """
        self._check_model()
        return self.searcher.identify(vectors)

    def verify_person(
        self, image: ImageSource, ref: int | str, *, face: int | None = None
    ) -> Verification:
        """1:1: is the largest face of ``image`` (or face ``face``, largest first) this
        enrolled person?

        The face is compared with each of the person's templates, aggregated by the
        gallery's rule; the decision uses the verification threshold.
        """
        return self.verify_person_face(image, ref, face=face)[0]

    def verify_person_face(
        self, image: ImageSource, ref: int | str, *, face: int | None = None
    ) -> tuple[Verification, FaceChoice]:
        """:meth:`verify_person`, with the face compared and every face of the photo."""
        self._check_model()
        person = self._store.person(ref)
        searcher = self.searcher
        if not self._store.templates(person.id):
            raise NotFoundError(f"{person.name} has no enrolled face to compare with")
        choice = self.pipeline.choose_face(image, face)
        result = searcher.verify(choice.embedding.vector, person.id)
        self.record("verify", person_id=person.id, decision=str(result.decision))
        return result, choice

    def expectations(self) -> Expectations:
        """Expected FPIR/FNIR of this gallery at its threshold (``faceindex stats``)."""
        cal = self._own_calibration()
        genuine = cal.genuine if cal is not None and cal.genuine is not None else None
        return self.searcher.expectations(genuine or self.pipeline.embedder.spec.genuine)

    def set_calibration(self, calibration: Calibration | None) -> None:
        """Store a calibration made on the user's photos (None: back to the shipped one).

        It applies while the gallery's model is the one it was made with; parts it could
        not support (None) keep the model's shipped values.
        """
        if calibration is not None:
            migration.check_model(self._store.model_id, calibration.model_id)
        value = None if calibration is None else json.dumps(calibration.to_dict())
        with self._store.transaction() as conn:
            self._store.set_meta(conn, CALIBRATION_KEY, value)
            self._store.audit(
                conn,
                "calibrate",
                actor=self.current_actor(),
                details={} if calibration is None else calibration.to_dict(),
            )
        with self._lock:
            self._searcher = None  # the next search uses the new decision
            self._enroller = None

    def _own_calibration_unlocked(self, pipeline: Pipeline) -> Calibration | None:
        cal = self.calibration()
        return cal if cal is not None and cal.model_id == pipeline.model_id else None

    def _own_calibration(self) -> Calibration | None:
        cal = self.calibration()
        return cal if cal is not None and cal.model_id == self.pipeline.model_id else None

    def import_from(self, data: bytes) -> ImportReport:
        """Add the people and templates of an export file (:meth:`export`), matching people
        by name (regardless of case) and skipping photos already enrolled; refused when its
        templates are of another model than the gallery's (see
        :mod:`~faceindex.gallery.transfer`). One transaction, audited."""
        model_id = self._store.model_id or self.pipeline.model_id
        report = import_gallery(self._store, data, model_id=model_id, actor=self.current_actor())
        self._refresh_index()
        return report

    def rebuild_index(self, backend: str | None = None) -> int:
        """Drop the index cache and rebuild it from the store; returns its size."""
        return self.searcher.rebuild(backend)

    def reembed(self, pipeline: Pipeline) -> int:
        """Move the gallery to ``pipeline``'s model (see :mod:`faceindex.gallery.migration`)."""
        n = migration.reembed(self._store, pipeline, actor=self.current_actor())
        with self._lock:
            self._pipeline = pipeline
            self._searcher = None
            self._enroller = None
        return n
