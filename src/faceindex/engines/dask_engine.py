"""The ``dask`` engine: photos analysed by Dask distributed workers (see the package doc).

Without an address it starts a ``LocalCluster`` of ``workers`` processes (one thread
each) bound to 127.0.0.1, without a dashboard; its scheduler's small HTTP server
(health checks) listens on a free port of 127.0.0.1 too. With an address it joins that
scheduler. Photos go out as tasks of ``batch`` paths, at most a few tasks per worker
thread ahead of what the writer has taken; results come back as they complete
(``as_completed``) and are handed on in input order.

When a task's worker dies, Dask runs it again elsewhere (its ``allowed-failures``
setting); when it gives up (``KilledWorker``), or the scheduler goes away, the photos of
the task are handed on as not done (:meth:`PhotoAnalysis.not_done`). Any other error of a
task is re-raised here, as the local engine would raise it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any, Generic, TypeVar

from faceindex.config import Settings
from faceindex.engines import EngineOptions, EngineUnavailableError
from faceindex.engines.analysis import AnalysisPlan, Job, PhotoAnalysis, worker_settings
from faceindex.pipeline import Pipeline

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Tasks kept in flight per worker thread: enough that no worker waits for the next task
#: while the writer catches up, few enough to bound the photos held in the reorder buffer.
TASKS_PER_THREAD = 4
#: A batch is sent when it holds ``batch`` photos, or this many times as many jobs
#: (those without a path ride along to keep their place in the order).
ITEMS_PER_PHOTO = 4

INSTALL_HINT = "pip install 'faceindex[dask]'"


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise EngineUnavailableError(
            f"the dask engine needs Dask distributed, which is not installed: {INSTALL_HINT}",
            install=INSTALL_HINT,
        ) from None
    return distributed


class _Slot(Generic[T]):
    """Consecutive jobs in input order and the task analysing their photos (None when
    they have no photo to analyse)."""

    __slots__ = ("future", "jobs", "results")

    def __init__(self, jobs: list[Job[T]], future: Any) -> None:
        self.jobs = jobs
        self.future = future
        self.results: list[PhotoAnalysis] | None = None if future is not None else []

    @property
    def ready(self) -> bool:
        return self.results is not None

    def handed_on(self) -> Iterator[tuple[T, PhotoAnalysis | None]]:
        found = iter(self.results or ())
        for job in self.jobs:
            yield job.tag, None if job.path is None else next(found)


class DaskEngine:
    """Analysis on Dask workers (see the module docstring)."""

    name = "dask"

    def __init__(
        self,
        *,
        pipeline: Pipeline | None = None,
        settings: Settings,
        options: EngineOptions | None = None,
    ) -> None:
        distributed = _import_distributed()
        # Dask logs every connection and worker at INFO (through the process's handlers);
        # a worker lost is reported with its photos instead. Restored by close().
        self._log = logging.getLogger("distributed")
        self._log_level = self._log.level
        self._log.setLevel(logging.ERROR)
        opts = options or EngineOptions()
        self.batch = opts.batch
        self.address = opts.address
        self.cluster: Any = None
        self.client: Any = None
        sent = worker_settings(settings)
        timeout = opts.connect_timeout_s
        try:
            if opts.address is None:
                workers = opts.workers or os.cpu_count() or 1
                if sent.runtime.threads is None:
                    # Each worker's runtime threads: the cores shared out, not all of them
                    # each (one process per core oversubscribed slows every one of them).
                    threads = max(1, (os.cpu_count() or 1) // workers)
                    sent = dataclasses.replace(
                        sent, runtime=dataclasses.replace(sent.runtime, threads=threads)
                    )
                self.cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    # The scheduler always serves /health; on a free port of loopback
                    # rather than 8787, which may be taken.
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.ERROR,
                )
                self.client = distributed.Client(self.cluster, set_as_default=False)
            else:
                kwargs: dict[str, Any] = {"set_as_default": False}
                if timeout is not None:
                    kwargs["timeout"] = timeout
                self.client = distributed.Client(opts.address, **kwargs)
            self.client.register_plugin(_plugin(leave_ctrl_c=self.cluster is not None))
        except (OSError, TimeoutError) as exc:
            self.close()
            where = opts.address or "a local cluster"
            raise EngineUnavailableError(
                f"cannot reach the Dask scheduler at {where}: {exc}", address=opts.address
            ) from None
        except BaseException:
            self.close()
            raise
        self.settings = sent

    @property
    def scheduler_address(self) -> str:
        return str(self.client.scheduler.address)

    def worker_threads(self) -> int:
        """Threads of the workers connected now (at least 1, so work can be queued)."""
        return max(1, int(sum(self.client.nthreads().values())))

    def warm_up(self) -> None:
        """Make every worker connected now load its models (a task pinned to each), so
        that a first batch does not pay for it; optional: workers load them lazily."""
        from faceindex.engines.dask_worker import load_pipeline

        futures = [
            self.client.submit(
                load_pipeline,
                self.settings,
                workers=[address],
                allow_other_workers=False,
                pure=False,
            )
            for address in self.client.nthreads()
        ]
        self.client.gather(futures)

    def describe(self) -> str:
        n = len(self.client.nthreads())
        kind = "local cluster" if self.cluster is not None else "scheduler"
        return f"dask: {n} worker{'s' if n != 1 else ''} ({kind} at {self.scheduler_address})"

    def analyse(
        self, jobs: Iterable[Job[T]], plan: AnalysisPlan
    ) -> Iterator[tuple[T, PhotoAnalysis | None]]:
        from distributed import as_completed

        from faceindex.engines.dask_worker import analyse_batch

        window = TASKS_PER_THREAD * self.worker_threads()
        order: deque[_Slot[T]] = deque()
        by_future: dict[Any, _Slot[T]] = {}
        done = as_completed(loop=self.client.loop)  # type: ignore[no-untyped-call]
        pending: list[Job[T]] = []
        source = iter(jobs)
        exhausted = False

        def flush() -> None:
            if not pending:
                return
            paths = [j.path for j in pending if j.path is not None]
            future = None
            if paths:
                future = self.client.submit(
                    analyse_batch, self.settings, plan, paths, pure=False, retries=0
                )
                done.add(future)  # type: ignore[no-untyped-call]
            slot = _Slot(list(pending), future)
            if future is not None:
                by_future[future] = slot
            order.append(slot)
            pending.clear()

        try:
            while True:
                # Tasks held (running, or done and waiting for the head of the order)
                # bound both the work queued and the analyses buffered; slots in all
                # bound the decided jobs waiting behind a slow head.
                while (
                    not exhausted
                    and sum(s.future is not None for s in order) < window
                    and len(order) < ITEMS_PER_PHOTO * self.batch * window
                ):
                    job = next(source, None)
                    if job is None:
                        exhausted = True
                        flush()
                        break
                    pending.append(job)
                    photos = sum(1 for j in pending if j.path is not None)
                    if photos >= self.batch or len(pending) >= ITEMS_PER_PHOTO * self.batch:
                        flush()
                    elif photos == 0:
                        flush()  # nothing to wait for: hand it on at once
                while order and order[0].ready:
                    yield from order.popleft().handed_on()
                if not order:
                    if exhausted:
                        return
                    continue
                future = next(done)
                slot = by_future.pop(future)
                slot.results = self._results(future, slot)
        finally:
            left = list(by_future)
            if left:
                self.client.cancel(left)

    def _results(self, future: Any, slot: _Slot[T]) -> list[PhotoAnalysis]:
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker

        try:
            found: list[PhotoAnalysis] = future.result()
        except (KilledWorker, CancelledError, CommClosedError) as exc:
            paths = [j.path for j in slot.jobs if j.path is not None]
            log.warning("a batch of %d photos was lost: %s", len(paths), exc)
            why = f"not analysed: the worker was lost ({type(exc).__name__}); run again to finish"
            return [PhotoAnalysis.not_done(path, why) for path in paths]
        return [a.sealed() for a in found]

    def close(self) -> None:
        """Disconnect, and stop the local cluster if this engine started one."""
        client, self.client = self.client, None
        cluster, self.cluster = self.cluster, None
        try:
            if client is not None:
                client.close()
        finally:
            if cluster is not None:
                cluster.close()
            self._log.setLevel(self._log_level)

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plugin(*, leave_ctrl_c: bool) -> Any:
    from faceindex.engines.dask_worker import PipelinePlugin

    return PipelinePlugin(leave_ctrl_c=leave_ctrl_c)
