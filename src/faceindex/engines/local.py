"""The ``local`` engine: the analysis runs in this process, one photo after the other.

This is what ``enroll --folders`` and ``scan`` always did; it needs nothing installed and
starts nothing. Photos are analysed with the caller's pipeline (its models already
loaded, or loaded on first use), lazily: one job is read, analysed and handed back
before the next is read, so an interrupted run has written everything it analysed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from faceindex.config import Settings
from faceindex.engines import EngineOptions
from faceindex.engines.analysis import AnalysisPlan, Job, PhotoAnalysis, analyse_photo
from faceindex.errors import ConfigError
from faceindex.pipeline import Pipeline

T = TypeVar("T")


class LocalEngine:
    """In-process analysis (see the module docstring)."""

    name = "local"

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        settings: Settings | None = None,
        options: EngineOptions | None = None,
    ) -> None:
        opts = options or EngineOptions()
        if opts.address is not None:
            raise ConfigError("an address is for the dask engine (--engine dask)")
        if opts.workers not in (None, 1):
            raise ConfigError("the local engine runs one worker: use --engine dask for more")
        self.pipeline = pipeline

    def analyse(
        self, jobs: Iterable[Job[T]], plan: AnalysisPlan
    ) -> Iterator[tuple[T, PhotoAnalysis | None]]:
        for job in jobs:
            if job.path is None:
                yield job.tag, None
            else:
                yield job.tag, analyse_photo(self.pipeline, job.path, label=job.path, plan=plan)

    def describe(self) -> str:
        return "local: in this process"

    def close(self) -> None:
        """Nothing to stop."""

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
