"""From a track's best face sample to a vote: embed it, identify it against the gallery.

:class:`Recognizer` runs either inline (files: deterministic, every sample is embedded in
order) or on a worker thread (live sources: a 50-150 ms embedding never stalls the frame
loop, so boxes keep following faces while a face is being recognised; ONNX Runtime
releases the GIL while it computes). The worker's queue is bounded: when it is full a new
sample is refused and the track simply offers its next window's best.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from faceindex.embedding import Embedder
from faceindex.tracking.identity import FaceSample, Vote
from faceindex.types import FloatArray, IdentDecision, Identification

log = logging.getLogger(__name__)


class Identifier(Protocol):
    """Who each of ``(N, D)`` embeddings is. The video layer is given one (a
    :class:`~faceindex.gallery.Gallery` satisfies this protocol) and never imports the
    gallery itself."""

    def identify_vectors(self, vectors: FloatArray) -> list[Identification]: ...


class NobodyIdentifier:
    """No gallery: every face is unknown (tracking and events still work)."""

    def identify_vectors(self, vectors: FloatArray) -> list[Identification]:
        return [Identification(IdentDecision.UNKNOWN, None, None) for _ in range(len(vectors))]


@dataclass(frozen=True, slots=True)
class Recognition:
    track_id: int
    sample: FaceSample
    vote: Vote


class Recognizer:
    def __init__(
        self,
        embedder: Embedder,
        identifier: Identifier,
        *,
        asynchronous: bool = False,
        max_pending: int = 4,
    ) -> None:
        self.embedder = embedder
        self.identifier = identifier
        self.asynchronous = asynchronous
        self.embeddings = 0
        self.refused = 0
        self.seconds = 0.0
        self._done: collections.deque[Recognition] = collections.deque()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[int, FaceSample] | None] = queue.Queue(max_pending)
        self._pending = 0
        self._worker: threading.Thread | None = None
        if asynchronous:
            self._worker = threading.Thread(
                target=self._work, name="faceindex-recognizer", daemon=True
            )
            self._worker.start()

    def submit(self, track_id: int, sample: FaceSample) -> bool:
        """Queue a sample (inline mode: recognise it now). False if the queue is full."""
        if not self.asynchronous:
            self._done.extend(self._recognise([(track_id, sample)]))
            return True
        with self._lock:
            self._pending += 1
        try:
            self._queue.put_nowait((track_id, sample))
        except queue.Full:
            with self._lock:
                self._pending -= 1
            self.refused += 1
            return False
        return True

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def results(self) -> list[Recognition]:
        """Recognitions finished since the last call."""
        out = []
        while True:
            try:
                out.append(self._done.popleft())
            except IndexError:
                return out

    def wait(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) until every queued sample has been recognised."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        if self._worker is not None:
            try:
                self._queue.put(None, timeout=1.0)
            except queue.Full:
                log.warning("recognizer queue still full at close")
            self._worker.join(timeout=5.0)
            self._worker = None

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while True:  # take whatever else is waiting, one model call each
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            try:
                self._done.extend(self._recognise(batch))
            except Exception:
                log.exception("recognising a face failed")
            finally:
                with self._lock:
                    self._pending -= len(batch)

    def _recognise(self, items: Sequence[tuple[int, FaceSample]]) -> list[Recognition]:
        start = time.perf_counter()
        vectors = np.concatenate(
            [self.embedder.embed(sample.image, [sample.face]) for _, sample in items]
        ).astype(np.float32)
        answers = self.identifier.identify_vectors(vectors)
        self.embeddings += len(items)
        self.seconds += time.perf_counter() - start
        return [
            Recognition(
                track_id,
                sample,
                Vote(
                    a.person.person_id if a.person else None,
                    a.person.name if a.person else None,
                    a.similarity,
                    sample.quality,
                    sample.timestamp,
                ),
            )
            for (track_id, sample), a in zip(items, answers, strict=True)
        ]
