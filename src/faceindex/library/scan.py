"""Scanning photo folders: every face of every photo, incrementally, resumably.

A file is looked at in three steps, each only when the one before cannot decide:

1. its size and mtime (``os.stat``) against what the last scan stored: equal means
   unchanged, and the file is not even opened (a re-scan of an unchanged library is a walk
   and a dictionary lookup per file);
2. its SHA-256: equal means the bytes did not change (a copy, a ``touch``): only the new
   size and mtime are stored;
3. else it is decoded, its faces detected, rated and embedded (by an engine:
   :mod:`faceindex.engines`, in this process by default, or on Dask workers), then
   identified against the gallery, and the photo is stored with its faces in one
   transaction, by this process, in the order of the walk.

Each photo commits on its own, so a scan killed half way keeps what it did and the next
one picks up where it stopped (a photo an engine lost is not stored, and is done next
time). Files without a photo suffix (:mod:`faceindex.io.files`,
plus HEIC/HEIF where Pillow has a plugin for them) are counted and skipped; hidden files
and folders (``.thumbnails``, ``.DS_Store``) are not looked at; a photo that cannot be
decoded is stored with its error code, so that it is not retried until it changes. Photos
that were scanned under a folder and are gone from it are forgotten, faces and all.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceindex.engines import Engine
from faceindex.engines.analysis import NOT_DONE, AnalysisPlan, Job, PhotoAnalysis
from faceindex.engines.local import LocalEngine
from faceindex.errors import EmbeddingModelMismatchError, NotFoundError
from faceindex.gallery import Gallery
from faceindex.io.files import IMAGE_SUFFIXES
from faceindex.library.store import OK, LibraryStore, NewFace, PhotoRecord
from faceindex.pipeline import Pipeline
from faceindex.types import Face

log = logging.getLogger(__name__)

#: Called after each file: (files done, files in all).
ProgressFn = Callable[[int, int], None]


def photo_suffixes() -> frozenset[str]:
    """The suffixes scanned: :data:`~faceindex.io.files.IMAGE_SUFFIXES`, and HEIC/HEIF/AVIF
    when Pillow has an opener for them (``pillow-heif`` installed and registered)."""
    from PIL import Image

    Image.init()
    extra = set()
    if "HEIF" in Image.OPEN:
        extra |= {".heic", ".heif"}
    if "AVIF" in Image.OPEN:
        extra.add(".avif")
    return IMAGE_SUFFIXES | frozenset(extra)


def walk(folders: Sequence[str | Path]) -> Iterator[Path]:
    """Every visible file under ``folders``, recursively, in a stable order (absolute
    paths, symbolic links to files followed, links to folders not: no loops)."""
    for folder in folders:
        root = Path(folder).absolute()
        if not root.is_dir():
            raise NotFoundError(f"{folder}: no such folder", path=str(folder))
        for current, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith("."):
                    yield Path(current) / name


def is_good_seed(face: Face) -> bool:
    """Whether a face may seed a cluster: its quality has no issue (not tiny, blurry,
    too dark or bright, turned away or cut off). Others may only join a cluster."""
    return face.quality is not None and face.quality.acceptable


@dataclass(slots=True)
class ScanReport:
    """What one scan did (counts of files and faces) and how long it took."""

    files: int = 0
    #: Files found by the walk (known once it is done; ``files`` counts those looked at).
    total: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    touched: int = 0
    not_images: int = 0
    errors: int = 0
    removed: int = 0
    faces: int = 0
    recognised: int = 0
    elapsed_s: float = 0.0
    clusters_joined: int = 0
    clusters_new: int = 0
    #: Photos an engine lost (a worker died): not stored, so the next scan does them.
    not_done: int = 0
    error_paths: list[tuple[str, str]] = field(default_factory=list)

    @property
    def analysed(self) -> int:
        return self.new + self.changed

    @property
    def photos_per_s(self) -> float:
        """Files looked at per second (the whole walk, unchanged ones included)."""
        return self.files / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged + self.touched,
            "not_images": self.not_images,
            "errors": self.errors,
            "not_done": self.not_done,
            "removed": self.removed,
            "faces": self.faces,
            "recognised": self.recognised,
            "clusters_joined": self.clusters_joined,
            "clusters_new": self.clusters_new,
            "elapsed_s": round(self.elapsed_s, 3),
            "photos_per_s": round(self.photos_per_s, 2),
        }


#: What an engine computes for each scanned photo: every face, embedded.
SCAN_PLAN = AnalysisPlan()


class _Step(enum.Enum):
    """What the walk decided about a file before any analysis (see the module doc)."""

    NOT_IMAGE = "not_image"
    ERROR = "error"
    UNCHANGED = "unchanged"
    TOUCHED = "touched"
    ANALYSE = "analyse"


@dataclass(frozen=True, slots=True)
class _File:
    """A file of the walk and what is known of it before the writer takes it."""

    path: Path
    step: _Step
    old: PhotoRecord | None = None
    size: int = 0
    mtime_ns: int = 0
    message: str | None = None


class Scanner:
    """Scans folders into a :class:`LibraryStore`, identifying faces with a gallery.

    The photos to analyse go through ``engine`` (default: in this process); what it finds
    is identified and written here, one photo at a time, in the order of the walk.
    """

    def __init__(
        self,
        store: LibraryStore,
        gallery: Gallery,
        pipeline: Pipeline,
        *,
        engine: Engine | None = None,
    ) -> None:
        self.store = store
        self.gallery = gallery
        self.pipeline = pipeline
        self.engine = engine

    def scan(
        self,
        folders: Sequence[str | Path],
        *,
        progress: ProgressFn | None = None,
        report: ScanReport | None = None,
    ) -> ScanReport:
        """Scan ``folders``; ``report`` (else a new one) is filled in as the scan goes, so
        that another thread may read its counts while it runs."""
        start = time.perf_counter()
        other = self.store.models() - {self.pipeline.model_id}
        if other:
            raise EmbeddingModelMismatchError(
                f"the library holds faces embedded with {sorted(other)[0]!r}; scan it with "
                f"that embedder (this one is {self.pipeline.model_id!r})",
                gallery_model=sorted(other)[0],
                model=self.pipeline.model_id,
            )
        report = report if report is not None else ScanReport()
        suffixes = photo_suffixes()
        known = self.store.photos()
        files = list(walk(folders))
        report.total = len(files)
        roots = [str(Path(f).absolute()) for f in folders]
        identify = self.gallery.count_templates() > 0
        seen: set[str] = set()

        def jobs() -> Iterator[Job[_File]]:
            for path in files:
                if path.suffix.lower() not in suffixes:
                    yield Job(_File(path, _Step.NOT_IMAGE), None)
                    continue
                seen.add(str(path))
                step = _look(path, known.get(str(path)))
                yield Job(step, str(path) if step.step is _Step.ANALYSE else None)

        engine = self.engine if self.engine is not None else LocalEngine(pipeline=self.pipeline)
        for done, (item, analysis) in enumerate(engine.analyse(jobs(), SCAN_PLAN), start=1):
            report.files += 1
            self._write(item, analysis, report, identify=identify)
            if progress is not None:
                progress(done, len(files))
        gone = [
            p
            for p in known
            if p not in seen and any(p.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
        ]
        if gone:
            report.removed = self.store.remove_photos(gone)
        report.elapsed_s = time.perf_counter() - start
        return report

    def _write(
        self, item: _File, analysis: PhotoAnalysis | None, report: ScanReport, *, identify: bool
    ) -> None:
        """Take one file of the walk, in order: count it, and store what changed."""
        if item.step is _Step.NOT_IMAGE:
            report.not_images += 1
        elif item.step is _Step.ERROR:
            report.errors += 1
            report.error_paths.append((str(item.path), item.message or "error"))
        elif item.step is _Step.UNCHANGED:
            report.unchanged += 1
        elif item.step is _Step.TOUCHED and item.old is not None:
            self.store.touch_photo(item.old.id, item.size, item.mtime_ns)
            report.touched += 1
        elif analysis is not None:
            self._save(item, analysis, report, identify=identify)

    def _save(
        self, item: _File, analysis: PhotoAnalysis, report: ScanReport, *, identify: bool
    ) -> None:
        path = str(item.path)
        if analysis.lost:  # not stored: the next scan finds it new and does it
            report.not_done += 1
            report.error_paths.append((path, NOT_DONE))
            return
        if analysis.sha256 is None:  # its bytes could not be read: not stored, retried
            report.errors += 1
            report.error_paths.append((path, analysis.message or analysis.error or "error"))
            return
        status, faces = OK, []
        if analysis.error is not None:
            status = analysis.error
            report.errors += 1
            report.error_paths.append((path, status))
        else:
            faces = self._faces(analysis, identify=identify)
        self.store.save_photo(
            path,
            size=item.size,
            mtime_ns=item.mtime_ns,
            sha256=analysis.sha256,
            status=status,
            faces=faces,
        )
        if item.old is None:
            report.new += 1
        else:
            report.changed += 1
        report.faces += len(faces)
        report.recognised += sum(1 for f in faces if f.person_id is not None)

    def _faces(self, analysis: PhotoAnalysis, *, identify: bool) -> list[NewFace]:
        embedded = [f for f in analysis.faces if f.embedding is not None]
        if not embedded:
            return []
        vectors = np.stack([f.embedding.vector for f in embedded if f.embedding is not None])
        who: list[tuple[int | None, float | None]] = [(None, None)] * len(embedded)
        if identify:
            who = [
                (r.person.person_id, r.person.similarity) if r.person is not None else (None, None)
                for r in self.gallery.identify_vectors(vectors)
            ]
        model_id = self.pipeline.model_id
        return [
            NewFace(
                bbox=f.bbox,
                quality=None if f.quality is None else float(f.quality.score),
                seeds=is_good_seed(f),
                vector=vectors[i],
                model_id=model_id,
                person_id=who[i][0],
                similarity=who[i][1],
            )
            for i, f in enumerate(embedded)
        ]


def _look(path: Path, old: PhotoRecord | None) -> _File:
    """Steps 1 and 2 of the module docstring, before any analysis: unchanged (same size
    and mtime), touched (same bytes), or to analyse (new, or its bytes changed)."""
    try:
        st = path.stat()
    except OSError as exc:
        return _File(path, _Step.ERROR, message=exc.strerror or str(exc))
    size, mtime_ns = st.st_size, st.st_mtime_ns
    if old is None:
        return _File(path, _Step.ANALYSE, None, size, mtime_ns)  # the engine reads it
    if old.size == size and old.mtime_ns == mtime_ns:
        return _File(path, _Step.UNCHANGED, old)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _File(path, _Step.ERROR, message=exc.strerror or str(exc))
    if old.sha256 == hashlib.sha256(data).hexdigest():
        return _File(path, _Step.TOUCHED, old, size, mtime_ns)
    return _File(path, _Step.ANALYSE, old, size, mtime_ns)
