"""Helpers of the engine tests (a module of its own, importable by name on Dask workers
too: their processes start with this process's ``sys.path``)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceindex.cli.context import CliContext
from faceindex.cli.main import main
from faceindex.config import DetectionSettings, EmbeddingSettings, GallerySettings, Settings
from faceindex.testing.synthetic import synthetic_photo_bytes

FAKE_SETTINGS = Settings(
    detection=DetectionSettings(detector="fake"), embedding=EmbeddingSettings(embedder="fake")
)


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(capsys: Any, gallery: Path, *argv: str | Path) -> Result:
    """``faceindex ARGV`` in-process on the fake backends, with ``gallery``."""
    base = dataclasses.replace(FAKE_SETTINGS, gallery=GallerySettings(path=str(gallery)))
    capsys.readouterr()
    code = main([str(a) for a in argv], context_factory=lambda a: CliContext(a, settings=base))
    out, err = capsys.readouterr()
    return Result(code, out, err)


def people_tree(root: Path) -> Path:
    """``root/<person>/<photos>``: 4 people, 14 photos, with what makes the enrolment gate
    depend on the order of the writes: a photo of Ann in Bob's folder (refused as
    matching another person), a copy of one of Ann's photos in Dee's folder (duplicate of
    another person), a copy in Ann's own (already enrolled), a photo without a face and
    one with two faces of one size (several faces)."""

    def draw(path: Path, *people: int, variant: int = 0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(synthetic_photo_bytes(list(people), variant=variant))

    for v in range(3):
        draw(root / "Ann" / f"a{v}.png", 1, variant=v)
    shutil.copyfile(root / "Ann" / "a1.png", root / "Ann" / "a9_copy.png")
    draw(root / "Bob" / "b0.png", 2)
    draw(root / "Bob" / "b1.png", 2, variant=1)
    draw(root / "Bob" / "b2_ann.png", 1, variant=3)
    draw(root / "Cid" / "c0.png", 3)
    draw(root / "Cid" / "c1.png", 3, variant=1)
    draw(root / "Cid" / "c2_blank.png")
    draw(root / "Cid" / "c3_two.png", 3, 4, variant=5)
    draw(root / "Dee" / "d0.png", 4)
    draw(root / "Dee" / "d1.png", 4, variant=2)
    shutil.copyfile(root / "Ann" / "a0.png", root / "Dee" / "d2_ann.png")
    return root


def gallery_contents(path: Path) -> dict[str, list[tuple[str, tuple[str, ...], np.ndarray]]]:
    """Each person's templates: (photo file name, flags, vector), by file name."""
    from faceindex.gallery import Gallery

    gallery = Gallery.open(path)
    try:
        vectors = gallery._store.vectors()
        by_id = dict(zip(vectors.template_ids.tolist(), vectors.vectors, strict=True))
        out: dict[str, list[tuple[str, tuple[str, ...], np.ndarray]]] = {}
        for person in gallery.people(limit=1000):
            rows = [
                (Path(t.source or "").name, tuple(t.flags), by_id[t.id])
                for t in gallery.templates(person.id)
            ]
            out[person.name] = sorted(rows, key=lambda r: r[0])
        return out
    finally:
        gallery.close()


def assert_same_contents(a: Path, b: Path) -> None:
    left, right = gallery_contents(a), gallery_contents(b)
    assert sorted(left) == sorted(right)
    for name in left:
        assert [(s, f) for s, f, _ in left[name]] == [(s, f) for s, f, _ in right[name]], name
        for (_, _, u), (_, _, v) in zip(left[name], right[name], strict=True):
            np.testing.assert_allclose(u, v, atol=1e-6)


def outcomes(stdout: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(person, photo file name, status, reasons) of each ``enroll --folders --json`` line."""
    import json

    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [(r["person"], Path(r["source"]).name, r["status"], tuple(r["reasons"])) for r in rows]


def install_killer(marker: str, dask_worker: Any = None) -> None:
    """On a Dask worker (``client.run``): this worker process dies, as a crash would kill
    it, when it starts analysing a photo whose path ends with ``marker``. A worker started
    after that (the nanny restarts it) is a fresh process without the trap."""
    from faceindex.engines import dask_worker

    original: Callable[..., Any] = dask_worker.analyse_photo

    def deadly(pipeline: Any, source: Any, **kwargs: Any) -> Any:
        if str(source).endswith(marker):
            os._exit(1)
        return original(pipeline, source, **kwargs)

    dask_worker.analyse_photo = deadly  # type: ignore[assignment]
