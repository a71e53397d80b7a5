"""The photo library's front door: scan folders, group unnamed faces, name people once.

:class:`PhotoLibrary` sits on a :class:`~faceindex.gallery.Gallery` (it identifies faces
with it, and naming a cluster enrols the cluster's faces into it) and keeps its own tables
in the gallery's database (:mod:`faceindex.library.store`), sealed with the gallery's key.

Clustering is incremental (:meth:`PhotoLibrary.update_clusters`, run after each scan):
faces not yet in a cluster first join the existing cluster they are most alike on
average, if that reaches the threshold and they were never taken out of it; only the
faces still left over are clustered among themselves (:func:`~.cluster.seeded_cluster`),
so a scan never re-clusters the world and clusters a user has looked at stay put.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceindex.engines import Engine
from faceindex.errors import ConflictError, InvalidInputError, NotFoundError
from faceindex.gallery import Gallery, Person
from faceindex.library.cluster import ClusterRule, assign, rule_for, seeded_cluster
from faceindex.library.scan import ProgressFn, Scanner, ScanReport
from faceindex.library.store import FaceRecord, LibraryStore
from faceindex.pipeline import Pipeline
from faceindex.types import Embedding


@dataclass(frozen=True, slots=True)
class Cluster:
    """A candidate person: faces no one has named yet, largest cluster first."""

    id: int
    faces: tuple[FaceRecord, ...]

    @property
    def size(self) -> int:
        return len(self.faces)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "size": self.size, "faces": [f.as_dict() for f in self.faces]}


@dataclass(frozen=True, slots=True)
class Clusters:
    clusters: tuple[Cluster, ...]
    unclustered: tuple[FaceRecord, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "clusters": [c.as_dict() for c in self.clusters],
            "unclustered": [f.as_dict() for f in self.unclustered],
        }


@dataclass(frozen=True, slots=True)
class ClusterUpdate:
    joined: int
    new_clusters: int


#: The most unplaced faces clustered at once (bounds memory: average linkage keeps a
#: square matrix of the batch and its neighbours).
BATCH = 2000


class PhotoLibrary:
    """Scans, clusters and names, over one gallery; see the module docstring."""

    def __init__(
        self,
        gallery: Gallery,
        *,
        pipeline: Pipeline | None = None,
        rule: ClusterRule | None = None,
        store: LibraryStore | None = None,
    ) -> None:
        self.gallery = gallery
        self._pipeline = pipeline
        self._rule = rule
        self.store = store or LibraryStore(gallery.location, sealer=gallery.sealer)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> PhotoLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline if self._pipeline is not None else self.gallery.pipeline

    @property
    def rule(self) -> ClusterRule:
        """The clustering rule given, else the one tuned for the pipeline's embedder."""
        if self._rule is None:
            spec = self.pipeline.embedder.spec
            self._rule = rule_for(spec.model_id, spec.threshold)
        return self._rule

    # -- scanning ---------------------------------------------------------------------

    def scan(
        self,
        folders: Sequence[str | Path],
        *,
        progress: ProgressFn | None = None,
        cluster: bool = True,
        report: ScanReport | None = None,
        engine: Engine | None = None,
    ) -> ScanReport:
        """Index every face of the photos under ``folders`` (see :mod:`.scan`), then
        (``cluster``) place the new unnamed faces in clusters. ``report``: filled in as the
        scan goes (see :meth:`.Scanner.scan`). ``engine``: where the photos are analysed
        (:mod:`faceindex.engines`; default: in this process)."""
        report = Scanner(self.store, self.gallery, self.pipeline, engine=engine).scan(
            folders, progress=progress, report=report
        )
        if cluster:
            update = self.update_clusters()
            report.clusters_joined, report.clusters_new = update.joined, update.new_clusters
        return report

    # -- clustering -------------------------------------------------------------------

    def update_clusters(self) -> ClusterUpdate:
        """Place the unnamed faces not placed yet (new since the last clustering, or taken
        out of a cluster), :data:`BATCH` at a time, each batch in one transaction:

        1. each joins the existing cluster it is most alike on average (a face never
           rejoins a cluster it was taken out of), if that reaches the threshold;
        2. the rest are clustered (:func:`~.cluster.seeded_cluster`) together with the
           unclustered faces placed before that are within the threshold of one of them
           (a new cluster needs a new face: groups of old faces alone would have formed
           already), and each group of at least ``min_size`` becomes a cluster.

        Nothing placed before is moved, so a scan never re-clusters the world; memory and
        time grow with the batch, not the library."""
        joined = made = 0
        while True:
            batch = self.store.faces(
                "f.person_id IS NULL AND f.cluster_id IS NULL AND f.placed = 0", limit=BATCH
            )
            if not batch:
                return ClusterUpdate(joined, made)
            j, m = self._place(batch)
            joined, made = joined + j, made + m

    def _place(self, batch: list[FaceRecord]) -> tuple[int, int]:
        rule = self.rule
        vectors, _ = self.store.vectors([f.id for f in batch])
        target = np.full(len(batch), -1, dtype=np.int64)
        members = self.store.faces("f.person_id IS NULL AND f.cluster_id IS NOT NULL")
        cids: list[int] = []
        if members:
            cids = sorted({int(m.cluster_id) for m in members if m.cluster_id is not None})
            column = {c: i for i, c in enumerate(cids)}
            mvecs, _ = self.store.vectors([m.id for m in members])
            sums = np.zeros((len(cids), mvecs.shape[1]), dtype=np.float64)
            counts = np.zeros(len(cids), dtype=np.float64)
            rows = np.array([column[int(m.cluster_id or 0)] for m in members])
            np.add.at(sums, rows, mvecs)
            np.add.at(counts, rows, 1.0)
            means = (sums / counts[:, None]).astype(np.float32)
            rejected = self.store.rejections()
            excluded = [
                frozenset(column[c] for c in rejected.get(f.id, ()) if c in column) for f in batch
            ]
            target = assign(vectors, means, rule.threshold, excluded=excluded)
        joined = [(batch[i].id, cids[int(t)]) for i, t in enumerate(target) if t >= 0]
        left = np.flatnonzero(target < 0)
        rest = [batch[i] for i in left]
        groups: list[list[int]] = []
        if rest:
            pool = self._neighbours(vectors[left], {f.id for f in batch}, rule.threshold)
            faces = rest + [p for p, _ in pool]
            vecs = np.concatenate([vectors[left], *[v[None, :] for _, v in pool]])
            seeds = np.array([f.seeds for f in faces], dtype=bool)
            labels = seeded_cluster(vecs, seeds, rule)
            groups = [
                [faces[i].id for i in np.flatnonzero(labels == k)]
                for k in range(int(labels.max(initial=-1)) + 1)
            ]
        made = self.store.place(joined, [g for g in groups if g], [f.id for f in batch])
        return len(joined), len(made)

    def _neighbours(
        self, vectors: np.ndarray, skip: set[int], threshold: float
    ) -> list[tuple[FaceRecord, np.ndarray]]:
        """Unclustered faces placed before that are within ``threshold`` of a row of
        ``vectors``, with their embeddings."""
        old = [
            f
            for f in self.store.faces(
                "f.person_id IS NULL AND f.cluster_id IS NULL AND f.placed = 1"
            )
            if f.id not in skip
        ]
        if not old or len(vectors) == 0:
            return []
        found: list[tuple[FaceRecord, np.ndarray]] = []
        for start in range(0, len(old), BATCH):
            chunk = old[start : start + BATCH]
            ovecs, _ = self.store.vectors([f.id for f in chunk])
            near = (ovecs @ vectors.T).max(axis=1) >= threshold
            found += [(chunk[i], ovecs[i]) for i in np.flatnonzero(near)]
        return found

    def clusters(self) -> Clusters:
        """Every cluster (largest first, then oldest) and the unnamed faces in none."""
        faces = self.store.faces("f.person_id IS NULL")
        grouped: dict[int, list[FaceRecord]] = {}
        loose: list[FaceRecord] = []
        for f in faces:
            if f.cluster_id is None:
                loose.append(f)
            else:
                grouped.setdefault(f.cluster_id, []).append(f)
        ordered = sorted(grouped.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        return Clusters(tuple(Cluster(c, tuple(fs)) for c, fs in ordered), tuple(loose))

    def cluster(self, cluster_id: int) -> Cluster:
        faces = self.store.faces("f.cluster_id = ? AND f.person_id IS NULL", (cluster_id,))
        if not faces:
            raise NotFoundError(f"no cluster #{cluster_id}", cluster=cluster_id)
        return Cluster(cluster_id, tuple(faces))

    def name(
        self, cluster_id: int, name: str | None = None, *, person_id: int | None = None
    ) -> Person:
        """Turn a cluster into a person: a new one called ``name`` (or the person of that
        name, regardless of case), or the existing ``person_id``. Its good faces (those
        that may seed a cluster) are enrolled as the person's templates; every face of it
        is marked as that person and the cluster is gone. Later scans recognise them."""
        if (name is None or not name.strip()) and person_id is None:
            raise InvalidInputError("give a name or a person id")
        group = self.cluster(cluster_id)
        good = [f for f in group.faces if f.seeds] or list(group.faces)
        vectors, model = self.store.vectors([f.id for f in good])
        if model is None:  # pragma: no cover - a cluster has faces
            raise NotFoundError(f"cluster #{cluster_id} has no face")
        shas = self._photo_hashes([f.photo_id for f in good])
        person, _ = self.gallery.enroll_embeddings(
            name or "",
            [Embedding(v, model) for v in vectors],
            person_id=person_id,
            sources=[(f.path, shas[f.photo_id]) for f in good],
            bboxes=[f.bbox for f in good],
            qualities=[f.quality for f in good],
        )
        with self.store.transaction() as conn:
            self.store.execute(
                conn,
                "UPDATE library_faces SET person_id = ?, similarity = NULL, cluster_id = NULL"
                " WHERE cluster_id = ?",
                (person.id, cluster_id),
            )
            self.store.execute(conn, "DELETE FROM library_clusters WHERE id = ?", (cluster_id,))
        return person

    def _photo_hashes(self, photo_ids: Sequence[int]) -> dict[int, str]:
        wanted = set(photo_ids)
        return {r.id: r.sha256 for r in self.store.photos().values() if r.id in wanted}

    def merge(self, into: int, other: int) -> Cluster:
        """Move every face of cluster ``other`` into ``into`` (and what its faces were
        taken out of: they stay out of the merged cluster too)."""
        if into == other:
            raise ConflictError("a cluster cannot be merged into itself")
        self.cluster(into), self.cluster(other)
        with self.store.transaction() as conn:
            self.store.execute(
                conn, "UPDATE library_faces SET cluster_id = ? WHERE cluster_id = ?", (into, other)
            )
            # What SQLite's UPDATE OR IGNORE did, in SQL Postgres accepts too: a face taken
            # out of both clusters keeps one rejection.
            self.store.execute(
                conn,
                "INSERT INTO library_rejections (face_id, cluster_id)"
                " SELECT face_id, ? FROM library_rejections WHERE cluster_id = ?"
                " ON CONFLICT DO NOTHING",
                (into, other),
            )
            self.store.execute(
                conn, "DELETE FROM library_rejections WHERE cluster_id = ?", (other,)
            )
            self.store.execute(conn, "DELETE FROM library_clusters WHERE id = ?", (other,))
        return self.cluster(into)

    def remove_face(self, cluster_id: int, face_id: int) -> FaceRecord:
        """ "Not this person": take a face out of a cluster; it never rejoins that cluster
        (it may join another, or form one, at the next scan). An emptied cluster is gone;
        one left with a single face stays (the face it lost may not rejoin it)."""
        face = self.store.face(face_id)
        if face.cluster_id != cluster_id:
            raise NotFoundError(f"face #{face_id} is not in cluster #{cluster_id}", face=face_id)
        with self.store.transaction() as conn:
            self.store.execute(
                conn,
                "UPDATE library_faces SET cluster_id = NULL, placed = 0 WHERE id = ?",
                (face_id,),
            )
            self.store.execute(
                conn,
                "INSERT INTO library_rejections (face_id, cluster_id) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                (face_id, cluster_id),
            )
            left = conn.execute(
                "SELECT COUNT(*) FROM library_faces WHERE cluster_id = ?", (cluster_id,)
            ).fetchone()[0]
            if not int(left):
                self.store.execute(conn, "DELETE FROM library_clusters WHERE id = ?", (cluster_id,))
        return self.store.face(face_id)

    # -- search -----------------------------------------------------------------------

    def photos_of(self, person_ids: Sequence[int]) -> list[str]:
        """Paths of the scanned photos in which every one of ``person_ids`` was found
        (recognised at scan time, or named through a cluster)."""
        ids = sorted(set(person_ids))
        for pid in ids:
            with contextlib.suppress(NotFoundError):
                self.gallery.person(pid)
                continue
            raise NotFoundError(f"no person #{pid}", person=pid)
        return self.store.photo_paths_of(ids)

    def photo_faces_of(self, person_ids: Sequence[int]) -> list[tuple[str, tuple[FaceRecord, ...]]]:
        """:meth:`photos_of`, each path with the faces of those people in that photo
        (for thumbnails)."""
        paths = self.photos_of(person_ids)
        ids = sorted(set(person_ids))
        marks = ",".join("?" * len(ids))
        by_path: dict[str, list[FaceRecord]] = {}
        for f in self.store.faces(f"f.person_id IN ({marks})", tuple(ids)):
            by_path.setdefault(f.path, []).append(f)
        return [(p, tuple(by_path.get(p, ()))) for p in paths]

    def counts(self) -> dict[str, int]:
        return self.store.counts()
