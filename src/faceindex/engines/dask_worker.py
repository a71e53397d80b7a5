"""What runs on a Dask worker: the pipeline, built once per worker process, and the task.

:class:`PipelinePlugin` is registered on the cluster (idempotent: a scheduler that runs
many jobs keeps each worker's models loaded between them) and handed to every worker,
including one started later or restarted after a crash. It builds the pipeline on the
first task that needs it (loading models is slow: not at registration, so that starting a
cluster stays quick) and keeps it while the settings stay the same. :func:`analyse_batch`
is the task: a batch of photo paths in, their analyses out.

This module is imported on workers; it imports Dask's plugin base class, so only the
dask engine imports it.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from faceindex.config import Settings
from faceindex.engines.analysis import AnalysisPlan, PhotoAnalysis, analyse_photo
from faceindex.pipeline import Pipeline

#: The plugin's name on the cluster (workers find it under it).
PLUGIN_NAME = "faceindex-pipeline"


class PipelinePlugin(WorkerPlugin):
    """One pipeline per worker process, built once per settings (see the module doc).

    ``builds`` counts the pipelines this worker built and ``analysed`` the photos it
    analysed (tests check that models load once per worker, not once per task, and that
    a re-run sends no photo already done).
    """

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self, *, leave_ctrl_c: bool = False) -> None:
        """``leave_ctrl_c``: the worker ignores SIGINT (Ctrl-C reaches every process of
        the terminal's group): for the workers of a local cluster, which the process that
        started them stops; never for workers someone runs on their own."""
        self.leave_ctrl_c = leave_ctrl_c
        self._init()

    def _init(self) -> None:
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._pipeline: Pipeline | None = None
        self.builds = 0
        self.analysed = 0

    # The plugin travels to workers pickled; a lock does not pickle, and the state of the
    # client's copy means nothing on a worker.
    def __getstate__(self) -> dict[str, Any]:
        return {"leave_ctrl_c": self.leave_ctrl_c}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.leave_ctrl_c = bool(state.get("leave_ctrl_c", False))
        self._init()

    def setup(self, worker: Any) -> None:
        """Nothing to load yet: models load on the first task (see the module doc)."""
        if self.leave_ctrl_c and threading.current_thread() is threading.main_thread():
            # Else a Ctrl-C prints a KeyboardInterrupt traceback from every worker while
            # the client cancels the tasks and closes the cluster.
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    def teardown(self, worker: Any) -> None:
        with self._lock:
            self._settings = self._pipeline = None

    def count(self, photos: int) -> None:
        with self._lock:  # a worker may run several task threads
            self.analysed += photos

    def pipeline(self, settings: Settings) -> Pipeline:
        """The pipeline of ``settings``, built (and warmed up) on first use."""
        with self._lock:
            if self._pipeline is None or self._settings != settings:
                pipeline = Pipeline.from_settings(settings)
                pipeline.warm_up()
                self._settings, self._pipeline = settings, pipeline
                self.builds += 1
            return self._pipeline


def worker_plugin(worker: Any = None) -> PipelinePlugin:
    """This worker's plugin (raises if the plugin was not registered on the cluster);
    ``worker``: the worker, where it is known (``client.run`` passes it)."""
    from distributed import get_worker

    plugin = (worker or get_worker()).plugins[PLUGIN_NAME]
    if not isinstance(plugin, PipelinePlugin):  # pragma: no cover - another plugin's name
        raise TypeError(f"worker plugin {PLUGIN_NAME!r} is not faceindex's")
    return plugin


def analyse_batch(settings: Settings, plan: AnalysisPlan, paths: list[str]) -> list[PhotoAnalysis]:
    """The task: each photo of ``paths`` analysed with this worker's pipeline."""
    plugin = worker_plugin()
    pipeline = plugin.pipeline(settings)
    out = [analyse_photo(pipeline, path, label=path, plan=plan) for path in paths]
    plugin.count(len(paths))
    return out


def load_pipeline(settings: Settings) -> int:
    """A task that builds this worker's pipeline now (:meth:`DaskEngine.warm_up`); the
    number of pipelines it has built."""
    plugin = worker_plugin()
    plugin.pipeline(settings)
    return plugin.builds


def worker_counts(dask_worker: Any = None) -> dict[str, int]:
    """This worker's ``builds`` and ``analysed`` (``client.run(worker_counts)``: Dask
    passes ``dask_worker``)."""
    plugin = worker_plugin(dask_worker)
    return {"builds": plugin.builds, "analysed": plugin.analysed}
