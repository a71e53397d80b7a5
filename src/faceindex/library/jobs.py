"""Scans in the background of a long-lived process (the REST service's ``/v1/scans``).

:class:`ScanJobs` runs at most one scan at a time, on a worker thread, through a
:class:`~faceindex.library.library.PhotoLibrary` of its own (its own connection to the
library tables: the requests' library is not shared with a thread that writes for
minutes). Its progress is read while it runs (:meth:`ScanJob.info`). A cancelled scan
stops between two photos: each photo commits on its own, so what was done stays, its new
faces are clustered, and the next scan of those folders skips them (scans are resumable).

Folders are only scanned under the ``roots`` the process was given
(:func:`allowed_folder`): the caller of a REST service names folders on the server's disk.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceindex.errors import ConflictError, FaceIndexError, NotFoundError
from faceindex.library.scan import ScanReport

log = logging.getLogger(__name__)

#: Finished scans kept for ``GET /v1/scans/{id}`` (the oldest are forgotten first).
KEEP_FINISHED = 20


class ScanState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class ScanCancelled(Exception):
    """Raised from the progress callback to stop a scan between two photos."""


@dataclass(frozen=True, slots=True)
class ScanInfo:
    """A scan's progress: files found and looked at, photos done and failed, faces."""

    id: int
    state: ScanState
    folders: tuple[str, ...]
    started_at: float
    finished_at: float | None
    total: int
    seen: int
    done: int
    failed: int
    not_photos: int
    faces: int
    recognised: int
    photos_per_s: float
    clusters_new: int
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": str(self.state),
            "folders": list(self.folders),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "total": self.total,
            "seen": self.seen,
            "done": self.done,
            "failed": self.failed,
            "not_photos": self.not_photos,
            "faces": self.faces,
            "recognised": self.recognised,
            "photos_per_s": self.photos_per_s,
            "clusters_new": self.clusters_new,
            "error": self.error,
        }


class ScanJob:
    """One scan on its own thread; see the module docstring."""

    def __init__(self, job_id: int, folders: Sequence[Path]) -> None:
        self.id = job_id
        self.folders = tuple(str(f) for f in folders)
        self.report = ScanReport()
        self.state = ScanState.RUNNING
        self.error: str | None = None
        self.started_at = time.time()
        self._start = time.perf_counter()
        self._end: float | None = None
        self.finished_at: float | None = None
        self._cancel = threading.Event()
        self.thread: threading.Thread | None = None

    def cancel(self) -> None:
        """Ask the scan to stop after the photo it is on."""
        self._cancel.set()

    @property
    def running(self) -> bool:
        return self.state is ScanState.RUNNING

    def progress(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise ScanCancelled

    def finish(self, state: ScanState, error: str | None = None) -> None:
        self._end = time.perf_counter()
        self.finished_at = time.time()
        self.error = error
        self.state = state

    def info(self) -> ScanInfo:
        r = self.report
        elapsed = (self._end or time.perf_counter()) - self._start
        done = r.new + r.changed + r.unchanged + r.touched
        return ScanInfo(
            id=self.id,
            state=self.state,
            folders=self.folders,
            started_at=self.started_at,
            finished_at=self.finished_at,
            total=r.total,
            seen=r.files,
            done=max(0, done - min(r.errors, r.new + r.changed)),
            failed=r.errors,
            not_photos=r.not_images,
            faces=r.faces,
            recognised=r.recognised,
            photos_per_s=round(r.files / elapsed, 2) if elapsed > 0 else 0.0,
            clusters_new=r.clusters_new,
            error=self.error,
        )


#: Makes the library a scan writes through (its own connection); closed after the scan.
LibraryFactory = Callable[[], Any]


class ScanJobs:
    """At most one running scan per process, and the last finished ones."""

    def __init__(self, open_library: LibraryFactory) -> None:
        self._open_library = open_library
        self._lock = threading.Lock()
        self._jobs: dict[int, ScanJob] = {}
        self._next = 1

    def start(self, folders: Sequence[Path]) -> ScanJob:
        """Start scanning ``folders`` (already checked) on a worker thread; a conflict
        while another scan runs."""
        with self._lock:
            running = [j for j in self._jobs.values() if j.running]
            if running:
                raise ConflictError(
                    f"scan #{running[0].id} is still running: wait for it or cancel it",
                    scan=running[0].id,
                )
            job = ScanJob(self._next, folders)
            self._next += 1
            self._jobs[job.id] = job
            finished = [j for j in self._jobs.values() if not j.running]
            for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:
                del self._jobs[old.id]
        job.thread = threading.Thread(
            target=self._run, args=(job,), name=f"faceindex-scan-{job.id}", daemon=True
        )
        job.thread.start()
        return job

    def _run(self, job: ScanJob) -> None:
        try:
            library = self._open_library()
        except FaceIndexError as exc:
            job.finish(ScanState.FAILED, exc.message)
            return
        except Exception as exc:  # reported as the scan's error
            log.exception("scan #%d could not start", job.id)
            job.finish(ScanState.FAILED, type(exc).__name__)
            return
        try:
            library.scan(list(job.folders), progress=job.progress, report=job.report)
            job.finish(ScanState.DONE)
        except ScanCancelled:
            # What was scanned stays (each photo committed); its faces are clustered now.
            try:
                update = library.update_clusters()
                job.report.clusters_joined, job.report.clusters_new = (
                    update.joined,
                    update.new_clusters,
                )
            except FaceIndexError as exc:
                log.warning("scan #%d: clustering after cancel failed: %s", job.id, exc)
            job.finish(ScanState.CANCELLED)
        except FaceIndexError as exc:
            job.finish(ScanState.FAILED, exc.message)
        except Exception as exc:  # a bug: reported without its traceback
            log.exception("scan #%d failed", job.id)
            job.finish(ScanState.FAILED, f"internal error ({type(exc).__name__})")
        finally:
            library.close()
        log.info("scan #%d %s: %s", job.id, job.state, job.report.as_dict())

    def get(self, job_id: int) -> ScanJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no scan #{job_id}", scan=job_id)
        return job

    def list(self) -> list[ScanJob]:
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, job_id: int) -> ScanJob:
        job = self.get(job_id)
        job.cancel()
        return job

    def stop_all(self, timeout_s: float = 10.0) -> None:
        """Cancel every running scan and wait for it (at shut-down)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout_s)


def parse_roots(value: str | None) -> tuple[Path, ...]:
    """Library roots from ``FACEINDEX_LIBRARY_ROOTS`` (``os.pathsep``-separated folders),
    resolved; empty entries are ignored."""
    import os

    if not value:
        return ()
    return tuple(Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p.strip())


class FolderNotAllowedError(FaceIndexError):
    """A folder outside the library roots the server was given."""

    code = "folder_not_allowed"


def allowed_folder(folder: str, roots: Sequence[Path]) -> Path:
    """``folder`` resolved (symbolic links, ``..``) if it is an existing folder under one of
    ``roots``; else :class:`FolderNotAllowedError` (outside, or no roots at all) or
    :class:`NotFoundError` (no such folder under a root)."""
    if not roots:
        raise FolderNotAllowedError(
            "this server scans no folders: start it with FACEINDEX_LIBRARY_ROOTS set to the "
            "folders it may scan"
        )
    path = Path(folder).expanduser()
    if not path.is_absolute():
        raise FolderNotAllowedError(f"{folder}: give an absolute path", folder=folder)
    resolved = path.resolve()
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        raise FolderNotAllowedError(
            f"{folder} is not under a library root of this server",
            folder=folder,
            roots=[str(r) for r in roots],
        )
    if not resolved.is_dir():
        raise NotFoundError(f"{folder}: no such folder", folder=folder)
    return resolved
