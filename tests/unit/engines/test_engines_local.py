"""Engines without a cluster: the protocol's order, the local engine, the seam in the
gallery and the library, and the errors of the command line (fake backends, fast)."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import FAKE_SETTINGS, outcomes, people_tree, run_cli

from faceindex.engines import (
    ENGINES,
    EngineOptions,
    EngineUnavailableError,
    open_engine,
)
from faceindex.engines.analysis import (
    NOT_DONE,
    AnalysisPlan,
    Job,
    PhotoAnalysis,
    analyse_photo,
    worker_settings,
)
from faceindex.engines.local import LocalEngine
from faceindex.errors import ConfigError
from faceindex.gallery import EnrolStatus, open_gallery
from faceindex.gallery.enrolment import ENROLMENT_PLAN
from faceindex.library import PhotoLibrary
from faceindex.pipeline import Pipeline


def test_registry_names_both_engines_and_refuses_others(fake_pipeline: Pipeline) -> None:
    assert ENGINES.names() == ["dask", "local"]
    with pytest.raises(ConfigError, match="valid: dask, local"):
        open_engine("ray", pipeline=fake_pipeline, settings=FAKE_SETTINGS)


def test_local_engine_keeps_the_order_and_passes_jobs_without_a_path(
    fake_pipeline: Pipeline, photo_of: Any
) -> None:
    a, b = photo_of(1), photo_of(2)
    jobs = [Job("a", str(a)), Job("skip", None), Job("b", str(b))]
    with open_engine("local", pipeline=fake_pipeline, settings=FAKE_SETTINGS) as engine:
        got = list(engine.analyse(jobs, AnalysisPlan()))
    assert [tag for tag, _ in got] == ["a", "skip", "b"]
    assert got[1][1] is None
    first = got[0][1]
    assert first is not None and first.sha256 is not None and len(first.faces) == 1
    assert first.faces[0].embedding is not None
    from faceindex.io.image import load_image

    assert (first.height, first.width) == load_image(a).shape[:2]


def test_local_engine_refuses_workers_and_addresses(fake_pipeline: Pipeline) -> None:
    with pytest.raises(ConfigError, match="dask"):
        LocalEngine(pipeline=fake_pipeline, options=EngineOptions(workers=2))
    with pytest.raises(ConfigError, match="dask"):
        LocalEngine(pipeline=fake_pipeline, options=EngineOptions(address="tcp://127.0.0.1:1"))
    with pytest.raises(ConfigError, match="not both"):
        EngineOptions(workers=2, address="tcp://127.0.0.1:1")


def test_analysis_reports_the_photo_error_and_embeds_what_the_plan_selects(
    fake_pipeline: Pipeline, photo_of: Any, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    bad = analyse_photo(fake_pipeline, str(broken), label="x", plan=AnalysisPlan())
    assert bad.error == "image_decode_error" and bad.sha256 is not None and not bad.lost
    missing = analyse_photo(fake_pipeline, str(tmp_path / "no.png"), label="y", plan=AnalysisPlan())
    assert missing.error == "not_found" and missing.sha256 is None
    two = photo_of(3, 4, variant=5)
    every = analyse_photo(fake_pipeline, str(two), label="t", plan=AnalysisPlan())
    assert [f.embedding is not None for f in every.faces] == [True, True]
    subject = analyse_photo(fake_pipeline, str(two), label="t", plan=ENROLMENT_PLAN)
    # two faces of one size: no subject, so nothing embedded (the gate rejects the photo)
    assert len(subject.faces) == 2 and all(f.embedding is None for f in subject.faces)


def test_workers_are_sent_no_key_and_no_gallery_path() -> None:
    import dataclasses

    from faceindex.config import GallerySettings, PrivacySettings

    secret = dataclasses.replace(
        FAKE_SETTINGS,
        privacy=PrivacySettings(key="k" * 44),
        gallery=GallerySettings(path="/secret/g.db"),
    )
    sent = worker_settings(secret)
    assert sent.privacy.key is None and sent.gallery.path is None
    assert sent.detection == secret.detection and sent.embedding == secret.embedding


def test_a_lost_photo_is_reported_not_done_and_written_by_the_next_run(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: Any
) -> None:
    photo = photo_of(5)
    with open_gallery(tmp_path / "g.db", pipeline=fake_pipeline) as gallery:
        lost = PhotoAnalysis.not_done(str(photo), "worker died")
        report = gallery.enroll("Eve", [photo], analyses=[lost])
        assert report.outcomes[0].status is EnrolStatus.REJECTED
        assert report.outcomes[0].reasons == (NOT_DONE,)
        assert gallery.count_templates() == 0
        assert gallery.known_photo("Eve", photo, str(photo)) is None  # still to do
        again = gallery.enroll("Eve", [photo])
        assert again.outcomes[0].status is EnrolStatus.ACCEPTED
        known = gallery.known_photo("Eve", photo, str(photo))
        assert known is not None and known.status is EnrolStatus.DUPLICATE


def test_a_precomputed_analysis_gives_what_the_gallery_computes(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: Any
) -> None:
    photos = [photo_of(6, variant=v) for v in range(2)]
    with open_gallery(tmp_path / "a.db", pipeline=fake_pipeline) as here:
        mine = here.enroll("Fay", photos)
    analyses = [
        analyse_photo(fake_pipeline, str(p), label=str(p), plan=ENROLMENT_PLAN) for p in photos
    ]
    with open_gallery(tmp_path / "b.db", pipeline=fake_pipeline) as there:
        theirs = there.enroll("Fay", photos, analyses=analyses)
    assert [o.as_dict() for o in mine.outcomes] == [o.as_dict() for o in theirs.outcomes]


def test_scan_counts_a_lost_photo_and_does_it_next_time(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: Any
) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    for v in range(2):
        (folder / f"p{v}.png").write_bytes(photo_of(7, variant=v).read_bytes())

    class Losing(LocalEngine):
        def analyse(self, jobs: Any, plan: AnalysisPlan) -> Any:
            for tag, analysis in super().analyse(jobs, plan):
                if analysis is not None and analysis.source.endswith("p1.png"):
                    analysis = PhotoAnalysis.not_done(analysis.source, "lost")
                yield tag, analysis

    with open_gallery(tmp_path / "g.db", pipeline=fake_pipeline) as gallery:
        library = PhotoLibrary(gallery)
        first = library.scan([folder], engine=Losing(pipeline=fake_pipeline))
        assert (first.new, first.not_done, first.as_dict()["not_done"]) == (1, 1, 1)
        second = library.scan([folder])
        assert (second.new, second.unchanged, second.not_done) == (1, 1, 0)
        library.close()


def test_dask_missing_is_a_config_error_naming_the_extra(
    fake_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_dask(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "distributed", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(EngineUnavailableError, match=r"pip install 'faceindex\[dask\]'") as err:
        open_engine("dask", pipeline=fake_pipeline, settings=FAKE_SETTINGS)
    assert isinstance(err.value, ConfigError) and err.value.code == "engine_unavailable"


@pytest.mark.slow
def test_cli_engine_options_are_checked_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tree = people_tree(tmp_path / "people")
    gallery = tmp_path / "g.db"
    r = run_cli(capsys, gallery, "enroll", "--folders", tree, "--workers", "2")
    assert r.code == 2 and "--engine dask" in r.err
    r = run_cli(
        capsys, gallery, "enroll", "--folders", tree, "--engine", "dask", "--workers", "2",
        "--address", "tcp://127.0.0.1:1",
    )  # fmt: skip
    assert r.code == 2 and "not both" in r.err
    r = run_cli(capsys, gallery, "enroll", "Ann", tree / "Ann" / "a0.png", "--engine", "dask")
    assert r.code == 2 and "--folders" in r.err
    r = run_cli(capsys, gallery, "scan", tree, "--workers", "0")
    assert r.code == 2
    assert not gallery.exists()


@pytest.mark.slow
def test_cli_enroll_folders_local_engine_and_its_rerun(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tree = people_tree(tmp_path / "people")
    gallery = tmp_path / "g.db"
    first = run_cli(capsys, gallery, "enroll", "--folders", tree, "--json", "--engine", "local")
    assert first.code == 8  # some photos are rejected
    got = {(p, f): (s, r) for p, f, s, r in outcomes(first.out)}
    assert got["Bob", "b2_ann.png"] == ("rejected", ("matches_other_person",))
    assert got["Dee", "d2_ann.png"] == ("rejected", ("duplicate_of_other_person",))
    assert got["Ann", "a9_copy.png"] == ("duplicate", ("already_enrolled",))
    assert got["Cid", "c2_blank.png"] == ("rejected", ("no_face",))
    assert got["Cid", "c3_two.png"] == ("rejected", ("several_faces",))
    again = run_cli(capsys, gallery, "enroll", "--folders", tree, "--json")
    statuses = {(p, f): s for p, f, s, _ in outcomes(again.out)}
    accepted = [k for k, (s, _) in got.items() if s == "accepted"]
    assert len(accepted) == 9 and all(statuses[k] == "duplicate" for k in accepted)


def test_cli_help_documents_the_engine_options(capsys: pytest.CaptureFixture[str]) -> None:
    from faceindex.cli.main import main

    for command in ("enroll", "scan"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "--engine {local,dask}" in text and "--workers N" in text
        assert "--address tcp://HOST:PORT" in text


@pytest.mark.slow
def test_engines_and_their_users_do_not_import_dask() -> None:
    import subprocess

    code = (
        "import sys, faceindex.engines, faceindex.engines.local, faceindex.library.scan, "
        "faceindex.cli.commands.gallery; "
        "print([m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
