"""The dask engine on the fake backends: a real LocalCluster on 127.0.0.1 (one for the
module, started by the engine; the command line joins it with ``--address``), the same
gallery and library as the local engine, re-runs, models loaded once per worker, a
worker dying mid-job, Ctrl-C, and an unreachable scheduler.

A cluster takes seconds to start on a busy machine: the module is in the integration tier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import (
    FAKE_SETTINGS,
    assert_same_contents,
    install_killer,
    outcomes,
    people_tree,
    run_cli,
)

pytest.importorskip("distributed")

from faceindex.engines import EngineOptions
from faceindex.engines.analysis import NOT_DONE, AnalysisPlan, Job
from faceindex.engines.dask_engine import DaskEngine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine() -> Iterator[DaskEngine]:
    with DaskEngine(settings=FAKE_SETTINGS, options=EngineOptions(workers=2, batch=2)) as e:
        yield e


def counts(engine: DaskEngine) -> dict[str, dict[str, int]]:
    from faceindex.engines.dask_worker import worker_counts

    found: dict[str, dict[str, int]] = engine.client.run(worker_counts)
    return found


def analysed(engine: DaskEngine) -> int:
    return sum(c["analysed"] for c in counts(engine).values())


def test_the_cluster_listens_on_loopback_only(engine: DaskEngine) -> None:
    assert engine.scheduler_address.startswith("tcp://127.0.0.1:")
    workers = engine.client.nthreads()
    assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
    # Every socket this process and its worker processes listen on is on loopback
    # (scheduler, nannies, workers, the scheduler's and workers' HTTP servers).
    import psutil

    me = psutil.Process()
    listening = [
        c.laddr
        for p in (me, *me.children(recursive=True))
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert len(listening) >= 5 and {a.ip for a in listening} == {"127.0.0.1"}
    assert engine.describe().startswith("dask: 2 workers (local cluster at tcp://127.0.0.1:")


def test_warm_up_loads_the_models_once_on_every_worker(engine: DaskEngine) -> None:
    # Joined as the command line joins it (the same settings as its runs send).
    options = EngineOptions(address=engine.scheduler_address)
    with DaskEngine(settings=FAKE_SETTINGS, options=options) as joined:
        joined.warm_up()
        joined.warm_up()
        assert joined.cluster is None
    assert [c["builds"] for c in counts(engine).values()] == [1, 1]


def test_enroll_folders_gives_the_same_gallery_as_local(
    engine: DaskEngine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tree = people_tree(tmp_path / "people")
    here, there = tmp_path / "local.db", tmp_path / "dask.db"
    local = run_cli(capsys, here, "enroll", "--folders", tree, "--json")
    before = analysed(engine)
    address = engine.scheduler_address
    dask = run_cli(
        capsys, there, "enroll", "--folders", tree, "--json", "--engine", "dask",
        "--address", address,
    )  # fmt: skip
    assert (local.code, dask.code) == (8, 8)
    assert outcomes(dask.out) == outcomes(local.out)  # same order, statuses and reasons
    assert_same_contents(here, there)
    sent = analysed(engine) - before
    # every photo: the copies were looked at before their originals were written (the
    # engine reads ahead); the writer still found them duplicates
    assert sent == 14
    assert f"dask: 2 workers (scheduler at {address})" in dask.err

    # A second run writes nothing and sends only the photos rejected before (a rejection
    # is not stored): the 9 enrolled photos and the copies are known without analysis.
    again = run_cli(
        capsys, there, "enroll", "--folders", tree, "--json", "--engine", "dask",
        "--address", address,
    )  # fmt: skip
    statuses = [s for _, _, s, _ in outcomes(again.out)]
    assert statuses.count("duplicate") == 10 and statuses.count("accepted") == 0
    assert analysed(engine) - before - sent == 3
    assert_same_contents(here, there)

    # Each worker built its pipeline once, however many tasks it ran.
    per_worker = counts(engine)
    assert all(c["builds"] == 1 for c in per_worker.values() if c["analysed"])
    assert sum(c["analysed"] > 0 for c in per_worker.values()) >= 1


def test_scan_gives_the_same_library_as_local(
    engine: DaskEngine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from faceindex.gallery import open_gallery
    from faceindex.library import PhotoLibrary

    tree = people_tree(tmp_path / "people")
    (tree / "notes.txt").write_text("not a photo")
    (tree / "Cid" / "broken.jpg").write_bytes(b"not a jpeg")
    results = {}
    for name, extra in (("local", []), ("dask", ["--engine", "dask", "--address"])):
        gallery = tmp_path / f"{name}.db"
        run_cli(capsys, gallery, "enroll", "Ann", tree / "Ann" / "a0.png")
        if extra:
            extra = [*extra, engine.scheduler_address]
        r = run_cli(capsys, gallery, "scan", tree, "--json", *extra)
        assert r.code == 8  # the broken file
        summary = json.loads(r.out)
        summary.pop("elapsed_s"), summary.pop("photos_per_s")
        with open_gallery(gallery) as g, PhotoLibrary(g) as lib:
            faces = lib.store.faces("1 = 1")
            vectors, _ = lib.store.vectors([f.id for f in faces])
            rows = sorted(
                (f.path, f.bbox.as_list(), f.person_id, f.cluster_id, v.tolist())
                for f, v in zip(faces, vectors, strict=True)
            )
        results[name] = (summary, rows)
    (s_local, f_local), (s_dask, f_dask) = results["local"], results["dask"]
    assert s_dask == s_local and s_local["recognised"] >= 3 and s_local["not_done"] == 0
    assert [r[:4] for r in f_dask] == [r[:4] for r in f_local]
    for a, b in zip(f_local, f_dask, strict=True):
        np.testing.assert_allclose(a[4], b[4], atol=1e-6)
    before = analysed(engine)
    again = run_cli(
        capsys, tmp_path / "dask.db", "scan", tree, "--json", "--engine", "dask",
        "--address", engine.scheduler_address,
    )  # fmt: skip
    assert json.loads(again.out)["unchanged"] == 15 and analysed(engine) == before


def test_unreachable_scheduler_is_a_typed_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import dask

    tree = people_tree(tmp_path / "people")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        r = run_cli(
            capsys, tmp_path / "g.db", "enroll", "--folders", tree, "--json",
            "--engine", "dask", "--address", "tcp://127.0.0.1:9",
        )  # fmt: skip
    assert r.code == 7
    error = json.loads(r.out.splitlines()[-1])["error"]
    assert error["code"] == "engine_unavailable" and "127.0.0.1:9" in error["message"]
    assert "Traceback" not in r.err


def test_a_dying_worker_leaves_its_photos_to_the_next_run_and_ctrl_c_closes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import dask
    from distributed.core import Status

    from faceindex.testing.synthetic import synthetic_photo_bytes

    tree = people_tree(tmp_path / "people")
    (tree / "Ann" / "a3_die.png").write_bytes(synthetic_photo_bytes([1], variant=4))
    gallery = tmp_path / "g.db"
    args = ["enroll", "--folders", tree, "--json", "--engine", "dask", "--address"]
    with (
        pytest.raises(KeyboardInterrupt),
        # No second chance for a task whose worker died: it is reported at once.
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        DaskEngine(settings=FAKE_SETTINGS, options=EngineOptions(workers=1, batch=3)) as engine,
    ):
        cluster = engine.cluster
        engine.client.run(install_killer, "a3_die.png")
        first = run_cli(capsys, gallery, *args, engine.scheduler_address)
        assert first.code == 8
        lost = [(p, f) for p, f, _, r in outcomes(first.out) if r == (NOT_DONE,)]
        # the task the worker died on, and any other the scheduler had given that worker
        assert ("Ann", "a3_die.png") in lost and ("Ann", "a2.png") in lost
        assert "not done (a worker was lost): run the same command again" in first.err
        second = run_cli(capsys, gallery, *args, engine.scheduler_address)
        redone = {(p, f): (s, r) for p, f, s, r in outcomes(second.out)}
        assert all(r != (NOT_DONE,) for _, r in redone.values())
        assert redone["Ann", "a3_die.png"] == ("accepted", ())
        assert "not done" not in second.err

        # Ctrl-C in the writer: the tasks are cancelled and the cluster closes.
        jobs = [Job(i, str(tree / "Bob" / "b0.png")) for i in range(20)]
        for tag, _analysis in engine.analyse(jobs, AnalysisPlan()):
            if tag == 1:
                raise KeyboardInterrupt
    assert engine.client is None and cluster is not None and cluster.status == Status.closed
