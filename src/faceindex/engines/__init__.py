"""Engines: where the per-photo analysis of bulk work runs (``--engine local|dask``).

``faceindex enroll --folders`` and ``faceindex scan`` spend nearly all their time decoding
photos, detecting, rating and embedding faces; deciding and writing what was found is
cheap. An engine runs that analysis (:func:`~faceindex.engines.analysis.analyse_photo`)
somewhere, and hands each photo's :class:`~faceindex.engines.analysis.PhotoAnalysis` back
to **one writer** in the calling process, **in the order the photos were given**: the
gallery's enrolment gate and the library's scan then decide and commit exactly as they do
for a photo analysed in-process, so a gallery is identical whichever engine ran (the
enrolment gate depends on what was enrolled before: duplicates, the cross-person check,
"unlike this person"; writing in input order keeps it deterministic).

- ``local`` (default): in this process, one photo after the other, with the caller's
  pipeline (:mod:`~faceindex.engines.local`).
- ``dask``: Dask distributed (:mod:`~faceindex.engines.dask_engine`). A
  ``LocalCluster`` of ``--workers N`` processes on 127.0.0.1 only (no dashboard), or an
  existing scheduler (``--address tcp://HOST:PORT``) whose workers may be on many machines.
  Each worker process builds the pipeline once (a worker plugin keyed by the settings,
  :mod:`~faceindex.engines.dask_worker`) and keeps it between tasks and jobs; tasks are
  batches of photo paths (workers read the photos themselves: they need the same paths,
  e.g. shared storage); results stream back as they complete (``as_completed``) into a
  bounded reorder buffer. A photo whose worker died is reported as not done
  (:data:`~faceindex.engines.analysis.NOT_DONE`) and nothing is written for it, so a re-run
  finishes it; Ctrl-C cancels the tasks and closes the cluster.

Why Dask and not Ray (issue 17's measurements on this machine): Ray 2.60 starts in 1.9 s
with ~0.5 ms per task and actors that keep a model loaded, but at start it probes cloud
metadata addresses and binds all interfaces, so it may only run inside a loopback-only
network namespace, and it installs 617 MB. Dask distributed installs 142 MB, binds
127.0.0.1 when told to (``host="127.0.0.1"``; checked by the tests), sends nothing
anywhere else, and its ``LocalCluster`` starts in ~1.5 s with ~12 ms per round trip of a
small task (measured here), which batches of photos (each photo costs tens of ms of
analysis with the real models) make negligible. Both keep models loaded per worker (Ray
actors, Dask worker plugins). Ray could be added later as another backend behind the same
:class:`Engine` protocol and registry (``ENGINES.register("ray", ...)``), e.g. with an
actor pool per node, without changing the gallery or the library.

Importing this package imports neither Dask nor a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from faceindex.errors import ConfigError
from faceindex.registry import Registry

if TYPE_CHECKING:
    from faceindex.config import Settings
    from faceindex.engines.analysis import AnalysisPlan, Job, PhotoAnalysis
    from faceindex.pipeline import Pipeline

T = TypeVar("T")

#: The engine used when none is named.
DEFAULT_ENGINE = "local"
#: Photos per task sent to a worker: enough to make the task overhead (~12 ms a round
#: trip on a LocalCluster) small against the analysis (tens of ms a photo), few enough
#: that a lost worker loses little.
DEFAULT_BATCH = 8


class EngineUnavailableError(ConfigError):
    """The engine asked for cannot run: its package is missing, or its scheduler cannot
    be reached (``--address``). A configuration problem (exit code 7)."""

    code = "engine_unavailable"


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How to run an engine: ``workers`` (processes of a local cluster; ``None``: one per
    CPU core), ``address`` (join this scheduler instead of starting a cluster),
    ``batch`` (photos per task), ``connect_timeout_s`` (``None``: Dask's setting
    ``distributed.comm.timeouts.connect``)."""

    workers: int | None = None
    address: str | None = None
    batch: int = DEFAULT_BATCH
    connect_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if self.batch < 1:
            raise ConfigError(f"batch must be at least 1, got {self.batch}")
        if self.workers is not None and self.address is not None:
            raise ConfigError("give workers (start a local cluster) or an address, not both")


class Engine(Protocol):
    """Runs the analysis of photos somewhere and yields it back in input order."""

    name: str

    def analyse(
        self, jobs: Iterable[Job[T]], plan: AnalysisPlan
    ) -> Iterator[tuple[T, PhotoAnalysis | None]]:
        """Each job's tag with its photo's analysis (``None`` for a job without a path:
        the caller decided it needs none), in the order of ``jobs``. ``jobs`` is read
        lazily, a bounded number ahead of what has been yielded."""
        ...

    def describe(self) -> str:
        """One line for people: where the work runs (``dask: 2 workers at tcp://...``)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Engine: ...

    def __exit__(self, *exc: object) -> None: ...


class EngineFactory(Protocol):
    def __call__(
        self, *, pipeline: Pipeline, settings: Settings, options: EngineOptions
    ) -> Engine: ...


ENGINES: Registry[EngineFactory] = Registry("engine")
ENGINES.register("local", "faceindex.engines.local:LocalEngine")
ENGINES.register("dask", "faceindex.engines.dask_engine:DaskEngine")


def open_engine(
    name: str = DEFAULT_ENGINE,
    *,
    pipeline: Pipeline,
    settings: Settings,
    options: EngineOptions | None = None,
) -> Engine:
    """Start the engine ``name`` (:data:`ENGINES`); close it (or use it as a context
    manager) when done. ``pipeline`` is what the local engine analyses with; remote
    workers build their own from ``settings`` (its detection, embedding and runtime
    sections; no key or gallery path is sent to them)."""
    factory = ENGINES.get(name)
    return factory(pipeline=pipeline, settings=settings, options=options or EngineOptions())


__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_ENGINE",
    "ENGINES",
    "Engine",
    "EngineFactory",
    "EngineOptions",
    "EngineUnavailableError",
    "open_engine",
]
