from __future__ import annotations

import threading
import time

from faceindex.models.lazy import Lazy


def test_loads_once_under_threads() -> None:
    calls: list[int] = []

    def factory() -> object:
        calls.append(1)
        time.sleep(0.05)  # a slow load, so that threads pile up on it
        return object()

    lazy: Lazy[object] = Lazy(factory)
    assert not lazy.loaded
    results: list[object] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(lazy.get())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and lazy.loaded
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_pipeline_construction_loads_nothing() -> None:
    from faceindex.pipeline import Pipeline

    p = Pipeline.from_settings()
    assert not p.detector._session.loaded  # type: ignore[attr-defined]
    assert not p.embedder.sface._session.loaded  # type: ignore[attr-defined]
    assert not p.embedder.dlib._net.loaded  # type: ignore[attr-defined]
