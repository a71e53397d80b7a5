"""The photo library on the fake backends: incremental and resumable scans, non-images,
clustering, naming, merging, "not this person", photo search, sealing; in milliseconds.

Every test runs on both stores (``gallery_location``: a SQLite file, and a PostgreSQL
database marked ``integration``; see tests/pg_server.py), the library's tables in the
gallery's database either way."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceindex import pg
from faceindex.crypto import KeyRequiredError, TemplateKey
from faceindex.errors import ConflictError, NotFoundError
from faceindex.gallery import Gallery, open_gallery
from faceindex.library import PhotoLibrary
from faceindex.pipeline import Pipeline
from faceindex.testing.synthetic import synthetic_photo_bytes
from faceindex.types import IdentDecision

Draw = Callable[..., Path]


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    return tmp_path / "photos"


@pytest.fixture()
def draw(photos: Path) -> Draw:
    """``draw(name, *people, variant=0)``: a synthetic photo under the photo folder."""

    def make(name: str, *people: int, variant: int = 0) -> Path:
        path = photos / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(synthetic_photo_bytes(list(people), variant=variant))
        return path

    return make


@pytest.fixture()
def gallery(gallery_location: str, fake_pipeline: Pipeline) -> Iterator[Gallery]:
    with open_gallery(gallery_location, pipeline=fake_pipeline) as g:
        yield g


def raw_rows(location: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """``sql`` run on the gallery's database itself (not through the library), either store."""
    if pg.is_url(location):
        conn = pg.connect(location, vectors=False)
        try:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()
    with contextlib.closing(sqlite3.connect(location)) as lite:
        return [tuple(r) for r in lite.execute(sql, params).fetchall()]


@pytest.fixture()
def library(gallery: Gallery) -> Iterator[PhotoLibrary]:
    with PhotoLibrary(gallery) as lib:
        yield lib


def three_people(draw: Draw) -> None:
    for person in (1, 2, 3):
        for v in range(3):
            draw(f"{'trip/' if person == 2 else ''}p{person}_{v}.png", person, variant=v)


class CountingPipeline:
    """Counts the photos the pipeline analyses (and can fail on the n-th, like a kill)."""

    def __init__(self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.fail_at: int | None = None
        original = pipeline.analyze

        def analyze(source):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.fail_at is not None and self.calls == self.fail_at:
                raise KeyboardInterrupt
            return original(source)

        monkeypatch.setattr(pipeline, "analyze", analyze)


def test_scan_indexes_recursively_and_skips_non_images(
    library: PhotoLibrary, draw: Draw, photos: Path
) -> None:
    three_people(draw)
    (photos / "notes.txt").write_text("not a photo")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    (photos / ".hidden").mkdir()
    draw(".hidden/p1.png", 1)
    report = library.scan([photos])
    assert (report.files, report.new, report.not_images, report.errors) == (11, 10, 1, 1)
    assert report.faces == 9
    assert report.error_paths == [(str(photos / "broken.jpg"), "image_decode_error")]
    assert library.counts()["photos"] == 10  # the broken file is remembered, not retried


def test_rescan_reads_only_new_or_changed_files(
    library: PhotoLibrary,
    draw: Draw,
    photos: Path,
    fake_pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    three_people(draw)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    library.scan([photos])
    counter = CountingPipeline(fake_pipeline, monkeypatch)
    again = library.scan([photos])
    assert (again.unchanged, again.new, again.changed, again.errors, counter.calls) == (
        10,
        0,
        0,
        0,
        0,
    )
    # same bytes, new mtime: hashed, not analysed
    touched = photos / "p1_0.png"
    os.utime(touched, ns=(1_000_000_000, 1_000_000_000))
    # new bytes: analysed again, its old faces replaced
    draw("p3_0.png", 3, 1, variant=4)
    draw("p4_0.png", 4)
    report = library.scan([photos])
    assert (report.touched, report.changed, report.new, counter.calls) == (1, 1, 1, 2)
    assert report.faces == 3
    assert library.counts()["faces"] == 9 - 1 + 2 + 1


def test_a_killed_scan_resumes_where_it_stopped(
    library: PhotoLibrary,
    draw: Draw,
    photos: Path,
    fake_pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    three_people(draw)
    counter = CountingPipeline(fake_pipeline, monkeypatch)
    counter.fail_at = 5
    with pytest.raises(KeyboardInterrupt):
        library.scan([photos])
    assert library.counts()["photos"] == 4  # each photo committed on its own
    counter.fail_at, counter.calls = None, 0
    report = library.scan([photos])
    assert (report.new, report.unchanged, counter.calls) == (5, 4, 5)
    assert len(library.clusters().clusters) == 3


def test_files_gone_from_a_scanned_folder_are_forgotten(
    library: PhotoLibrary, draw: Draw, photos: Path, tmp_path: Path
) -> None:
    three_people(draw)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.png").write_bytes(synthetic_photo_bytes([5]))
    library.scan([photos, other])
    (photos / "p1_0.png").unlink()
    report = library.scan([photos])  # "other" not scanned this time: kept
    assert report.removed == 1
    assert library.counts()["photos"] == 9


def test_clusters_group_people_largest_first_and_leave_strangers_out(
    library: PhotoLibrary, draw: Draw, photos: Path
) -> None:
    three_people(draw)
    draw("group.png", 1, 2, variant=5)
    draw("stranger.png", 9)
    report = library.scan([photos])
    assert report.clusters_new == 3
    listing = library.clusters()
    assert [c.size for c in listing.clusters] == [4, 4, 3]
    for c in listing.clusters:
        people = {
            Path(f.path).name.split("_")[0] for f in c.faces if Path(f.path).name != "group.png"
        }
        assert len(people) == 1
    assert [Path(f.path).name for f in listing.unclustered] == ["stranger.png"]
    data = listing.as_dict()
    assert set(data) == {"clusters", "unclustered"}
    assert set(data["clusters"][0]) == {"id", "size", "faces"}
    assert set(data["clusters"][0]["faces"][0]) == {"id", "path", "bbox"}


def test_new_scans_join_existing_clusters_without_reclustering(
    library: PhotoLibrary, draw: Draw, photos: Path
) -> None:
    three_people(draw)
    library.scan([photos])
    before = {c.id: c.size for c in library.clusters().clusters}
    draw("later/p2_9.png", 2, variant=9)
    draw("later/p7_a.png", 7)
    draw("later/p7_b.png", 7, variant=1)
    report = library.scan([photos])
    assert (report.clusters_joined, report.clusters_new) == (1, 1)
    after = {c.id: c.size for c in library.clusters().clusters}
    assert {k: v for k, v in after.items() if k in before} == {
        k: v + (1 if v == 3 and k == _cluster_of(library, "p2_0.png") else 0)
        for k, v in before.items()
    }


def _cluster_of(library: PhotoLibrary, name: str) -> int | None:
    for c in library.clusters().clusters:
        if any(Path(f.path).name == name for f in c.faces):
            return c.id
    return None


def test_naming_a_cluster_enrols_it_and_later_photos_are_recognised(
    library: PhotoLibrary, gallery: Gallery, draw: Draw, photos: Path
) -> None:
    three_people(draw)
    library.scan([photos])
    cid = _cluster_of(library, "p1_0.png")
    assert cid is not None
    person = library.name(cid, "Ada")
    assert (person.name, person.templates) == ("Ada", 3)
    assert _cluster_of(library, "p1_0.png") is None
    assert len(library.clusters().clusters) == 2
    # the gallery now knows her
    assert (
        gallery.identify(draw("new/ada.png", 1, variant=6))[0].decision is IdentDecision.IDENTIFIED
    )
    report = library.scan([photos])
    assert report.recognised == 1
    assert sorted(Path(p).name for p in library.photos_of([person.id])) == [
        "ada.png",
        "p1_0.png",
        "p1_1.png",
        "p1_2.png",
    ]
    # a second cluster named as the same person (by id) adds to her
    draw("more/g.png", 1, 2, variant=7)
    library.scan([photos])
    cid2 = _cluster_of(library, "p2_0.png")
    assert cid2 is not None
    bob = library.name(cid2, "Bob")
    both = library.photos_of([person.id, bob.id])
    assert [Path(p).name for p in both] == ["g.png"]
    with pytest.raises(NotFoundError):
        library.photos_of([999])


def test_merge_and_not_this_person(library: PhotoLibrary, draw: Draw, photos: Path) -> None:
    three_people(draw)
    library.scan([photos])
    a, b = _cluster_of(library, "p1_0.png"), _cluster_of(library, "p3_0.png")
    assert a is not None and b is not None
    merged = library.merge(a, b)
    assert merged.size == 6
    with pytest.raises(NotFoundError):
        library.cluster(b)
    with pytest.raises(ConflictError):
        library.merge(a, a)
    face = next(f for f in merged.faces if Path(f.path).name == "p3_0.png")
    out = library.remove_face(a, face.id)
    assert out.cluster_id is None
    with pytest.raises(NotFoundError):
        library.remove_face(a, face.id)
    # the next clustering may not put it back where it was taken out
    draw("x.png", 8)
    library.scan([photos])
    assert library.store.face(face.id).cluster_id != a


def test_a_face_taken_out_never_rejoins_even_a_cluster_of_one(
    library: PhotoLibrary, draw: Draw, photos: Path
) -> None:
    draw("a.png", 4)
    draw("b.png", 4, variant=1)
    library.scan([photos])
    (c,) = library.clusters().clusters
    removed = c.faces[0]
    library.remove_face(c.id, removed.id)
    draw("c.png", 6)
    library.scan([photos])  # clusters again: the face is placed anew
    listing = library.clusters()
    assert [(k.id, k.size) for k in listing.clusters] == [(c.id, 1)]
    assert [f.id for f in listing.unclustered] == [
        removed.id,
        *[f.id for f in listing.unclustered[1:]],
    ]
    library.remove_face(c.id, c.faces[1].id)
    assert library.clusters().clusters == ()


def test_face_vectors_are_sealed_with_the_gallery_key(
    gallery_location: str, fake_pipeline: Pipeline, draw: Draw, photos: Path
) -> None:
    key = TemplateKey.generate()
    three_people(draw)
    with (
        open_gallery(gallery_location, pipeline=fake_pipeline, key=key) as g,
        PhotoLibrary(g) as lib,
    ):
        lib.scan([photos])
        face_id = lib.clusters().clusters[0].faces[0].id
        clear, _ = lib.store.vectors([face_id])
    ((blob, key_id),) = raw_rows(
        gallery_location, "SELECT vector, key_id FROM library_faces WHERE id = ?", (face_id,)
    )
    assert key_id == key.key_id
    assert np.ascontiguousarray(clear[0], "<f4").tobytes() not in bytes(blob)
    with open_gallery(gallery_location, pipeline=fake_pipeline) as g, PhotoLibrary(g) as lib:
        assert len(lib.clusters().clusters) == 3  # listing needs no key
        with pytest.raises(KeyRequiredError):
            lib.store.vectors([face_id])


def test_a_library_of_another_embedder_is_refused(
    library: PhotoLibrary, draw: Draw, photos: Path
) -> None:
    from faceindex.errors import EmbeddingModelMismatchError
    from faceindex.library.store import NewFace
    from faceindex.types import BBox

    face = NewFace(BBox(0, 0, 10, 10), 0.9, True, np.ones(4, np.float32) / 2, "other-model")
    library.store.save_photo("/x.png", size=1, mtime_ns=1, sha256="0", status="ok", faces=[face])
    draw("a.png", 1)
    with pytest.raises(EmbeddingModelMismatchError, match="other-model"):
        library.scan([photos])


def test_erasing_or_merging_a_person_reaches_the_library(
    library: PhotoLibrary, gallery: Gallery, draw: Draw, photos: Path, gallery_location: str
) -> None:
    """The triggers (SQLite's, and Postgres's PL/pgSQL ones) follow the gallery's people."""
    three_people(draw)
    library.scan([photos])
    ada = library.name(_cluster_of(library, "p1_0.png"), "Ada")  # type: ignore[arg-type]
    bob = library.name(_cluster_of(library, "p2_0.png"), "Bob")  # type: ignore[arg-type]
    draw("later/ada.png", 1, variant=6)
    draw("later/bob.png", 2, variant=6)
    assert library.scan([photos]).recognised == 2

    count = "SELECT count(*) FROM library_faces WHERE person_id = ?"
    (bobs,) = raw_rows(gallery_location, count, (bob.id,))[0]
    assert bobs >= 4  # three named, one recognised
    gallery.merge(ada.id, bob.id)  # Bob's faces now belong to Ada, in the library too
    assert raw_rows(gallery_location, count, (bob.id,)) == [(0,)]
    names = sorted(Path(p).name for p in library.photos_of([ada.id]))
    assert "bob.png" in names and "ada.png" in names
    with pytest.raises(NotFoundError):
        library.photos_of([bob.id])

    total = raw_rows(gallery_location, "SELECT count(*) FROM library_faces")[0][0]
    gallery.remove(ada.id)  # erasure: her faces leave the library's tables as well
    left = raw_rows(
        gallery_location, "SELECT count(*) FROM library_faces WHERE person_id IS NOT NULL"
    )[0][0]
    assert left == 0
    assert raw_rows(gallery_location, "SELECT count(*) FROM library_faces")[0][0] < total
    if pg.is_url(gallery_location):  # the VACUUM that ends an erasure covered library_faces too
        assert raw_rows(gallery_location, "SELECT count(*) FROM pending_erasures") == [(0,)]


def test_rotating_the_gallery_key_reseals_the_library(
    tmp_path: Path, gallery_location: str, fake_pipeline: Pipeline, draw: Draw, photos: Path
) -> None:
    """``encryption-key rotate`` (CLI) moves the library's vectors to the new key too."""
    from faceindex.cli.main import main

    old, new = tmp_path / "old.key", tmp_path / "new.key"
    assert main(["encryption-key", "generate", "--out", str(old)]) == 0
    assert main(["encryption-key", "generate", "--out", str(new)]) == 0
    old_key, new_key = TemplateKey.from_file(old), TemplateKey.from_file(new)
    three_people(draw)
    db = gallery_location
    with open_gallery(db, pipeline=fake_pipeline, key=old_key) as g, PhotoLibrary(g) as lib:
        lib.scan([photos])
        before = lib.clusters()
    rotate = ["encryption-key", "rotate", "--gallery", db, "--key-file", str(old)]
    assert main([*rotate, "--new-key-file", str(new)]) == 0
    ids = {k for (k,) in raw_rows(db, "SELECT DISTINCT key_id FROM library_faces")}
    assert ids == {new_key.key_id}
    with open_gallery(db, pipeline=fake_pipeline, key=new_key) as g, PhotoLibrary(g) as lib:
        face_ids = [f.id for c in lib.clusters().clusters for f in c.faces]
        vectors, _ = lib.store.vectors(face_ids)  # readable with the new key
        assert len(vectors) == len(face_ids) == sum(c.size for c in before.clusters)
        draw("later/p1.png", 1, variant=7)
        report = lib.scan([photos])  # and the library goes on working: it clusters the new face
        assert report.new == 1 and report.errors == 0 and report.faces == 1
