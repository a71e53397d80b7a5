"""Stream monitors: ``watch`` running in the background of a long-lived process.

The REST service starts one per camera or stream; each runs the same :class:`Watcher` as
``faceindex watch`` on its own thread, keeps its last events in a bounded buffer with
sequence numbers (clients poll ``events_after(seq)``), and stops on request, at the end of
a file, after ``max_seconds``, or when its source is lost for good (status ``failed`` with
the error). The manager caps how many run at once, because each one takes CPU.
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faceindex.errors import ConflictError, FaceIndexError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from faceindex.pipeline import Pipeline
    from faceindex.video.recognition import Identifier

log = logging.getLogger(__name__)


class MonitorStatus(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    FINISHED = "finished"  # the file ended, or max_seconds passed
    STOPPED = "stopped"  # stopped on request
    FAILED = "failed"  # the source could not be opened or was lost


@dataclass(frozen=True, slots=True)
class MonitorInfo:
    id: int
    source: str
    status: MonitorStatus
    started_at: float
    frames: int
    events: int
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "status": str(self.status),
            "started_at": self.started_at,
            "frames": self.frames,
            "events": self.events,
            "error": self.error,
        }


class Monitor:
    def __init__(
        self,
        monitor_id: int,
        source: str,
        pipeline: Pipeline,
        identifier: Identifier,
        *,
        realtime: bool = False,
        max_seconds: float | None = None,
        reconnect: int = 5,
        timeout_s: float = 5.0,
        max_events: int = 1000,
    ) -> None:
        from faceindex.io.video import redact

        self.id = monitor_id
        self.source = source
        self.label = redact(source)
        self.pipeline = pipeline
        self.identifier = identifier
        self.realtime = realtime
        self.max_seconds = max_seconds
        self.reconnect = reconnect
        self.timeout_s = timeout_s
        self.started_at = time.time()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._events: collections.deque[tuple[int, dict[str, Any]]] = collections.deque(
            maxlen=max_events
        )
        self._seq = 0
        self._frames = 0
        self._status = MonitorStatus.STARTING
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"monitor-{monitor_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def info(self) -> MonitorInfo:
        with self._lock:
            return MonitorInfo(
                self.id,
                self.label,
                self._status,
                self.started_at,
                self._frames,
                self._seq,
                self._error,
            )

    def events_after(self, seq: int, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            return [e for e in self._events if e[0] > seq][:limit]

    def _emit(self, events: Any) -> None:
        with self._lock:
            for event in events:
                self._seq += 1
                self._events.append((self._seq, event.as_dict()))

    def _set(self, status: MonitorStatus, error: str | None = None) -> None:
        with self._lock:
            self._status = status
            self._error = error

    def _run(self) -> None:
        from faceindex.io.video import ReconnectPolicy, open_video
        from faceindex.video.events import Clock
        from faceindex.video.watch import Watcher

        source = None
        watcher = None
        try:
            policy = ReconnectPolicy(
                max_attempts=self.reconnect,
                open_timeout_s=self.timeout_s,
                read_timeout_s=self.timeout_s,
            )
            source = open_video(self.source, realtime=self.realtime, policy=policy)
            info = source.info
            watcher = Watcher(
                self.pipeline,
                self.identifier,
                source=info.description,
                clock=Clock.WALL if info.live else Clock.VIDEO,
                source_fps=info.fps,
                live=info.live,
            )
            self._set(MonitorStatus.RUNNING)
            start = time.monotonic()
            status = MonitorStatus.FINISHED
            for frame in source.frames():
                if self._stop.is_set():
                    status = MonitorStatus.STOPPED
                    break
                result = watcher.process(frame.image, frame.timestamp, frame.index)
                with self._lock:
                    self._frames += 1
                self._emit(result.events)
                if self.max_seconds is not None and time.monotonic() - start >= self.max_seconds:
                    break
            if self._stop.is_set():
                status = MonitorStatus.STOPPED
            self._emit(watcher.finish())
            self._set(status)
        except FaceIndexError as exc:
            self._set(MonitorStatus.FAILED, exc.message)
        except Exception:  # a bug: keep the server up, say it failed
            log.exception("monitor %d crashed", self.id)
            self._set(MonitorStatus.FAILED, "internal error")
        finally:
            if watcher is not None:
                watcher.close()
            if source is not None:
                source.close()


#: 2020-01-01T00:00:00Z: monitor ids count seconds from it (see MonitorManager).
_ID_EPOCH = 1_577_836_800


class MonitorManager:
    """The monitors of one process; thread-safe.

    Monitor ids are never reused by a manager, and not by the next process either: each
    is above every id given before and at least the seconds since 2020 (so it stays below
    2**31, the API's bound, until 2088); a client retrying ``DELETE /v1/monitors/{id}``
    after a restart cannot stop someone else's monitor (unless the previous process
    started monitors faster than one a second on average, which the running cap prevents
    in practice).
    """

    def __init__(self, pipeline: Pipeline, identifier: Identifier, *, max_running: int = 4) -> None:
        self.pipeline = pipeline
        self.identifier = identifier
        self.max_running = max_running
        self._monitors: dict[int, Monitor] = {}
        self._last_id = 0
        self._lock = threading.Lock()

    def _next_id(self) -> int:
        """A new id (under ``_lock``): increasing, and above any earlier process's ids."""
        self._last_id = max(self._last_id + 1, int(time.time()) - _ID_EPOCH)
        return self._last_id

    def start(self, source: str, **options: Any) -> MonitorInfo:
        if not source or not source.strip():
            raise InvalidInputError("a monitor needs a source: a file, device index or URL")
        with self._lock:
            running = sum(m.alive for m in self._monitors.values())
            if running >= self.max_running:
                raise ConflictError(
                    f"{running} monitors are running, the limit is {self.max_running}: "
                    "stop one first"
                )
            monitor = Monitor(
                self._next_id(), source.strip(), self.pipeline, self.identifier, **options
            )
            self._monitors[monitor.id] = monitor
        monitor.start()
        return monitor.info()

    def get(self, monitor_id: int) -> Monitor:
        with self._lock:
            monitor = self._monitors.get(monitor_id)
        if monitor is None:
            raise NotFoundError(f"no monitor #{monitor_id}")
        return monitor

    def list(self) -> list[MonitorInfo]:
        with self._lock:
            monitors = list(self._monitors.values())
        return [m.info() for m in monitors]

    def remove(self, monitor_id: int) -> MonitorInfo:
        """Stop a monitor (if running) and forget it; returns its last state."""
        monitor = self.get(monitor_id)
        monitor.stop()
        with self._lock:
            self._monitors.pop(monitor_id, None)
        return monitor.info()

    def stop_all(self) -> None:
        with self._lock:
            monitors = list(self._monitors.values())
        for m in monitors:
            m.stop()
