"""``enroll --folders`` with the real models: ``--engine dask --workers 2`` (two worker
processes, each loading YuNet and the fusion embedder once) gives the gallery that
``--engine local`` gives, template for template."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from faceindex.cli.context import CliContext
from faceindex.cli.main import main
from faceindex.config import GallerySettings, Settings
from faceindex.pipeline import Pipeline

pytest.importorskip("distributed")

PEOPLE = {
    "Obama": ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_small.jpg"],
    "Biden": ["biden.jpg", "two_people.jpg"],
    "Alex": ["alex-lacamoire.png"],
    "Lin": ["lin-manuel-miranda.png"],
}


def _tree(root: Path, fixtures: Path) -> Path:
    for person, files in PEOPLE.items():
        (root / person).mkdir(parents=True)
        for name in files:
            shutil.copyfile(fixtures / name, root / person / name)
    return root


def _enrol(
    capsys: pytest.CaptureFixture[str],
    gallery: Path,
    tree: Path,
    pipeline: Pipeline | None,
    *extra: str,
) -> list[dict[str, object]]:
    settings = dataclasses.replace(Settings(), gallery=GallerySettings(path=str(gallery)))
    capsys.readouterr()
    code = main(
        ["enroll", "--folders", str(tree), "--json", *extra],
        context_factory=lambda a: CliContext(a, settings=settings, pipeline=pipeline),
    )
    out, err = capsys.readouterr()
    assert code in (0, 8), err
    rows: list[dict[str, object]] = [json.loads(line) for line in out.splitlines()]
    return rows


def _contents(path: Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    from faceindex.gallery import Gallery

    gallery = Gallery.open(path)
    try:
        vectors = gallery._store.vectors()
        by_id = dict(zip(vectors.template_ids.tolist(), vectors.vectors, strict=True))
        return {
            p.name: sorted(
                (Path(t.source or "").name, by_id[t.id]) for t in gallery.templates(p.id)
            )
            for p in gallery.people()
        }
    finally:
        gallery.close()


def test_dask_two_workers_enrol_what_local_enrols(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fixtures_dir: Path,
    pipeline: Pipeline,
) -> None:
    tree = _tree(tmp_path / "people", fixtures_dir)
    local = _enrol(capsys, tmp_path / "local.db", tree, pipeline)
    dask = _enrol(capsys, tmp_path / "dask.db", tree, None, "--engine", "dask", "--workers", "2")

    def decisions(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
        return [(r["person"], r["source"], r["status"], r["reasons"], r["flags"]) for r in rows]

    assert decisions(dask) == decisions(local)
    assert sum(r["status"] == "accepted" for r in local) >= 5
    mine, theirs = _contents(tmp_path / "local.db"), _contents(tmp_path / "dask.db")
    assert sorted(mine) == sorted(theirs)
    for name in mine:
        assert [s for s, _ in mine[name]] == [s for s, _ in theirs[name]]
        for (_, u), (_, v) in zip(mine[name], theirs[name], strict=True):
            np.testing.assert_allclose(u, v, atol=1e-6)
